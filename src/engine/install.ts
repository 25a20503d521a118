/**
 * What useBackend installs whatever the platform (Node or a page): tfjs's
 * production mode, the backward pass that frees each gradient as soon as it
 * is used, BatchNorm's fused kernels on cpu and wasm, and on wasm the training
 * kernels tfjs-backend-wasm lacks or runs slowly and the Fourier ConvNorm's
 * transforms.
 */
import * as tf from '@tensorflow/tfjs-core';

import {registerBatchNormKernels} from './batch_norm_kernels.js';
import {registerFourierKernels} from './fourier_kernels.js';
import {setLeanBackprop} from './lean_backprop.js';
import {registerWasmTrainingKernels} from './wasm_kernels.js';

export function installEngine(): void {
  // Production mode: no debug checks, and no "install tfjs-node" banner from the cpu backend.
  tf.env().set('PROD', true);
  setLeanBackprop(true);
  registerBatchNormKernels();
  // Only where tfjs-backend-wasm is loaded (a page may not load it): the kernels wrap its own.
  if (tf.getKernel('Conv2D', 'wasm') !== undefined) {
    registerWasmTrainingKernels();
    registerFourierKernels();
  }
}
