/**
 * The per-image losses the attacks ascend: softmax cross-entropy, and the
 * Difference of Logits Ratio of Croce & Hein (ICML 2020), untargeted and
 * targeted, as their AutoAttack code (autopgd_base.py) defines them. Every
 * function returns one value per image, [N], differentiable in the logits.
 */
import * as tf from '@tensorflow/tfjs-core';

/** A loss per image from logits [N, classes] and int32 labels [N]. */
export type ImageLoss = (logits: tf.Tensor2D, labels: tf.Tensor1D) => tf.Tensor1D;

/** -log softmax(z)_y per image. */
export function crossEntropyPerImage(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]);
    return tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
  });
}

/**
 * The k largest logits per image, largest first, each [N], found by argMax
 * and masking (tfjs has no gradient for TopK, while ArgMax and OneHot pass a
 * zero one), so that gradients flow to the logits they came from. Ties go to
 * the lower class index.
 */
function largest(logits: tf.Tensor2D, k: number): {values: tf.Tensor1D[]; first: tf.Tensor1D} {
  const classes = logits.shape[1];
  if (classes < k) throw new Error(`the DLR loss needs at least ${k} classes, the model has ${classes}`);
  const values: tf.Tensor1D[] = [];
  let first: tf.Tensor1D | undefined;
  let remaining: tf.Tensor2D = logits;
  for (let i = 0; i < k; i++) {
    const index = tf.argMax(remaining, 1) as tf.Tensor1D;
    first ??= index;
    const mask = tf.oneHot(index, classes);
    values.push(tf.sum(tf.mul(logits, mask), 1) as tf.Tensor1D);
    remaining = tf.where(tf.cast(mask, 'bool'), tf.fill(logits.shape, -Infinity), remaining) as tf.Tensor2D;
  }
  return {values, first: first!};
}

function logitOf(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.sum(tf.mul(logits, tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1])), 1) as tf.Tensor1D;
}

/**
 * DLR(z, y) = -(z_y - max_{i != y} z_i) / (z_(1) - z_(3) + 1e-12), with
 * z_(1) >= z_(2) >= ... the sorted logits: invariant to shifts and scalings
 * of the logits, so a model cannot hide from it behind large logits. Needs 3 classes.
 */
export function dlrLoss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const {values: [z1, z2, z3], first} = largest(logits, 3);
    // 1 where the label's logit is the largest, as a product of one-hots: Equal has no gradient in tfjs.
    const classes = logits.shape[1];
    const labelFirst = tf.sum(tf.mul(tf.oneHot(first, classes), tf.oneHot(tf.cast(labels, 'int32'), classes)), 1);
    // The largest logit other than the label's: z_(2) where the label is first, else z_(1).
    const other = tf.add(tf.mul(z2, labelFirst), tf.mul(z1, tf.sub(1, labelFirst)));
    return tf.neg(tf.div(tf.sub(logitOf(logits, labels), other), tf.add(tf.sub(z1, z3), 1e-12))) as tf.Tensor1D;
  });
}

/**
 * Targeted DLR, -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2 + 1e-12), for
 * target classes t [N]. Needs 4 classes.
 */
export function dlrTargetedLoss(targets: tf.Tensor1D): ImageLoss {
  return (logits, labels) => tf.tidy(() => {
    const {values: [z1, , z3, z4]} = largest(logits, 4);
    const margin = tf.sub(logitOf(logits, labels), logitOf(logits, targets));
    return tf.neg(tf.div(margin, tf.add(tf.sub(z1, tf.mul(0.5, tf.add(z3, z4))), 1e-12))) as tf.Tensor1D;
  });
}
