/**
 * The hinge loss SNGAN trains with (Lim & Ye 2017; Miyato et al. 2018), as
 * Mimicry's hinge_loss_dis / hinge_loss_gen: the discriminator minimizes
 * E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], the generator -E[D(G(z))].
 */
import * as tf from '@tensorflow/tfjs-core';

export function hingeDiscriminatorLoss(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.add(tf.mean(tf.relu(tf.sub(1, realLogits))), tf.mean(tf.relu(tf.add(1, fakeLogits)))) as tf.Scalar);
}

export function hingeGeneratorLoss(fakeLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(fakeLogits)) as tf.Scalar);
}
