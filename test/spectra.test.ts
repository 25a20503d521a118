/**
 * Layer spectra against independent dense references: every operator is built
 * as an explicit float64 matrix (the circular convolution on the grid, the
 * subsampling, ConvNorm's V as a spatial circular filter from the inverse
 * DFT of the stored half spectrum, the depthwise affine filter, the BatchNorm
 * scale; and the zero-padded strided unit as it runs, by pushing basis
 * vectors through the tfjs layers) and its singular values taken with
 * ml-matrix's SVD.
 *
 * Tolerances. Exact values against the dense SVD: the squares within 1e-12 of
 * the largest square (both sides are backward stable float64 computations on
 * matrices of at most a few hundred rows, which measure within 3e-14; the
 * per-frequency route goes through Gram matrices, so a singular value sigma
 * carries an error of about eps ||A||^2 / sigma, which the squares compare
 * fairly), norms within 1e-12 relative. Values read from tfjs (the power
 * iteration, the dense zero-padded operator) are float32: relative 1e-5
 * (float32 rounding of the conv, preconditioning and BatchNorm arithmetic,
 * about 1e-7 per value, plus the power iteration's convergence, which the
 * iteration counts chosen here bring below that; measured within 7e-8).
 * Upper bounds are checked against those float32 operators with a 1e-6
 * relative allowance for the same rounding.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {EigenvalueDecomposition, Matrix, SingularValueDecomposition} from 'ml-matrix';

import {circularSpectrum} from '../src/analysis/circular_spectrum.js';
import {hermitianEigenvalues} from '../src/analysis/hermitian_eigenvalues.js';
import {convKernels, unitSpectra, UnitSpectrum} from '../src/analysis/layer_spectra.js';
import {powerIterationNorm} from '../src/analysis/power_iteration.js';
import {convSingularValues, KernelValues} from '../src/analysis/singular_values.js';
import {convNorm2d, ConvNorm2D} from '../src/convnorm/layer.js';
import {BatchNorm2D, BN_EPSILON} from '../src/layers/batch_norm.js';
import {OniConv2D} from '../src/layers/oni.js';
import {PlainConv2D} from '../src/layers/plain_conv.js';
import {SpectralNormConv2D} from '../src/layers/spectral_norm.js';
import {buildModel} from '../src/models/build.js';
import {useTestBackend} from './helpers/backends.js';
import {at, circularConvMatrix, randomKernel, Shape4} from './helpers/circular.js';
import {rng} from './helpers/random.js';

function singularValues(m: Matrix): number[] {
  return new SingularValueDecomposition(m, {computeLeftSingularVectors: false, computeRightSingularVectors: false,
                                            autoTranspose: true}).diagonal;
}

/** Keeps samples offset + s m (mod n) of each channel, m < n / s: (C n/s) x (C n). */
function subsampleMatrix(channels: number, [nh, nw]: [number, number], [sh, sw]: [number, number],
                         [oh, ow]: [number, number]): Matrix {
  const [gh, gw] = [nh / sh, nw / sw];
  const m = Matrix.zeros(channels * gh * gw, channels * nh * nw);
  for (let c = 0; c < channels; c++) {
    for (let m0 = 0; m0 < gh; m0++) {
      for (let m1 = 0; m1 < gw; m1++) {
        m.set(at(c, m0, m1, gh, gw), at(c, (oh + sh * m0) % nh, (ow + sw * m1) % nw, nh, nw), 1);
      }
    }
  }
  return m;
}

/** Circular depthwise correlation, taps `dilation` apart: z_k[p] = sum_ab A[a, b, k] y_k[p + d (a, b)]. */
function depthwiseMatrix(filter: ArrayLike<number>, [kh, kw]: [number, number], channels: number,
                         [nh, nw]: [number, number], [dh, dw]: [number, number]): Matrix {
  const m = Matrix.zeros(channels * nh * nw, channels * nh * nw);
  for (let k = 0; k < channels; k++) {
    for (let p0 = 0; p0 < nh; p0++) {
      for (let p1 = 0; p1 < nw; p1++) {
        for (let a = 0; a < kh; a++) {
          for (let b = 0; b < kw; b++) {
            const row = at(k, p0, p1, nh, nw);
            const col = at(k, (p0 + dh * a) % nh, (p1 + dw * b) % nw, nh, nw);
            m.set(row, col, m.get(row, col) + filter[(a * kw + b) * channels + k]);
          }
        }
      }
    }
  }
  return m;
}

