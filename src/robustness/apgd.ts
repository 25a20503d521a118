/**
 * APGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an
 * ensemble of diverse parameter-free attacks", ICML 2020) under the
 * L-infinity norm, as the authors' AutoAttack code runs it
 * (autoattack/autopgd_base.py): APGD-CE on the cross-entropy and APGD-T on the
 * targeted DLR loss, one run per target class. Their sum is reported as
 * "APGD-CE + APGD-T": AutoAttack also runs FAB-T and Square, so it is not AutoAttack.
 *
 * One run of K iterations, per image:
 * - start at x + eps t / max|t| with t uniform in [-1, 1]^d, clipped to [0, 1];
 * - step size 2 eps; each iteration takes a projected sign-gradient step z,
 *   then moves with momentum: x <- P(x + 0.75 (z - x) + 0.25 (x - x_prev))
 *   (no momentum on the first iteration);
 * - checkpoints after p_1 = max(floor(0.22 K), 1) iterations, then with the
 *   interval shrinking by max(floor(0.03 K), 1) down to max(floor(0.06 K), 1):
 *   the step size halves, and the iterate returns to the best point so far,
 *   where the loss rose in at most 75 % of the interval's iterations, or where
 *   the step size was not halved at the last checkpoint and the best loss has
 *   not improved since;
 * - an image is fooled when any iterate is misclassified (that iterate is kept).
 * The authors' code reads the loss of iteration -1 at the first checkpoint as
 * the last row of its zero-initialized loss table; so does this.
 */
import * as tf from '@tensorflow/tfjs-core';

import {Rng} from '../data/random.js';
import {AttackInputs, AttackResult, AttackState, checkCount, checkEps, lossGradient, project} from './attack.js';
import {pixelLogits} from './classifier.js';
import {crossEntropyPerImage, dlrTargetedLoss, ImageLoss} from './losses.js';

/** AutoAttack's rho: a checkpoint halves the step where the loss rose in at most this fraction of iterations. */
const RHO = 0.75;
/** AutoAttack's momentum weight alpha of the new step. */
const MOMENTUM = 0.75;
/** AutoAttack's APGD-T default: targets are the 9 classes ranked after the top one (fewer with fewer classes). */
export const APGD_TARGETS = 9;

export interface ApgdOptions {
  /** Radius of the L-infinity ball, pixel units [0, 1]. */
  eps: number;
  /** Iterations K per run (AutoAttack: 100). */
  steps: number;
  /** Runs per loss (per target for APGD-T), each on the images the earlier ones did not fool. Default 1. */
  restarts?: number;
  /** The stream the random starts are drawn from. */
  rng: Rng;
}

export function checkApgdOptions(o: {eps: number; steps: number; restarts?: number}): void {
  checkEps(o.eps);
  checkCount(o.steps, 'steps');
  checkCount(o.restarts ?? 1, 'restarts');
}

function replace<T extends tf.Tensor>(old: T, next: T): T {
  if (old !== next) old.dispose();
  return next;
}

/** A [N, 1, 1, 1] per-image mask or scale as a tensor that broadcasts over images. */
function perImage(values: ArrayLike<number>): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from(values), [values.length, 1, 1, 1]);
}

function where(mask: Uint8Array, a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.where(tf.cast(tf.broadcastTo(perImage(mask), a.shape), 'bool'), a, b)) as tf.Tensor4D;
}

export interface ApgdRun {
  /** Per image, the fooling iterate where there is one, else the last. */
  adversarial: tf.Tensor4D;
  robust: Uint8Array;
  /** Each image's step size at the end of the run. */
  stepSize: Float32Array;
  /** Each image's best loss. */
  lossBest: Float32Array;
}

