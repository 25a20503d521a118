import * as path from 'node:path';
import {ImageDataset} from './dataset.js';
import {firstExisting, requireFolder} from './files.js';
import {readIdxImages, readIdxLabels} from './idx.js';

/** Fashion-MNIST class names in label order (Xiao, Rasul & Vollgraf 2017). */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
]);

/** MNIST digit names in label order. */
export const MNIST_CLASSES: readonly string[] = Object.freeze(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);

export interface IdxFolderOptions {
  /** 'train' reads train-*, 'test' reads t10k-*. */
  split: 'train' | 'test';
}

/**
 * The names a split's file may have: the canonical `train-images-idx3-ubyte`,
 * the `train-images.idx3-ubyte` that some unpackers produce, each plain or `.gz`.
 */
export function idxFileCandidates(dir: string, split: 'train' | 'test', kind: 'images' | 'labels'): string[] {
  const prefix = split === 'train' ? 'train' : 't10k';
  const suffix = kind === 'images' ? 'idx3-ubyte' : 'idx1-ubyte';
  const names = [`${prefix}-${kind}-${suffix}`, `${prefix}-${kind}.${suffix}`];
  return names.flatMap((n) => [n, `${n}.gz`]).map((n) => path.join(dir, n));
}

/**
 * Loads one split of an MNIST-layout folder (MNIST, Fashion-MNIST, KMNIST):
 * 10 classes, 28x28x1 (or whatever the header says), labels checked against
 * the image count.
 */
function loadIdxFolder(dir: string, options: IdxFolderOptions, name: string, classNames: readonly string[]): ImageDataset {
  const split = options.split;
  if (split !== 'train' && split !== 'test') throw new Error(`${name}: split must be 'train' or 'test', got '${split}'`);
  const imageCandidates = idxFileCandidates(dir, split, 'images');
  const labelCandidates = idxFileCandidates(dir, split, 'labels');
  requireFolder(dir, `${path.basename(imageCandidates[0])}[.gz] and ${path.basename(labelCandidates[0])}[.gz]`);
  const imagesFile = firstExisting(imageCandidates);
  const labelsFile = firstExisting(labelCandidates);
  if (!imagesFile || !labelsFile) {
    const missing = !imagesFile ? imageCandidates : labelCandidates;
    throw new Error(`${dir}: no ${name} ${split} ${!imagesFile ? 'images' : 'labels'} file ` +
      `(looked for ${missing.map((p) => path.basename(p)).join(', ')})`);
  }
  const images = readIdxImages(imagesFile);
  const labels = readIdxLabels(labelsFile, classNames.length);
  if (labels.length !== images.count) {
    throw new Error(`${labelsFile}: ${labels.length} labels, but ${imagesFile} has ${images.count} images`);
  }
  return {
    name, pixels: images.pixels, labels, shape: [images.rows, images.cols, 1],
    numClasses: classNames.length, classNames: [...classNames],
  };
}

/** MNIST from a folder of the four IDX files (plain or gzipped). */
export function loadMnist(dir: string, options: IdxFolderOptions): ImageDataset {
  return loadIdxFolder(dir, options, 'mnist', MNIST_CLASSES);
}

/** Fashion-MNIST from a folder of the four IDX files (plain or gzipped), e.g. Debian's /usr/share/datasets/fashion-mnist. */
export function loadFashionMnist(dir: string, options: IdxFolderOptions): ImageDataset {
  return loadIdxFolder(dir, options, 'fashion-mnist', FASHION_MNIST_CLASSES);
}
