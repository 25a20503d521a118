/**
 * Scoring a generator: its samples and a set of real images through a
 * feature network (./features.ts), then the Fréchet distance between the two
 * feature sets and the Inception-style score of the samples' logits
 * (./scores.ts), under the network's own labels.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import {makeBatch} from '../data/batches.js';
import {datasetSize, ImageDataset} from '../data/dataset.js';
import {Rng} from '../data/random.js';
import type {FeatureNetwork} from './features.js';
import {featureStatistics, FeatureStatistics, frechetDistance, inceptionScore} from './scores.js';

/** A batch of z: `n` rows of `zDim` standard normal draws from `rng`, row after row. */
export function gaussianNoise(rng: Rng, n: number, zDim: number): tf.Tensor2D {
  const values = new Float32Array(n * zDim);
  for (let i = 0; i < values.length; i++) values[i] = rng.normal();
  return tf.tensor2d(values, [n, zDim]);
}

/** Real images as the GAN sees them: pixel / 127.5 - 1, in [-1, 1]. */
export const GAN_NORMALIZATION = Object.freeze({mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]});

/** The batch of `ds` at `indices` in [-1, 1]. */
export function realBatch(ds: ImageDataset, indices: ArrayLike<number>): tf.Tensor4D {
  const c = ds.shape[2];
  const {x, labels} = makeBatch(ds, indices, {normalization: {mean: GAN_NORMALIZATION.mean.slice(0, c),
                                                               std: GAN_NORMALIZATION.std.slice(0, c)}});
  labels.dispose();
  return x;
}

interface Activations {
  features: Float32Array;
  d: number;
  logits: Float32Array;
  k: number;
}

/** The network's features and logits of `count` images, `batch(from, to)` giving images from..to-1. */
async function activations(net: FeatureNetwork, count: number, batchSize: number,
                           batch: (from: number, to: number) => tf.Tensor4D): Promise<Activations> {
  let features: Float32Array | undefined;
  let logits: Float32Array | undefined;
  let d = 0;
  let k = 0;
  for (let from = 0; from < count; from += batchSize) {
    const to = Math.min(count, from + batchSize);
    const images = batch(from, to);
    const out = net.apply(images);
    images.dispose();
    try {
      [d, k] = [out.features.shape[1], out.logits.shape[1]];
      features ??= new Float32Array(count * d);
      logits ??= new Float32Array(count * k);
      features.set(await out.features.data() as Float32Array, from * d);
      logits.set(await out.logits.data() as Float32Array, from * k);
    } finally {
      tf.dispose([out.features, out.logits]);
    }
  }
  return {features: features!, d, logits: logits!, k};
}

function checkShape(net: FeatureNetwork, shape: readonly number[], what: string): void {
  if (!net.imageShape.every((x, i) => x === shape[i])) {
    throw new Error(`the feature network takes [${net.imageShape}] images, ${what} are [${shape}]`);
  }
}

/**
 * Feature statistics of `count` real images of `ds`, a seeded random subset
 * (all of them when count is the dataset's size, in order).
 */
export async function realStatistics(net: FeatureNetwork, ds: ImageDataset,
                                     options: {count: number; batchSize: number; seed: number}): Promise<FeatureStatistics> {
  checkShape(net, ds.shape, `the images of '${ds.name}'`);
  const n = datasetSize(ds);
  if (!Number.isInteger(options.count) || options.count < 2 || options.count > n) {
    throw new Error(`the real statistics need 2 to ${n} images of '${ds.name}', got ${options.count}`);
  }
  const order = options.count === n ? Int32Array.from({length: n}, (_, i) => i)
    : new Rng(options.seed).permutation(n).subarray(0, options.count);
  const a = await activations(net, options.count, options.batchSize, (from, to) => realBatch(ds, order.subarray(from, to)));
  return featureStatistics({values: a.features, n: options.count, d: a.d});
}

export interface GeneratorScoreOptions {
  /** Generated images scored. */
  samples: number;
  batchSize: number;
  /** Seed of the noise (the same seed scores the same z at every step). */
  seed: number;
  /** Splits of the Inception-style score. Default 10, as torch-fidelity (fewer when there are fewer samples). */
  splits?: number;
}

/** Scores under the network's labels: the distance, the score and its std over the splits. */
export type GanScores = Record<string, number>;

/**
 * The Fréchet distance between the generator's samples (inference mode) and
 * `real`, and the score of their logits, keyed by the network's labels
 * (`labels.is + ' std'` holds the score's spread over the splits).
 */
export async function scoreGenerator(generator: tfl.LayersModel, net: FeatureNetwork, real: FeatureStatistics,
                                     options: GeneratorScoreOptions): Promise<GanScores> {
  const shape = generator.outputs[0].shape.slice(1) as number[];
  checkShape(net, shape, 'the generator\'s images');
  const zDim = generator.inputs[0].shape[1] as number;
  const {samples, batchSize} = options;
  if (!Number.isInteger(samples) || samples < 2) throw new Error(`scoring needs at least 2 samples, got ${samples}`);
  const rng = new Rng(options.seed);
  const a = await activations(net, samples, batchSize, (from, to) => tf.tidy(() => {
    const z = gaussianNoise(rng, to - from, zDim);
    return generator.predict(z) as tf.Tensor4D;
  }));
  const fd = frechetDistance(featureStatistics({values: a.features, n: samples, d: a.d}), real);
  const is = inceptionScore({values: a.logits, n: samples, d: a.k}, Math.min(options.splits ?? 10, samples));
  return {[net.labels.fd]: fd, [net.labels.is]: is.mean, [`${net.labels.is} std`]: is.std};
}