/** One APGD run on a batch of images x with labels y, ascending `loss` from a random start drawn from `o.rng`. */
export async function apgdSingleRun(inputs: AttackInputs, x: tf.Tensor4D, y: tf.Tensor1D, loss: ImageLoss,
                                    o: ApgdOptions): Promise<ApgdRun> {
  const {classifier} = inputs;
  const {eps, steps} = o;
  const n = x.shape[0];
  const size = x.size / n;
  const firstInterval = Math.max(Math.floor(0.22 * steps), 1);
  const minInterval = Math.max(Math.floor(0.06 * steps), 1);
  const decrease = Math.max(Math.floor(0.03 * steps), 1);

  // t / max|t| per image: a random corner-heavy point of the eps-ball, as AutoAttack starts.
  const t = new Float32Array(x.size);
  for (let i = 0; i < t.length; i++) t[i] = 2 * o.rng.next() - 1;
  for (let b = 0; b < n; b++) {
    let max = 0;
    for (let i = b * size; i < (b + 1) * size; i++) max = Math.max(max, Math.abs(t[i]));
    for (let i = b * size; i < (b + 1) * size; i++) t[i] /= max + 1e-12;
  }
  let xAdv = tf.tidy(() => tf.clipByValue(tf.add(x, tf.mul(eps, tf.tensor(t, x.shape))), 0, 1)) as tf.Tensor4D;
  let xBest = tf.clone(xAdv);
  let xBestAdv = tf.clone(xAdv);
  const first = await lossGradient(classifier, xAdv, y, loss);
  let grad = first.gradient;
  let gradBest = tf.clone(grad);
  const robust = Uint8Array.from(first.correct);
  const lossBest = Float32Array.from(first.losses);
  const stepSize = new Float32Array(n).fill(2 * eps);
  const lossSteps = Array.from({length: steps}, () => new Float32Array(n));
  let xAdvOld = tf.clone(xAdv);
  let interval = firstInterval;
  let sinceCheck = 0;
  let lossBestLastCheck = Float32Array.from(lossBest);
  let reducedLastCheck = new Uint8Array(n).fill(1);

  try {
    for (let i = 0; i < steps; i++) {
      const a = i > 0 ? MOMENTUM : 1;
      const next = tf.tidy(() => {
        const z = project(tf.add(xAdv, tf.mul(perImage(stepSize), tf.sign(grad))), x, eps);
        const momentum = tf.mul(tf.sub(xAdv, xAdvOld), 1 - a);
        return project(tf.add(tf.add(xAdv, tf.mul(tf.sub(z, xAdv), a)), momentum), x, eps);
      });
      xAdvOld = replace(xAdvOld, xAdv);
      xAdv = next;

      const at = await lossGradient(classifier, xAdv, y, loss);
      grad.dispose();
      grad = at.gradient;
      const fooled = Uint8Array.from(at.correct, c => 1 - c);
      for (let b = 0; b < n; b++) robust[b] = Math.min(robust[b], at.correct[b]);
      xBestAdv = replace(xBestAdv, where(fooled, xAdv, xBestAdv));
      lossSteps[i].set(at.losses);
      const improved = Uint8Array.from(at.losses, (l, b) => (l > lossBest[b] ? 1 : 0));
      xBest = replace(xBest, where(improved, xAdv, xBest));
      gradBest = replace(gradBest, where(improved, grad, gradBest));
      improved.forEach((u, b) => { if (u) lossBest[b] = at.losses[b]; });

      if (++sinceCheck === interval) {
        const halve = new Uint8Array(n);
        for (let b = 0; b < n; b++) {
          let rises = 0;
          for (let c = 0; c < interval; c++) {
            const later = lossSteps[i - c][b];
            const earlierRow = i - c - 1;
            rises += later > lossSteps[earlierRow < 0 ? earlierRow + steps : earlierRow][b] ? 1 : 0;
          }
          const oscillating = rises <= interval * RHO;
          const stalled = reducedLastCheck[b] === 0 && lossBestLastCheck[b] >= lossBest[b];
          halve[b] = oscillating || stalled ? 1 : 0;
        }
        reducedLastCheck = halve;
        lossBestLastCheck = Float32Array.from(lossBest);
        if (halve.some(h => h === 1)) {
          halve.forEach((h, b) => { if (h) stepSize[b] /= 2; });
          xAdv = replace(xAdv, where(halve, xBest, xAdv));
          grad = replace(grad, where(halve, gradBest, grad));
        }
        interval = Math.max(interval - decrease, minInterval);
        sinceCheck = 0;
      }
    }
    // The fooling iterate where there is one, else the last (AutoAttack returns x_best_adv, set likewise).
    const kept = where(robust.map(r => 1 - r), xBestAdv, xAdv);
    return {adversarial: kept, robust, stepSize, lossBest};
  } finally {
    tf.dispose([xAdv, xAdvOld, xBest, xBestAdv, grad, gradBest]);
  }
}

/** APGD-CE: APGD on the cross-entropy. */
export async function apgdCe(inputs: AttackInputs, options: ApgdOptions): Promise<AttackResult> {
  checkApgdOptions(options);
  const state = await AttackState.start(inputs);
  await runApgdCe(inputs, state, options);
  return state.result();
}

async function runApgdCe(inputs: AttackInputs, state: AttackState, options: ApgdOptions): Promise<void> {
  for (let r = 0; r < (options.restarts ?? 1); r++) {
    await state.run(inputs, (x, y) => apgdSingleRun(inputs, x, y, crossEntropyPerImage, options));
  }
}

/** The number of APGD-T target classes for a model with `classes` outputs. */
export function apgdTargetCount(classes: number, targets = APGD_TARGETS): number {
  if (classes < 4) throw new Error(`APGD-T's targeted DLR loss needs at least 4 classes, the model has ${classes}`);
  return Math.min(targets, classes - 1);
}

/**
 * APGD-T: for target ranks 2, 3, ... (the class with the 2nd, 3rd, ...
 * largest clean logit of each still-robust image), an APGD run on the
 * targeted DLR loss.
 */
export async function apgdTargeted(inputs: AttackInputs, options: ApgdOptions & {targets?: number}): Promise<AttackResult> {
  checkApgdOptions(options);
  const state = await AttackState.start(inputs);
  await runApgdTargeted(inputs, state, options);
  return state.result();
}

async function runApgdTargeted(inputs: AttackInputs, state: AttackState,
                               options: ApgdOptions & {targets?: number}): Promise<void> {
  const classes = (inputs.classifier.model.outputs[0].shape[1] ?? 0) as number;
  const count = apgdTargetCount(classes, options.targets);
  for (let rank = 2; rank <= count + 1; rank++) {
    for (let r = 0; r < (options.restarts ?? 1); r++) {
      await state.run(inputs, async (x, y) => {
        const target = tf.tidy(() => {
          const {indices} = tf.topk(pixelLogits(inputs.classifier, x), rank);
          return tf.squeeze(tf.slice(indices, [0, rank - 1], [-1, 1]), [1]);
        }) as tf.Tensor1D;
        try {
          return await apgdSingleRun(inputs, x, y, dlrTargetedLoss(target), options);
        } finally {
          target.dispose();
        }
      });
    }
  }
}

/** APGD-CE, then APGD-T on the images it did not fool: what `convnorm attack` reports as "APGD-CE + APGD-T". */
export async function apgd(inputs: AttackInputs, options: ApgdOptions & {targets?: number}): Promise<AttackResult> {
  checkApgdOptions(options);
  const classes = (inputs.classifier.model.outputs[0].shape[1] ?? 0) as number;
  apgdTargetCount(classes, options.targets);
  const state = await AttackState.start(inputs);
  await runApgdCe(inputs, state, options);
  await runApgdTargeted(inputs, state, options);
  return state.result();
}
