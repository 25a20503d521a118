/**
 * Spectral normalization of a convolution (Miyato et al., ICLR 2018) as
 * torch.nn.utils.spectral_norm does it, one of the baselines ConvNorm is
 * compared with; and the conv plumbing it shares with ONI (./oni.ts): a
 * convolution whose kernel is re-parametrized before every call.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type {LayerArgs} from '@tensorflow/tfjs-layers/dist/engine/topology.js';
import type {Kwargs} from '@tensorflow/tfjs-layers/dist/types.js';

import {fail, pair} from '../convnorm/geometry.js';
import {Constraint, deserializeObject, Initializer, Regularizer, SerializedObject,
        serializeObject} from '../convnorm/serialization.js';
import {torchDefaultInit} from './initializers.js';

/** PyTorch's spectral_norm eps: vectors are divided by max(||x||, eps). */
export const SN_EPSILON = 1e-12;

export interface NormalizedConv2DArgs extends LayerArgs {
  /** Number of output channels C_out. */
  filters: number;
  /** Kernel height and width: one number or [kh, kw]. */
  kernelSize: number | [number, number];
  /** Stride: one number or [sh, sw]. Default 1. */
  strides?: number | [number, number];
  /** tfjs padding, 'same' (default, as the plain conv of the models here) or 'valid'. */
  padding?: 'same' | 'valid';
  /** Add a learned bias after the convolution. Default true (PyTorch's Conv2d default). */
  useBias?: boolean;
  /** Initializer of the raw kernel. Default PyTorch's Conv2d one (uniform, bound 1/sqrt(fan_in)). */
  kernelInitializer?: Initializer | SerializedObject | string;
  /** Initializer of the bias. Default PyTorch's (uniform, bound 1/sqrt(fan_in)). */
  biasInitializer?: Initializer | SerializedObject | string;
  /** Regularizer of the raw kernel. */
  kernelRegularizer?: Regularizer | SerializedObject;
  /** Constraint on the raw kernel. */
  kernelConstraint?: Constraint | SerializedObject;
  /** Seed of the default initializers (kernel: seed, bias: seed + 1, layer state: seed + 2, ...). */
  seed?: number;
}

/** tfjs conv output length for 'same' / 'valid' padding. */
function outputLength(size: number | null, kernel: number, stride: number, padding: 'same' | 'valid'): number | null {
  if (size == null) return null;
  return padding === 'same' ? Math.ceil(size / stride) : Math.ceil((size - kernel + 1) / stride);
}

/** Derived seed of a default initializer, undefined when the layer has none. */
export function offsetSeed(seed: number | undefined, offset: number): number | undefined {
  return seed === undefined ? undefined : seed + offset;
}

/**
 * [kh, kw, C_in, C_out] (tfjs) -> [C_out, C_in * kh * kw] with PyTorch's
 * column order (c_in, i, j): the matrix PyTorch's weight.reshape(C_out, -1) is.
 */
export function kernelToMatrix(kernel: tf.Tensor4D): tf.Tensor2D {
  const [kh, kw, cin, cout] = kernel.shape;
  return tf.reshape(tf.transpose(kernel, [3, 2, 0, 1]), [cout, cin * kh * kw]);
}

/** The inverse of kernelToMatrix. */
export function matrixToKernel(matrix: tf.Tensor, kernelShape: readonly number[]): tf.Tensor4D {
  const [kh, kw, cin, cout] = kernelShape;
  return tf.transpose(tf.reshape(matrix, [cout, cin, kh, kw]), [2, 3, 1, 0]);
}

/**
 * A 2-D convolution whose kernel is re-parametrized on every call: subclasses
 * say how (normalizedKernel). Weights: kernel [kh, kw, C_in, C_out] (the raw,
 * trainable parameter), bias [C_out] when useBias, then the subclass's own.
 */
export abstract class NormalizedConv2D extends tfl.layers.Layer {
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'same' | 'valid';
  readonly useBias: boolean;
  readonly seed?: number;
  private readonly kernelInitializer: Initializer;
  private readonly biasInitializer?: Initializer;
  private readonly kernelRegularizer?: Regularizer;
  private readonly kernelConstraint?: Constraint;
  protected kernel?: tfl.LayerVariable;
  private bias?: tfl.LayerVariable;

