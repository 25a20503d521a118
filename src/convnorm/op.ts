import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers them all.
import '@tensorflow/tfjs-layers';

import {arange, DftMatrix, forwardDft, inverseDft, inverseRealDft} from './dft.js';
import {fail, PaddingArg, pair} from '../common/arguments.js';
import {convNormGeometry, ConvNormGeometry, isPointwise, resolvePadding, spectrumShape} from './geometry.js';
import {fourierConvNorm} from './fourier.js';
import {convNormSpectrum, DEFAULT_SPECTRUM_EPSILON} from './spectrum.js';

export interface ConvNormOpArgs {
  /** Stride of the convolution, one number or [h, w]. Default 1. */
  strides?: number | [number, number];
  /** Per-side zero padding p <= k-1 (integer, [h, w], 'same' or 'valid'). Default 0. */
  padding?: PaddingArg;
  /**
   * The preconditioning spectrum V to use, as `convNormSpectrum` returns it for
   * this kernel and input size. Omitted: computed from `kernel` (training mode);
   * the layer passes its running V here in inference.
   */
  spectrum?: tf.Tensor;
  /** Epsilon for V when it is computed here. Default `DEFAULT_SPECTRUM_EPSILON`. */
  epsilon?: number;
  /**
   * 'spatial': the reference's algorithm (full convolution, then the Fourier
   * preconditioning); 'fourier': one circular convolution in the Fourier
   * domain; 'auto' (default): the faster for the shape. Same function either way.
   */
  method?: ConvNormMethod;
}

export const CONVNORM_METHODS = ['auto', 'spatial', 'fourier'] as const;
export type ConvNormMethod = (typeof CONVNORM_METHODS)[number];

export function checkMethod(method: ConvNormMethod | undefined): ConvNormMethod {
  const m = method ?? 'auto';
  if (!CONVNORM_METHODS.includes(m)) fail(`method must be 'auto', 'spatial' or 'fourier', got ${JSON.stringify(m)}`);
  return m;
}

function constant(m: DftMatrix, part: 'cos' | 'sin', scale = 1): tf.Tensor2D {
  const t = tf.tensor2d(m[part], [m.rows, m.cols]);
  return scale === 1 ? t : tf.mul(t, scale);
}

/**
 * Fourier preconditioning of the full convolution y [N, Mh, Mw, C]: the
 * reference's irfft2(rfft2(y) * V) followed by its crop and stride. The DFTs
 * are matrix products (so they run on backends without FFT kernels), and the
 * inverse transforms are evaluated only at the rows and columns the crop and
 * stride keep, which folds both into the transform.
 */
function precondition(y: tf.Tensor4D, spectrum: tf.Tensor, g: ConvNormGeometry): tf.Tensor4D {
  const [n, mh, mw, c] = y.shape;
  const [ho, wo] = g.outputSize;
  const fw = Math.floor(mw / 2) + 1;

  // rfft along the width: [N*Mh, Fw, C], real and imaginary parts.
  const rowsW = tf.reshape(y, [n * mh, mw, c]);
  const fwdW = forwardDft(mw, true);
  const a = tf.matMul(constant(fwdW, 'cos'), rowsW);
  const b = tf.matMul(constant(fwdW, 'sin', -1), rowsW);

  // Full DFT along the height: (Ch - i Sh)(A + iB), on [N, Mh, Fw*C].
  const fwdH = forwardDft(mh, false);
  const ch = constant(fwdH, 'cos');
  const sh = constant(fwdH, 'sin');
  const a3 = tf.reshape(a, [n, mh, fw * c]);
  const b3 = tf.reshape(b, [n, mh, fw * c]);
  const v = tf.reshape(tf.transpose(spectrum, [1, 2, 0]), [1, mh, fw * c]);
  const re = tf.mul(tf.add(tf.matMul(ch, a3), tf.matMul(sh, b3)), v);
  const im = tf.mul(tf.sub(tf.matMul(ch, b3), tf.matMul(sh, a3)), v);

  // Inverse DFT along the height at the kept rows only: [N, Ho, Fw*C].
  const invH = inverseDft(mh, arange(g.crop[0], ho, g.strides[0]));
  const ci = constant(invH, 'cos');
  const si = constant(invH, 'sin');
  const p = tf.sub(tf.matMul(ci, re), tf.matMul(si, im));
  const q = tf.add(tf.matMul(si, re), tf.matMul(ci, im));

  // irfft along the width at the kept columns only: [N*Ho, Wo, C].
  const invW = inverseRealDft(mw, arange(g.crop[1], wo, g.strides[1]));
  const p3 = tf.reshape(p, [n * ho, fw, c]);
  const q3 = tf.reshape(q, [n * ho, fw, c]);
  const out = tf.sub(tf.matMul(constant(invW, 'cos'), p3), tf.matMul(constant(invW, 'sin'), q3));
  return tf.reshape(out, [n, ho, wo, c]);
}

