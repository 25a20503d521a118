import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {topKHits} from './metrics.js';

export interface TrainStepArgs {
  /** SGD learning rate (a number, or read every step from a function). */
  learningRate: number | (() => number);
  /** Default 0.9. */
  momentum?: number;
  /** L2 weight decay added to the gradients, as PyTorch's SGD does. Default 1e-4. */
  weightDecay?: number;
  /**
   * A penalty added to the loss and differentiated with it (e.g. OCNN's
   * orthogonality penalty), computed from the model's weights each step.
   */
  extraLoss?: (model: tfl.LayersModel) => tf.Scalar;
}

/** What one step reports: all numbers, read back once per step. */
export interface StepResult {
  /** The objective minimized: cross-entropy + extra loss. */
  loss: number;
  /** Mean softmax cross-entropy of the batch. */
  crossEntropy: number;
  /** The extra loss (0 without one). */
  extraLoss: number;
  /** Images of the batch whose training-mode logits put the label first (ties: see topKHits). */
  correct: number;
}

/** The variables a model trains, as tf.Variables (a LayerVariable reads as its variable). */
export function trainableVariables(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map(w => w.read() as tf.Variable);
}

/** A step's [loss, cross-entropy, extra loss, top-1 hits] as a tensor, read back once and released. */
class Summary {
  constructor(private readonly values: tf.Tensor) {}

  read(): StepResult {
    try {
      return toResult(this.values.dataSync());
    } finally {
      this.values.dispose();
    }
  }

  async readAsync(): Promise<StepResult> {
    try {
      return toResult(await this.values.data());
    } finally {
      this.values.dispose();
    }
  }
}

function toResult(v: ArrayLike<number>): StepResult {
  return {loss: v[0], crossEntropy: v[1], extraLoss: v[2], correct: v[3]};
}

/**
 * One SGD step as PyTorch's SGD(momentum, weight_decay) takes it: forward in
 * training mode, softmax cross-entropy, backward, g += wd * w, then
 * buf = momentum * buf + g and w -= lr * buf. The momentum buffers start at
 * zero, so the first step sets buf = g exactly, as PyTorch's clone does; they
 * are tf.Variables in the order of `model.trainableWeights`, readable and
 * settable for checkpoints. Everything a step allocates is released.
 */
export class TrainStep {
  private readonly variables: tf.Variable[];
  private readonly buffers: tf.Variable[];
  private readonly weightDecay: number;
  private readonly momentum: number;
  private readonly momentumScalar: tf.Scalar;

  constructor(private readonly model: tfl.LayersModel, private readonly args: TrainStepArgs) {
    this.weightDecay = args.weightDecay ?? 1e-4;
    this.momentum = args.momentum ?? 0.9;
    if (!(this.momentum >= 0) || !Number.isFinite(this.momentum)) throw new Error(`momentum must be a finite number >= 0, got ${this.momentum}`);
    if (!(this.weightDecay >= 0) || !Number.isFinite(this.weightDecay)) throw new Error(`weight decay must be a finite number >= 0, got ${this.weightDecay}`);
    this.variables = trainableVariables(model);
    this.momentumScalar = tf.keep(tf.scalar(this.momentum));
    this.buffers = this.variables.map(v => tf.tidy(() => tf.variable(tf.zerosLike(v), false)));
  }

  private learningRate(): number {
    const lr = typeof this.args.learningRate === 'function' ? this.args.learningRate() : this.args.learningRate;
    if (!Number.isFinite(lr)) throw new Error(`the learning rate must be a finite number, got ${lr}`);
    return lr;
  }

  /**
   * One step on a batch; `labels` are one-hot [N, classes] or int32 class
   * indices [N]. Returns the loss, its parts and the batch's top-1 hits.
   */
  step(x: tf.Tensor, labels: tf.Tensor): StepResult {
    return this.takeStep(x, labels, false).summary.read();
  }

  /**
   * step() with the numbers read back asynchronously, which webgpu needs:
   * its synchronous read is slow and, on Chromium's SwiftShader adapter,
   * returns zeros without waiting for the step.
   */
  async stepAsync(x: tf.Tensor, labels: tf.Tensor): Promise<StepResult> {
    return this.takeStep(x, labels, false).summary.readAsync();
  }

