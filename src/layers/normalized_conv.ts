/**
 * The convolution every baseline is built on: PyTorch's nn.Conv2d (symmetric
 * integer zero padding, so a strided layer samples on PyTorch's grid) whose
 * kernel a subclass may re-parametrize before every call, as spectral
 * normalization (./spectral_norm.ts) and ONI (./oni.ts) do; PlainConv2D
 * (./plain_conv.ts) leaves it as it is.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type {Kwargs} from '@tensorflow/tfjs-layers/dist/types.js';

import {fail, PaddingArg, pair, symmetricPadding} from '../common/arguments.js';
import type {ConvArgs} from '../common/conv_args.js';
import {torchDefaultInit} from '../common/initializers.js';
import {Constraint, deserializeObject, Initializer, Regularizer, SerializedObject,
        serializeObject} from '../common/serialization.js';

export interface NormalizedConv2DArgs extends ConvArgs {
  /**
   * Zero padding on each side, as PyTorch's Conv2d: an integer, [ph, pw],
   * 'valid' (0) or 'same' ((k-1)/2, odd kernels). Default 0. Unlike tfjs's
   * 'same', both sides of an axis get the same padding, so a strided layer
   * samples the input where PyTorch's does (and where a 1x1 shortcut beside it does).
   */
  padding?: PaddingArg;
  /** Add a learned bias after the convolution. Default true (PyTorch's Conv2d default). */
  useBias?: boolean;
  /** Initializer of the raw kernel. Default PyTorch's Conv2d one (uniform, bound 1/sqrt(fan_in)). */
  kernelInitializer?: Initializer | SerializedObject | string;
  /** Initializer of the bias. Default PyTorch's (uniform, bound 1/sqrt(fan_in)). */
  biasInitializer?: Initializer | SerializedObject | string;
  /** Seed of the default initializers (kernel: seed, bias: seed + 1, layer state: seed + 2, ...). */
  seed?: number;
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
 * A 2-D convolution with PyTorch's padding whose kernel is re-parametrized
 * on every call: subclasses say how (normalizedKernel). Weights: kernel
 * [kh, kw, C_in, C_out] (the raw, trainable parameter), bias [C_out] when
 * useBias, then the subclass's own.
 */
export abstract class NormalizedConv2D extends tfl.layers.Layer {
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  /** Zero padding per side, [ph, pw]. */
  readonly padding: [number, number];
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
    try {
      this.padding = symmetricPadding(args.padding, this.kernelSize);
    } catch (e) {
      fail(`${name}: ${(e as Error).message}`);
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

  /**
   * Refuses configs saved when these layers took tfjs's 'same' padding (the
   * padding was stored as that string): at a stride above 1 that padding
   * sampled the input one pixel off the symmetric grid 'same' means now, so
   * the saved weights would be read into another function. At stride 1 the
   * two are the same and the config loads.
   */
  static override fromConfig<T extends tf.serialization.Serializable>(
      cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    const strides = config.strides as number | number[] | undefined;
    const strided = [strides ?? 1].flat().some(s => s !== 1);
    if (config.padding === 'same' && strided) {
      fail(`${String(config.name ?? (cls as unknown as {className: string}).className)}: this model was saved ` +
           "with tfjs 'same' padding at stride " + JSON.stringify(strides) + ', which pads the end of an axis ' +
           "more than its start; these layers now pad both sides as PyTorch does, so its weights would be read " +
           'into a convolution that samples one pixel off; retrain the model');
    }
    return new cls(config);
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
    const length = (axis: 0 | 1) => {
      const size = shape[axis + 1];
      if (size == null) return null;
      const padded = size + 2 * this.padding[axis];
      if (padded < this.kernelSize[axis]) {
        fail(`${this.layerName}: input ${axis === 0 ? 'height' : 'width'} ${size} with padding ` +
             `${this.padding[axis]} is smaller than the kernel (${this.kernelSize[axis]})`);
      }
      return Math.floor((padded - this.kernelSize[axis]) / this.strides[axis]) + 1;
    };
    return [shape[0], length(0), length(1), this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    if (x.rank !== 4) fail(`${this.layerName} expects input of rank 4, got [${x.shape}]`);
    const training = kwargs['training'] === true;
    const [ph, pw] = this.padding;
    return tf.tidy(() => {
      const kernel = this.normalizedKernel(this.kernel!.read() as tf.Tensor4D, training);
      const y = tf.conv2d(x, kernel, this.strides, [[0, 0], [ph, ph], [pw, pw], [0, 0]]);
      return this.bias === undefined ? y : tf.add(y, this.bias.read());
    });
  }

  /** The kernel the layer convolves with in inference, [kh, kw, C_in, C_out]; the caller disposes it. */
  effectiveKernel(): tf.Tensor4D {
    if (!this.built) fail(`${this.layerName} is not built yet`);
    // A copy even where the kernel is used as it is, so that disposing it never disposes the weight.
    return tf.tidy(() => tf.clone(this.normalizedKernel(this.kernel!.read() as tf.Tensor4D, false)));
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
