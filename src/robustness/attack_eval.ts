/**
 * Robust top-1 of a classifier on a test set under a list of attack settings
 * (what `convnorm attack` runs): clean top-1, then, per setting, the fraction
 * of images classified correctly clean and after the attack. Settings give eps
 * and step in units of 1/255, as published tables and the reference's
 * configs do.
 */
import * as tf from '@tensorflow/tfjs-core';

import {makeBatch} from '../data/batches.js';
import {datasetSize, ImageDataset} from '../data/dataset.js';
import {Rng} from '../data/random.js';
import {apgd, APGD_TARGETS, apgdTargetCount, checkApgdOptions} from './apgd.js';
import {AttackInputs, AttackResult, checkCount, correctAt} from './attack.js';
import {PixelClassifier} from './classifier.js';
import {fgsm} from './fgsm.js';
import {checkPgdOptions, pgd} from './pgd.js';

export const ATTACK_NAMES = ['fgsm', 'pgd', 'apgd'] as const;
export type AttackName = (typeof ATTACK_NAMES)[number];

/** How each attack is named in printed and stored results. */
export const ATTACK_LABELS: Record<AttackName, string> = {fgsm: 'FGSM', pgd: 'PGD', apgd: 'APGD-CE + APGD-T'};

/** The reference's evaluation: eps 8/255, PGD steps of 2/255, 10 steps (config_robust_train.json). */
export const ATTACK_DEFAULTS = {eps: 8, step: 2, steps: 10, restarts: 1} as const;

export interface AttackSetting {
  attack: AttackName;
  /** Radius of the L-infinity ball in units of 1/255, in [0, 255]. */
  eps: number;
  /**
   * PGD's step size in units of 1/255, at most eps; default eps / 4 (the
   * reference's 2 at eps 8), so that the default steps can reach the ball's
   * surface at any eps. FGSM steps by eps; APGD adapts its own.
   */
  step?: number;
  /** Iterations of PGD and of each APGD run. Default 10. */
  steps?: number;
  /** Random restarts of PGD, and APGD runs per loss (per target for APGD-T). Default 1. */
  restarts?: number;
}

/** A setting with its defaults filled in, as results store it. */
export interface ResolvedAttackSetting {
  attack: AttackName;
  eps: number;
  /** The step size in 1/255 (FGSM: eps), or null where the attack adapts it (APGD). */
  step: number | null;
  steps: number;
  restarts: number;
  /** APGD-T's target classes (APGD only). */
  targets?: number;
}

export interface AttackRow extends ResolvedAttackSetting {
  /** 'FGSM', 'PGD' or 'APGD-CE + APGD-T'. */
  label: string;
  /** Robust top-1, a fraction in [0, 1]. */
  top1: number;
}

export interface AttackEvaluation {
  /** Top-1 on the clean images, a fraction. */
  cleanTop1: number;
  /** Images evaluated (the first `limit` of the set). */
  images: number;
  results: AttackRow[];
}

export interface AttackEvalOptions {
  settings: AttackSetting[];
  /** Evaluate the first this many images of the set. Default: all. */
  limit?: number;
  /** Images per batch. Default 100. */
  batchSize?: number;
  /** Seeds every random start. */
  seed: number;
  /** Called after each batch of each setting with the work done so far and the setting's label. */
  onProgress?: (done: number, total: number, label: string) => void;
}

/**
 * Fills in the defaults and checks one setting (a known attack, eps in
 * [0, 255], step <= eps, positive counts; APGD-T's targets need `classes`,
 * and are left out without it).
 */