/**
 * ConvNorm's preconditioning as a spatial operator: per channel, circular
 * convolution with v_k = IDFT(V_k), V_k on the full grid rebuilt from the
 * stored half spectrum by V(u, v) = V(-u, -v) (or the scalar V of 1x1 kernels).
 */
function preconditionerMatrix(runningV: Float32Array, channels: number, [nh, nw]: [number, number],
                              pointwise: boolean): Matrix {
  const fw = Math.floor(nw / 2) + 1;
  const full = (k: number, u: number, v: number) => {
    if (pointwise) return runningV[k];
    return v < fw ? runningV[(k * nh + u) * fw + v] : runningV[(k * nh + (nh - u) % nh) * fw + (nw - v)];
  };
  const m = Matrix.zeros(channels * nh * nw, channels * nh * nw);
  for (let k = 0; k < channels; k++) {
    const filter = new Float64Array(nh * nw);
    for (let q0 = 0; q0 < nh; q0++) {
      for (let q1 = 0; q1 < nw; q1++) {
        let s = 0;
        for (let u = 0; u < nh; u++) {
          for (let v = 0; v < nw; v++) s += full(k, u, v) * Math.cos(2 * Math.PI * (u * q0 / nh + v * q1 / nw));
        }
        filter[q0 * nw + q1] = s / (nh * nw);
      }
    }
    for (let p0 = 0; p0 < nh; p0++) {
      for (let p1 = 0; p1 < nw; p1++) {
        for (let q0 = 0; q0 < nh; q0++) {
          for (let q1 = 0; q1 < nw; q1++) {
            m.set(at(k, p0, p1, nh, nw), at(k, q0, q1, nh, nw),
                  filter[((p0 - q0 + nh) % nh) * nw + (p1 - q1 + nw) % nw]);
          }
        }
      }
    }
  }
  return m;
}

function channelScaleMatrix(scale: ArrayLike<number>, pointsPerChannel: number): Matrix {
  const m = Matrix.zeros(scale.length * pointsPerChannel, scale.length * pointsPerChannel);
  for (let k = 0; k < scale.length; k++) {
    for (let p = 0; p < pointsPerChannel; p++) m.set(k * pointsPerChannel + p, k * pointsPerChannel + p, scale[k]);
  }
  return m;
}

/** The affine map as it runs, made linear (f(x) - f(0)) and dense, from all basis vectors at once. */
function zeroPaddedOperator(f: (x: tf.Tensor) => tf.Tensor, [h, w, c]: [number, number, number]): Matrix {
  const n = h * w * c;
  const [out, size] = tf.tidy(() => {
    const basis = tf.reshape(tf.eye(n), [n, h, w, c]);
    const y = tf.sub(f(basis), f(tf.zeros([1, h, w, c])));
    return [y.dataSync() as Float32Array, y.size / n];
  });
  const m = Matrix.zeros(size, n);
  for (let i = 0; i < n; i++) for (let r = 0; r < size; r++) m.set(r, i, out[i * size + r]);
  return m;
}

function read(layer: tfl.layers.Layer, name: string): Float32Array {
  return layer.weights.find(v => v.originalName.endsWith(`/${name}`))!.read().dataSync() as Float32Array;
}

function write(layer: tfl.layers.Layer, name: string, values: Float32Array): void {
  const v = layer.weights.find(w => w.originalName.endsWith(`/${name}`))!;
  tf.tidy(() => { v.write(tf.tensor(values, v.shape as number[])); });
}

/** Seeded BatchNorm statistics far from the defaults: gamma of both signs, variance in [0.2, 2.2]. */
function randomizeBatchNorm(layer: tfl.layers.Layer, channels: number, seed: number): void {
  const next = rng(seed);
  if (layer.weights.some(w => w.originalName.endsWith('/gamma'))) {
    write(layer, 'gamma', Float32Array.from({length: channels}, () => (next() < 0.3 ? -1 : 1) * (0.3 + 1.5 * next())));
  }
  write(layer, 'moving_variance', Float32Array.from({length: channels}, () => 0.2 + 2 * next()));
  write(layer, 'moving_mean', Float32Array.from({length: channels}, () => next() - 0.5));
}

/** |s^2 - r^2| <= 1e-12 max r^2 for every pair (see the module comment). */
function assertSameValues(actual: ArrayLike<number>, expected: number[], what: string): void {
  const sorted = [...expected].sort((a, b) => b - a);
  assert.equal(actual.length, sorted.length, `${what}: count`);
  const top = sorted[0] ** 2;
  for (let i = 0; i < sorted.length; i++) {
    const err = Math.abs(actual[i] ** 2 - sorted[i] ** 2);
    assert.ok(err <= 1e-12 * top, `${what}: sigma ${i} = ${actual[i]} vs ${sorted[i]} (|diff of squares| ${err / top} of the top)`);
  }
}