/** Validates x and kernel against each other and returns the geometry of the op. */
export function checkConvNormInputs(x: tf.Tensor, kernel: tf.Tensor,
                                    args: Pick<ConvNormOpArgs, 'strides' | 'padding'>): ConvNormGeometry {
  if (x.rank !== 4) fail(`input must have rank 4 [batch, height, width, channels], got shape [${x.shape}]`);
  if (kernel.rank !== 4) fail(`kernel must have rank 4 [kh, kw, C_in, C_out], got shape [${kernel.shape}]`);
  if (x.shape[3] !== kernel.shape[2]) {
    fail(`input has ${x.shape[3]} channels but the kernel expects ${kernel.shape[2]} (shape [${kernel.shape}])`);
  }
  if (kernel.shape.some(d => d < 1) || x.shape.some(d => d < 1)) {
    fail(`sizes must be positive: input [${x.shape}], kernel [${kernel.shape}]`);
  }
  const [, h, w] = x.shape as number[];
  const kernelSize = kernel.shape.slice(0, 2) as [number, number];
  return convNormGeometry([h, w], kernelSize, pair(args.strides, 'strides', 1),
                          resolvePadding(args.padding, kernelSize));
}

/**
 * ConvNorm's preconditioned convolution, steps 1-4 of the reference (full
 * convolution, Fourier preconditioning so that each output channel's operator
 * is an isometry, crop to the requested padding, stride) on NHWC input.
 * Gradients with respect to `x` and `kernel` are exact; V is treated as a
 * constant, as in the reference.
 *
 * @param x input [N, H, W, C_in].
 * @param kernel conv kernel [kh, kw, C_in, C_out].
 * @returns [N, floor((H + 2p - kh)/s) + 1, floor((W + 2p - kw)/s) + 1, C_out].
 */
export function convNorm(x: tf.Tensor4D, kernel: tf.Tensor4D, args: ConvNormOpArgs = {}): tf.Tensor4D {
  const g = checkConvNormInputs(x, kernel, args);
  const method = checkMethod(args.method);
  const cout = kernel.shape[3];
  const expected = spectrumShape(g.kernelSize, cout, g.fourierSize);
  if (args.spectrum !== undefined && !tf.util.arraysEqual(args.spectrum.shape, expected)) {
    fail(`spectrum has shape [${args.spectrum.shape}] but this kernel and input need [${expected}]`);
  }
  return tf.tidy(() => {
    const spectrum = args.spectrum ?? convNormSpectrum(kernel, g.fourierSize, args.epsilon ?? DEFAULT_SPECTRUM_EPSILON);
    if (isPointwise(g.kernelSize)) {
      // A 1x1 kernel's V is one scalar per output channel; no crop (p must be 0).
      return tf.mul(tf.conv2d(x, kernel, g.strides, 'valid'), tf.reshape(spectrum, [1, 1, 1, cout]));
    }
    if (method === 'fourier' || method === 'auto') return fourierConvNorm(x, kernel, spectrum, g);
    const [kh, kw] = g.kernelSize;
    const full = tf.conv2d(x, kernel, 1, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]);
    return precondition(full, spectrum, g);
  });
}
