/**
 * The spectral norm of a layer as it actually runs (zero padding, stride,
 * cropping, everything its tfjs ops do), estimated by power iteration on the
 * layer itself: for an affine map g (a conv unit in inference mode), the
 * linear part f(x) = g(x) - g(0) has Jacobian J, and v <- J^T J v / ||J^T J v||
 * needs only one forward pass and one vector-Jacobian product (tf.grad of
 * ||f(x)||^2 / 2) per step. A cross-check of the exact circular values
 * (./circular_spectrum.ts), which describe a slightly different operator.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface PowerIterationOptions {
  /** Steps of v <- J^T J v. Default 30. */
  iterations?: number;
  /** Seed of the standard normal start vector. Default 0. */
  seed?: number;
}

/**
 * sqrt(||J^T J v||) at the last step, for unit v: a lower bound of the largest
 * singular value of the linear part of `apply` (equal to it once v has
 * converged; by Cauchy-Schwarz it is at least ||J v||, the Rayleigh estimate).
 * It approaches the top value at the rate (sigma_2 / sigma_1)^2 per step.
 *
 * @param apply the affine map, on a batch [1, ...inputShape]; it must not
 *   update any state (inference mode).
 * @param inputShape one input without the batch axis, e.g. [H, W, C].
 */
export function powerIterationNorm(apply: (x: tf.Tensor) => tf.Tensor, inputShape: readonly number[],
                                   options: PowerIterationOptions = {}): number {
  const iterations = options.iterations ?? 30;
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new Error(`power iteration needs a positive whole number of iterations, got ${iterations}`);
  }
  const shape = [1, ...inputShape];
  const size = shape.reduce((a, b) => a * b, 1);
  // Inputs are pushed through at entries of order 1 (norm sqrt(size)), so that
  // subtracting g(0) in float32 loses no more than rounding of the bias terms' size.
  const scale = Math.sqrt(size);
  const offset = tf.tidy(() => apply(tf.zeros(shape)));
  const halfSquare = (x: tf.Tensor) => tf.mul(0.5, tf.sum(tf.square(tf.sub(apply(x), offset)))) as tf.Scalar;
  const gradient = tf.grad(halfSquare);
  let v = tf.tidy(() => {
    const start = tf.randomNormal(shape, 0, 1, 'float32', options.seed ?? 0);
    return tf.div(start, tf.norm(start));
  });
  let norm = 0;
  try {
    for (let i = 0; i < iterations; i++) {
      const [next, length] = tf.tidy(() => {
        // grad at scale * v is J^T J (scale v).
        const g = tf.div(gradient(tf.mul(v, scale)), scale);
        const n = tf.norm(g);
        return [tf.div(g, tf.maximum(n, 1e-30)), n];
      });
      norm = (length.dataSync() as Float32Array)[0];
      length.dispose();
      v.dispose();
      v = next;
      if (norm === 0) break;
    }
  } finally {
    v.dispose();
    offset.dispose();
  }
  return Math.sqrt(norm);
}
