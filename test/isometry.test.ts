/**
 * The paper's property: after preconditioning, each output channel's operator
 * is an isometry, sum_j |FFT(v_k * a_kj)(f)|^2 = 1 at every frequency, and its
 * spectral norm is 1. Checked with independent float64 code (spatial inverse
 * DFT of V, circular convolution, forward DFT), and the Sedghi et al. singular
 * values checked against a dense SVD of the explicit circulant matrix.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import {channelGains, channelResponse} from '../src/analysis/channel_response.js';
import {convSingularValues, convSpectralNorm, KernelValues, spectrumRowScale,
        symmetricEigenvalues} from '../src/analysis/singular_values.js';
import {convNormSpectrum} from '../src/index.js';
import {useTestBackend} from './helpers/backends.js';
import {circularConvMatrix, randomKernel} from './helpers/circular.js';
import {rng} from './helpers/random.js';

const SHAPES: Array<{kernel: [number, number, number, number]; input: [number, number]}> = [
  {kernel: [3, 3, 5, 6], input: [8, 8]},
  {kernel: [5, 5, 3, 4], input: [7, 6]},
  {kernel: [2, 3, 4, 3], input: [5, 9]},
  {kernel: [1, 1, 6, 4], input: [4, 4]},
];

/** Full M_h x M_w real spectrum of channel k from the half spectrum, then its real inverse DFT (float64, naive). */
function spatialFilter(spectrum: Float32Array, k: number, mh: number, mw: number, pointwise: boolean): Float64Array {
  const scale = spectrumRowScale(spectrum, [mh, mw], pointwise);
  const out = new Float64Array(mh * mw);
  for (let p = 0; p < mh; p++) {
    for (let q = 0; q < mw; q++) {
      let sum = 0;
      for (let u = 0; u < mh; u++) {
        for (let v = 0; v < mw; v++) {
          sum += scale(k, u, v) * Math.cos(2 * Math.PI * (u * p / mh + v * q / mw));
        }
      }
      out[p * mw + q] = sum / (mh * mw);
    }
  }
  return out;
}

describe('channel-wise isometry', () => {
  for (const {kernel: shape, input} of SHAPES) {
    it(`sum_j |FFT(v_k * a_kj)|^2 = 1 at every frequency and per-channel spectral norm 1 (${shape})`, async () => {
      await useTestBackend('cpu');
      const [kh, kw, cin, cout] = shape;
      const kernel = randomKernel(shape, 11 * kh + kw);
      const [mh, mw] = [input[0] + kh - 1, input[1] + kw - 1];
      const spectrum = tf.tidy(() => convNormSpectrum(tf.tensor4d(kernel.data as Float32Array, shape), [mh, mw]))
        .dataSync() as Float32Array;
      const pointwise = kh === 1 && kw === 1;
      const response = channelResponse(kernel, [mh, mw], spectrumRowScale(spectrum, [mh, mw], pointwise));
      for (let k = 0; k < cout; k++) {
        const v = spatialFilter(spectrum, k, mh, mw, pointwise);
        // Effective kernel e_kj = v_k (*) a_kj (circular on the M grid), then its DFT.
        const power = new Float64Array(mh * mw);
        for (let j = 0; j < cin; j++) {
          const e = new Float64Array(mh * mw);
          for (let a = 0; a < kh; a++) {
            for (let b = 0; b < kw; b++) {
              const w = kernel.data[((a * kw + b) * cin + j) * cout + k];
              for (let p = 0; p < mh; p++) {
                for (let q = 0; q < mw; q++) e[((p + a) % mh) * mw + (q + b) % mw] += w * v[p * mw + q];
              }
            }
          }
          for (let u = 0; u < mh; u++) {
            for (let w2 = 0; w2 < mw; w2++) {
              let re = 0;
              let im = 0;
              for (let p = 0; p < mh; p++) {
                for (let q = 0; q < mw; q++) {
                  const t = 2 * Math.PI * (u * p / mh + w2 * q / mw);
                  re += e[p * mw + q] * Math.cos(t);
                  im -= e[p * mw + q] * Math.sin(t);
                }
              }
              power[u * mw + w2] += re * re + im * im;
            }
          }
        }
        // float32 V: about 1e-7 relative per entry.
        for (const p of power) assert.ok(Math.abs(p - 1) < 1e-5, `channel ${k}: sum_j |FFT|^2 = ${p}`);
        // channelResponse's |FFT| map, mirrored from half the grid, against this full-grid one.
        power.forEach((p, f) => assert.ok(Math.abs(response.gains[k][f] ** 2 - p) < 1e-6,
                                          `channel ${k}, frequency ${f}: ${response.gains[k][f] ** 2} vs ${p}`));
        const channel: KernelValues = {
          data: Float32Array.from({length: kh * kw * cin}, (_, i) => kernel.data[i * cout + k]),
          shape: [kh, kw, cin, 1],
        };
        const norm = convSpectralNorm(channel, [mh, mw], (_, u, w2) => spectrumRowScale(spectrum, [mh, mw], pointwise)(k, u, w2));
        assert.ok(Math.abs(norm - 1) < 1e-5, `channel ${k}: spectral norm ${norm}`);
      }
      const rowScale = spectrumRowScale(spectrum, [mh, mw], pointwise);
      const gains = channelGains(kernel, [mh, mw], rowScale);
      assert.ok(gains.isometryError < 1e-5 && Math.abs(gains.maxChannelNorm - 1) < 1e-5);
      // The plain convolution is nowhere near an isometry.
      assert.ok(channelGains(kernel, [mh, mw]).isometryError > 0.1);
    });
  }
});

