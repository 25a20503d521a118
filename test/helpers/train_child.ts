/**
 * The tiny training set-up the training tests share, and, run as a script, a
 * training process for the resume test to kill:
 *
 *   node --import tsx test/helpers/train_child.ts <runDir> <norm> <epochs> <hangEpoch> <hangBatch> [adversarial]
 *
 * trains like the tests do (cpu backend; `adversarial` names one of
 * TINY_ADVERSARIAL) and, after step <hangBatch> of epoch
 * <hangEpoch>, prints `HANGING <epoch> <batch>` and waits forever, so that the
 * test can SIGKILL it mid-epoch at a known point.
 */
import * as tfl from '@tensorflow/tfjs-layers';

import {ImageDataset} from '../../src/data/dataset.js';
import {Rng} from '../../src/data/random.js';
import {convUnit, linear, NormKind, relu, SeedSequence} from '../../src/models/blocks.js';
import type {AdversarialTraining} from '../../src/training/adversarial.js';
import {train, TrainOptions} from '../../src/training/trainer.js';
import {useTestBackend} from './backends.js';
import {hang, runIfScript} from './child_process.js';

/**
 * `count` random 8x8x3 images of 4 classes; each class tints its own channel
 * mix, so there is something to learn.
 */
export function tinyDataset(count: number, seed: number, name = 'tiny'): ImageDataset {
  const rng = new Rng(seed);
  const shape: [number, number, number] = [8, 8, 3];
  const size = shape[0] * shape[1] * shape[2];
  const pixels = new Uint8Array(count * size);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = rng.int(4);
    labels[i] = label;
    for (let k = 0; k < size; k++) {
      const tint = (k % 3 === label % 3 ? 60 : 0) + (label === 3 ? 40 : 0);
      pixels[i * size + k] = Math.min(255, rng.int(180) + tint);
    }
  }
  return {name, pixels, labels, shape, numClasses: 4};
}

/**
 * conv(3->6) + norm + ReLU, max-pool, conv(6->8) + norm + ReLU, global average
 * pool, linear(8->4): the units of the repo's models at a size the cpu backend
 * trains in tens of milliseconds per step.
 */
export function tinyModel(norm: NormKind, seed: number): tfl.LayersModel {
  const seeds = new SeedSequence(seed);
  const input = tfl.input({shape: [8, 8, 3]});
  let x = relu(convUnit(input, {filters: 6, kernelSize: 3, norm, seeds}));
  x = tfl.layers.maxPooling2d({poolSize: 2, strides: 2}).apply(x) as tfl.SymbolicTensor;
  x = relu(convUnit(x, {filters: 8, kernelSize: 3, norm, seeds}));
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  return tfl.model({inputs: input, outputs: linear(x, 4, seeds), name: `tiny_${norm}`});
}

/** 40 training images: batches of 16, 16 and 8 (a kept incomplete batch). */
export const TRAIN_SIZE = 40;
export const TEST_SIZE = 24;

/** Adversarial training the resume tests run: free with a carried perturbation, and PGD. */
export const TINY_ADVERSARIAL: Record<string, AdversarialTraining> = {
  'free-carry': {kind: 'free', replays: 3, eps: 8 / 255, step: 6 / 255, perturbation: 'carry'},
  'pgd': {kind: 'pgd', eps: 8 / 255, step: 3 / 255, steps: 2},
};

/** The options every training test uses, for a model built with tinyModel(norm, 7). */
export function tinyRunOptions(norm: NormKind, runDir: string, epochs: number, adversarial?: string): TrainOptions {
  return {
    adversarial: adversarial === undefined ? undefined : TINY_ADVERSARIAL[adversarial],
    model: tinyModel(norm, 7),
    modelSpec: {architecture: 'tiny', norm, seed: 7},
    train: tinyDataset(TRAIN_SIZE, 11, 'tiny-train'),
    test: tinyDataset(TEST_SIZE, 12, 'tiny-test'),
    batchSize: 16,
    epochs,
    // A milestone inside the run, so resuming must pick the right rate.
    schedule: {kind: 'multistep', lr: 0.05, milestones: [2], gamma: 0.1},
    seed: 3,
    augmentation: {cropPadding: 1, flip: true},
    normalization: {mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]},
    runDir,
    log: null,
  };
}

async function main(): Promise<void> {
  const [runDir, norm, epochs, hangEpoch, hangBatch, adversarial] = process.argv.slice(2);
  await useTestBackend('cpu');
  const options = tinyRunOptions(norm as NormKind, runDir, Number(epochs), adversarial);
  await train({
    ...options,
    onBatch: async p => {
      if (p.epoch === Number(hangEpoch) && p.batch === Number(hangBatch)) await hang(`HANGING ${p.epoch} ${p.batch}`);
    },
  });
  process.stdout.write('FINISHED\n');
}

runIfScript(import.meta.url, main);
