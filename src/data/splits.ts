import {ImageDataset, datasetSize} from './dataset.js';
import {Rng} from './random.js';

/**
 * A new dataset made of the images at `indices`, in that order (copied, so
 * the parent can be released). Name, shape, classes are kept.
 */
export function subset(ds: ImageDataset, indices: ArrayLike<number>): ImageDataset {
  const n = datasetSize(ds);
  const [h, w, c] = ds.shape;
  const size = h * w * c;
  const pixels = new Uint8Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new Error(`subset: index ${i} at position ${k} is not an integer in [0, ${n}) (dataset '${ds.name}')`);
    }
    pixels.set(ds.pixels.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = ds.labels[i];
  }
  const out: ImageDataset = {name: ds.name, pixels, labels, shape: [h, w, c], numClasses: ds.numClasses};
  if (ds.classNames) out.classNames = [...ds.classNames];
  return out;
}

/**
 * Splits `total` over classes in proportion to their sizes by largest
 * remainder (ties to the lower class), so the counts add up to `total`
 * exactly and each is within one of its proportional share.
 */
export function stratifiedCounts(classSizes: ArrayLike<number>, total: number): number[] {
  const n = Array.from(classSizes).reduce((a, b) => a + b, 0);
  if (!Number.isInteger(total) || total < 0 || total > n) {
    throw new Error(`stratifiedCounts: total ${total} is not an integer in [0, ${n}]`);
  }
  const shares = Array.from(classSizes, (s) => (n === 0 ? 0 : (s * total) / n));
  const counts = shares.map(Math.floor);
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = shares.map((_, c) => c).sort((a, b) => (shares[b] - counts[b]) - (shares[a] - counts[a]) || a - b);
  for (const c of order) {
    if (left === 0) break;
    if (counts[c] < classSizes[c]) { counts[c]++; left--; }
  }
  return counts;
}

/**
 * `count` distinct indices in [0, labels.length), ascending. Stratified: each
 * class contributes its `stratifiedCounts` share, drawn uniformly from that
 * class; otherwise a uniform draw from all indices.
 */
export function sampleIndices(
  labels: Int32Array, numClasses: number, count: number, rng: Rng, stratified = true,
): Int32Array {
  const n = labels.length;
  if (!Number.isInteger(count) || count < 0 || count > n) {
    throw new Error(`sampleIndices: count ${count} is not an integer in [0, ${n}]`);
  }
  let chosen: number[];
  if (!stratified) {
    chosen = Array.from(rng.permutation(n).subarray(0, count));
  } else {
    const byClass = indicesByClass(labels, numClasses);
    const counts = stratifiedCounts(byClass.map((p) => p.length), count);
    chosen = [];
    byClass.forEach((pool, c) => {
      const order = rng.permutation(pool.length);
      for (let k = 0; k < counts[c]; k++) chosen.push(pool[order[k]]);
    });
  }
  return Int32Array.from(chosen).sort();
}

/** The indices of each class, ascending; labels outside [0, numClasses) are an error. */
export function indicesByClass(labels: Int32Array, numClasses: number): number[][] {
  const byClass: number[][] = Array.from({length: numClasses}, () => []);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!(l >= 0 && l < numClasses)) throw new Error(`label ${l} at index ${i} is out of range [0, ${numClasses})`);
    byClass[l].push(i);
  }
  return byClass;
}

/** The indices in [0, n) that are not in `taken`, ascending. */
export function complementIndices(n: number, taken: ArrayLike<number>): Int32Array {
  const mark = new Uint8Array(n);
  for (let k = 0; k < taken.length; k++) mark[taken[k]] = 1;
  const out = new Int32Array(n - mark.reduce((a, b) => a + b, 0));
  let j = 0;
  for (let i = 0; i < n; i++) if (!mark[i]) out[j++] = i;
  return out;
}

export interface SplitOptions {
  /** Keep class proportions (each class within one image of its share). Default true. */
  stratified?: boolean;
}

/**
 * Data scarcity: a random `fraction` of the images (round(fraction * n) of
 * them), kept in their original order. The reference takes
 * int(n * fraction / 10) images from every class, which assumes balanced
 * classes; stratifying by class size gives the same counts on CIFAR and stays
 * proportional on unbalanced data.
 */
export function trainFraction(ds: ImageDataset, fraction: number, rng: Rng, options: SplitOptions = {}): ImageDataset {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`trainFraction: fraction must be in (0, 1], got ${fraction}`);
  const count = Math.round(fraction * datasetSize(ds));
  if (count === 0) throw new Error(`trainFraction: fraction ${fraction} of ${datasetSize(ds)} images keeps none`);
  return subset(ds, sampleIndices(ds.labels, ds.numClasses, count, rng, options.stratified ?? true));
}

export interface ValidationSplit {
  train: ImageDataset;
  validation: ImageDataset;
  /** Indices into the input of the training part, ascending. */
  trainIndices: Int32Array;
  /** Indices into the input of the validation part, ascending; disjoint from trainIndices. */
  validationIndices: Int32Array;
}

/**
 * Holds out a validation set: `size` in (0, 1) is a fraction (rounded), an
 * integer >= 1 a count. The two parts partition the input. The reference's
 * split does not: with subset_percent = 1 its training set is the whole
 * training data, so its validation images are also trained on.
 */
export function validationSplit(ds: ImageDataset, size: number, rng: Rng, options: SplitOptions = {}): ValidationSplit {
  const n = datasetSize(ds);
  const count = size > 0 && size < 1 ? Math.round(size * n) : size;
  if (!Number.isInteger(count) || count < 1 || count >= n) {
    throw new Error(`validationSplit: size ${size} must be a fraction in (0, 1) or an integer count, ` +
      `and leave between 1 and ${n - 1} of the ${n} images for validation (got ${count})`);
  }
  const validationIndices = sampleIndices(ds.labels, ds.numClasses, count, rng, options.stratified ?? true);
  const trainIndices = complementIndices(n, validationIndices);
  return {train: subset(ds, trainIndices), validation: subset(ds, validationIndices), trainIndices, validationIndices};
}
