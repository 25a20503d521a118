/** The sum over height and width of NHWC features, as SNGAN's discriminator pools (torch.sum(h, dim=(2, 3))). */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export class GlobalSumPooling2D extends tfl.layers.Layer {
  static className = 'GlobalSumPooling2D';

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = inputShape as tfl.Shape;
    return [shape[0], shape[3]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.sum(Array.isArray(inputs) ? inputs[0] : inputs, [1, 2]));
  }
}
tf.serialization.registerClass(GlobalSumPooling2D);
