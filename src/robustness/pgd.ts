/**
 * PGD under the L-infinity norm (Madry et al., ICLR 2018), as torchattacks'
 * PGD and the ConvNorm authors' validate_pgd run it: a uniform random start in
 * the eps-ball (clipped to [0, 1]), then K steps of size alpha along the sign
 * of the cross-entropy's input gradient, each projected onto the eps-ball and
 * clipped to [0, 1]. With restarts, an image counts as robust only if every
 * restart leaves it classified correctly; later restarts attack only the
 * images the earlier ones did not fool.
 */
import * as tf from '@tensorflow/tfjs-core';

import {Rng} from '../data/random.js';
import {AttackInputs, AttackResult, AttackState, checkCount, checkEps, correctAt, lossGradient, project,
        uniformNoise} from './attack.js';
import {crossEntropyPerImage} from './losses.js';

export interface PgdOptions {
  /** Radius of the L-infinity ball, pixel units [0, 1] (the reference's 8 / 255). */
  eps: number;
  /** Step size alpha, pixel units (the reference's 2 / 255); at most eps. */
  step: number;
  /** Steps K (the reference's 10). */
  steps: number;
  /** Random restarts. Default 1. */
  restarts?: number;
  /** The stream the random starts are drawn from. */
  rng: Rng;
}

export function checkPgdOptions(o: {eps: number; step: number; steps: number; restarts?: number}): void {
  checkEps(o.eps);
  checkEps(o.step, 'step');
  if (o.step > o.eps) throw new Error(`the step (${o.step}) is larger than eps (${o.eps})`);
  checkCount(o.steps, 'steps');
  checkCount(o.restarts ?? 1, 'restarts');
}

export async function pgd(inputs: AttackInputs, options: PgdOptions): Promise<AttackResult> {
  checkPgdOptions(options);
  const {eps, step, steps} = options;
  const {classifier} = inputs;
  const state = await AttackState.start(inputs);
  for (let r = 0; r < (options.restarts ?? 1); r++) {
    await state.run(inputs, async (x, y) => {
      const noise = uniformNoise(x.shape, options.rng);
      let adversarial = tf.tidy(() => tf.clipByValue(tf.add(x, tf.mul(eps, noise)), 0, 1)) as tf.Tensor4D;
      noise.dispose();
      for (let k = 0; k < steps; k++) {
        const {gradient} = await lossGradient(classifier, adversarial, y, crossEntropyPerImage);
        const next = tf.tidy(() => project(tf.add(adversarial, tf.mul(step, tf.sign(gradient))), x, eps));
        tf.dispose([gradient, adversarial]);
        adversarial = next;
      }
      return {adversarial, robust: await correctAt(classifier, adversarial, y)};
    });
  }
  return state.result();
}
