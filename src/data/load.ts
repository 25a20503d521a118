import {CifarVariant, loadCifar} from './cifar.js';
import {ImageDataset} from './dataset.js';
import {loadFashionMnist, loadMnist} from './mnist.js';
import {loadEmbeddedMnist} from './mnist_embedded.js';

/** The names `loadDataset` knows. */
export const DATASET_NAMES = ['cifar10', 'cifar100', 'mnist', 'fashion-mnist', 'mnist-embedded'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Where Debian's fashion-mnist package installs the dataset; the default root of 'fashion-mnist'. */
export const DEBIAN_FASHION_MNIST_ROOT = '/usr/share/datasets/fashion-mnist';

export interface LoadDatasetOptions {
  split: 'train' | 'test';
  /**
   * Folder of the files: the official CIFAR binary version, or the four IDX
   * files. Required except for 'mnist-embedded' (ignored) and 'fashion-mnist'
   * (default DEBIAN_FASHION_MNIST_ROOT).
   */
  root?: string;
  /** 'mnist-embedded' only: size of its training split (default 8000). */
  trainSize?: number;
  /** 'mnist-embedded' only: seed of its split (default 0). */
  seed?: number;
}

/** What each dataset's folder must hold, for error messages. */
const EXPECTED_FILES: Record<Exclude<DatasetName, 'mnist-embedded'>, string> = {
  'cifar10': 'data_batch_1..5.bin and test_batch.bin (CIFAR-10 binary version)',
  'cifar100': 'train.bin and test.bin (CIFAR-100 binary version)',
  'mnist': 'train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally .gz)',
  'fashion-mnist': 'train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally .gz)',
};

/** Loads one split of a dataset by name. */
export function loadDataset(name: string, options: LoadDatasetOptions): ImageDataset {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new Error(`unknown dataset '${name}'; known: ${DATASET_NAMES.join(', ')}`);
  }
  const id = name as DatasetName;
  if (id === 'mnist-embedded') {
    return loadEmbeddedMnist({split: options.split, trainSize: options.trainSize, seed: options.seed});
  }
  const root = options.root ?? (id === 'fashion-mnist' ? DEBIAN_FASHION_MNIST_ROOT : undefined);
  if (root === undefined) {
    throw new Error(`dataset '${id}' needs a root folder holding ${EXPECTED_FILES[id]}`);
  }
  if (id === 'cifar10' || id === 'cifar100') return loadCifar(root, {variant: id as CifarVariant, split: options.split});
  if (id === 'mnist') return loadMnist(root, {split: options.split});
  return loadFashionMnist(root, {split: options.split});
}
