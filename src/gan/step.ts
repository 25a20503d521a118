/**
 * SNGAN's training step: n_dis discriminator updates, each on a real batch
 * and a fresh fake batch (the generator's output taken as a constant), then
 * one generator update through the discriminator, both with Adam as SNGAN
 * sets it (lr 2e-4, betas (0, 0.9), PyTorch's eps 1e-8; ../training/adam.ts).
 * Both networks run in training mode throughout, as in Mimicry: the
 * discriminator's SN power iterations and ConvNorm's running V advance on
 * every pass, the generator's BatchNorm uses batch statistics.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import {Adam} from '../training/adam.js';
import {trainableVariables} from '../training/step.js';
import {hingeDiscriminatorLoss, hingeGeneratorLoss} from './losses.js';

export interface GanStepArgs {
  generator: tfl.LayersModel;
  discriminator: tfl.LayersModel;
  /** Adam learning rate of both networks (a number, or read every step). Default 2e-4. */
  learningRate?: number | (() => number);
  /** Adam's beta1 and beta2. Default [0, 0.9]. */
  betas?: [number, number];
  /** Discriminator updates per generator update. Default 5. */
  nDis?: number;
}

export interface GanStepResult {
  /** Mean discriminator loss over the n_dis updates. */
  dLoss: number;
  /** The generator's loss at its update. */
  gLoss: number;
}

/** A loss tensor's value, read back asynchronously (as webgpu needs); the tensor is released. */
async function readScalar(loss: tf.Tensor): Promise<number> {
  try {
    return (await loss.data())[0];
  } finally {
    loss.dispose();
  }
}

export class GanStep {
  readonly nDis: number;
  readonly dOptimizer: Adam;
  readonly gOptimizer: Adam;
  private readonly dVariables: tf.Variable[];
  private readonly gVariables: tf.Variable[];

  constructor(private readonly args: GanStepArgs) {
    this.nDis = args.nDis ?? 5;
    if (!Number.isInteger(this.nDis) || this.nDis < 1) throw new Error(`nDis must be a positive integer, got ${this.nDis}`);
    const [beta1, beta2] = args.betas ?? [0, 0.9];
    // A bad learning rate is refused now, not at the first step.
    this.learningRate();
    this.dVariables = trainableVariables(args.discriminator);
    this.gVariables = trainableVariables(args.generator);
    this.dOptimizer = new Adam(this.dVariables, {betas: [beta1, beta2]});
    this.gOptimizer = new Adam(this.gVariables, {betas: [beta1, beta2]});
  }

  private learningRate(): number {
    const lr = typeof this.args.learningRate === 'function' ? this.args.learningRate() : this.args.learningRate ?? 2e-4;
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`the learning rate must be a finite number >= 0, got ${lr}`);
    return lr;
  }

  /**
   * One generator step and the n_dis discriminator steps before it.
   * `realBatches` gives the n_dis real batches (images in [-1, 1]);
   * `noise(k)` the k-th noise batch [N, zDim] (k = 0..n_dis: the last is the
   * generator's), so that a caller's seeded stream decides every draw. The
   * step disposes what they return.
   */
  async step(realBatches: (k: number) => tf.Tensor4D, noise: (k: number) => tf.Tensor2D): Promise<GanStepResult> {
    let dLoss = 0;
    for (let k = 0; k < this.nDis; k++) dLoss += await this.discriminatorStep(realBatches(k), noise(k));
    return {dLoss: dLoss / this.nDis, gLoss: await this.generatorStep(noise(this.nDis))};
  }

  /** One discriminator update on a real batch and the fakes of `z`; returns its loss. Disposes both inputs. */
  async discriminatorStep(real: tf.Tensor4D, z: tf.Tensor2D): Promise<number> {
    const lr = this.learningRate();
    const {generator: g, discriminator: d} = this.args;
    const loss = tf.tidy(() => {
      // Computed before the tape starts: a constant to the discriminator's gradient.
      const fake = g.apply(z, {training: true}) as tf.Tensor;
      const {value, grads} = tf.variableGrads(() => hingeDiscriminatorLoss(
        d.apply(real, {training: true}) as tf.Tensor, d.apply(fake, {training: true}) as tf.Tensor), this.dVariables);
      this.dOptimizer.apply(this.dVariables.map(v => grads[v.name]), lr);
      return value;
    });
    tf.dispose([real, z]);
    return readScalar(loss);
  }

  /** One generator update through the discriminator on the fakes of `z`; returns its loss. Disposes `z`. */
  async generatorStep(z: tf.Tensor2D): Promise<number> {
    const lr = this.learningRate();
    const {generator: g, discriminator: d} = this.args;
    const loss = tf.tidy(() => {
      const {value, grads} = tf.variableGrads(() => hingeGeneratorLoss(
        d.apply(g.apply(z, {training: true}) as tf.Tensor, {training: true}) as tf.Tensor), this.gVariables);
      this.gOptimizer.apply(this.gVariables.map(v => grads[v.name]), lr);
      return value;
    });
    z.dispose();
    return readScalar(loss);
  }

  dispose(): void {
    this.dOptimizer.dispose();
    this.gOptimizer.dispose();
  }
}
