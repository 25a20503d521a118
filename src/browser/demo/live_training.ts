/**
 * The small CNN trained live, ConvNorm(+BN) against BN, on the embedded
 * digits: both from the same seed, on the same batches, one step of each in
 * turn, with the test top-1 measured every few steps. The loop yields to the
 * page between steps so that the charts and the stop button stay live.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import {evaluate, ImageDataset, makeBatch, Rng, smallCnn, TrainStep} from '../../index.js';
import type {CurvePoint} from './charts.js';
import {checkIntegers} from './checks.js';

export const SERIES = ['ConvNorm+BN', 'BN'] as const;

export interface LiveTrainingOptions {
  steps: number;
  batchSize: number;
  learningRate: number;
  /** Test top-1 every this many steps (and after the last). */
  testEvery: number;
  seed: number;
}

export interface SeriesStats {
  series: string;
  step: number;
  loss: number;
  testTop1: number | undefined;
  imagesPerSecond: number;
}

export interface LiveProgress {
  losses: CurvePoint[];
  accuracies: CurvePoint[];
  stats: SeriesStats[];
  done: boolean;
}

interface Run {
  series: string;
  model: tfl.LayersModel;
  step: TrainStep;
  seconds: number;
  images: number;
  stats: SeriesStats;
}

export function checkLiveOptions(o: LiveTrainingOptions): void {
  checkIntegers([
    ['steps', o.steps, 1, 100000], ['batch size', o.batchSize, 2, 512], ['test every', o.testEvery, 1, 100000],
    ['seed', o.seed, 0, 2 ** 31 - 1],
  ]);
  if (!(o.learningRate > 0 && o.learningRate <= 1)) throw new Error(`learning rate must be in (0, 1], got ${o.learningRate}`);
}

const nextFrame = () => new Promise<void>(resolve => setTimeout(resolve, 0));

/**
 * Trains until `options.steps` or until `signal` aborts, calling `onProgress`
 * after every pair of steps. Disposes everything it made.
 */
export async function trainLive(train: ImageDataset, test: ImageDataset, options: LiveTrainingOptions,
                                onProgress: (p: LiveProgress) => void, signal: AbortSignal): Promise<LiveProgress> {
  checkLiveOptions(options);
  const runs: Run[] = SERIES.map(series => {
    const model = smallCnn({norm: series === 'BN' ? 'bn' : 'convnorm', inputShape: train.shape,
                            numClasses: train.numClasses, seed: options.seed});
    return {series, model, step: new TrainStep(model, {learningRate: options.learningRate}), seconds: 0, images: 0,
            stats: {series, step: 0, loss: NaN, testTop1: undefined, imagesPerSecond: 0}};
  });
  const progress: LiveProgress = {losses: [], accuracies: [], stats: runs.map(r => r.stats), done: false};
  const order = new Rng(options.seed);
  let permutation = order.permutation(train.labels.length);
  let position = 0;
  try {
    for (let step = 1; step <= options.steps && !signal.aborted; step++) {
      if (position + options.batchSize > permutation.length) {
        permutation = order.permutation(train.labels.length);
        position = 0;
      }
      const indices = permutation.subarray(position, position + options.batchSize);
      position += options.batchSize;
      for (const run of runs) {
        const {x, labels} = makeBatch(train, indices);
        const start = performance.now();
        // Read back asynchronously: webgpu's synchronous read does not wait for the step.
        const result = await run.step.stepAsync(x, labels);
        run.seconds += (performance.now() - start) / 1000;
        tf.dispose([x, labels]);
        run.images += indices.length;
        if (!Number.isFinite(result.loss)) throw new Error(`${run.series}: the loss is ${result.loss} at step ${step}; lower the learning rate`);
        Object.assign(run.stats, {step, loss: result.loss, imagesPerSecond: run.images / run.seconds});
        progress.losses.push({series: run.series, step, value: result.loss});
        if (step % options.testEvery === 0 || step === options.steps) {
          run.stats.testTop1 = (await evaluate(run.model, test)).top1;
          progress.accuracies.push({series: run.series, step, value: run.stats.testTop1});
        }
      }
      onProgress(progress);
      await nextFrame();
    }
  } finally {
    for (const run of runs) {
      run.step.dispose();
      run.model.dispose();
    }
  }
  progress.done = true;
  onProgress(progress);
  return progress;
}
