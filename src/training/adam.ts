/**
 * Adam as PyTorch's torch.optim.Adam (no weight decay, no amsgrad) takes a
 * step: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, then
 * w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). Its moments
 * and step count are plain state, readable and settable for checkpoints, so
 * a resumed run continues bit for bit. (tf.train.adam puts eps after the
 * bias correction the same way, but keeps its state where a checkpoint
 * reaches it only asynchronously, and its learning rate is fixed.)
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AdamArgs {
  /** Default [0.9, 0.999], PyTorch's. */
  betas?: [number, number];
  /** Default 1e-8, PyTorch's (tf.train.adam's is 1e-7). */
  epsilon?: number;
}

export class Adam {
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private readonly betas: [number, number];
  private readonly epsilon: number;
  /** Steps taken. */
  steps = 0;

  constructor(private readonly variables: tf.Variable[], args: AdamArgs = {}) {
    this.betas = args.betas ?? [0.9, 0.999];
    this.epsilon = args.epsilon ?? 1e-8;
    if (!this.betas.every(b => b >= 0 && b < 1)) throw new Error(`Adam betas must be in [0, 1), got [${this.betas}]`);
    if (!(this.epsilon > 0)) throw new Error(`Adam epsilon must be > 0, got ${this.epsilon}`);
    this.m = variables.map(w => tf.tidy(() => tf.variable(tf.zerosLike(w), false)));
    this.v = variables.map(w => tf.tidy(() => tf.variable(tf.zerosLike(w), false)));
  }

  /** One step with `grads[i]` the gradient of `variables[i]` (undefined: that weight is left alone, as PyTorch skips it). */
  apply(grads: (tf.Tensor | undefined)[], learningRate: number): void {
    this.steps++;
    const [b1, b2] = this.betas;
    const bc1 = 1 - b1 ** this.steps;
    const bc2Root = Math.sqrt(1 - b2 ** this.steps);
    tf.tidy(() => this.variables.forEach((w, i) => {
      const g = grads[i];
      if (g === undefined) return;
      const m = tf.add(tf.mul(b1, this.m[i]), tf.mul(1 - b1, g));
      const v = tf.add(tf.mul(b2, this.v[i]), tf.mul(1 - b2, tf.square(g)));
      this.m[i].assign(m);
      this.v[i].assign(v);
      w.assign(tf.sub(w, tf.mul(learningRate / bc1, tf.div(m, tf.add(tf.div(tf.sqrt(v), bc2Root), this.epsilon)))));
    }));
  }

  /** The moments, m then v, one per variable each (live variables: do not dispose). */
  state(): tf.Variable[] {
    return [...this.m, ...this.v];
  }

  /** Sets the moments (as state() orders them) and the step count. */
  setState(values: tf.Tensor[], steps: number): void {
    if (values.length !== 2 * this.variables.length) {
      throw new Error(`Adam state has ${values.length} tensors, expected ${2 * this.variables.length} (m and v per weight)`);
    }
    if (!Number.isInteger(steps) || steps < 0) throw new Error(`Adam step count must be an integer >= 0, got ${steps}`);
    const targets = this.state();
    values.forEach((x, i) => {
      if (!tf.util.arraysEqual(x.shape, targets[i].shape)) throw new Error(`Adam state ${i}: shape [${x.shape}], expected [${targets[i].shape}]`);
    });
    tf.tidy(() => values.forEach((x, i) => targets[i].assign(tf.cast(x, 'float32'))));
    this.steps = steps;
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}
