/**
 * Adversarial training steps, in pixel space [0, 1] with the dataset
 * normalization applied inside the step:
 *
 * - free adversarial training (Shafahi et al., NeurIPS 2019): each minibatch
 *   is replayed m times; each replay's one backward pass gives both the
 *   weight step and an FGSM step of the perturbation, which is then clipped
 *   to [-eps, eps]. The perturbation is either reset to zero for every
 *   minibatch (the ConvNorm authors' trainer/adv_trainer.py) or carried
 *   across minibatches and epochs (Shafahi et al.'s code); the epoch count is
 *   divided by m in Shafahi et al.'s setting and not in the authors' (the
 *   experiment does that; see ExperimentConfig.freeEpochs).
 * - PGD adversarial training (Madry et al., ICLR 2018): each minibatch is
 *   replaced by its PGD adversarial examples (random start, K steps of alpha,
 *   projected). They are generated in inference mode, as MadryLab's
 *   robustness library does, so that the attack's forward passes update no
 *   running statistics or running V; the weight step then runs in training
 *   mode. A ConvNorm network's running V is zero until its first training
 *   step (as the reference's), so the very first batch's examples are their
 *   random starts.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import type {Normalization} from '../data/batches.js';
import type {Rng} from '../data/random.js';
import {pgd} from '../robustness/pgd.js';
import {StepResult, TrainStep} from './step.js';

export interface FreeAdversarialTraining {
  kind: 'free';
  /** Replays m of each minibatch (the authors' adv_repeats: 4). */
  replays: number;
  /** Radius the perturbation is clipped to, pixel units (8 / 255). */
  eps: number;
  /** The FGSM step of the perturbation per replay, pixel units (the authors' fgsm_step: 8 / 255). */
  step: number;
  /** 'reset': zero for every minibatch (the ConvNorm authors'); 'carry': kept across minibatches (Shafahi et al.'s). */
  perturbation: 'reset' | 'carry';
}

export interface PgdAdversarialTraining {
  kind: 'pgd';
  /** Radius, pixel units. */
  eps: number;
  /** Step size alpha, pixel units, at most eps. */
  step: number;
  /** Steps K. */
  steps: number;
}

export type AdversarialTraining = FreeAdversarialTraining | PgdAdversarialTraining;

function bad(message: string): never {
  throw new Error(`adversarial training: ${message}`);
}

/** Checks the settings, naming the first bad one. */
export function checkAdversarial(a: AdversarialTraining): AdversarialTraining {
  const fraction = (v: number, what: string) => {
    if (!(v >= 0 && v <= 1)) bad(`${what} must be in [0, 1] (pixel units, e.g. 8 / 255), got ${v}`);
  };
  const count = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 1) bad(`${what} must be a positive integer, got ${v}`);
  };
  if (a.kind === 'free') {
    count(a.replays, 'replays');
    fraction(a.eps, 'eps');
    fraction(a.step, 'step');
    if (a.perturbation !== 'reset' && a.perturbation !== 'carry') {
      bad(`perturbation must be 'reset' or 'carry', got ${JSON.stringify(a.perturbation)}`);
    }
  } else if (a.kind === 'pgd') {
    fraction(a.eps, 'eps');
    fraction(a.step, 'step');
    if (a.step > a.eps) bad(`the step (${a.step}) is larger than eps (${a.eps})`);
    count(a.steps, 'steps');
  } else {
    bad(`kind must be 'free' or 'pgd', got ${JSON.stringify((a as {kind: unknown}).kind)}`);
  }
  return a;
}

function normalize(x: tf.Tensor, normalization: Normalization | undefined): tf.Tensor {
  return normalization === undefined ? x : tf.div(tf.sub(x, normalization.mean), normalization.std);
}

/**
 * The adversarial steps of one run: `run` takes a minibatch in pixel space
 * and returns the result of every weight step it took (m for free training,
 * one for PGD). The carried perturbation of free training is state a
 * checkpoint must hold (`state` / `setState`).
 */
export class AdversarialSteps {
  private perturbation?: tf.Variable;

  constructor(private readonly step: TrainStep, private readonly model: tfl.LayersModel,
              private readonly config: AdversarialTraining, private readonly normalization: Normalization | undefined,
              batchShape: [number, number, number, number]) {
    checkAdversarial(config);
    if (config.kind === 'free' && config.perturbation === 'carry') {
      this.perturbation = tf.variable(tf.zeros(batchShape), false);
    }
  }

  /** The replays (or the PGD step) of one minibatch `x` ([N, H, W, C] in [0, 1]); `rng` draws PGD's random start. */
  async run(x: tf.Tensor4D, labels: tf.Tensor1D, rng: Rng): Promise<StepResult[]> {
    const c = this.config;
    if (c.kind === 'pgd') {
      const {adversarial} = await pgd({classifier: {model: this.model, normalization: this.normalization}, images: x,
                                       labels, cleanCorrect: new Uint8Array(x.shape[0]).fill(1)},
                                      {eps: c.eps, step: c.step, steps: c.steps, rng});
      try {
        const input = tf.tidy(() => normalize(adversarial, this.normalization));
        try {
          return [this.step.step(input, labels)];
        } finally {
          input.dispose();
        }
      } finally {
        adversarial.dispose();
      }
    }
    const n = x.shape[0];
    // The carried perturbation's first n rows (a last, smaller batch uses the top of the buffer, as Shafahi et al.'s).
    let delta = this.perturbation === undefined ? tf.zerosLike(x)
      : tf.slice(this.perturbation, [0, 0, 0, 0], [n, -1, -1, -1]) as tf.Tensor4D;
    const results: StepResult[] = [];
    try {
      for (let j = 0; j < c.replays; j++) {
        const {result, inputGradient} = this.step.stepWithInputGradient(delta, labels, d =>
          normalize(tf.clipByValue(tf.add(x, d), 0, 1), this.normalization));
        results.push(result);
        const next = tf.tidy(() => tf.clipByValue(tf.add(delta, tf.mul(c.step, tf.sign(inputGradient))), -c.eps, c.eps));
        tf.dispose([inputGradient, delta]);
        delta = next as tf.Tensor4D;
      }
      if (this.perturbation !== undefined) {
        const p = this.perturbation;
        tf.tidy(() => {
          const rest = p.shape[0] - n;
          p.assign(rest === 0 ? delta : tf.concat([delta, tf.slice(p, [n, 0, 0, 0], [rest, -1, -1, -1])]));
        });
      }
    } finally {
      delta.dispose();
    }
    return results;
  }

  /** Tensors a checkpoint must hold to resume bitwise: the carried perturbation, when there is one. */
  state(): tf.Tensor[] {
    return this.perturbation === undefined ? [] : [this.perturbation];
  }

  setState(values: tf.Tensor[]): void {
    const expected = this.state();
    if (values.length !== expected.length) {
      throw new Error(`adversarial state: ${values.length} tensors given, ${expected.length} expected`);
    }
    values.forEach((v, i) => {
      if (!tf.util.arraysEqual(v.shape, expected[i].shape)) {
        throw new Error(`adversarial state ${i} has shape [${v.shape}], expected [${expected[i].shape}]`);
      }
      (expected[i] as tf.Variable).assign(v);
    });
  }

  dispose(): void {
    this.perturbation?.dispose();
  }
}
