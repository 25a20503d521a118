/**
 * BatchNorm with PyTorch's semantics as a function of NHWC tensors and the
 * state it updates: what BatchNorm2D (layers/) and ConvNorm2D's own
 * BatchNorm (convnorm/) both apply. Training mode runs the engine's fused
 * kernels where a backend has them registered (the engine installs them on
 * cpu and wasm; they are found through tfjs's kernel registry, so this module
 * does not depend on the engine), else the same maths as tf ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import {fail} from './arguments.js';
import {BATCH_NORM_BACKWARD, BATCH_NORM_FORWARD} from './kernel_names.js';

/** PyTorch BatchNorm2d defaults, which the reference uses. */
export const BN_EPSILON = 1e-5;
export const BN_MOMENTUM = 0.1;

/** The variables of one BatchNorm: running statistics, and the affine pair when present. */
export interface BatchNormState {
  movingMean: tfl.LayerVariable;
  movingVariance: tfl.LayerVariable;
  gamma?: tfl.LayerVariable;
  beta?: tfl.LayerVariable;
}

/** Batch statistics need at least two values per channel (PyTorch refuses one, too). */
export function checkBatchStatistics(valuesPerChannel: number, shape: readonly number[]): void {
  if (valuesPerChannel < 2) {
    fail(`BatchNorm needs more than one value per channel in training, got input [${shape}]`);
  }
}

/** y's batch moments and its normalization with them, as tf ops (backends without the fused kernels). */
function composedForward(y: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor[] {
  const {mean, variance} = tf.moments(y, [0, 1, 2]);
  return [tf.add(tf.mul(tf.mul(tf.sub(y, mean), tf.rsqrt(tf.add(variance, BN_EPSILON))), gamma), beta), mean, variance];
}

function composedBackward(dy: tf.Tensor, y: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor,
                          gamma: tf.Tensor): tf.Tensor[] {
  const axes = [0, 1, 2];
  const count = y.size / gamma.size;
  const r = tf.rsqrt(tf.add(variance, BN_EPSILON));
  const xhat = tf.mul(tf.sub(y, mean), r);
  const g = tf.mul(dy, gamma);
  const sumG = tf.sum(g, axes);
  const sumGX = tf.sum(tf.mul(g, xhat), axes);
  const dx = tf.mul(tf.sub(tf.sub(g, tf.div(sumG, count)), tf.mul(xhat, tf.div(sumGX, count))), r);
  return [dx, tf.sum(tf.mul(dy, xhat), axes), tf.sum(dy, axes)];
}

/**
 * Training-mode BatchNorm, (y - mean) / sqrt(variance + eps) * gamma + beta
 * with the batch moments, differentiated in closed form: by the engine's
 * fused kernels where the backend has them, else by tf ops. The moments are computed
 * inside the custom gradient's forward pass, which tfjs does not record:
 * autodiff of the same expression keeps the moments' own intermediates (three
 * full-size tensors per BatchNorm) until the backward pass, plus four for the
 * normalization; this keeps only y. The running statistics are updated as a
 * side effect, with the unbiased variance as PyTorch does.
 */
function batchNormTraining(y: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, state: BatchNormState): tf.Tensor4D {
  const fused = tf.getKernel(BATCH_NORM_FORWARD, tf.getBackend()) !== undefined;
  const attrs = {epsilon: BN_EPSILON};
  const normalize = tf.customGrad((...args) => {
    const [y, gamma, beta] = args as tf.Tensor[];
    const count = y.size / gamma.size;
    const [value, mean, variance] = fused
      ? tf.engine().runKernel(BATCH_NORM_FORWARD, {x: y, gamma, beta}, attrs) as tf.Tensor[]
      : composedForward(y, gamma, beta);
    updateRunningStatistics(state, mean, tf.mul(variance, count / (count - 1)));
    (args[3] as tf.GradSaveFunc)([y, mean, variance, gamma]);
    return {
      value,
      // tfjs runs a custom gradient outside any tidy, and only saved tensors outlive the forward pass.
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        const [y, mean, variance, gamma] = saved;
        return fused
          ? tf.engine().runKernel(BATCH_NORM_BACKWARD, {dy, x: y, mean, variance, gamma}, attrs) as tf.Tensor[]
          : composedBackward(dy, y, mean, variance, gamma);
      }),
    };
  });
  return normalize(y, gamma, beta) as tf.Tensor4D;
}

function updateRunningStatistics(state: BatchNormState, mean: tf.Tensor, unbiasedVariance: tf.Tensor): void {
  state.movingMean.write(tf.add(tf.mul(1 - BN_MOMENTUM, state.movingMean.read()), tf.mul(BN_MOMENTUM, mean)));
  state.movingVariance.write(tf.add(tf.mul(1 - BN_MOMENTUM, state.movingVariance.read()),
                                    tf.mul(BN_MOMENTUM, unbiasedVariance)));
}

/**
 * BatchNorm over the channels of NHWC `y` with PyTorch's semantics: batch
 * statistics in training (the running variance gets the unbiased estimate),
 * running statistics in inference. Statistics broadcast as [C] vectors rather
 * than going through tfjs's batchNorm op, whose gradient tiles them to the
 * full tensor size (slow on wasm).
 */
export function applyBatchNorm(y: tf.Tensor4D, state: BatchNormState, training: boolean): tf.Tensor4D {
  const c = y.shape[3];
  const gamma = state.gamma?.read() ?? tf.ones([c]);
  const beta = state.beta?.read() ?? tf.zeros([c]);
  if (!training) {
    const scale = tf.mul(tf.rsqrt(tf.add(state.movingVariance.read(), BN_EPSILON)), gamma);
    return tf.add(tf.mul(tf.sub(y, state.movingMean.read()), scale), beta) as tf.Tensor4D;
  }
  checkBatchStatistics(y.size / c, y.shape);
  return batchNormTraining(y, gamma, beta, state);
}