  /**
   * A step on the model input `preprocess(x)` that also returns the gradient
   * of the loss with respect to `x`, from the same backward pass (the caller
   * disposes it): what free adversarial training needs, with x the
   * perturbation and preprocess adding it to the images.
   */
  stepWithInputGradient(x: tf.Tensor, labels: tf.Tensor,
                        preprocess: (x: tf.Tensor) => tf.Tensor): {result: StepResult; inputGradient: tf.Tensor} {
    const {summary, inputGradient} = this.takeStep(x, labels, true, preprocess);
    return {result: summary.read(), inputGradient: inputGradient!};
  }

  private takeStep(x: tf.Tensor, labels: tf.Tensor, withInput: boolean,
              preprocess?: (x: tf.Tensor) => tf.Tensor): {summary: Summary; inputGradient?: tf.Tensor} {
    const lr = this.learningRate();
    let kept: tf.Tensor[] = [];
    let inputGradient: tf.Tensor | undefined;
    const summary = tf.tidy(() => {
      const objective = () => {
        const logits = this.model.apply(preprocess ? preprocess(x) : x, {training: true}) as tf.Tensor;
        if (logits.rank !== 2) throw new Error(`the model must output [batch, classes] logits, got shape [${logits.shape}]`);
        const classes = logits.shape[1]!;
        const indices = labels.rank === 1 ? labels : tf.argMax(labels, 1);
        const oneHot = labels.rank === 1 ? tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, classes) : labels;
        const ce = tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
        const extra = this.args.extraLoss ? this.args.extraLoss(this.model) : tf.scalar(0);
        // The forward pass runs in its own tidy; what the summary needs is kept and released below.
        kept = [tf.keep(ce), tf.keep(extra), tf.keep(tf.sum(topKHits(logits, indices, 1)))];
        return this.args.extraLoss ? tf.add(ce, extra) as tf.Scalar : ce;
      };
      let value: tf.Scalar;
      let grads: tf.NamedTensorMap;
      if (withInput) {
        // One backward pass to the weights and to x (tf.variableGrads reaches variables only).
        const out = tf.engine().gradients(objective, [...this.variables, x], undefined, true);
        value = out.value;
        grads = Object.fromEntries(this.variables.map((v, i) => [v.name, out.grads[i]]));
        inputGradient = tf.keep(out.grads[this.variables.length] ?? tf.zerosLike(x));
      } else {
        ({value, grads} = tf.variableGrads(objective, this.variables));
      }
      this.applyGradients(grads, lr);
      return tf.stack([value, ...kept]);
    });
    tf.dispose(kept);
    return {summary: new Summary(summary), inputGradient};
  }

  private applyGradients(grads: tf.NamedTensorMap, lr: number): void {
    const c = tf.scalar(-lr);
    this.variables.forEach((v, i) => {
      let g = grads[v.name];
      // A weight the loss does not reach is left alone, as PyTorch skips parameters without a grad.
      if (g === undefined) return;
      if (this.weightDecay > 0) g = tf.add(g, tf.mul(this.weightDecay, v));
      // The same ops as tf.train.momentum, which this replaces: buf = m buf + g; w = (-lr) buf + w.
      const buffer = this.buffers[i];
      const newBuffer = tf.add(tf.mul(this.momentumScalar, buffer), g);
      const newValue = tf.add(tf.mul(c, newBuffer), v);
      buffer.assign(newBuffer);
      v.assign(newValue);
    });
  }

  /** One step with one-hot labels; returns the batch loss. */
  run(x: tf.Tensor, labels: tf.Tensor): number {
    return this.step(x, labels).loss;
  }

  /** The momentum buffers, one per trainable weight in `model.trainableWeights` order (live variables: do not dispose). */
  optimizerState(): tf.Variable[] {
    return [...this.buffers];
  }

  /** Replaces the momentum buffers' values (shapes must match optimizerState()'s). */
  setOptimizerState(values: tf.Tensor[]): void {
    if (values.length !== this.buffers.length) {
      throw new Error(`optimizer state has ${values.length} momentum buffers, the model trains ${this.buffers.length} weights`);
    }
    values.forEach((value, i) => {
      if (!tf.util.arraysEqual(value.shape, this.buffers[i].shape)) {
        throw new Error(`momentum buffer ${i} has shape [${value.shape}], its weight ${this.variables[i].name} [${this.buffers[i].shape}]`);
      }
    });
    tf.tidy(() => values.forEach((value, i) => this.buffers[i].assign(tf.cast(value, 'float32'))));
  }

  dispose(): void {
    tf.dispose(this.buffers);
    this.momentumScalar.dispose();
  }
}
