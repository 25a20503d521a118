import * as tf from '@tensorflow/tfjs-core';

import {PRECONDITIONING_SPECTRUM} from '../common/kernel_names.js';
import {halfSpectrumSize, RealMatrix, tapBasis} from './dft.js';
import {fail} from '../common/arguments.js';
import {isPointwise} from './geometry.js';

/**
 * Added to sum_j |FFT(a_kj)|^2 before the inverse square root. The reference
 * has no epsilon, so an all-zero filter gives V = inf there; with 1e-12 it gives
 * V = 1e6 and a finite (zero) output. For ordinary weights the sum is many
 * orders of magnitude above 1e-12 (kaiming-initialized 3x3 filters: ~1), below
 * float32 resolution, so results are unchanged (tested).
 */
export const DEFAULT_SPECTRUM_EPSILON = 1e-12;

/**
 * V as tf ops from the taps [T, C_in C_out] and the tap-to-frequency basis
 * cos, sin [F, T]: [F, C_out] (the maths of PRECONDITIONING_SPECTRUM, which
 * the engine's kernel runs too where its SIMD module is off).
 */
export function spectrumFromTaps(taps: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, cout: number,
                                 epsilon: number): tf.Tensor {
  const part = (basis: tf.Tensor) => tf.square(tf.matMul(basis, taps));
  // [F, C_in, C_out] -> sum over C_in -> [F, C_out].
  const power = tf.sum(tf.reshape(tf.add(part(cos), part(sin)), [cos.shape[0], -1, cout]), 1);
  return tf.rsqrt(tf.add(power, epsilon));
}

function computeSpectrum(kernel: tf.Tensor4D, size: readonly [number, number], epsilon: number): tf.Tensor {
  const [kh, kw, cin, cout] = kernel.shape;
  if (isPointwise([kh, kw])) {
    return tf.rsqrt(tf.add(tf.sum(tf.square(tf.reshape(kernel, [cin, cout])), 0), epsilon));
  }
  const [mh, mw] = size;
  const basis = tapBasis(kh, kw, mh, mw);
  const taps = tf.reshape(kernel, [kh * kw, cin * cout]);
  const matrix = (m: RealMatrix) => tf.tensor2d(m.values, [m.rows, m.cols]);
  let v: tf.Tensor;
  if (tf.getKernel(PRECONDITIONING_SPECTRUM, tf.getBackend()) !== undefined) {
    // The backend's own kernel (the engine's, on wasm) never holds the F x C_in x C_out kernel spectrum.
    v = tf.engine().runKernel(PRECONDITIONING_SPECTRUM, {taps, cos: matrix(basis.cos), sin: matrix(basis.sin)},
                              {epsilon, cout}) as tf.Tensor;
  } else {
    v = spectrumFromTaps(taps, matrix(basis.cos), matrix(basis.sin), cout, epsilon);
  }
  // [Fw, Mh, C_out] -> [C_out, Mh, Fw].
  return tf.transpose(tf.reshape(v, [halfSpectrumSize(mw), mh, cout]), [2, 1, 0]);
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