function close(actual: number, expected: number, tolerance: number, what: string): void {
  const err = Math.abs(actual - expected) / Math.abs(expected);
  assert.ok(err <= tolerance, `${what}: ${actual} vs ${expected} (relative ${err.toExponential(2)} > ${tolerance})`);
}

/** A one-unit functional model: input -> conv (-> BatchNorm2D). */
function unitModel(conv: tfl.layers.Layer, inputShape: [number, number, number], batchNorm: boolean): tfl.LayersModel {
  const input = tfl.input({shape: inputShape});
  let y = conv.apply(input) as tfl.SymbolicTensor;
  if (batchNorm) y = new BatchNorm2D().apply(y) as tfl.SymbolicTensor;
  return tfl.model({inputs: input, outputs: y});
}

function only(model: tfl.LayersModel, options: Parameters<typeof unitSpectra>[1] = {}): UnitSpectrum {
  const {units} = unitSpectra(model, options);
  assert.equal(units.length, 1);
  return units[0];
}

describe('hermitianEigenvalues', () => {
  it('matches ml-matrix on the real embedding of random Hermitian matrices (and real symmetric ones)', () => {
    for (const n of [1, 2, 3, 17, 40]) {
      const next = rng(100 + n);
      const re = new Float64Array(n * n);
      const im = new Float64Array(n * n);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j <= i; j++) {
          re[i * n + j] = re[j * n + i] = next() - 0.5;
          im[i * n + j] = i === j ? 0 : next() - 0.5;
          im[j * n + i] = -im[i * n + j];
        }
      }
      const embedding = Matrix.zeros(2 * n, 2 * n);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          embedding.set(i, j, re[i * n + j]);
          embedding.set(i + n, j + n, re[i * n + j]);
          embedding.set(i, j + n, -im[i * n + j]);
          embedding.set(i + n, j, im[i * n + j]);
        }
      }
      const ref = new EigenvalueDecomposition(embedding, {assumeSymmetric: true}).realEigenvalues.sort((a, b) => a - b);
      const realRef = new EigenvalueDecomposition(new Matrix(Array.from({length: n}, (_, i) =>
        Array.from(re.subarray(i * n, i * n + n)))), {assumeSymmetric: true}).realEigenvalues.sort((a, b) => a - b);
      const mine = hermitianEigenvalues(re.slice(), im.slice(), n);
      const mineReal = hermitianEigenvalues(re.slice(), undefined, n);
      // Backward stable on both sides: 1e-13 of the spectral radius (n <= 40).
      const scale = Math.max(1, Math.abs(ref[0]), Math.abs(ref[2 * n - 1]));
      for (let i = 0; i < n; i++) {
        assert.ok(Math.abs(mine[i] - ref[2 * i]) < 1e-13 * scale && Math.abs(mine[i] - ref[2 * i + 1]) < 1e-13 * scale,
                  `n=${n} eigenvalue ${i}: ${mine[i]} vs ${ref[2 * i]}`);
        assert.ok(Math.abs(mineReal[i] - realRef[i]) < 1e-13 * scale, `n=${n} real eigenvalue ${i}`);
      }
    }
  });
});

