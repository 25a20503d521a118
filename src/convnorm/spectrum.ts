import * as tf from '@tensorflow/tfjs-core';

import {halfSpectrumSize} from '../engine/dft.js';
import {fail, isPointwise} from './geometry.js';

/**
 * Added to sum_j |FFT(a_kj)|^2 before the inverse square root. The reference
 * has no epsilon, so an all-zero filter gives V = inf there; with 1e-12 it gives
 * V = 1e6 and a finite (zero) output. For ordinary weights the sum is many
 * orders of magnitude above 1e-12 (kaiming-initialized 3x3 filters: ~1), below
 * float32 resolution, so results are unchanged (tested).
 */
export const DEFAULT_SPECTRUM_EPSILON = 1e-12;

/**
 * Tap-to-frequency basis for a kh x kw kernel on an Mh x Mw grid, [kh*kw, Mh*Fw]:
 * FFT(kernel zero-padded to Mh x Mw)(f) = sum_taps w * (cos - i sin)(angle).
 * Evaluating the 9 taps of a 3x3 kernel directly replaces the reference's FFT
 * of an Mh x Mw, mostly-zero array per (output, input) channel pair.
 */
function tapBasis(kernelSize: readonly number[], size: readonly [number, number]) {
  const [kh, kw] = kernelSize;
  const [mh, mw] = size;
  const fw = halfSpectrumSize(mw);
  const cos = new Float32Array(kh * kw * mh * fw);
  const sin = new Float32Array(kh * kw * mh * fw);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const row = (a * kw + b) * mh * fw;
      for (let u = 0; u < mh; u++) {
        for (let v = 0; v < fw; v++) {
          // Whole turns removed in integers keep the angle accurate for any size.
          const t = 2 * Math.PI * (((a * u) % mh) / mh + ((b * v) % mw) / mw);
          cos[row + u * fw + v] = Math.cos(t);
          sin[row + u * fw + v] = Math.sin(t);
        }
      }
    }
  }
  return {
    cos: tf.tensor2d(cos, [kh * kw, mh * fw]),
    sin: tf.tensor2d(sin, [kh * kw, mh * fw]),
  };
}

function computeSpectrum(kernel: tf.Tensor4D, size: readonly [number, number], epsilon: number): tf.Tensor {
  const [kh, kw, cin, cout] = kernel.shape;
  if (isPointwise([kh, kw])) {
    return tf.rsqrt(tf.add(tf.sum(tf.square(tf.reshape(kernel, [cin, cout])), 0), epsilon));
  }
  const basis = tapBasis([kh, kw], size);
  // [C_in*C_out, kh*kw]: one row of taps per (input, output) channel pair.
  const taps = tf.transpose(tf.reshape(kernel, [kh * kw, cin * cout]));
  const re = tf.matMul(taps, basis.cos);
  const im = tf.matMul(taps, basis.sin);
  const power = tf.sum(tf.reshape(tf.add(tf.square(re), tf.square(im)), [cin, cout, -1]), 0);
  return tf.reshape(tf.rsqrt(tf.add(power, epsilon)), [cout, size[0], halfSpectrumSize(size[1])]);
}

/**
 * The preconditioning spectrum V of a conv kernel on an Mh x Mw Fourier grid:
 * V[k, f] = (sum_j |FFT2(kernel[:, :, j, k] zero-padded to Mh x Mw)(f)|^2 + epsilon)^(-1/2),
 * shape [C_out, Mh, floor(Mw/2)+1]; for 1x1 kernels the frequency-independent
 * [C_out] vector (sum_j W[j,k]^2 + epsilon)^(-1/2). Carries no gradient.
 *
 * @param kernel tfjs conv kernel [kh, kw, C_in, C_out].
 * @param size the Fourier grid, H + kh - 1 by W + kw - 1 for an H x W input.
 */
export function convNormSpectrum(kernel: tf.Tensor4D, size: readonly [number, number],
                                 epsilon = DEFAULT_SPECTRUM_EPSILON): tf.Tensor {
  if (kernel.rank !== 4) fail(`kernel must have rank 4 [kh, kw, C_in, C_out], got shape [${kernel.shape}]`);
  if (size.length !== 2 || !size.every(s => Number.isInteger(s) && s >= 1)) {
    fail(`spectrum size must be two positive integers, got ${JSON.stringify(size)}`);
  }
  if (size[0] < kernel.shape[0] || size[1] < kernel.shape[1]) {
    fail(`spectrum size [${size}] is smaller than the kernel [${kernel.shape.slice(0, 2)}]`);
  }
  if (!(epsilon >= 0) || !Number.isFinite(epsilon)) fail(`epsilon must be a finite number >= 0, got ${epsilon}`);
  // V depends on the weights only and the reference detaches it: no gradient
  // flows through it, and its ops stay off the gradient tape.
  const detached = tf.customGrad((...inputs) => ({
    value: computeSpectrum(inputs[0] as tf.Tensor4D, size, epsilon),
    gradFunc: () => tf.zerosLike(kernel),
  }));
  return tf.tidy(() => detached(kernel));
}
