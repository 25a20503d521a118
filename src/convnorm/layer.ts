import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type {Kwargs} from '@tensorflow/tfjs-layers/dist/types.js';

import {fail, PaddingArg, pair} from '../common/arguments.js';
import {applyBatchNorm, BatchNormState, checkBatchStatistics} from '../common/batch_norm.js';
import type {ConvArgs} from '../common/conv_args.js';
import {torchDefaultInit} from '../common/initializers.js';
import {Constraint, deserializeObject, Initializer, Regularizer, SerializedObject,
        serializeObject} from '../common/serialization.js';
import {convNormGeometry, resolvePadding, spectrumShape} from './geometry.js';
import {checkConvNormInputs, checkMethod, convNorm, ConvNormMethod} from './op.js';
import {convNormSpectrum, DEFAULT_SPECTRUM_EPSILON} from './spectrum.js';

/** Floor of the reference's rampdown factor, so the running V keeps following the weights. */
const MIN_RAMPDOWN_FACTOR = 0.01;

export interface ConvNorm2DArgs extends ConvArgs {
  /**
   * Zero padding per side, p <= k - 1: an integer, [ph, pw], 'valid' (0) or
   * 'same' ((k-1)/2, odd kernels only; PyTorch's sampling grid). Default 0.
   */
  padding?: PaddingArg;
  /**
   * The learned per-channel filter after preconditioning: a kh x kw depthwise
   * convolution with bias, zero padding ((kh-1)/2, (kw-1)/2) rounded down.
   * Default true. (The reference sizes it kh x kh; the two agree for square kernels.)
   */
  affine?: boolean;
  /** BatchNorm after the affine part, with PyTorch's semantics (eps 1e-5, momentum 0.1). Default true. */
  batchNorm?: boolean;
  /**
   * Weight of the new V in the running estimate, running_v <- f V + (1 - f) running_v
   * with f = momentum; null (default, as the reference) for the cosine rampdown
   * f = max(0.5 (cos(pi min(n, L) / L) + 1), 0.01) at training step n = 1, 2, ...
   */
  momentum?: number | null;
  /** L of the cosine rampdown. Default 40000, the reference's. */
  rampdownSteps?: number;
  /** Added to sum_j |FFT(a_kj)|^2 before the inverse square root. Default 1e-12. */
  epsilon?: number;
  /** Initializer of the conv kernel. Default PyTorch's (uniform, bound 1/sqrt(fan_in)), as the reference. */
  kernelInitializer?: Initializer | SerializedObject | string;
  /** Seed of the default initializers, for reproducible weights. */
  seed?: number;
  /** How the preconditioned convolution is computed ('auto', 'spatial' or 'fourier'); the result is the same. */
  method?: ConvNormMethod;
}

/**
 * Convolutional Normalization (Liu et al., NeurIPS 2021): a convolution whose
 * output channels are each preconditioned, in the Fourier domain and from the
 * weights alone, into an isometry; then a learned depthwise filter and,
 * optionally, BatchNorm. Exact to the authors' PreConv layer.
 *
 * Input [N, H, W, C_in] with H and W fixed when the layer is built: the running
 * spectrum V has one value per frequency of the (H + kh - 1) x (W + kw - 1) grid.
 *
 * The running V starts at zero, as in the reference: until one training step
 * has run, inference outputs only the bias terms (affine bias, BatchNorm).
 *
 * Weights, each present only when its option is on: kernel, affine_kernel,
 * affine_bias, gamma, beta (trainable); moving_mean, moving_variance, running_v,
 * step (the number of training steps, float32, exact to 2^24).
 */
export class ConvNorm2D extends tfl.layers.Layer {
  static className = 'ConvNorm2D';

  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: PaddingArg;
  readonly affine: boolean;
  readonly batchNorm: boolean;
  readonly momentum: number | null;
  readonly rampdownSteps: number;
  readonly epsilon: number;
  readonly seed?: number;
  readonly method: ConvNormMethod;
  private readonly kernelInitializer: Initializer;
  private readonly kernelRegularizer?: Regularizer;
  private readonly kernelConstraint?: Constraint;
  private readonly paddingPerSide: [number, number];