describe('circular spectra, exact against dense SVDs', () => {
  const cases: Array<{kernel: Shape4; grid: [number, number]; strides: [number, number]}> = [
    {kernel: [3, 3, 3, 4], grid: [8, 8], strides: [1, 1]},   // C_out > C_in: the M^H M route
    {kernel: [3, 3, 5, 3], grid: [7, 6], strides: [1, 1]},   // C_out < C_in: the M M^H route with the tap terms
    {kernel: [2, 3, 4, 3], grid: [5, 9], strides: [1, 1]},
    {kernel: [3, 3, 3, 4], grid: [8, 8], strides: [2, 2]},   // M M^H route: C_out 4 <= C_in s = 12
    {kernel: [3, 3, 2, 9], grid: [8, 6], strides: [2, 2]},   // M^H M route: C_in s = 8 < 9
    {kernel: [3, 3, 3, 4], grid: [6, 9], strides: [3, 3]},
    {kernel: [3, 3, 3, 4], grid: [8, 7], strides: [2, 1]},
    {kernel: [1, 1, 6, 4], grid: [6, 6], strides: [2, 2]},   // a 1x1 shortcut
  ];
  for (const {kernel: shape, grid, strides} of cases) {
    it(`kernel [${shape}] on ${grid.join('x')}, strides [${strides}]`, () => {
      const kernel = randomKernel(shape, shape.reduce((a, b) => 7 * a + b, strides[0]));
      const [, , , cout] = shape;
      const next = rng(3);
      const before = Float64Array.from({length: cout * grid[0] * grid[1]}, () => 0.5 + next());
      const out: [number, number] = [grid[0] / strides[0], grid[1] / strides[1]];
      const after = Float64Array.from({length: cout * out[0] * out[1]}, () => next() - 0.5);
      // Diagonal gains per (channel, frequency) act on the DFT side: build them densely as
      // F^-1 diag(g) F per channel (complex, then real because g is taken even in f).
      const evenGain = (g: Float64Array, [nh, nw]: [number, number]) => (k: number, u: number, v: number) =>
        0.5 * (g[(k * nh + u) * nw + v] + g[(k * nh + (nh - u) % nh) * nw + (nw - v) % nw]);
      const gb = evenGain(before, grid);
      const ga = evenGain(after, out);
      const spectral = (gain: (k: number, u: number, v: number) => number, [nh, nw]: [number, number]) => {
        const m = Matrix.zeros(cout * nh * nw, cout * nh * nw);
        for (let k = 0; k < cout; k++) {
          for (let p0 = 0; p0 < nh; p0++) for (let p1 = 0; p1 < nw; p1++) for (let q0 = 0; q0 < nh; q0++) for (let q1 = 0; q1 < nw; q1++) {
            let s = 0;
            for (let u = 0; u < nh; u++) {
              for (let v = 0; v < nw; v++) s += gain(k, u, v) * Math.cos(2 * Math.PI * (u * (p0 - q0) / nh + v * (p1 - q1) / nw));
            }
            m.set(at(k, p0, p1, nh, nw), at(k, q0, q1, nh, nw), s / (nh * nw));
          }
        }
        return m;
      };
      const dense = spectral(ga, out).mmul(subsampleMatrix(cout, grid, strides, [1, 0]))
        .mmul(spectral(gb, grid)).mmul(circularConvMatrix(kernel, grid));
      const exact = circularSpectrum(kernel, grid, {strides, gainBeforeStride: gb, gainAfterStride: ga, values: true});
      assertSameValues(exact.values!, singularValues(dense), 'with gains');
      assert.equal(exact.norm, exact.values![0]);
      const plain = circularSpectrum(kernel, grid, {strides, values: true});
      const plainDense = subsampleMatrix(cout, grid, strides, [0, 0]).mmul(circularConvMatrix(kernel, grid));
      assertSameValues(plain.values!, singularValues(plainDense), 'no gains');
      if (strides[0] * strides[1] === 1) {
        // The compatibility form: C_in values per frequency, ascending, zeros included.
        const legacy = convSingularValues(kernel, grid);
        const ref = singularValues(circularConvMatrix(kernel, grid).transpose().mmul(circularConvMatrix(kernel, grid)))
          .map(Math.sqrt).sort((a, b) => a - b);
        assert.equal(legacy.length, ref.length);
        legacy.forEach((s, i) => assert.ok(Math.abs(s * s - ref[i] ** 2) <= 1e-12 * ref[ref.length - 1] ** 2,
                                           `convSingularValues ${i}: ${s} vs ${ref[i]}`));
      }
    });
  }

  it('the crop offset of the subsampling changes no singular value', () => {
    const kernel = randomKernel([3, 3, 3, 4], 5);
    const c = circularConvMatrix(kernel, [8, 8]);
    const base = singularValues(subsampleMatrix(4, [8, 8], [2, 2], [0, 0]).mmul(c));
    for (const offset of [[1, 0], [1, 1], [0, 1]] as Array<[number, number]>) {
      assertSameValues(base, singularValues(subsampleMatrix(4, [8, 8], [2, 2], offset).mmul(c)), `offset ${offset}`);
    }
  });
});

