/**
 * A trained model as attacks see it: a function of images in pixel space
 * [0, 1] with the dataset normalization inside, run in inference mode
 * (BatchNorm's running statistics, ConvNorm's running V), as torchattacks'
 * set_normalization_used and the ConvNorm authors' attack code do. The
 * threat model (an eps-ball in [0, 1]) is then the one published numbers use,
 * whatever normalization the model was trained with.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import type {Normalization} from '../data/batches.js';
import {topKHits} from '../training/metrics.js';

export interface PixelClassifier {
  /** A model from normalized NHWC images to [N, classes] logits. */
  model: tfl.LayersModel;
  /** The per-channel normalization the model was trained with; none: it takes pixel / 255 as it is. */
  normalization?: Normalization;
}

/** Logits of `x` ([N, H, W, C] in [0, 1]) in inference mode; differentiable in x. */
export function pixelLogits(classifier: PixelClassifier, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const norm = classifier.normalization;
    const input = norm === undefined ? x : tf.div(tf.sub(x, norm.mean), norm.std);
    const logits = classifier.model.apply(input, {training: false}) as tf.Tensor;
    if (logits.rank !== 2) throw new Error(`the model must output [batch, classes] logits, got shape [${logits.shape}]`);
    return logits as tf.Tensor2D;
  });
}

/**
 * Per image, 1 where the model puts the label first (top-1 with training's
 * rule for ties and NaN: see topKHits), else 0. Read back with `data()`, which
 * every backend supports (webgpu's dataSync may not).
 */
export async function correctMask(logits: tf.Tensor2D, labels: tf.Tensor1D): Promise<Uint8Array> {
  const hits = topKHits(logits, labels, 1);
  const values = Uint8Array.from(await hits.data());
  hits.dispose();
  return values;
}
