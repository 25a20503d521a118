import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export interface TrainStepArgs {
  /** SGD learning rate (a number, or read every step from a function). */
  learningRate: number | (() => number);
  /** Default 0.9. */
  momentum?: number;
  /** L2 weight decay added to the gradients, as PyTorch's SGD does. Default 1e-4. */
  weightDecay?: number;
}

/** The variables a model trains, as tf.Variables (a LayerVariable reads as its variable). */
export function trainableVariables(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map(w => w.read() as tf.Variable);
}

/**
 * One SGD step as PyTorch's SGD(momentum, weight_decay) takes it: forward in
 * training mode, softmax cross-entropy, backward, g += wd * w, momentum update.
 * Returns the batch loss. Everything it allocates is released.
 */
export class TrainStep {
  private readonly optimizer: tf.MomentumOptimizer;
  private readonly variables: tf.Variable[];
  private readonly weightDecay: number;

  constructor(private readonly model: tfl.LayersModel, private readonly args: TrainStepArgs) {
    this.weightDecay = args.weightDecay ?? 1e-4;
    this.optimizer = tf.train.momentum(this.learningRate(), args.momentum ?? 0.9);
    this.variables = trainableVariables(model);
  }

  private learningRate(): number {
    return typeof this.args.learningRate === 'function' ? this.args.learningRate() : this.args.learningRate;
  }

  run(x: tf.Tensor, labels: tf.Tensor): number {
    this.optimizer.setLearningRate(this.learningRate());
    const loss = tf.tidy(() => {
      const {value, grads} = tf.variableGrads(() => {
        const logits = this.model.apply(x, {training: true}) as tf.Tensor;
        return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
      }, this.variables);
      if (this.weightDecay > 0) {
        for (const v of this.variables) grads[v.name] = tf.add(grads[v.name], tf.mul(this.weightDecay, v));
      }
      this.optimizer.applyGradients(grads as tf.NamedTensorMap as Parameters<tf.MomentumOptimizer["applyGradients"]>[0]);
      return value;
    });
    const result = loss.dataSync()[0];
    loss.dispose();
    return result;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
