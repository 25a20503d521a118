/**
 * ConvNorm in the Fourier domain (the spec's "equivalent formulation"): the
 * full convolution followed by the preconditioning is one circular
 * convolution on the (H + kh - 1) x (W + kw - 1) grid, so
 *
 *   out = iDFT( DFT(x zero-padded) . conj(DFT(kernel)) . V )  at the kept positions,
 *
 * a C_in x C_out complex matrix product per frequency between two DFTs, with
 * no full-resolution convolution. Every transform is one real matrix product
 * (real and imaginary parts stacked along the transformed axis), which is the
 * operation the wasm backend runs fast; the inverse transforms are evaluated
 * only at the rows and columns the crop and stride keep.
 */
import * as tf from '@tensorflow/tfjs-core';

import {forwardComplexBlock, forwardRealStacked, halfSpectrumSize, inverseHalfComplexBlock, inverseRealPart,
        RealMatrix} from '../engine/dft.js';
import {ConvNormGeometry} from './geometry.js';

function constant(m: RealMatrix): tf.Tensor2D {
  return tf.tensor2d(m.values, [m.rows, m.cols]);
}

/**
 * Grid positions of the kept outputs. With x placed at the origin of the grid
 * (rather than at k-1, where the full convolution puts it) output i of the
 * reference sits at s*i - p.
 */
function keptPositions(count: number, stride: number, padding: number, n: number): number[] {
  return Array.from({length: count}, (_, i) => (((stride * i - padding) % n) + n) % n);
}

/**
 * conj(DFT(kernel zero-padded to the grid)) . V from the taps, [F, C_in, C_out]
 * real and imaginary parts, frequencies ordered (fw, fh) as the input spectrum.
 */
function kernelSpectrum(kernel: tf.Tensor4D, spectrum: tf.Tensor, [mh, mw]: [number, number]) {
  const [kh, kw, cin, cout] = kernel.shape;
  const fw = halfSpectrumSize(mw);
  const freqs = fw * mh;
  const cos = new Float32Array(freqs * kh * kw);
  const sin = new Float32Array(freqs * kh * kw);
  for (let v = 0; v < fw; v++) {
    for (let u = 0; u < mh; u++) {
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          const t = 2 * Math.PI * (((a * u) % mh) / mh + ((b * v) % mw) / mw);
          const i = (v * mh + u) * kh * kw + a * kw + b;
          cos[i] = Math.cos(t);
          sin[i] = Math.sin(t);
        }
      }
    }
  }
  const taps = tf.reshape(kernel, [kh * kw, cin * cout]);
  const v = tf.reshape(tf.transpose(spectrum, [2, 1, 0]), [freqs, 1, cout]);
  const part = (basis: Float32Array) =>
    tf.mul(tf.reshape(tf.matMul(tf.tensor2d(basis, [freqs, kh * kw]), taps), [freqs, cin, cout]), v);
  // conj(sum_taps w e^{-i t}) = sum_taps w (cos t + i sin t).
  return {re: part(cos), im: part(sin)};
}

export function fourierConvNorm(x: tf.Tensor4D, kernel: tf.Tensor4D, spectrum: tf.Tensor,
                                g: ConvNormGeometry): tf.Tensor4D {
  const [n, h, w, cin] = x.shape;
  const cout = kernel.shape[3];
  const [mh, mw] = g.fourierSize;
  const [ho, wo] = g.outputSize;
  const fw = halfSpectrumSize(mw);
  const freqs = fw * mh;

  // DFT of x zero-padded to the grid: along the height (real -> [Re; Im]), then the width.
  const byRow = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [h, w * n * cin]);
  const alongH = tf.matMul(constant(forwardRealStacked(mh, h, mh)), byRow);
  const byCol = tf.reshape(tf.transpose(tf.reshape(alongH, [2, mh, w, n * cin]), [0, 2, 1, 3]), [2 * w, mh * n * cin]);
  const xSpec = tf.reshape(tf.matMul(constant(forwardComplexBlock(mw, w, fw)), byCol), [2, freqs, n, cin]);
  const xre = tf.reshape(tf.slice(xSpec, [0, 0, 0, 0], [1, freqs, n, cin]), [freqs, n, cin]);
  const xim = tf.reshape(tf.slice(xSpec, [1, 0, 0, 0], [1, freqs, n, cin]), [freqs, n, cin]);

  // One complex product per frequency, three real ones (Gauss): (a + ib)(c + id).
  const k = kernelSpectrum(kernel, spectrum, [mh, mw]);
  const k1 = tf.matMul(tf.add(xre, xim), k.re);
  const k2 = tf.matMul(xre, tf.sub(k.im, k.re));
  const k3 = tf.matMul(xim, tf.add(k.re, k.im));
  const z = tf.reshape(tf.stack([tf.sub(k1, k3), tf.add(k1, k2)]), [2 * fw, mh * n * cout]);

  // Inverse along the width at the kept columns (still complex), then the real part along the height.
  const cols = keptPositions(wo, g.strides[1], g.padding[1], mw);
  const rows = keptPositions(ho, g.strides[0], g.padding[0], mh);
  const alongW = tf.matMul(constant(inverseHalfComplexBlock(mw, cols)), z);
  const byRowOut = tf.reshape(tf.transpose(tf.reshape(alongW, [2, wo, mh, n * cout]), [0, 2, 1, 3]),
                              [2 * mh, wo * n * cout]);
  const out = tf.matMul(constant(inverseRealPart(mh, rows)), byRowOut);
  return tf.transpose(tf.reshape(out, [ho, wo, n, cout]), [2, 0, 1, 3]);
}
