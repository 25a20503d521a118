/**
 * The page `npm run bench -- --browser` opens in Chromium (bundled by
 * bench/browser.ts): on one backend, a ConvNorm(+BN) unit's forward and
 * backward beside Conv+BN's, and a small-CNN training step with each.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import {setThreadsCount, setWasmPaths} from '@tensorflow/tfjs-backend-wasm';

import {BrowserBackendName, engineInfo, EngineInfo, useBackend} from '../src/engine/backend.js';
import {convUnit, NormKind, SeedSequence} from '../src/models/blocks.js';
import {smallCnn} from '../src/models/small_cnn.js';
import {TrainStep} from '../src/training/step.js';

setWasmPaths('/wasm/');
if (globalThis.crossOriginIsolated) setThreadsCount(navigator.hardwareConcurrency);

export interface BrowserBenchConfig {
  /** Timed repetitions of the unit (median), after two untimed (shader compilation). */
  reps: number;
  /** Timed training steps (median), after two untimed. */
  steps: number;
  /** The unit: channels in and out, input side, batch. */
  unit: {channels: number; size: number; batch: number};
  /** Small-CNN batch (32x32x3 images). */
  batch: number;
}

export interface BrowserBenchResult {
  backend: string;
  info: EngineInfo | undefined;
  unitMs: Record<string, number>;
  stepMs: Record<string, number>;
  /** Tensors alive after each timed step, per norm (a constant count: nothing left behind). */
  tensors: Record<string, number[]>;
}

const NORMS: NormKind[] = ['bn', 'convnorm'];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(fn: () => Promise<void>, reps: number, after?: () => void): Promise<number> {
  // Two untimed runs: webgpu compiles some pipelines asynchronously, after the first.
  await fn();
  await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    after?.();
  }
  return median(times);
}

async function benchBackend(backend: BrowserBackendName, config: BrowserBenchConfig): Promise<BrowserBenchResult> {
  const name = await useBackend(backend);
  const result: BrowserBenchResult = {backend: name, info: engineInfo(), unitMs: {}, stepMs: {}, tensors: {}};
  const {channels, size, batch} = config.unit;
  for (const norm of NORMS) {
    const input = tfl.input({shape: [size, size, channels]});
    const model = tfl.model({inputs: input, outputs: convUnit(input, {filters: channels, kernelSize: 3, norm,
                                                                      seeds: new SeedSequence(1)})});
    const x = tf.randomNormal([batch, size, size, channels], 0, 1, 'float32', 1);
    const variables = model.trainableWeights.map(w => w.read() as tf.Variable);
    result.unitMs[norm] = await timed(async () => {
      const {value, grads} = tf.variableGrads(() => tf.sum(model.apply(x, {training: true}) as tf.Tensor) as tf.Scalar,
                                              variables);
      // One read back of something every gradient feeds waits for the whole queue. Asynchronous:
      // webgpu's dataSync returns zeros on SwiftShader without waiting for the work.
      const total = tf.tidy(() => tf.addN(Object.values(grads).map(g => tf.sum(g))));
      await total.data();
      tf.dispose([value, total, ...Object.values(grads)]);
    }, config.reps);
    x.dispose();
    model.dispose();
  }
  for (const norm of NORMS) {
    const model = smallCnn({norm, seed: 1});
    const step = new TrainStep(model, {learningRate: 0.01});
    const x = tf.randomNormal([config.batch, 32, 32, 3], 0, 1, 'float32', 2);
    const labels = tf.tensor1d(Array.from({length: config.batch}, (_, i) => i % 10), 'int32');
    result.tensors[norm] = [];
    // stepAsync() resolves when the loss is read back, so once the backend has finished the step.
    result.stepMs[norm] = await timed(async () => { await step.stepAsync(x, labels); }, config.steps,
                                      () => result.tensors[norm].push(tf.memory().numTensors));
    tf.dispose([x, labels]);
    step.dispose();
    model.dispose();
  }
  return result;
}

(globalThis as unknown as {benchBackend: typeof benchBackend}).benchBackend = benchBackend;
