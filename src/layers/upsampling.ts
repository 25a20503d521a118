/**
 * x2 bilinear upsampling as PyTorch's F.interpolate(scale_factor=2,
 * mode='bilinear', align_corners=False), which Mimicry's SNGAN generator
 * uses: tf.image.resizeBilinear with half-pixel centres is that map.
 * (tfjs-layers' UpSampling2D 'bilinear' resizes without half-pixel centres.)
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export class BilinearUpsampling2D extends tfl.layers.Layer {
  static className = 'BilinearUpsampling2D';

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [n, h, w, c] = inputShape as tfl.Shape;
    return [n, h === null ? null : 2 * h, w === null ? null : 2 * w, c];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      return tf.image.resizeBilinear(x, [2 * x.shape[1], 2 * x.shape[2]], false, true);
    });
  }
}
tf.serialization.registerClass(BilinearUpsampling2D);