export function resolveAttackSetting(s: AttackSetting, classes?: number): ResolvedAttackSetting {
  if (!(ATTACK_NAMES as readonly string[]).includes(s.attack)) {
    throw new Error(`unknown attack '${s.attack}'; choose from ${ATTACK_NAMES.join(', ')}`);
  }
  if (!(s.eps >= 0 && s.eps <= 255)) throw new Error(`eps must be in [0, 255] (units of 1/255), got ${s.eps}`);
  const steps = s.steps ?? ATTACK_DEFAULTS.steps;
  const restarts = s.restarts ?? ATTACK_DEFAULTS.restarts;
  checkCount(steps, 'steps');
  checkCount(restarts, 'restarts');
  if (s.attack === 'fgsm') return {attack: 'fgsm', eps: s.eps, step: s.eps, steps: 1, restarts: 1};
  if (s.attack === 'apgd') {
    checkApgdOptions({eps: s.eps / 255, steps, restarts});
    const targets = classes === undefined ? undefined : apgdTargetCount(classes, APGD_TARGETS);
    return {attack: 'apgd', eps: s.eps, step: null, steps, restarts, ...(targets === undefined ? {} : {targets})};
  }
  const step = s.step ?? s.eps * (ATTACK_DEFAULTS.step / ATTACK_DEFAULTS.eps);
  if (!(step >= 0)) throw new Error(`the step must be a number >= 0 (units of 1/255), got ${s.step}`);
  if (step > s.eps) throw new Error(`the step (${step}/255) is larger than eps (${s.eps}/255)`);
  checkPgdOptions({eps: s.eps / 255, step: step / 255, steps, restarts});
  return {attack: 'pgd', eps: s.eps, step, steps, restarts};
}

const ATTACK_STREAM: Record<AttackName, number> = {fgsm: 1, pgd: 2, apgd: 3};

/** One attack on one batch; the random starts depend on the setting and the batch only. */
function runAttack(inputs: AttackInputs, s: ResolvedAttackSetting, seed: number, first: number): Promise<AttackResult> {
  const rng = Rng.derive(seed, ATTACK_STREAM[s.attack], Math.round(1000 * s.eps), first);
  const eps = s.eps / 255;
  if (s.attack === 'fgsm') return fgsm(inputs, {eps});
  if (s.attack === 'pgd') return pgd(inputs, {eps, step: s.step! / 255, steps: s.steps, restarts: s.restarts, rng});
  return apgd(inputs, {eps, steps: s.steps, restarts: s.restarts, targets: s.targets, rng});
}

/**
 * Clean and robust top-1 of `classifier` on the first `limit` images of `ds`
 * (pixel / 255, the classifier's normalization applied inside), every setting
 * checked before any work. Allocates no tensor that outlives the call.
 */
export async function evaluateAttacks(classifier: PixelClassifier, ds: ImageDataset,
                                      options: AttackEvalOptions): Promise<AttackEvaluation> {
  const classes = ds.numClasses;
  const settings = options.settings.map(s => resolveAttackSetting(s, classes));
  if (settings.length === 0) throw new Error('no attack settings given');
  const total = datasetSize(ds);
  const limit = options.limit ?? total;
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`limit must be a positive integer, got ${limit}`);
  const batchSize = options.batchSize ?? 100;
  checkCount(batchSize, 'batchSize');
  const count = Math.min(limit, total);
  if (count === 0) throw new Error(`the dataset '${ds.name}' is empty`);
  const batches = Math.ceil(count / batchSize);
  let clean = 0;
  const robust = new Array<number>(settings.length).fill(0);
  let done = 0;
  for (let b = 0; b < batches; b++) {
    const first = b * batchSize;
    const indices = Int32Array.from({length: Math.min(batchSize, count - first)}, (_, i) => first + i);
    const {x: images, labels} = makeBatch(ds, indices);
    try {
      const cleanCorrect = await correctAt(classifier, images, labels);
      clean += cleanCorrect.reduce((a, c) => a + c, 0);
      for (const [i, s] of settings.entries()) {
        const result = await runAttack({classifier, images, labels, cleanCorrect}, s, options.seed, first);
        result.adversarial.dispose();
        robust[i] += result.robust.reduce((a, c) => a + c, 0);
        options.onProgress?.(++done, batches * settings.length, `${ATTACK_LABELS[s.attack]} eps ${s.eps}`);
      }
    } finally {
      tf.dispose([images, labels]);
    }
  }
  return {
    cleanTop1: clean / count,
    images: count,
    results: settings.map((s, i) => ({...s, label: ATTACK_LABELS[s.attack], top1: robust[i] / count})),
  };
}
