import * as tf from '@tensorflow/tfjs-core';
import {ImageDataset, datasetSize} from './dataset.js';
import {Rng} from './random.js';

/** Per-channel input normalization `(pixel / 255 - mean) / std`. */
export interface Normalization {
  /** Per-channel mean, in units of pixel / 255. */
  mean: number[];
  /** Per-channel standard deviation, in units of pixel / 255. */
  std: number[];
}

/**
 * The reference's CIFAR statistics. The std values are the ones the reference
 * (and most CIFAR code) uses, although they are not the dataset's true pixel
 * std (about 0.247, 0.243, 0.261); kept for fidelity.
 */
export const CIFAR_NORMALIZATION: Normalization = Object.freeze({
  mean: Object.freeze([0.4914, 0.4822, 0.4465]) as number[],
  std: Object.freeze([0.2023, 0.1994, 0.2010]) as number[],
}) as Normalization;

/** The reference's training augmentation (torchvision RandomCrop + RandomHorizontalFlip). */
export interface Augmentation {
  /** Zero padding of the random crop (CIFAR: 4); 0 = no crop. */
  cropPadding: number;
  /** Random horizontal flip with probability 0.5. */
  flip: boolean;
}

export interface BatchOptions {
  /** Per-channel normalization; without it x = pixel / 255. */
  normalization?: Normalization;
  /** Random crop / flip; without it images are passed through unchanged. */
  augmentation?: Augmentation;
  /** Stream the augmentation draws from; required when augmentation is given. */
  rng?: Rng;
}

/**
 * Assembles one batch: `x` float32 NHWC, `labels` int32. The per-pixel work is
 * done in plain typed arrays through a 256-entry lookup table per channel and
 * the two tensors are created once, because per-image tensor ops cost more in
 * dispatch than the arithmetic itself.
 *
 * Augmentation follows torchvision's RandomCrop(H, padding=p) then
 * RandomHorizontalFlip(): the image is zero padded in raw pixel space (so the
 * padding becomes the normalized value of pixel 0, as when torchvision pads the
 * PIL image before ToTensor/Normalize), offsets drawn uniformly from [0, 2p]
 * (row first, then column), then a flip with probability 0.5. Per image the
 * draws are row offset, column offset, flip, each only when enabled.
 */
export function makeBatch(
  ds: ImageDataset, indices: ArrayLike<number>, options: BatchOptions = {},
): {x: tf.Tensor4D; labels: tf.Tensor1D} {
  const [h, w, c] = ds.shape;
  const n = datasetSize(ds);
  const imageSize = h * w * c;
  const count = indices.length;
  for (let b = 0; b < count; b++) {
    const i = indices[b];
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new Error(`makeBatch: index ${i} at batch position ${b} is not an integer in [0, ${n}) ` +
        `(dataset '${ds.name}' has ${n} images)`);
    }
  }
  if (ds.pixels.length !== n * imageSize) {
    throw new Error(`makeBatch: dataset '${ds.name}' has ${ds.pixels.length} pixel bytes, ` +
      `expected ${n} images x ${h}x${w}x${c} = ${n * imageSize}`);
  }

  const table = lookupTable(c, options.normalization);
  const aug = options.augmentation;
  const pad = aug ? aug.cropPadding : 0;
  const flip = aug ? aug.flip : false;
  if (aug) {
    if (!Number.isInteger(pad) || pad < 0) {
      throw new Error(`makeBatch: augmentation.cropPadding must be a non-negative integer, got ${pad}`);
    }
    if (!options.rng) throw new Error('makeBatch: augmentation needs an rng (options.rng) so that it is reproducible');
  }
  const rng = options.rng;

  const x = new Float32Array(count * imageSize);
  const labels = new Int32Array(count);
  const src = ds.pixels;
  for (let b = 0; b < count; b++) {
    const i = indices[b];
    labels[b] = ds.labels[i];
    const srcBase = i * imageSize;
    const dstBase = b * imageSize;
    if (pad === 0 && !flip) {
      for (let k = 0; k < imageSize; k++) x[dstBase + k] = table[(k % c) * 256 + src[srcBase + k]];
      continue;
    }
    // Output (y, x) reads source (y + dy, x + dx), or (y + dy, w - 1 - x + dx) when flipped.
    const dy = pad > 0 ? rng!.int(2 * pad + 1) - pad : 0;
    const dx = pad > 0 ? rng!.int(2 * pad + 1) - pad : 0;
    const flipped = flip && rng!.next() < 0.5;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      const rowInside = sy >= 0 && sy < h;
      for (let xo = 0; xo < w; xo++) {
        const sx = (flipped ? w - 1 - xo : xo) + dx;
        const dst = dstBase + (y * w + xo) * c;
        if (rowInside && sx >= 0 && sx < w) {
          const s = srcBase + (sy * w + sx) * c;
          for (let ch = 0; ch < c; ch++) x[dst + ch] = table[ch * 256 + src[s + ch]];
        } else {
          for (let ch = 0; ch < c; ch++) x[dst + ch] = table[ch * 256];
        }
      }
    }
  }
  return {x: tf.tensor4d(x, [count, h, w, c], 'float32'), labels: tf.tensor1d(labels, 'int32')};
}

/** table[ch * 256 + p] = normalized value of pixel byte p in channel ch. */
function lookupTable(channels: number, norm?: Normalization): Float32Array {
  if (norm && (norm.mean.length !== channels || norm.std.length !== channels)) {
    throw new Error(`makeBatch: normalization has ${norm.mean.length} means and ${norm.std.length} stds, ` +
      `the images have ${channels} channel(s)`);
  }
  const table = new Float32Array(channels * 256);
  for (let ch = 0; ch < channels; ch++) {
    const mean = norm ? norm.mean[ch] : 0;
    const std = norm ? norm.std[ch] : 1;
    if (!(std > 0) || !Number.isFinite(mean)) {
      throw new Error(`makeBatch: normalization channel ${ch} needs a finite mean and a positive std, ` +
        `got mean ${mean}, std ${std}`);
    }
    for (let p = 0; p < 256; p++) table[ch * 256 + p] = (p / 255 - mean) / std;
  }
  return table;
}
