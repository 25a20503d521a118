import type {Rng} from './random.js';

/**
 * The reference's CIFAR-10 asymmetric flips as [source, target] pairs, in the
 * order it processes them (source class 0..9): bird->airplane, cat->dog,
 * deer->horse, dog->cat, truck->automobile.
 */
export const CIFAR10_ASYMMETRIC_FLIPS: ReadonlyArray<readonly [number, number]> = Object.freeze([
  [2, 0], [3, 5], [4, 7], [5, 3], [9, 1],
] as const);

export interface LabelNoiseOptions {
  /**
   * 'symmetric': a random fraction of all labels is redrawn uniformly from all
   * classes. 'asymmetric': the reference's CIFAR-10 class flips; defined only
   * for the CIFAR-10 class order, so numClasses must be 10.
   */
  kind: 'symmetric' | 'asymmetric';
  /** The reference's `percent`, in [0, 1]. */
  fraction: number;
  /** Number of classes; labels must lie in [0, numClasses). */
  numClasses: number;
  /** Stream of every choice, so that a seed fixes the noisy labels. */
  rng: Rng;
  /**
   * Asymmetric only. true (default, as the reference): source classes are
   * processed in order and each one's pool is taken from the labels as already
   * flipped, so the dog pool also holds the cats just flipped to dog, and some
   * of those are flipped back to cat. false: every pool is taken from the
   * original labels, so exactly round(fraction * size) of each source class
   * change.
   */
  chained?: boolean;
}

export interface LabelNoiseResult {
  /** The noisy labels (a new array; the input is not modified). */
  labels: Int32Array;
  /** 1 where the noisy label differs from the original, else 0. */
  changed: Uint8Array;
  /**
   * The indices selected for corruption, ascending and distinct. A selected
   * label can come out unchanged (symmetric: the draw hit the true class;
   * chained asymmetric: a cat flipped to dog and back).
   */
  noisyIndices: Int32Array;
}

/**
 * Corrupts training labels as the reference does.
 *
 * Symmetric: a permutation picks round(fraction * n) indices; each, in
 * permutation order, gets a class drawn uniformly from all numClasses, which
 * can be its true class, so the expected changed rate is
 * fraction * (1 - 1 / numClasses).
 *
 * Asymmetric (CIFAR-10 only): for each source class of CIFAR10_ASYMMETRIC_FLIPS
 * in order, its pool (indices holding that label, ascending) is shuffled and
 * the first round(fraction * pool size) get the target class.
 *
 * The reference selects the i-th element while `i < percent * size`, i.e.
 * ceil(percent * size) up to float rounding; round() differs from it only
 * when percent * size is not an integer, by at most one label per pool.
 */
export function applyLabelNoise(labels: Int32Array, options: LabelNoiseOptions): LabelNoiseResult {
  const {kind, fraction, numClasses, rng, chained = true} = options;
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`label noise: fraction must be in [0, 1], got ${fraction}`);
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`label noise: numClasses must be a positive integer, got ${numClasses}`);
  }
  if (typeof rng?.int !== 'function' || typeof rng.permutation !== 'function') throw new Error('label noise: options.rng (an Rng) is required so that the noise is reproducible');
  for (let i = 0; i < labels.length; i++) {
    if (!(labels[i] >= 0 && labels[i] < numClasses)) {
      throw new Error(`label noise: label ${labels[i]} at index ${i} is out of range [0, ${numClasses})`);
    }
  }
  const noisy = Int32Array.from(labels);
  const selected = new Uint8Array(labels.length);
  if (kind === 'symmetric') {
    const order = rng.permutation(labels.length);
    const count = Math.round(fraction * labels.length);
    for (let k = 0; k < count; k++) {
      selected[order[k]] = 1;
      noisy[order[k]] = rng.int(numClasses);
    }
  } else if (kind === 'asymmetric') {
    if (numClasses !== 10) {
      throw new Error(`label noise: asymmetric noise is defined (by the reference) only for CIFAR-10's 10 classes, ` +
        `got numClasses ${numClasses}`);
    }
    for (const [source, target] of CIFAR10_ASYMMETRIC_FLIPS) {
      const from = chained ? noisy : labels;
      const pool: number[] = [];
      for (let i = 0; i < from.length; i++) if (from[i] === source) pool.push(i);
      const order = rng.permutation(pool.length);
      const count = Math.round(fraction * pool.length);
      for (let k = 0; k < count; k++) {
        selected[pool[order[k]]] = 1;
        noisy[pool[order[k]]] = target;
      }
    }
  } else {
    throw new Error(`label noise: kind must be 'symmetric' or 'asymmetric', got '${kind as string}'`);
  }
  const changed = new Uint8Array(labels.length);
  const noisyIndices: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    changed[i] = noisy[i] !== labels[i] ? 1 : 0;
    if (selected[i]) noisyIndices.push(i);
  }
  return {labels: noisy, changed, noisyIndices: Int32Array.from(noisyIndices)};
}
