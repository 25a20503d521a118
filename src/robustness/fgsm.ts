/**
 * FGSM (Goodfellow, Shlens & Szegedy, ICLR 2015), as torchattacks' FGSM and
 * the ConvNorm authors' evaluation run it: one step of size eps along the
 * sign of the cross-entropy's input gradient, clipped to [0, 1], no random start.
 */
import * as tf from '@tensorflow/tfjs-core';

import {AttackInputs, AttackResult, AttackState, checkEps, correctAt, lossGradient} from './attack.js';
import {crossEntropyPerImage} from './losses.js';

export interface FgsmOptions {
  /** Radius of the L-infinity ball, in pixel units [0, 1] (8 / 255 for the reference's eps 8). */
  eps: number;
}

export async function fgsm(inputs: AttackInputs, options: FgsmOptions): Promise<AttackResult> {
  checkEps(options.eps);
  const state = await AttackState.start(inputs);
  await state.run(inputs, async (x, y) => {
    const {gradient} = await lossGradient(inputs.classifier, x, y, crossEntropyPerImage);
    const adversarial = tf.tidy(() => tf.clipByValue(tf.add(x, tf.mul(options.eps, tf.sign(gradient))), 0, 1)) as tf.Tensor4D;
    gradient.dispose();
    return {adversarial, robust: await correctAt(inputs.classifier, adversarial, y)};
  });
  return state.result();
}
