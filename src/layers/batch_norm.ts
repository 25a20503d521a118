/**
 * The BatchNorm2D layer (PyTorch's BatchNorm2d for NHWC input), the
 * normalization ConvNorm is compared with; its maths is common/batch_norm.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type {LayerArgs} from '@tensorflow/tfjs-layers/dist/engine/topology.js';
import type {Kwargs} from '@tensorflow/tfjs-layers/dist/types.js';

import {fail} from '../common/arguments.js';
import {applyBatchNorm, BatchNormState} from '../common/batch_norm.js';

export {BN_EPSILON, BN_MOMENTUM} from '../common/batch_norm.js';

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
