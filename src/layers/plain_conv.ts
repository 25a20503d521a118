/**
 * PyTorch's nn.Conv2d for tfjs: the convolution of the bn and none norms.
 * tfjs's own Conv2D pads 'same' asymmetrically at strides above 1, so a
 * strided ResNet conv would sample one pixel off the reference's grid and off
 * the 1x1 shortcut beside it; this one pads as PyTorch does.
 */
import * as tf from '@tensorflow/tfjs-core';

import {NormalizedConv2D, NormalizedConv2DArgs} from './normalized_conv.js';

export type PlainConv2DArgs = NormalizedConv2DArgs;

/** A convolution with symmetric zero padding and no re-parametrization. Weights: kernel, bias (when useBias). */
export class PlainConv2D extends NormalizedConv2D {
  static className = 'PlainConv2D';

  protected override buildState(): void {}

  protected override normalizedKernel(kernel: tf.Tensor4D): tf.Tensor4D {
    return kernel;
  }
}
tf.serialization.registerClass(PlainConv2D);

/** Factory in the tf.layers style: `plainConv2d({filters: 64, kernelSize: 3, strides: 2, padding: 1})`. */
export function plainConv2d(args: PlainConv2DArgs): PlainConv2D {
  return new PlainConv2D(args);
}