  private kernel?: tfl.LayerVariable;
  private affineKernel?: tfl.LayerVariable;
  private affineBias?: tfl.LayerVariable;
  private batchNormState?: BatchNormState;
  private runningV?: tfl.LayerVariable;
  private step?: tfl.LayerVariable;
  private inputSize?: [number, number];

  constructor(args: ConvNorm2DArgs) {
    super(args);
    if (!Number.isInteger(args.filters) || args.filters < 1) {
      fail(`filters must be a positive integer, got ${JSON.stringify(args.filters)}`);
    }
    this.filters = args.filters;
    this.kernelSize = pair(args.kernelSize, 'kernelSize');
    this.strides = pair(args.strides, 'strides', 1);
    this.padding = args.padding ?? 0;
    this.paddingPerSide = resolvePadding(this.padding, this.kernelSize);
    this.affine = args.affine ?? true;
    this.batchNorm = args.batchNorm ?? true;
    this.momentum = args.momentum ?? null;
    if (this.momentum !== null && !(this.momentum > 0 && this.momentum <= 1)) {
      fail(`momentum must be in (0, 1] or null, got ${this.momentum}`);
    }
    this.rampdownSteps = args.rampdownSteps ?? 40000;
    if (!Number.isInteger(this.rampdownSteps) || this.rampdownSteps < 1) {
      fail(`rampdownSteps must be a positive integer, got ${this.rampdownSteps}`);
    }
    this.epsilon = args.epsilon ?? DEFAULT_SPECTRUM_EPSILON;
    if (!(this.epsilon >= 0 && Number.isFinite(this.epsilon))) {
      fail(`epsilon must be a finite number >= 0, got ${this.epsilon}`);
    }
    this.seed = args.seed;
    this.method = checkMethod(args.method);
    this.kernelInitializer = deserializeObject(args.kernelInitializer, 'initializer', this.seed) ??
      torchDefaultInit(this.seed);
    this.kernelRegularizer = deserializeObject(args.kernelRegularizer, 'regularizer');
    this.kernelConstraint = deserializeObject(args.kernelConstraint, 'constraint');
    this.supportsMasking = false;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    if (shape.length !== 4) fail(`ConvNorm2D expects input of rank 4 [batch, height, width, channels], got [${shape}]`);
    const [, h, w, cin] = shape;
    if (h == null || w == null || cin == null) {
      fail(`ConvNorm2D needs a known height, width and channel count when built, got [${shape}]: ` +
           'its running spectrum V has one value per frequency of the (H + kh - 1) x (W + kw - 1) grid');
    }
    const g = convNormGeometry([h, w], this.kernelSize, this.strides, this.paddingPerSide);
    this.inputSize = [h, w];
    const [kh, kw] = this.kernelSize;
    const c = this.filters;
    const uniform = (bound: number, offset: number) => tfl.initializers.randomUniform(
      {minval: -bound, maxval: bound, seed: this.seed === undefined ? undefined : this.seed + offset});
    this.kernel = this.addWeight('kernel', [kh, kw, cin, c], 'float32', this.kernelInitializer,
                                 this.kernelRegularizer, true, this.kernelConstraint);
    if (this.affine) {
      // PyTorch's Conv2d default for a depthwise filter: fan_in = kh * kw.
      const bound = 1 / Math.sqrt(kh * kw);
      this.affineKernel = this.addWeight('affine_kernel', [kh, kw, c, 1], 'float32', uniform(bound, 1));
      this.affineBias = this.addWeight('affine_bias', [c], 'float32', uniform(bound, 2));
    }
    if (this.batchNorm) {
      // Added in the order the weights are listed: gamma, beta (trainable) before the statistics.
      const gamma = this.affine ? this.addWeight('gamma', [c], 'float32', tfl.initializers.ones()) : undefined;
      const beta = this.affine ? this.addWeight('beta', [c], 'float32', tfl.initializers.zeros()) : undefined;
      this.batchNormState = {
        gamma, beta,
        movingMean: this.addWeight('moving_mean', [c], 'float32', tfl.initializers.zeros(), undefined, false),
        movingVariance: this.addWeight('moving_variance', [c], 'float32', tfl.initializers.ones(), undefined, false),
      };
    }
    this.runningV = this.addWeight('running_v', spectrumShape(this.kernelSize, c, g.fourierSize), 'float32',
                                   tfl.initializers.zeros(), undefined, false);
    this.step = this.addWeight('step', [], 'float32', tfl.initializers.zeros(), undefined, false);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const [n, h, w] = shape;
    if (h == null || w == null) return [n, null, null, this.filters];
    const [ho, wo] = convNormGeometry([h, w], this.kernelSize, this.strides, this.paddingPerSide).outputSize;
    // The affine filter's floor((k-1)/2) padding keeps the size for odd kernels only.
    const shrink = this.affine ? this.kernelSize.map(k => (k - 1) % 2) : [0, 0];
    return [n, ho - shrink[0], wo - shrink[1], this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const training = kwargs['training'] === true;
    // Everything is checked before any state is touched.
    const kernel = this.kernel!.read() as tf.Tensor4D;
    const g = checkConvNormInputs(x, kernel, {strides: this.strides, padding: this.paddingPerSide});
    if (x.shape[1] !== this.inputSize![0] || x.shape[2] !== this.inputSize![1]) {
      fail(`ConvNorm2D was built for ${this.inputSize!.join('x')} inputs, got ${x.shape[1]}x${x.shape[2]}: ` +
           'its running V is tied to the input size');
    }
    const [ho, wo] = g.outputSize;
    // Checked before the running V is updated (applyBatchNorm checks it again, too late for that).
    if (training && this.batchNorm) checkBatchStatistics(x.shape[0] * ho * wo, x.shape);
    return tf.tidy(() => {
      let spectrum: tf.Tensor;
      if (training) {
        spectrum = convNormSpectrum(kernel, g.fourierSize, this.epsilon);
        this.updateRunningSpectrum(spectrum);
      } else {
        spectrum = this.runningV!.read();
      }
      let y = convNorm(x, kernel, {strides: this.strides, padding: this.paddingPerSide, spectrum,
                                   method: this.method});
      if (this.affine) y = this.applyAffine(y);
      if (this.batchNormState !== undefined) y = applyBatchNorm(y, this.batchNormState, training);
      return y;
    });
  }

  /** running_v <- f V + (1 - f) running_v, with f computed in the graph so no step value is read back. */
  private updateRunningSpectrum(spectrum: tf.Tensor): void {
    const n = tf.add(this.step!.read(), 1);
    let f: tf.Tensor;
    if (this.momentum !== null) {
      f = tf.scalar(this.momentum);
    } else {
      const progress = tf.div(tf.minimum(n, this.rampdownSteps), this.rampdownSteps);
      f = tf.maximum(tf.mul(0.5, tf.add(tf.cos(tf.mul(Math.PI, progress)), 1)), MIN_RAMPDOWN_FACTOR);
    }
    const running = this.runningV!.read();
    this.runningV!.write(tf.add(tf.mul(f, spectrum), tf.mul(tf.sub(1, f), running)));
    this.step!.write(n);
  }

  private applyAffine(y: tf.Tensor4D): tf.Tensor4D {
    const [ph, pw] = this.kernelSize.map(k => Math.floor((k - 1) / 2));
    const filter = this.affineKernel!.read() as tf.Tensor4D;
    const bias = this.affineBias!.read();
    // With the bias fused into the filter (where the padding is one number, as fused ops take it), the
    // backends' own fused kernels add it as they filter: no pass of its own over the batch.
    if (ph === pw) return tf.fused.depthwiseConv2d({x: y, filter, strides: 1, pad: ph, bias});
    const filtered = tf.depthwiseConv2d(y, filter, 1, [[0, 0], [ph, ph], [pw, pw], [0, 0]]);
    return tf.add(filtered, bias);
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      affine: this.affine,
      batchNorm: this.batchNorm,
      momentum: this.momentum,
      rampdownSteps: this.rampdownSteps,
      epsilon: this.epsilon,
      method: this.method,
      kernelInitializer: serializeObject(this.kernelInitializer),
      kernelRegularizer: serializeObject(this.kernelRegularizer),
      kernelConstraint: serializeObject(this.kernelConstraint),
    };
    if (this.seed !== undefined) config.seed = this.seed;
    return {...config, ...super.getConfig()};
  }
}
tf.serialization.registerClass(ConvNorm2D);

/** Factory in the tf.layers style: `convNorm2d({filters: 64, kernelSize: 3, padding: 1})`. */
export function convNorm2d(args: ConvNorm2DArgs): ConvNorm2D {
  return new ConvNorm2D(args);
}