describe('channelResponse', () => {
  for (const {kernel: shape, input} of SHAPES) {
    it(`each channel's |FFT| on the whole grid, its spectral norm and isometry error, against a naive DFT (${shape})`, () => {
      const [kh, kw, cin, cout] = shape;
      const kernel = randomKernel(shape, 7 * kh + 3 * kw + cin);
      const [mh, mw] = [input[0] + kh - 1, input[1] + kw - 1];
      const response = channelResponse(kernel, [mh, mw]);
      assert.deepEqual(response.grid, [mh, mw]);
      for (let k = 0; k < cout; k++) {
        let norm = 0;
        let error = 0;
        for (let u = 0; u < mh; u++) {
          for (let v = 0; v < mw; v++) {
            let power = 0;
            for (let j = 0; j < cin; j++) {
              let re = 0;
              let im = 0;
              for (let a = 0; a < kh; a++) {
                for (let b = 0; b < kw; b++) {
                  const t = 2 * Math.PI * (a * u / mh + b * v / mw);
                  re += kernel.data[((a * kw + b) * cin + j) * cout + k] * Math.cos(t);
                  im -= kernel.data[((a * kw + b) * cin + j) * cout + k] * Math.sin(t);
                }
              }
              power += re * re + im * im;
            }
            const gain = response.gains[k][u * mw + v];
            assert.ok(Math.abs(gain - Math.sqrt(power)) < 1e-12, `channel ${k} at (${u}, ${v}): ${gain} vs ${Math.sqrt(power)}`);
            norm = Math.max(norm, Math.sqrt(power));
            error = Math.max(error, Math.abs(power - 1));
          }
        }
        assert.ok(Math.abs(response.norms[k] - norm) < 1e-12, `channel ${k} norm`);
        assert.ok(Math.abs(response.isometryErrors[k] - error) < 1e-12, `channel ${k} isometry error`);
      }
      // A kaiming-scaled random kernel is far from an isometry: the test above sees it.
      assert.ok(Math.max(...response.isometryErrors) > 0.1);
    });
  }
});

describe('Sedghi et al. singular values', () => {
  it('symmetricEigenvalues recovers a known spectrum Q diag(l) Q^T', () => {
    const n = 9;
    const next = rng(5);
    const lambda = Float64Array.from({length: n}, () => 10 * next() - 5).sort();
    // Q: product of random Householder reflections.
    let q = Float64Array.from({length: n * n}, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
    for (let r = 0; r < 4; r++) {
      const h = Float64Array.from({length: n}, () => next() - 0.5);
      const hn = Math.hypot(...h);
      const reflected = new Float64Array(n * n);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let k = 0; k < n; k++) s += ((i === k ? 1 : 0) - 2 * h[i] * h[k] / (hn * hn)) * q[k * n + j];
          reflected[i * n + j] = s;
        }
      }
      q = reflected;
    }
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        for (let k = 0; k < n; k++) a[i * n + j] += q[i * n + k] * lambda[k] * q[j * n + k];
      }
    }
    const eig = symmetricEigenvalues(a, n);
    eig.forEach((e, i) => assert.ok(Math.abs(e - lambda[i]) < 1e-10, `${e} vs ${lambda[i]}`));
  });

  it('match a dense SVD of the explicit circulant matrix', () => {
    const [kh, kw, cin, cout] = [3, 2, 2, 3];
    const [nh, nw] = [4, 5];
    const kernel = randomKernel([kh, kw, cin, cout], 3);
    const m = circularConvMatrix(kernel, [nh, nw]);
    const gram = Float64Array.from(m.transpose().mmul(m).to1DArray());
    const dense = symmetricEigenvalues(gram, m.columns).map(e => Math.sqrt(Math.max(0, e)));
    const fourier = convSingularValues(kernel, [nh, nw]);
    assert.equal(fourier.length, dense.length);
    fourier.forEach((s, i) => assert.ok(Math.abs(s - dense[i]) < 1e-9, `sigma ${i}: ${s} vs ${dense[i]}`));
    assert.ok(Math.abs(convSpectralNorm(kernel, [nh, nw]) - dense[dense.length - 1]) < 1e-9);
  });
});