describe('unit spectra of conv units', () => {
  it('plain conv, stride 1: conv = folded = the circular SVD; the zero-padded operator is below it', async () => {
    await useTestBackend('cpu');
    const conv = new PlainConv2D({filters: 4, kernelSize: 3, padding: 1, useBias: true, seed: 3});
    const model = unitModel(conv, [6, 6, 3], false);
    const s = only(model, {values: true, powerIterations: 200, seed: 1});
    assert.deepEqual([s.norm, s.grid, s.stride, s.inputSize, s.strided], ['none', [8, 8], [1, 1], [6, 6], null]);
    assert.equal(s.kernel, conv.weights[0].originalName);
    const kernel: KernelValues = {data: read(conv, 'kernel'), shape: [3, 3, 3, 4]};
    const circular = singularValues(circularConvMatrix(kernel, [8, 8]));
    assertSameValues(s.values!, circular, 'values');
    close(s.folded, circular[0], 1e-12, 'folded');
    close(s.conv, circular[0], 1e-12, 'conv');
    const actual = singularValues(zeroPaddedOperator(x => conv.apply(x) as tf.Tensor, [6, 6, 3]));
    close(s.powerIteration!, actual[0], 1e-5, 'power iteration vs the dense zero-padded operator');
    assert.ok(actual[0] <= s.bound * (1 + 1e-6) && s.bound === s.folded, `zero-padded ${actual[0]} <= bound ${s.bound}`);
    model.dispose();
  });

  it('plain conv + BN, stride 2 on a grid that is a multiple of 2: strided exact, below folded; odd grid: null', async () => {
    await useTestBackend('cpu');
    for (const size of [6, 5]) {
      const conv = new PlainConv2D({filters: 5, kernelSize: 3, strides: 2, padding: 1, useBias: false, seed: 4});
      const model = unitModel(conv, [size, size, 3], true);
      const bn = model.layers[2];
      randomizeBatchNorm(bn, 5, 7);
      const s = only(model, {powerIterations: 200, seed: 2});
      const grid: [number, number] = [size + 2, size + 2];
      assert.deepEqual([s.norm, s.grid, s.stride], ['bn', grid, [2, 2]]);
      const kernel: KernelValues = {data: read(conv, 'kernel'), shape: [3, 3, 3, 5]};
      const gamma = read(bn, 'gamma');
      const scale = Array.from(read(bn, 'moving_variance'), (v, k) => gamma[k] / Math.sqrt(v + BN_EPSILON));
      const circ = circularConvMatrix(kernel, grid);
      close(s.conv, singularValues(circ)[0], 1e-12, 'conv');
      close(s.folded, singularValues(channelScaleMatrix(scale, grid[0] * grid[1]).mmul(circ))[0], 1e-12, 'folded');
      const actual = singularValues(zeroPaddedOperator(x => bn.apply(conv.apply(x)) as tf.Tensor, [size, size, 3]))[0];
      close(s.powerIteration!, actual, 1e-5, `power iteration (size ${size})`);
      if (size === 6) {
        // Crop offset k - 1 - p = 1: the zero-padded conv's samples sit at 1, 3, 5 of the 8-grid.
        const sub = subsampleMatrix(5, grid, [2, 2], [1, 1]);
        const strided = singularValues(channelScaleMatrix(scale, 16).mmul(sub).mmul(circ))[0];
        close(s.strided!, strided, 1e-12, 'strided');
        assert.ok(s.strided! < s.folded, `strided ${s.strided} < folded ${s.folded}`);
        assert.ok(actual <= s.strided! * (1 + 1e-6), `zero-padded ${actual} <= strided ${s.strided}`);
        assert.equal(s.bound, s.strided);
      } else {
        assert.equal(s.strided, null);
        assert.equal(s.bound, s.folded);
        assert.ok(actual <= s.folded * (1 + 1e-6), `zero-padded ${actual} <= folded ${s.folded}`);
      }
      model.dispose();
    }
  });

  for (const {strides, size, kernelSize, batchNorm} of [
    {strides: 1, size: 6, kernelSize: 3, batchNorm: true},
    {strides: 2, size: 6, kernelSize: 3, batchNorm: true},
    {strides: 2, size: 5, kernelSize: 3, batchNorm: false},
    {strides: 2, size: 6, kernelSize: 1, batchNorm: true},
  ]) {
    it(`ConvNorm (running V, affine filter${batchNorm ? ', BN' : ''}), ${kernelSize}x${kernelSize}, stride ${strides}, ${size}x${size}`, async () => {
      await useTestBackend('cpu');
      const cout = 4;
      const layer = convNorm2d({filters: cout, kernelSize, strides, padding: (kernelSize - 1) / 2, batchNorm, seed: 11});
      const model = unitModel(layer, [size, size, 3], false);
      // One training call computes V into the running V.
      tf.tidy(() => { layer.apply(tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 5), {training: true}); });
      if (batchNorm) randomizeBatchNorm(layer, cout, 13);
      const s = only(model, {powerIterations: 300, seed: 3});
      assert.equal(s.norm, batchNorm ? 'convnorm' : 'convnorm-nobn');
      const grid: [number, number] = [size + kernelSize - 1, size + kernelSize - 1];
      const points = grid[0] * grid[1];
      const kernel: KernelValues = {data: read(layer, 'kernel'), shape: [kernelSize, kernelSize, 3, cout]};
      const affine = read(layer, 'affine_kernel');
      const gamma = batchNorm ? read(layer, 'gamma') : undefined;
      const scale = batchNorm
        ? Array.from(read(layer, 'moving_variance'), (v, k) => gamma![k] / Math.sqrt(v + BN_EPSILON))
        : Array.from({length: cout}, () => 1);
      const precondition = preconditionerMatrix(read(layer, 'running_v'), cout, grid, kernelSize === 1)
        .mmul(circularConvMatrix(kernel, grid));
      const k2: [number, number] = [kernelSize, kernelSize];
      const folded = channelScaleMatrix(scale, points)
        .mmul(depthwiseMatrix(affine, k2, cout, grid, [strides, strides])).mmul(precondition);
      close(s.folded, singularValues(folded)[0], 1e-12, 'folded (affine filter dilated by the stride)');
      close(s.conv, singularValues(circularConvMatrix(kernel, grid))[0], 1e-12, 'conv');
      const actual = singularValues(zeroPaddedOperator(x => layer.apply(x) as tf.Tensor, [size, size, 3]))[0];
      close(s.powerIteration!, actual, 1e-5, 'power iteration vs the dense zero-padded layer');
      assert.ok(actual <= s.bound * (1 + 1e-6), `zero-padded ${actual} <= bound ${s.bound}`);
      if (strides === 2 && grid[0] % 2 === 0) {
        const out: [number, number] = [grid[0] / 2, grid[1] / 2];
        const crop = kernelSize - 1 - (kernelSize - 1) / 2;
        const strided = channelScaleMatrix(scale, out[0] * out[1])
          .mmul(depthwiseMatrix(affine, k2, cout, out, [1, 1]))
          .mmul(subsampleMatrix(cout, grid, [2, 2], [crop, crop])).mmul(precondition);
        close(s.strided!, singularValues(strided)[0], 1e-12, 'strided');
        assert.ok(s.strided! <= s.folded * (1 + 1e-12), `strided ${s.strided} <= folded ${s.folded}`);
      } else if (strides === 2) {
        assert.equal(s.strided, null);
      }
      model.dispose();
    });
  }

  for (const kind of ['sn', 'oni'] as const) {
    it(`${kind} with a following BatchNorm: conv from the raw kernel, folded from the normalized one and the BN scale`, async () => {
      await useTestBackend('cpu');
      const args = {filters: 4, kernelSize: 3, strides: 2, padding: 1, useBias: false, seed: 21};
      const conv = kind === 'sn' ? new SpectralNormConv2D(args)
        : new OniConv2D({...args, iterations: 3, normGroups: 1, learnableScale: true});
      const model = unitModel(conv, [6, 6, 3], true);
      // Training calls move SN's u, v (and leave ONI's kernel as it is); then random BN statistics.
      tf.tidy(() => { for (let i = 0; i < 2; i++) conv.apply(tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', i), {training: true}); });
      const bn = model.layers[2];
      randomizeBatchNorm(bn, 4, 23);
      const s = only(model, {powerIterations: 200, seed: 4});
      assert.equal(s.norm, kind);
      const raw: KernelValues = {data: read(conv, 'kernel'), shape: [3, 3, 3, 4]};
      const effective = (conv as SpectralNormConv2D | OniConv2D).effectiveKernel();
      const normalized: KernelValues = {data: effective.dataSync() as Float32Array, shape: [3, 3, 3, 4]};
      effective.dispose();
      const gamma = read(bn, 'gamma');
      const scale = Array.from(read(bn, 'moving_variance'), (v, k) => gamma[k] / Math.sqrt(v + BN_EPSILON));
      close(s.conv, singularValues(circularConvMatrix(raw, [8, 8]))[0], 1e-12, 'conv (raw kernel)');
      const folded = channelScaleMatrix(scale, 64).mmul(circularConvMatrix(normalized, [8, 8]));
      close(s.folded, singularValues(folded)[0], 1e-12, 'folded');
      const strided = channelScaleMatrix(scale, 16).mmul(subsampleMatrix(4, [8, 8], [2, 2], [1, 1]))
        .mmul(circularConvMatrix(normalized, [8, 8]));
      close(s.strided!, singularValues(strided)[0], 1e-12, 'strided');
      const actual = singularValues(zeroPaddedOperator(x => bn.apply(conv.apply(x)) as tf.Tensor, [6, 6, 3]))[0];
      close(s.powerIteration!, actual, 1e-5, 'power iteration');
      assert.ok(actual <= s.bound * (1 + 1e-6), `zero-padded ${actual} <= bound ${s.bound}`);
      model.dispose();
    });
  }

  it('power iteration alone: a lower bound that reaches the dense norm', async () => {
    await useTestBackend('cpu');
    const conv = new PlainConv2D({filters: 6, kernelSize: 3, strides: 2, padding: 1, useBias: true, seed: 8});
    const model = unitModel(conv, [7, 7, 4], false);
    const f = (x: tf.Tensor) => conv.apply(x) as tf.Tensor;
    const actual = singularValues(zeroPaddedOperator(f, [7, 7, 4]))[0];
    // This operator's top two singular values are 0.99804 apart (0.91691, 0.91511): power iteration
    // gains a factor 0.996 per step, and 3000 steps bring it within 1e-7.
    const few = powerIterationNorm(f, [7, 7, 4], {iterations: 3, seed: 9});
    const many = powerIterationNorm(f, [7, 7, 4], {iterations: 3000, seed: 9});
    assert.ok(few < many && many <= actual * (1 + 1e-6), `${few} < ${many} <= ${actual}`);
    close(many, actual, 1e-5, 'converged');
    model.dispose();
  });
});

/** ||J(x)|| of a model's output with respect to its input at x (dense, one gradient per output). */
function jacobianNorm(model: tfl.LayersModel, x: tf.Tensor): number {
  const outputs = (model.outputs[0].shape[1])!;
  const rows = tf.tidy(() => Array.from({length: outputs}, (_, i) =>
    Array.from(tf.grad(z => tf.sum(tf.slice(model.apply(z) as tf.Tensor, [0, i], [1, 1])))(x).dataSync())));
  return singularValues(new Matrix(rows))[0];
}

describe('convKernels', () => {
  it("lists every convolution's raw kernel, input size and ConvNorm grid, in model order", async () => {
    await useTestBackend('cpu');
    for (const norm of ['convnorm', 'sn'] as const) {
      const model = buildModel({architecture: 'small-cnn', norm, numClasses: 3, inputShape: [12, 10, 2], seed: 3});
      const before = tf.memory().numTensors;
      const kernels = convKernels(model);
      assert.equal(tf.memory().numTensors, before);
      const convs = model.layers.filter(l => l instanceof ConvNorm2D || l instanceof SpectralNormConv2D);
      assert.deepEqual(kernels.map(k => k.name), convs.map(l => l.name));
      assert.deepEqual(kernels.map(k => k.className), convs.map(() => norm === 'sn' ? 'SpectralNormConv2D' : 'ConvNorm2D'));
      // Max-pools halve (floor) the size after every second conv.
      assert.deepEqual(kernels.map(k => k.inputSize), [[12, 10], [12, 10], [6, 5], [6, 5], [3, 2], [3, 2]]);
      assert.deepEqual(kernels.map(k => k.grid), [[14, 12], [14, 12], [8, 7], [8, 7], [5, 4], [5, 4]]);
      kernels.forEach((k, i) => {
        const raw = convs[i].weights.find(w => w.originalName.endsWith('/kernel'))!.read();
        assert.deepEqual(k.kernel.shape, raw.shape);
        assert.deepEqual(Array.from(k.kernel.data), Array.from(raw.dataSync()), 'the raw kernel, not a normalized one');
      });
      model.dispose();
    }
  });
});

describe('Lipschitz bound', () => {
  it('a residual block: (b1 b2 + b_shortcut) / sqrt(HW) ||K||, and above the Jacobian norm at random points', async () => {
    await useTestBackend('cpu');
    const input = tfl.input({shape: [6, 6, 2]});
    const unit = (x: tfl.SymbolicTensor, filters: number, kernelSize: number, strides: number, seed: number) => {
      const y = new PlainConv2D({filters, kernelSize, strides, padding: (kernelSize - 1) / 2, useBias: true, seed})
        .apply(x) as tfl.SymbolicTensor;
      return new BatchNorm2D().apply(y) as tfl.SymbolicTensor;
    };
    const h = tfl.layers.reLU().apply(unit(input, 3, 3, 1, 1)) as tfl.SymbolicTensor;
    const sum = tfl.layers.add().apply([unit(h, 3, 3, 2, 2), unit(input, 3, 1, 2, 3)]) as tfl.SymbolicTensor;
    const pooled = tfl.layers.globalAveragePooling2d({}).apply(tfl.layers.reLU().apply(sum)) as tfl.SymbolicTensor;
    const model = tfl.model({inputs: input, outputs: tfl.layers.dense({units: 4, useBias: true}).apply(pooled) as tfl.SymbolicTensor});
    model.layers.filter(l => l instanceof BatchNorm2D).forEach((l, i) => randomizeBatchNorm(l, 3, 40 + i));
    const before = tf.memory().numTensors;
    const spectra = unitSpectra(model, {powerIterations: 5});
    assert.equal(tf.memory().numTensors, before, 'no tensor outlives unitSpectra');
    const [b1, b2, b3] = spectra.units.map(u => u.bound);
    assert.deepEqual(spectra.units.map(u => u.stride), [[1, 1], [2, 2], [2, 2]]);
    const dense = model.layers.find(l => l.getClassName() === 'Dense')!;
    const k = dense.getWeights()[0];
    const kernel = k.arraySync() as number[][];
    const gram = new Matrix(kernel).transpose().mmul(new Matrix(kernel));
    const denseNorm = Math.sqrt(Math.max(...new EigenvalueDecomposition(gram, {assumeSymmetric: true}).realEigenvalues));
    close(spectra.lipschitzBound, (b1 * b2 + b3) / Math.sqrt(9) * denseNorm, 1e-12, 'hand composition');
    // No ConvNorm affine filter here: the circular composition is the same number.
    assert.equal(spectra.circularBound, spectra.lipschitzBound);
    for (const seed of [1, 2, 3]) {
      const x = tf.randomNormal([1, 6, 6, 2], 0, 1, 'float32', seed);
      const j = jacobianNorm(model, x);
      x.dispose();
      assert.ok(j > 0 && j <= spectra.lipschitzBound, `||J|| ${j} <= bound ${spectra.lipschitzBound}`);
    }
    model.dispose();
  });

  it('the small CNN with ConvNorm: the product of unit bounds and ||K||, above the Jacobian norm', async () => {
    await useTestBackend('cpu');
    const model = buildModel({architecture: 'small-cnn', norm: 'convnorm', numClasses: 3, inputShape: [8, 8, 3], seed: 2});
    tf.tidy(() => { model.apply(tf.randomNormal([4, 8, 8, 3], 0, 1, 'float32', 6), {training: true}); });
    const convNorms = model.layers.filter((l): l is ConvNorm2D => l instanceof ConvNorm2D);
    assert.equal(convNorms.length, 6);
    convNorms.forEach((l, i) => {
      assert.ok(read(l, 'running_v').some(v => v > 0), 'the training call set the running V');
      randomizeBatchNorm(l, l.filters, 60 + i);
    });
    const before = tf.memory().numTensors;
    const spectra = unitSpectra(model, {powerIterations: 3, values: true});
    assert.equal(tf.memory().numTensors, before, 'no tensor outlives unitSpectra');
    // min(C_in, C_out) values per grid frequency: widths 8, 8, 16, 16, 32, 32 from 3 input channels.
    const perFrequency = [3, 8, 8, 16, 16, 32];
    spectra.units.forEach((u, i) => {
      assert.equal(u.norm, 'convnorm');
      assert.equal(u.values!.length, perFrequency[i] * u.grid[0] * u.grid[1]);
      assert.equal(u.values![0], u.folded);
    });
    const dense = model.layers.find(l => l.getClassName() === 'Dense')!;
    const kernel = dense.getWeights()[0].arraySync() as number[][];
    const denseNorm = singularValues(new Matrix(kernel))[0];
    const product = spectra.units.reduce((p, u) => p * u.bound, 1) * denseNorm;
    close(spectra.lipschitzBound, product, 1e-12, 'product');
    close(spectra.circularBound, spectra.units.reduce((p, u) => p * (u.strided ?? u.folded), 1) * denseNorm, 1e-12,
          'circular product');
    for (const seed of [4, 5]) {
      const x = tf.randomNormal([1, 8, 8, 3], 0, 1, 'float32', seed);
      const j = jacobianNorm(model, x);
      x.dispose();
      assert.ok(j > 0 && j <= spectra.lipschitzBound, `||J|| ${j} <= bound ${spectra.lipschitzBound}`);
    }
    model.dispose();
  });
});
