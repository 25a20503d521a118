import * as path from 'node:path';
import {ImageDataset} from './dataset.js';
import {firstExisting, readBytes, readClassNames, requireFolder} from './files.js';

/** CIFAR-10 class names in label order; the asymmetric label noise relies on this order. */
export const CIFAR10_CLASSES: readonly string[] = Object.freeze([
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
]);

export type CifarVariant = 'cifar10' | 'cifar100';

const SIDE = 32;
const PIXELS = SIDE * SIDE * 3;

/** Layout of one record of the official binary version. */
function recordLayout(variant: CifarVariant): {labelBytes: number; numClasses: number; recordSize: number} {
  if (variant === 'cifar10') return {labelBytes: 1, numClasses: 10, recordSize: 1 + PIXELS};
  if (variant === 'cifar100') return {labelBytes: 2, numClasses: 100, recordSize: 2 + PIXELS};
  throw new Error(`CIFAR variant must be 'cifar10' or 'cifar100', got '${variant as string}'`);
}

/**
 * Parses records of the official CIFAR binary version into NHWC. CIFAR-10:
 * label byte + 3072 pixel bytes; CIFAR-100: coarse label + fine label + 3072
 * (the fine label is kept). Pixels are planar (1024 R, 1024 G, 1024 B, each a
 * row-major 32x32 plane) and are interleaved here. Any whole number of records
 * is accepted, because prefixes of the official files are a legitimate subset.
 */
export function parseCifarRecords(bytes: Uint8Array, variant: CifarVariant, file: string = variant): {pixels: Uint8Array; labels: Int32Array} {
  const {labelBytes, numClasses, recordSize} = recordLayout(variant);
  if (bytes.length === 0) throw new Error(`${file}: empty file, expected ${recordSize}-byte ${variant} records`);
  if (bytes.length % recordSize !== 0) {
    throw new Error(`${file}: ${bytes.length} bytes is not a whole number of ${recordSize}-byte ${variant} records ` +
      `(${Math.floor(bytes.length / recordSize)} records and ${bytes.length % recordSize} extra bytes: truncated or not ${variant})`);
  }
  const n = bytes.length / recordSize;
  const pixels = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  const plane = SIDE * SIDE;
  for (let i = 0; i < n; i++) {
    const r = i * recordSize;
    if (variant === 'cifar100' && bytes[r] >= 20) {
      throw new Error(`${file}: coarse label ${bytes[r]} of record ${i} is out of range [0, 20)`);
    }
    const label = bytes[r + labelBytes - 1];
    if (label >= numClasses) {
      throw new Error(`${file}: label ${label} of record ${i} is out of range [0, ${numClasses})`);
    }
    labels[i] = label;
    const src = r + labelBytes;
    const dst = i * PIXELS;
    for (let p = 0; p < plane; p++) {
      pixels[dst + 3 * p] = bytes[src + p];
      pixels[dst + 3 * p + 1] = bytes[src + plane + p];
      pixels[dst + 3 * p + 2] = bytes[src + 2 * plane + p];
    }
  }
  return {pixels, labels};
}

export interface CifarOptions {
  variant: CifarVariant;
  split: 'train' | 'test';
}

/** The files a split is made of, in order. */
function splitFiles(variant: CifarVariant, split: 'train' | 'test'): string[] {
  if (variant === 'cifar10') {
    return split === 'train' ? [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`) : ['test_batch.bin'];
  }
  return [split === 'train' ? 'train.bin' : 'test.bin'];
}

/**
 * Loads one split from a folder of the official binary version
 * (cifar-10-batches-bin/ or cifar-100-binary/). CIFAR-10 train concatenates
 * whichever of data_batch_1..5.bin exist, so a folder with only some batches
 * is usable; it is an error only when none exists. Class names come from
 * batches.meta.txt / fine_label_names.txt when present (CIFAR-10 falls back to
 * the standard names).
 */
export function loadCifar(dir: string, options: CifarOptions): ImageDataset {
  const {variant, split} = options;
  recordLayout(variant);
  if (split !== 'train' && split !== 'test') throw new Error(`${variant}: split must be 'train' or 'test', got '${split}'`);
  const wanted = splitFiles(variant, split);
  requireFolder(dir, wanted.join(', '));
  const present = wanted.map((f) => path.join(dir, f)).filter((f) => firstExisting([f]));
  if (present.length === 0) {
    throw new Error(`${dir}: no ${variant} ${split} file (looked for ${wanted.join(', ')})`);
  }
  const parts = present.map((f) => parseCifarRecords(readBytes(f), variant, f));
  const n = parts.reduce((s, p) => s + p.labels.length, 0);
  const pixels = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  let offset = 0;
  for (const p of parts) {
    pixels.set(p.pixels, offset * PIXELS);
    labels.set(p.labels, offset);
    offset += p.labels.length;
  }
  const numClasses = variant === 'cifar10' ? 10 : 100;
  const classNames = variant === 'cifar10'
    ? readClassNames(path.join(dir, 'batches.meta.txt'), 10) ?? [...CIFAR10_CLASSES]
    : readClassNames(path.join(dir, 'fine_label_names.txt'), 100);
  const ds: ImageDataset = {name: variant, pixels, labels, shape: [SIDE, SIDE, 3], numClasses};
  if (classNames) ds.classNames = classNames;
  return ds;
}
