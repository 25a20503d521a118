import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type {LayerArgs} from '@tensorflow/tfjs-layers/dist/engine/topology.js';
import type {Kwargs} from '@tensorflow/tfjs-layers/dist/types.js';

import {fail} from '../convnorm/geometry.js';

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

/**
 * BatchNorm over the channels of NHWC `y` with PyTorch's semantics: batch
 * statistics in training (the running variance gets the unbiased estimate),
 * running statistics in inference. Statistics broadcast as [C] vectors rather
 * than going through tfjs's batchNorm op, whose gradient tiles them to the
 * full tensor size (slow on wasm).
 */
export function applyBatchNorm(y: tf.Tensor4D, state: BatchNormState, training: boolean): tf.Tensor4D {
  let mean: tf.Tensor;
  let variance: tf.Tensor;
  if (training) {
    const count = y.size / y.shape[3];
    if (count < 2) fail(`BatchNorm needs more than one value per channel in training, got input [${y.shape}]`);
    ({mean, variance} = tf.moments(y, [0, 1, 2]));
    const unbiased = tf.mul(variance, count / (count - 1));
    state.movingMean.write(tf.add(tf.mul(1 - BN_MOMENTUM, state.movingMean.read()), tf.mul(BN_MOMENTUM, mean)));
    state.movingVariance.write(tf.add(tf.mul(1 - BN_MOMENTUM, state.movingVariance.read()),
                                      tf.mul(BN_MOMENTUM, unbiased)));
  } else {
    mean = state.movingMean.read();
    variance = state.movingVariance.read();
  }
  let out = tf.mul(tf.sub(y, mean), tf.rsqrt(tf.add(variance, BN_EPSILON)));
  if (state.gamma !== undefined) out = tf.add(tf.mul(out, state.gamma.read()), state.beta!.read());
  return out as tf.Tensor4D;
}

export interface BatchNorm2DArgs extends LayerArgs {
  /** Learned per-channel scale and shift (gamma, beta). Default true. */
  affine?: boolean;
}

/**
 * BatchNorm2d as PyTorch defines it (eps 1e-5, momentum 0.1, unbiased running
 * variance), for NHWC input: the baseline ConvNorm is compared with. Weights:
 * gamma, beta (when affine), moving_mean, moving_variance.
 */
export class BatchNorm2D extends tfl.layers.Layer {
  static className = 'BatchNorm2D';
  readonly affine: boolean;
  private state?: BatchNormState;

  constructor(args: BatchNorm2DArgs = {}) {
    super(args);
    this.affine = args.affine ?? true;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const c = shape[shape.length - 1];
    if (shape.length !== 4 || c == null) fail(`BatchNorm2D expects [batch, height, width, channels], got [${shape}]`);
    const gamma = this.affine ? this.addWeight('gamma', [c], 'float32', tfl.initializers.ones()) : undefined;
    const beta = this.affine ? this.addWeight('beta', [c], 'float32', tfl.initializers.zeros()) : undefined;
    this.state = {
      gamma, beta,
      movingMean: this.addWeight('moving_mean', [c], 'float32', tfl.initializers.zeros(), undefined, false),
      movingVariance: this.addWeight('moving_variance', [c], 'float32', tfl.initializers.ones(), undefined, false),
    };
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return tf.tidy(() => applyBatchNorm(x, this.state!, kwargs['training'] === true));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {affine: this.affine, ...super.getConfig()};
  }
}
tf.serialization.registerClass(BatchNorm2D);
