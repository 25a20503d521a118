/**
 * Spectral normalization of a convolution (Miyato et al., ICLR 2018) as
 * torch.nn.utils.spectral_norm does it, one of the baselines ConvNorm is
 * compared with.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {fail} from '../common/arguments.js';
import {kernelToMatrix, NormalizedConv2D, NormalizedConv2DArgs, offsetSeed} from './normalized_conv.js';

/** PyTorch's spectral_norm eps: vectors are divided by max(||x||, eps). */
export const SN_EPSILON = 1e-12;

export interface SpectralNormConv2DArgs extends NormalizedConv2DArgs {
  /** Power iterations per training call (PyTorch's n_power_iterations). Default 1. */
  powerIterations?: number;
  /** eps of the vector normalizations, x / max(||x||, eps). Default 1e-12, PyTorch's. */
  epsilon?: number;
}

/** x / max(||x||_2, eps), as torch.nn.functional.normalize. */
function l2Normalize(x: tf.Tensor, eps: number): tf.Tensor {
  return tf.div(x, tf.maximum(tf.norm(x), eps));
}

/**
 * One or more power iterations of PyTorch's spectral_norm on the [C_out, F]
 * matrix w: v <- normalize(w^T u), u <- normalize(w v). Returns the new [C_out]
 * u and [F] v.
 */
export function powerIteration(w: tf.Tensor2D, u: tf.Tensor1D, v: tf.Tensor1D, iterations = 1,
                               eps = SN_EPSILON): {u: tf.Tensor1D; v: tf.Tensor1D} {
  const [rows, cols] = w.shape;
  for (let i = 0; i < iterations; i++) {
    v = l2Normalize(tf.reshape(tf.matMul(tf.reshape(u, [1, rows]), w), [cols]), eps) as tf.Tensor1D;
    u = l2Normalize(tf.reshape(tf.matMul(w, tf.reshape(v, [cols, 1])), [rows]), eps) as tf.Tensor1D;
  }
  return {u, v};
}

/** sigma = u^T w v, a scalar; differentiable in w (u and v are what the caller passes). */
export function spectralSigma(w: tf.Tensor2D, u: tf.Tensor1D, v: tf.Tensor1D): tf.Scalar {
  const [rows, cols] = w.shape;
  return tf.sum(tf.mul(u, tf.reshape(tf.matMul(w, tf.reshape(v, [cols, 1])), [rows]))) as tf.Scalar;
}

/**
 * Conv2D with spectral normalization, exactly as torch.nn.utils.spectral_norm
 * applies it to nn.Conv2d (dim 0): W is the kernel as the [C_out, C_in*kh*kw]
 * matrix, u [C_out] and v [C_in*kh*kw] persist between calls (PyTorch's
 * weight_u, weight_v; initialized from a seeded standard normal, normalized).
 *
 * - training call: `powerIterations` times v = normalize(W^T u),
 *   u = normalize(W v) (eps 1e-12); u and v are stored and are constants for the
 *   gradient (PyTorch computes them under no_grad); sigma = u^T W v.
 * - inference: no update; sigma from the stored u and v.
 *
 * The convolution uses W / sigma. Weights: kernel, bias (when useBias), then the
 * non-trainable weight_u, weight_v.
 */
export class SpectralNormConv2D extends NormalizedConv2D {
  static className = 'SpectralNormConv2D';
  readonly powerIterations: number;
  readonly epsilon: number;
  private u?: tfl.LayerVariable;
  private v?: tfl.LayerVariable;

  constructor(args: SpectralNormConv2DArgs) {
    super(args);
    this.powerIterations = args.powerIterations ?? 1;
    if (!Number.isInteger(this.powerIterations) || this.powerIterations < 1) {
      fail(`SpectralNormConv2D: powerIterations must be a positive integer, got ${JSON.stringify(args.powerIterations)}`);
    }
    this.epsilon = args.epsilon ?? SN_EPSILON;
    if (!(this.epsilon > 0 && Number.isFinite(this.epsilon))) {
      fail(`SpectralNormConv2D: epsilon must be a finite number > 0, got ${args.epsilon}`);
    }
  }

  protected override buildState(inChannels: number): void {
    const [kh, kw] = this.kernelSize;
    const normal = (offset: number) =>
      tfl.initializers.randomNormal({mean: 0, stddev: 1, seed: offsetSeed(this.seed, offset)});
    this.u = this.addWeight('weight_u', [this.filters], 'float32', normal(2), undefined, false);
    this.v = this.addWeight('weight_v', [inChannels * kh * kw], 'float32', normal(3), undefined, false);
    // PyTorch normalizes the initial draws; loading a saved model overwrites them afterwards.
    tf.tidy(() => {
      this.u!.write(l2Normalize(this.u!.read(), this.epsilon));
      this.v!.write(l2Normalize(this.v!.read(), this.epsilon));
    });
  }

  protected override normalizedKernel(kernel: tf.Tensor4D, training: boolean): tf.Tensor4D {
    const w = kernelToMatrix(kernel);
    if (training) {
      const next = powerIteration(w, this.u!.read() as tf.Tensor1D, this.v!.read() as tf.Tensor1D,
                                  this.powerIterations, this.epsilon);
      this.u!.write(next.u);
      this.v!.write(next.v);
    }
    // Read back from the variables: a variable has no producer on the gradient
    // tape, so u and v enter sigma as constants, as under PyTorch's no_grad.
    const sigma = spectralSigma(w, this.u!.read() as tf.Tensor1D, this.v!.read() as tf.Tensor1D);
    return tf.div(kernel, sigma);
  }

  /** sigma = u^T W v from the stored u, v and the current kernel (what inference divides by). */
  sigma(): tf.Scalar {
    if (!this.built) fail('SpectralNormConv2D is not built yet');
    return tf.tidy(() => spectralSigma(kernelToMatrix(this.kernel!.read() as tf.Tensor4D),
                                       this.u!.read() as tf.Tensor1D, this.v!.read() as tf.Tensor1D));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {powerIterations: this.powerIterations, epsilon: this.epsilon, ...super.getConfig()};
  }
}
tf.serialization.registerClass(SpectralNormConv2D);

/** Factory in the tf.layers style. */
export function spectralNormConv2d(args: SpectralNormConv2DArgs): SpectralNormConv2D {
  return new SpectralNormConv2D(args);
}
