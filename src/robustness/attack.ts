/**
 * What every attack shares: the L-infinity threat model in pixel space, one
 * forward and backward pass giving each image's loss, top-1 hit and input
 * gradient, and the bookkeeping of attacking only the images still
 * classified correctly (as AutoAttack does), so that a restart or a second
 * attack costs nothing for the images already fooled.
 */
import * as tf from '@tensorflow/tfjs-core';

import {Rng} from '../data/random.js';
import {correctMask, PixelClassifier, pixelLogits} from './classifier.js';
import type {ImageLoss} from './losses.js';

export interface AttackResult {
  /** The attacked images, [N, H, W, C] in [0, 1], within eps of the inputs; the caller disposes it. */
  adversarial: tf.Tensor4D;
  /**
   * Per image, 1 when the model classifies it correctly before the attack
   * and on every adversarial point the attack checked (RobustBench's robust
   * accuracy counts an image misclassified clean as an error), else 0.
   */
  robust: Uint8Array;
}

export interface AttackInputs {
  classifier: PixelClassifier;
  /** Clean images, [N, H, W, C] in [0, 1]. */
  images: tf.Tensor4D;
  /** int32 class labels [N]. */
  labels: tf.Tensor1D;
  /** Which images the model classifies correctly (computed when absent): only these are attacked. */
  cleanCorrect?: Uint8Array;
}

/** Throws unless eps (in [0, 1] pixel units) is a finite number in [0, 1]. */
export function checkEps(eps: number, what = 'eps'): void {
  if (!(eps >= 0 && eps <= 1)) throw new Error(`${what} must be in [0, 1] (pixel units, e.g. 8 / 255), got ${eps}`);
}

export function checkCount(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${what} must be a positive integer, got ${value}`);
}

export interface LossGradient {
  /** d(sum of the per-image losses) / d images: each image's own loss gradient (inference mode couples no images). */
  gradient: tf.Tensor4D;
  losses: Float32Array;
  /** Top-1 hits at these images. */
  correct: Uint8Array;
}

/** The per-image loss at `x`, its input gradient and the top-1 hits, from one forward and one backward pass. */
export async function lossGradient(classifier: PixelClassifier, x: tf.Tensor4D, labels: tf.Tensor1D,
                                   loss: ImageLoss): Promise<LossGradient> {
  const kept: tf.Tensor[] = [];
  const gradient = tf.tidy(() => tf.grad((xi: tf.Tensor) => {
    const logits = pixelLogits(classifier, xi as tf.Tensor4D);
    const perImage = loss(logits, labels);
    // The forward pass runs in its own scope; what the caller reads is kept and released below.
    kept.push(tf.keep(logits), tf.keep(perImage));
    return tf.sum(perImage);
  })(x)) as tf.Tensor4D;
  const [logits, perImage] = kept as [tf.Tensor2D, tf.Tensor1D];
  try {
    const losses = Float32Array.from(await perImage.data());
    return {gradient, losses, correct: await correctMask(logits, labels)};
  } finally {
    tf.dispose(kept);
  }
}

/** Top-1 hits of the classifier on `x`. */
export async function correctAt(classifier: PixelClassifier, x: tf.Tensor4D, labels: tf.Tensor1D): Promise<Uint8Array> {
  const logits = pixelLogits(classifier, x);
  try {
    return await correctMask(logits, labels);
  } finally {
    logits.dispose();
  }
}

/** Projection onto the eps-ball around x and onto [0, 1]. */
export function project(candidate: tf.Tensor4D, x: tf.Tensor4D, eps: number): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(tf.minimum(tf.maximum(candidate, tf.sub(x, eps)), tf.add(x, eps)), 0, 1)) as tf.Tensor4D;
}

/** Uniform noise in [-1, 1) of `shape`, drawn from `rng` (a seeded stream, so that a run repeats exactly). */
export function uniformNoise(shape: tf.Tensor4D['shape'], rng: Rng): tf.Tensor4D {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = 2 * rng.next() - 1;
  return tf.tensor(values, shape) as tf.Tensor4D;
}

/**
 * The images of a batch under attack: the adversarial points found so far
 * (rows of a host copy) and which images are still robust. `run` attacks the
 * robust ones only and records what it found.
 */
export class AttackState {
  readonly rows: Float32Array;
  readonly robust: Uint8Array;
  private readonly imageSize: number;

  private constructor(images: Float32Array, robust: Uint8Array, private readonly shape: tf.Tensor4D['shape']) {
    this.rows = images;
    this.robust = robust;
    this.imageSize = shape.slice(1).reduce((a, b) => a * b, 1);
  }

  /** The clean batch, robust where the model is right on it. */
  static async start(inputs: AttackInputs): Promise<AttackState> {
    const {classifier, images, labels} = inputs;
    if (images.rank !== 4) throw new Error(`attacks take images [N, H, W, C], got shape [${images.shape}]`);
    if (labels.rank !== 1 || labels.shape[0] !== images.shape[0]) {
      throw new Error(`attacks take one label per image: ${images.shape[0]} images, labels of shape [${labels.shape}]`);
    }
    const correct = inputs.cleanCorrect ?? await correctAt(classifier, images, labels);
    if (correct.length !== images.shape[0]) {
      throw new Error(`cleanCorrect has ${correct.length} entries for ${images.shape[0]} images`);
    }
    return new AttackState(Float32Array.from(await images.data()), Uint8Array.from(correct), images.shape);
  }

  /** Indices of the images still robust. */
  remaining(): number[] {
    const out: number[] = [];
    this.robust.forEach((r, i) => { if (r === 1) out.push(i); });
    return out;
  }

  /**
   * Attacks the robust images with `attack` (given their clean images and
   * labels, it returns adversarial points and their robustness) and records
   * the points; an image stays robust only if `attack` leaves it robust.
   */
  async run(inputs: AttackInputs, attack: (x: tf.Tensor4D, y: tf.Tensor1D) => Promise<{adversarial: tf.Tensor4D; robust: Uint8Array}>): Promise<void> {
    const indices = this.remaining();
    if (indices.length === 0) return;
    const index = tf.tensor1d(indices, 'int32');
    const x = tf.gather(inputs.images, index) as tf.Tensor4D;
    const y = tf.gather(inputs.labels, index) as tf.Tensor1D;
    index.dispose();
    try {
      const {adversarial, robust} = await attack(x, y);
      const values = await adversarial.data();
      adversarial.dispose();
      indices.forEach((i, k) => {
        this.rows.set(values.subarray(k * this.imageSize, (k + 1) * this.imageSize), i * this.imageSize);
        this.robust[i] = robust[k];
      });
    } finally {
      tf.dispose([x, y]);
    }
  }

  result(): AttackResult {
    return {adversarial: tf.tensor(this.rows, this.shape) as tf.Tensor4D, robust: this.robust};
  }
}
