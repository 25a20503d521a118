import {join} from 'node:path';

/** The shared datasets sit beside the repository (CI has them too; users usually don't). */
export const SHARED_DATASETS = join(import.meta.dirname, '..', '..', '..', 'shared', 'datasets');

/** 5,000 real CIFAR-10 images in the official binary layout. */
export const CIFAR_SUBSET = join(SHARED_DATASETS, 'cifar-10-subset-bin');