  constructor(args: NormalizedConv2DArgs) {
    super(args);
    const name = (this.constructor as unknown as {className: string}).className;
    if (args === undefined || args === null) fail(`${name} needs arguments ({filters, kernelSize, ...})`);
    if (!Number.isInteger(args.filters) || args.filters < 1) {
      fail(`${name}: filters must be a positive integer, got ${JSON.stringify(args.filters)}`);
    }
    this.filters = args.filters;
    this.kernelSize = pair(args.kernelSize, `${name}: kernelSize`);
    this.strides = pair(args.strides, `${name}: strides`, 1);
    this.padding = args.padding ?? 'same';
    if (this.padding !== 'same' && this.padding !== 'valid') {
      fail(`${name}: padding must be 'same' or 'valid', got ${JSON.stringify(args.padding)}`);
    }
    this.useBias = args.useBias ?? true;
    if (args.seed !== undefined && !Number.isFinite(args.seed)) fail(`${name}: seed must be a finite number, got ${args.seed}`);
    this.seed = args.seed;
    this.kernelInitializer = deserializeObject(args.kernelInitializer, 'initializer', this.seed) ??
      torchDefaultInit(this.seed);
    this.biasInitializer = deserializeObject(args.biasInitializer, 'initializer', offsetSeed(this.seed, 1));
    this.kernelRegularizer = deserializeObject(args.kernelRegularizer, 'regularizer');
    this.kernelConstraint = deserializeObject(args.kernelConstraint, 'constraint');
  }

  protected get layerName(): string {
    return (this.constructor as unknown as {className: string}).className;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const cin = shape[shape.length - 1];
    if (shape.length !== 4 || cin == null) {
      fail(`${this.layerName} expects input [batch, height, width, channels] with known channels, got [${shape}]`);
    }
    const [kh, kw] = this.kernelSize;
    this.kernel = this.addWeight('kernel', [kh, kw, cin, this.filters], 'float32', this.kernelInitializer,
                                 this.kernelRegularizer, true, this.kernelConstraint);
    if (this.useBias) {
      const bound = 1 / Math.sqrt(cin * kh * kw);
      const init = this.biasInitializer ??
        tfl.initializers.randomUniform({minval: -bound, maxval: bound, seed: offsetSeed(this.seed, 1)});
      this.bias = this.addWeight('bias', [this.filters], 'float32', init);
    }
    this.buildState(cin);
    this.inputSpec = [{ndim: 4, axes: {[-1]: cin}}];
    this.built = true;
  }

  /** Adds the subclass's weights, after kernel and bias. */
  protected abstract buildState(inChannels: number): void;

  /** The kernel the convolution uses, from the raw one; runs inside the call's tidy. */
  protected abstract normalizedKernel(kernel: tf.Tensor4D, training: boolean): tf.Tensor4D;

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [shape[0], outputLength(shape[1], this.kernelSize[0], this.strides[0], this.padding),
            outputLength(shape[2], this.kernelSize[1], this.strides[1], this.padding), this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    if (x.rank !== 4) fail(`${this.layerName} expects input of rank 4, got [${x.shape}]`);
    const training = kwargs['training'] === true;
    return tf.tidy(() => {
      const kernel = this.normalizedKernel(this.kernel!.read() as tf.Tensor4D, training);
      const y = tf.conv2d(x, kernel, this.strides, this.padding);
      return this.bias === undefined ? y : tf.add(y, this.bias.read());
    });
  }

  /** The kernel the layer convolves with in inference, [kh, kw, C_in, C_out]; the caller disposes it. */
  effectiveKernel(): tf.Tensor4D {
    if (!this.built) fail(`${this.layerName} is not built yet`);
    return tf.tidy(() => this.normalizedKernel(this.kernel!.read() as tf.Tensor4D, false));
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      useBias: this.useBias,
      kernelInitializer: serializeObject(this.kernelInitializer),
      biasInitializer: serializeObject(this.biasInitializer),
      kernelRegularizer: serializeObject(this.kernelRegularizer),
      kernelConstraint: serializeObject(this.kernelConstraint),
    };
    if (this.seed !== undefined) config.seed = this.seed;
    return {...config, ...super.getConfig()};
  }
}

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
