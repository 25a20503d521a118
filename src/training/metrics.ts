/**
 * Classification metrics: top-k accuracy with a deterministic rule for ties,
 * and evaluation of a model over an ImageDataset in inference mode.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {makeBatch, Normalization} from '../data/batches.js';
import {datasetSize, ImageDataset} from '../data/dataset.js';

/**
 * Per row, 1 when the true class is among the k highest logits, else 0
 * (float32, shape [N]). Ties are ranked by class index, lower first (a stable
 * descending sort): the true class's rank is the number of classes with a
 * larger logit plus the number of lower-indexed classes with an equal one, and
 * the row counts when that rank is below k. So a row whose logits are all equal
 * is right at top-1 exactly when its label is class 0. k larger than the
 * number of classes is clamped to it. A row with a NaN logit anywhere never
 * counts (a diverged model scores 0, not 100%).
 */
export function topKHits(logits: tf.Tensor, labels: tf.Tensor, k: number): tf.Tensor1D {
  if (!Number.isInteger(k) || k < 1) throw new Error(`top-k needs a positive integer k, got ${k}`);
  if (logits.rank !== 2) throw new Error(`top-k expects logits [batch, classes], got shape [${logits.shape}]`);
  const [n, classes] = logits.shape as [number, number];
  if (labels.rank !== 1 || labels.shape[0] !== n) {
    throw new Error(`top-k expects ${n} integer labels, got shape [${labels.shape}]`);
  }
  return tf.tidy(() => {
    const l = tf.cast(logits, 'float32') as tf.Tensor2D;
    const y = tf.reshape(tf.cast(labels, 'int32'), [n, 1]);
    const classIndex = tf.reshape(tf.range(0, classes, 1, 'int32'), [1, classes]);
    const isTarget = tf.equal(classIndex, y);
    const target = tf.sum(tf.where(isTarget, l, tf.zerosLike(l)), 1, true);
    const above = tf.greater(l, target);
    const tiedBefore = tf.logicalAnd(tf.equal(l, target), tf.less(classIndex, y));
    const rank = tf.sum(tf.cast(tf.logicalOr(above, tiedBefore), 'int32'), 1);
    const valid = tf.logicalNot(tf.any(tf.isNaN(l), 1));
    return tf.cast(tf.logicalAnd(tf.less(rank, Math.min(k, classes)), valid), 'float32') as tf.Tensor1D;
  });
}

/** Number of rows whose label is among the top k logits (see topKHits for ties). */
export function topKCorrect(logits: tf.Tensor, labels: tf.Tensor | ArrayLike<number>, k: number): number {
  const count = tf.tidy(() => {
    const y = labels instanceof tf.Tensor ? labels : tf.tensor1d(Array.from(labels), 'int32');
    return tf.sum(topKHits(logits, y, k));
  });
  const value = count.dataSync()[0];
  count.dispose();
  return value;
}

/** Fraction of rows whose label is among the top k logits; 0 for an empty batch. */
export function topKAccuracy(logits: tf.Tensor, labels: tf.Tensor | ArrayLike<number>, k: number): number {
  const n = logits.shape[0];
  return n === 0 ? 0 : topKCorrect(logits, labels, k) / n;
}

export interface EvalOptions {
  /** Images per forward pass. Default 256. */
  batchSize?: number;
  /** Input normalization, as in training (passed to makeBatch). */
  normalization?: Normalization;
  /** Called after each batch with the images done so far. */
  onBatch?: (done: number, total: number) => void;
}

export interface EvalResult {
  /** Mean softmax cross-entropy per image. */
  loss: number;
  /** Top-1 accuracy, a fraction in [0, 1]. */
  top1: number;
  /** Top-5 accuracy (top-k with k clamped to the number of classes). */
  top5: number;
  /** Images evaluated. */
  count: number;
}

/**
 * Evaluates `model` (which outputs logits) on every image of `ds`, in order,
 * in inference mode (BatchNorm and ConvNorm use their running statistics and
 * update nothing). Allocates no tensor that outlives the call.
 */
export async function evaluate(model: tfl.LayersModel, ds: ImageDataset, options: EvalOptions = {}): Promise<EvalResult> {
  const batchSize = options.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`evaluation batch size must be a positive integer, got ${batchSize}`);
  const total = datasetSize(ds);
  let lossSum = 0;
  let top1 = 0;
  let top5 = 0;
  for (let start = 0; start < total; start += batchSize) {
    const end = Math.min(total, start + batchSize);
    const indices = Int32Array.from({length: end - start}, (_, i) => start + i);
    const {x, labels} = makeBatch(ds, indices, {normalization: options.normalization});
    const sums = tf.tidy(() => {
      const logits = model.apply(x, {training: false}) as tf.Tensor2D;
      checkLogits(logits, ds);
      const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, ds.numClasses), logits, undefined, 0, tf.Reduction.SUM);
      return tf.stack([loss, tf.sum(topKHits(logits, labels, 1)), tf.sum(topKHits(logits, labels, 5))]);
    });
    tf.dispose([x, labels]);
    const values = await sums.data();
    sums.dispose();
    lossSum += values[0];
    top1 += values[1];
    top5 += values[2];
    options.onBatch?.(end, total);
  }
  return total === 0
    ? {loss: NaN, top1: 0, top5: 0, count: 0}
    : {loss: lossSum / total, top1: top1 / total, top5: top5 / total, count: total};
}

/** Throws when the model's output is not [batch, numClasses] logits for the dataset. */
export function checkLogits(logits: tf.Tensor, ds: ImageDataset): void {
  if (logits.rank !== 2 || logits.shape[1] !== ds.numClasses) {
    throw new Error(`the model outputs shape [${logits.shape}], dataset '${ds.name}' has ${ds.numClasses} classes: ` +
      'expected [batch, classes] logits');
  }
}

/**
 * For each of `labelSets` (one label per image of `ds`), the fraction of
 * images whose top-1 prediction (inference mode; ties to the lower class, as
 * topKHits) is that label: one forward pass for all of them. With the noisy
 * and the true labels of the images whose label noise changed, these are how
 * much of the noise the model has memorized and how much it still gets right.
 */
export async function labelAgreement(model: tfl.LayersModel, ds: ImageDataset, labelSets: Int32Array[],
                                     options: Omit<EvalOptions, 'onBatch'> = {}): Promise<number[]> {
  const total = datasetSize(ds);
  labelSets.forEach((l, i) => {
    if (l.length !== total) throw new Error(`label set ${i} has ${l.length} labels for ${total} images`);
  });
  const batchSize = options.batchSize ?? 256;
  const hits = new Array<number>(labelSets.length).fill(0);
  for (let start = 0; start < total; start += batchSize) {
    const end = Math.min(total, start + batchSize);
    const {x, labels} = makeBatch(ds, Int32Array.from({length: end - start}, (_, i) => start + i),
                                  {normalization: options.normalization});
    const counts = tf.tidy(() => {
      const logits = model.apply(x, {training: false}) as tf.Tensor2D;
      checkLogits(logits, ds);
      return tf.stack(labelSets.map(set => tf.sum(topKHits(logits, tf.tensor1d(set.subarray(start, end), 'int32'), 1))));
    });
    tf.dispose([x, labels]);
    const values = await counts.data();
    counts.dispose();
    values.forEach((v, i) => { hits[i] += v; });
  }
  return hits.map(h => (total === 0 ? 0 : h / total));
}
