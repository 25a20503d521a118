import assert from 'node:assert/strict';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {trainableVariables, TrainStep} from '../../src/training/step.js';

/**
 * One plain SGD step of size lr lowers the training-mode loss by about
 * lr ||g||^2 (first order): a check that the gradients are the loss's own,
 * through every layer and custom gradient, which training alone (a loss that
 * falls a little) does not make. lr is chosen so that this first-order
 * decrease is `decrease` (0.01 of a loss near 2.3), small enough for the
 * second-order terms (BatchNorm's batch statistics curve the loss most) to
 * stay small, large enough to stand above float32 rounding. Returns
 * (L0 - L1) / (lr ||g||^2), asserted to lie in [low, high].
 */
export function assertFirstOrderDescent(model: tfl.LayersModel, x: tf.Tensor, y: tf.Tensor, what: string,
                                        decrease = 0.01, [low, high] = [0.85, 1.02]): number {
  const loss = () => tf.losses.softmaxCrossEntropy(y, model.apply(x, {training: true}) as tf.Tensor) as tf.Scalar;
  const [l0, g2] = tf.tidy(() => {
    const {value, grads} = tf.variableGrads(loss, trainableVariables(model));
    return [value.dataSync()[0], Object.values(grads).reduce((s, g) => s + tf.sum(tf.square(g)).dataSync()[0], 0)];
  });
  const lr = decrease / g2;
  const step = new TrainStep(model, {learningRate: lr, momentum: 0, weightDecay: 0});
  step.run(x, y);
  step.dispose();
  const l1 = tf.tidy(() => loss().dataSync()[0]);
  const ratio = (l0 - l1) / (lr * g2);
  assert.ok(g2 > 0 && ratio >= low && ratio <= high,
            `${what}: the step lowered the loss by ${ratio.toFixed(4)} x lr ||g||^2 (||g||^2 ${g2}), not ${low}-${high}`);
  return ratio;
}
