import assert from 'node:assert/strict';

import * as tf from '@tensorflow/tfjs-core';

/**
 * Norm-wise relative error max|a - b| / max|b|: element-wise relative error is
 * meaningless where the reference passes through zero.
 */
export function relativeError(actual: tf.Tensor, expected: tf.Tensor, scaleOverride?: number): number {
  assert.deepEqual(actual.shape, expected.shape, 'shapes differ');
  const a = actual.dataSync();
  const b = expected.dataSync();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  scale = scaleOverride ?? scale;
  assert.ok(scale > 0, 'reference is all zeros: the comparison would prove nothing');
  return diff / scale;
}

/**
 * @param scale what the error is relative to, when the reference is zero in
 *     exact arithmetic (so only rounding noise) and another quantity sets the scale.
 */
export function assertClose(actual: tf.Tensor, expected: tf.Tensor, tolerance: number, what: string,
                            scale?: number): void {
  const err = relativeError(actual, expected, scale);
  assert.ok(err <= tolerance, `${what}: relative error ${err.toExponential(2)} > ${tolerance}`);
}
