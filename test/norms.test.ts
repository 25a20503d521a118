/**
 * The baselines ConvNorm is compared with: spectral normalization, ONI and the
 * OCNN penalty, against float64 references (torch's own spectral_norm and
 * ports of the authors' ONI / OCNN code in reference/norms_ref.py, plus
 * independent float64 JS computations here), on cpu and wasm; and every norm
 * of the models training and round-tripping through disk.
 *
 * Tolerances are norm-wise relative errors (max |a - b| / max |b|); float32
 * arithmetic against float64 references.
 */
import assert from 'node:assert/strict';
import {readFileSync, writeFileSync} from 'node:fs';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {after, before, describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {symmetricEigenvalues} from '../src/analysis/singular_values.js';
import {ConvNormArgumentError} from '../src/common/arguments.js';
import {fileSystem} from '../src/io/file_system.js';
import {NormalizedConv2D} from '../src/layers/normalized_conv.js';
import {OniConv2D, oniKernel, oniUsesColumns} from '../src/layers/oni.js';
import {PlainConv2D} from '../src/layers/plain_conv.js';
import {SpectralNormConv2D} from '../src/layers/spectral_norm.js';
import {convUnit, NormKind, NORMS, SeedSequence} from '../src/models/blocks.js';
import {resnet} from '../src/models/resnet.js';
import {smallCnn} from '../src/models/small_cnn.js';
import {deconvOrthDist, ocnnKernels, ocnnLoss, ocnnPenalty, orthDist} from '../src/training/ocnn.js';
import {TrainStep} from '../src/training/step.js';
import {useTestBackend} from './helpers/backends.js';
import {decode, Encoded} from './helpers/fixtures.js';
import {assertFirstOrderDescent} from './helpers/descent.js';
import {relativeError} from './helpers/numerics.js';
import {randomTensor, rng, uniformValues} from './helpers/random.js';

// ------------------------------------------------------------------ fixtures

interface SnCase {
  kernelSize: number; inChannels: number; filters: number; strides: number; padding: 'same' | 'valid';
  useBias: boolean; calls: number; kernel: Encoded; bias?: Encoded; u0: Encoded; v0: Encoded;
  x: Encoded[]; xEval: Encoded;
  first: {u: Encoded; v: Encoded; sigma: number; output: Encoded; cotangent: Encoded; gradKernel: Encoded;
          gradX: Encoded; gradBias?: Encoded};
  last: {u: Encoded; v: Encoded; sigma: number; evalOutput: Encoded};
}
interface OniCase {
  kernelSize: number; inChannels: number; filters: number; iterations: number; normGroups: number;
  rowFix: boolean; columns: boolean; kernel: Encoded; scale: Encoded; bias: Encoded; x: Encoded;
  orthogonalized: Encoded; effectiveKernel: Encoded; output: Encoded; cotangent: Encoded;
  gradKernel: Encoded; gradScale: Encoded; gradBias: Encoded; gradX: Encoded;
}
interface OcnnCase {
  kernelSize: number; inChannels: number; filters: number; strides: number; kernel: Encoded; value: number;
  gradKernel: Encoded;
}
const FIXTURE = JSON.parse(readFileSync(new URL('./fixtures/norms-reference.json', import.meta.url), 'utf8')) as
  {sn: SnCase[]; oni: OniCase[]; ocnn: OcnnCase[]};

function weightOf(layer: tfl.layers.Layer, name: string): tf.Tensor {
  const w = layer.weights.find(v => v.originalName.split('/').pop() === name);
  assert.ok(w, `layer has no weight ${name}`);
  return w.read();
}

function variableOf(layer: tfl.layers.Layer, name: string): tf.Variable {
  return weightOf(layer, name) as tf.Variable;
}

function close(actual: tf.Tensor | ArrayLike<number>, expected: tf.Tensor | ArrayLike<number>, tolerance: number,
               what: string): void {
  const a = actual instanceof tf.Tensor ? actual : tf.tensor(Array.from(actual));
  const b = expected instanceof tf.Tensor ? expected : tf.tensor(Array.from(expected));
  const err = relativeError(a, b);
  assert.ok(err <= tolerance, `${what}: relative error ${err.toExponential(2)} > ${tolerance}`);
}

function relative(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

// ------------------------------------------------- float64 JS reference pieces

/** A tfjs [kh, kw, C_in, C_out] kernel as PyTorch's [C_out, C_in*kh*kw] matrix, float64 row-major. */
function matrix64(values: ArrayLike<number>, [kh, kw, cin, cout]: number[]): Float64Array {
  const f = cin * kh * kw;
  const m = new Float64Array(cout * f);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let c = 0; c < cin; c++) {
        for (let o = 0; o < cout; o++) m[o * f + (c * kh + i) * kw + j] = values[((i * kw + j) * cin + c) * cout + o];
      }
    }
  }
  return m;
}

function normalize64(x: Float64Array, eps = 1e-12): Float64Array {
  const n = Math.max(Math.hypot(...x), eps);
  return x.map(v => v / n);
}

/** One power iteration of torch.nn.utils.spectral_norm in float64: new u, v and sigma = u^T W v. */
function snStep64(w: Float64Array, rows: number, cols: number, u: ArrayLike<number>) {
  const wtu = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) wtu[c] += w[r * cols + c] * u[r];
  const v = normalize64(wtu);
  const wv = new Float64Array(rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) wv[r] += w[r * cols + c] * v[c];
  const u2 = normalize64(wv);
  const sigma = u2.reduce((s, ui, r) => s + ui * wv[r], 0);
  return {u: u2, v, sigma};
}

/** Largest singular value of a rows x cols matrix: sqrt of the top eigenvalue of W W^T (Jacobi, float64). */
function singularValues64(w: Float64Array, rows: number, cols: number): Float64Array {
  const g = new Float64Array(rows * rows);
  for (let a = 0; a < rows; a++) {
    for (let b = 0; b < rows; b++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[a * cols + c] * w[b * cols + c];
      g[a * rows + b] = s;
    }
  }
  return symmetricEigenvalues(g, rows).map(Math.sqrt).reverse();
}

/** The authors' deconv_orth_dist in float64 loops: ||conv2d(K, K, stride, pad) - I_centre||_F, K as PyTorch's [o, i, kh, kw]. */
function deconvOrthDist64(values: ArrayLike<number>, shape: number[], stride: number): number {
  const [kh, kw, cin, cout] = shape;
  const k = (o: number, c: number, i: number, j: number) => values[((i * kw + j) * cin + c) * cout + o];
  const [ph, pw] = [Math.floor(kh / 2), Math.floor(kw / 2)];
  const oh = Math.floor((2 * ph) / stride) + 1;
  const ow = Math.floor((2 * pw) / stride) + 1;
  let total = 0;
  for (let a = 0; a < cout; a++) {
    for (let b = 0; b < cout; b++) {
      for (let y = 0; y < oh; y++) {
        for (let x = 0; x < ow; x++) {
          let s = 0;
          for (let c = 0; c < cin; c++) {
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const [yi, xj] = [y * stride + i - ph, x * stride + j - pw];
                if (yi >= 0 && yi < kh && xj >= 0 && xj < kw) s += k(a, c, yi, xj) * k(b, c, i, j);
              }
            }
          }
          const target = a === b && y === Math.floor(ow / 2) && x === Math.floor(ow / 2) ? 1 : 0;
          total += (s - target) ** 2;
        }
      }
    }
  }
  return Math.sqrt(total);
}

/** The authors' orth_dist in float64: ||G - I||_F with G the smaller Gram matrix of M = [C_out, fan-in]. */
function orthDist64(values: ArrayLike<number>, shape: number[]): number {
  const cout = shape[3];
  const f = values.length / cout;
  const m = matrix64(values, shape);
  const [n, inner] = cout < f ? [cout, f] : [f, cout];
  const at = (r: number, c: number) => (cout < f ? m[r * f + c] : m[c * f + r]);
  let total = 0;
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      let s = 0;
      for (let c = 0; c < inner; c++) s += at(a, c) * at(b, c);
      total += (s - (a === b ? 1 : 0)) ** 2;
    }
  }
  return Math.sqrt(total);
}

/** n orthonormal vectors of length n (Gram-Schmidt on a seeded random matrix, float64), rows of the result. */
function orthonormalRows(n: number, seed: number): Float64Array[] {
  const next = rng(seed);
  const rows: Float64Array[] = [];
  while (rows.length < n) {
    let r = Float64Array.from({length: n}, () => 2 * next() - 1);
    for (const q of rows) {
      const d = r.reduce((s, v, i) => s + v * q[i], 0);
      r = r.map((v, i) => v - d * q[i]);
    }
    rows.push(normalize64(r));
  }
  return rows;
}

/** Gradients of sum(layer(x, training) * cotangent) with respect to the given variables and x. */
function layerGrads(layer: tfl.layers.Layer, x: tf.Tensor, cotangent: tf.Tensor, names: string[]) {
  const xv = tf.variable(x);
  const vars = names.map(n => variableOf(layer, n));
  const {value, grads} = tf.variableGrads(
    () => tf.sum(tf.mul(layer.apply(xv, {training: true}) as tf.Tensor, cotangent)) as tf.Scalar, [...vars, xv]);
  const out: Record<string, tf.Tensor> = {x: grads[xv.name]};
  names.forEach((n, i) => { out[n] = grads[vars[i].name]; });
  value.dispose();
  xv.dispose();
  return out;
}

// ------------------------------------------------------------ spectral norm

/** SGD steps through the layer in training mode, then an inference call, leave the tensor count as it was. */
function assertConstantTensorCount(layer: tfl.layers.Layer): void {
  const x = randomTensor([2, 5, 5, 3], 4);
  layer.apply(x);
  const optimizer = tf.train.sgd(0.1);
  const step = () => optimizer.minimize(() => tf.sum(tf.square(layer.apply(x, {training: true}) as tf.Tensor)) as
    tf.Scalar, false, layer.trainableWeights.map(w => w.read() as tf.Variable));
  step();
  const count = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) step();
  assert.equal(tf.memory().numTensors, count, 'tensor count grew');
  tf.dispose(layer.apply(x) as tf.Tensor);
  assert.equal(tf.memory().numTensors, count, 'an inference call leaked');
}

describe('the baselines\' sampling grid (cpu): PyTorch\'s symmetric padding', () => {
  before(() => useTestBackend('cpu'));

  for (const norm of ['bn', 'none', 'sn', 'oni'] as NormKind[]) {
    it(`${norm}: a stride-2 unit equals its kernel on the explicitly padded input`, () => {
      // 8 x 8 at stride 2: tfjs's 'same' would pad 0 rows above and 1 below.
      const input = tfl.input({shape: [8, 8, 3]});
      const unit = tfl.model({inputs: input, outputs: convUnit(input, {filters: 5, kernelSize: 3, strides: 2, norm,
                                                                      seeds: new SeedSequence(4)})});
      const conv = unit.layers[1] as NormalizedConv2D;
      const x = randomTensor([2, 8, 8, 3], 41);
      const kernel = conv.effectiveKernel();
      const expected = tf.conv2d(tf.pad(x as tf.Tensor4D, [[0, 0], [1, 1], [1, 1], [0, 0]]), kernel, 2, 'valid');
      assert.ok(relativeError(conv.apply(x) as tf.Tensor, expected) < 1e-6, 'conv output is not on the symmetric grid');
      // The unit (with BatchNorm's running statistics in inference) is the same map followed by BN's scale.
      const bnScale = norm === 'none' ? 1 : 1 / Math.sqrt(1 + 1e-5);
      assert.ok(relativeError(unit.predict(x) as tf.Tensor, tf.mul(expected, bnScale)) < 1e-6);
      tf.dispose([x, kernel, expected]);
      unit.dispose();
    });
  }

  it('a 3x3 stride-2 conv and a 1x1 stride-2 shortcut sample the same pixels', () => {
    const x = randomTensor([1, 8, 8, 3], 42);
    const pointwise = randomTensor([1, 1, 3, 4], 43) as tf.Tensor4D;
    // The 3x3 kernel with the 1x1 one at its centre tap and zeros elsewhere.
    const centred = tf.pad(pointwise, [[1, 1], [1, 1], [0, 0], [0, 0]]);
    const make = (kernelSize: number, kernel: tf.Tensor) => {
      const layer = new PlainConv2D({filters: 4, kernelSize, strides: 2, padding: (kernelSize - 1) / 2, useBias: false});
      layer.apply(tfl.input({shape: [8, 8, 3]}));
      layer.setWeights([kernel]);
      return layer.apply(x) as tf.Tensor;
    };
    assert.deepEqual(make(3, centred).dataSync(), make(1, pointwise).dataSync());
  });

  it('a model saved with tfjs \'same\' padding at stride 2 is refused on loading; at stride 1 it means the same', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'convnorm-grid-'));
    try {
      const save = async (strides: number) => {
        const input = tfl.input({shape: [8, 8, 3]});
        const model = tfl.model({inputs: input, outputs: new SpectralNormConv2D(
          {filters: 4, kernelSize: 3, strides, padding: 1, seed: 1}).apply(input) as tfl.SymbolicTensor});
        await model.save(fileSystem(join(dir, String(strides))));
        model.dispose();
        // Rewritten as these layers stored their padding before it was symmetric.
        const path = join(dir, String(strides), 'model.json');
        const json = JSON.parse(readFileSync(path, 'utf8'));
        const config = json.modelTopology.config.layers[1].config;
        assert.deepEqual(config.padding, [1, 1]);
        config.padding = 'same';
        writeFileSync(path, JSON.stringify(json));
        return tfl.loadLayersModel(fileSystem(join(dir, String(strides))));
      };
      await assert.rejects(save(2), /saved with tfjs 'same' padding at stride \[2,2\].*retrain the model/);
      const loaded = await save(1);
      assert.deepEqual((loaded.layers[1] as SpectralNormConv2D).padding, [1, 1]);
      loaded.dispose();
    } finally {
      await rm(dir, {recursive: true, force: true});
    }
  });
});

describe('SpectralNormConv2D (cpu): PyTorch spectral_norm', () => {
  before(() => useTestBackend('cpu'));

  it('one training call is one power iteration of PyTorch: u, v, sigma and the output (float64 JS)', () => {
    const layer = new SpectralNormConv2D({filters: 5, kernelSize: 3, padding: 'same', seed: 11});
    const x = randomTensor([2, 6, 6, 4], 12);
    layer.apply(x);  // builds (inference: no update)
    const kernel = randomTensor([3, 3, 4, 5], 13, 0.3);
    layer.setWeights([kernel, randomTensor([5], 14, 0.1), weightOf(layer, 'weight_u'), weightOf(layer, 'weight_v')]);
    const u0 = weightOf(layer, 'weight_u').dataSync().slice();
    const v0 = weightOf(layer, 'weight_v').dataSync().slice();
    assert.ok(Math.abs(Math.hypot(...u0) - 1) < 1e-6 && Math.abs(Math.hypot(...v0) - 1) < 1e-6, 'u, v start normalized');

    const w = matrix64(kernel.dataSync(), kernel.shape);
    const expected = snStep64(w, 5, 36, u0);
    const out = layer.apply(x, {training: true}) as tf.Tensor;
    close(weightOf(layer, 'weight_u'), expected.u, 1e-5, 'u');
    close(weightOf(layer, 'weight_v'), expected.v, 1e-5, 'v');
    assert.ok(relative(layer.sigma().dataSync()[0], expected.sigma) < 1e-5, 'sigma');
    const reference = tf.add(tf.conv2d(x as tf.Tensor4D, tf.div(kernel, expected.sigma) as tf.Tensor4D, 1, 'same'),
                             weightOf(layer, 'bias'));
    close(out, reference, 1e-5, 'output = conv(x, W / sigma) + b');

    // Inference: no update, sigma from the stored u and v.
    const u1 = weightOf(layer, 'weight_u').dataSync().slice();
    const inference = layer.apply(x) as tf.Tensor;
    assert.deepEqual(weightOf(layer, 'weight_u').dataSync(), u1, 'inference must not update u');
    close(inference, out, 1e-6, 'inference output with the stored u, v');
  });

  it('sigma converges to the largest singular value of the reshaped kernel (Jacobi SVD, float64)', () => {
    const layer = new SpectralNormConv2D({filters: 6, kernelSize: 3, padding: 'same', useBias: false, seed: 21});
    const x = randomTensor([1, 3, 3, 3], 22);
    layer.apply(x);
    const kernel = randomTensor([3, 3, 3, 6], 23, 0.5);
    layer.setWeights([kernel, weightOf(layer, 'weight_u'), weightOf(layer, 'weight_v')]);
    const sv = singularValues64(matrix64(kernel.dataSync(), kernel.shape), 6, 27);
    const calls = 120;
    // Power iteration's error after n steps ~ (s2/s1)^(2n): make sure `calls` suffices for 1e-6.
    assert.ok(2 * calls * Math.log(sv[0] / sv[1]) > Math.log(1e7), `singular value gap too small: ${sv[0]}, ${sv[1]}`);
    const start = layer.sigma().dataSync()[0];
    assert.ok(relative(start, sv[0]) > 1e-2, 'the initial sigma should be far off (else the test proves nothing)');
    for (let i = 0; i < calls; i++) tf.dispose(layer.apply(x, {training: true}) as tf.Tensor);
    const sigma = layer.sigma().dataSync()[0];
    assert.ok(relative(sigma, sv[0]) < 1e-5, `sigma ${sigma} vs largest singular value ${sv[0]}`);
    // The normalized kernel's spectral norm is then 1.
    const normalized = layer.effectiveKernel();
    const top = singularValues64(matrix64(normalized.dataSync(), normalized.shape), 6, 27)[0];
    assert.ok(Math.abs(top - 1) < 1e-5, `spectral norm of W / sigma: ${top}`);
  });

  for (const [i, c] of FIXTURE.sn.entries()) {
    it(`matches torch.nn.utils.spectral_norm (${c.kernelSize}x${c.kernelSize}, stride ${c.strides}, ` +
       `bias ${c.useBias}): u, v, sigma, output, gradients, eval after ${c.calls} calls`, () => {
      const layer = new SpectralNormConv2D({filters: c.filters, kernelSize: c.kernelSize, strides: c.strides,
                                            padding: c.padding, useBias: c.useBias, seed: 30 + i});
      const xs = c.x.map(decode);
      layer.apply(xs[0]);
      layer.setWeights([decode(c.kernel), ...(c.bias ? [decode(c.bias)] : []), decode(c.u0), decode(c.v0)]);
      const names = c.useBias ? ['kernel', 'bias'] : ['kernel'];
      const output = layer.apply(xs[0], {training: true}) as tf.Tensor;
      close(output, decode(c.first.output), 1e-5, 'output');
      // A second layer from the same state, for the gradients of the same (first) call.
      const twin = new SpectralNormConv2D(layer.getConfig() as never);
      twin.apply(xs[0]);
      twin.setWeights([decode(c.kernel), ...(c.bias ? [decode(c.bias)] : []), decode(c.u0), decode(c.v0)]);
      const grads = layerGrads(twin, xs[0], decode(c.first.cotangent), names);
      close(weightOf(layer, 'weight_u'), decode(c.first.u), 1e-5, 'u after one call');
      close(weightOf(layer, 'weight_v'), decode(c.first.v), 1e-5, 'v after one call');
      assert.ok(relative(layer.sigma().dataSync()[0], c.first.sigma) < 1e-5, 'sigma after one call');
      close(grads.kernel, decode(c.first.gradKernel), 1e-5, 'kernel gradient (through sigma, u and v constant)');
      close(grads.x, decode(c.first.gradX), 1e-5, 'input gradient');
      if (c.first.gradBias) close(grads.bias, decode(c.first.gradBias), 1e-5, 'bias gradient');
      for (let t = 1; t < c.calls; t++) layer.apply(xs[t], {training: true});
      close(weightOf(layer, 'weight_u'), decode(c.last.u), 1e-5, `u after ${c.calls} calls`);
      close(weightOf(layer, 'weight_v'), decode(c.last.v), 1e-5, `v after ${c.calls} calls`);
      assert.ok(relative(layer.sigma().dataSync()[0], c.last.sigma) < 1e-5, `sigma after ${c.calls} calls`);
      close(layer.apply(decode(c.xEval)) as tf.Tensor, decode(c.last.evalOutput), 1e-5, 'eval output');
    });
  }

  it('registers, round-trips its config, seeds its weights and refuses bad arguments', () => {
    const a = new SpectralNormConv2D({filters: 4, kernelSize: [3, 1], strides: 2, padding: 'valid', seed: 5,
                                      powerIterations: 2});
    a.apply(tfl.input({shape: [8, 8, 3]}));
    assert.deepEqual(a.weights.map(w => w.originalName.split('/').pop()), ['kernel', 'bias', 'weight_u', 'weight_v']);
    assert.deepEqual(a.trainableWeights.map(w => w.originalName.split('/').pop()), ['kernel', 'bias']);
    assert.deepEqual(weightOf(a, 'weight_v').shape, [9]);
    const entry = tf.serialization.SerializationMap.getMap().classNameMap['SpectralNormConv2D'];
    assert.ok(entry, 'registered with tfjs serialization');
    const b = tfl.layers.Layer.fromConfig(SpectralNormConv2D, a.getConfig()) as SpectralNormConv2D;
    assert.deepEqual(b.getConfig(), a.getConfig());
    b.apply(tfl.input({shape: [8, 8, 3]}));
    for (const name of ['kernel', 'bias', 'weight_u', 'weight_v']) {
      assert.deepEqual(weightOf(b, name).dataSync(), weightOf(a, name).dataSync(), `seeded ${name}`);
    }
    const other = new SpectralNormConv2D({filters: 4, kernelSize: [3, 1], padding: 'same', seed: 6});
    other.apply(tfl.input({shape: [8, 8, 3]}));
    assert.notDeepEqual(weightOf(other, 'kernel').dataSync(), weightOf(a, 'kernel').dataSync(), 'another seed');
    assert.notDeepEqual(weightOf(other, 'weight_u').dataSync(), weightOf(a, 'weight_u').dataSync(), 'another seed');
    const bad = (args: object, pattern: RegExp) =>
      assert.throws(() => new SpectralNormConv2D({filters: 4, kernelSize: 3, ...args}), (e: Error) =>
        e instanceof ConvNormArgumentError && pattern.test(e.message));
    bad({powerIterations: 0}, /powerIterations must be a positive integer/);
    bad({powerIterations: 1.5}, /powerIterations must be a positive integer/);
    bad({epsilon: 0}, /epsilon must be a finite number > 0/);
    bad({filters: 0}, /filters must be a positive integer/);
    bad({padding: 'causal'}, /padding must be an integer, \[h, w\], 'same' or 'valid'/);
    bad({padding: -1}, /padding must be non-negative integers/);
    bad({kernelSize: 2, padding: 'same'}, /padding 'same' needs odd kernel sizes/);
    bad({kernelSize: [3, 0]}, /kernelSize\[1\] must be a positive integer/);
  });

  it('keeps the tensor count constant over training steps', () => {
    assertConstantTensorCount(new SpectralNormConv2D({filters: 4, kernelSize: 3, padding: 'same', seed: 3}));
  });
});

// ---------------------------------------------------------------------- ONI

describe('OniConv2D (cpu): the authors\' ONI_Conv2d', () => {
  before(() => useTestBackend('cpu'));

  for (const c of FIXTURE.oni) {
    const label = `${c.filters}x${c.inChannels}x${c.kernelSize}x${c.kernelSize}, T=${c.iterations}, ` +
      `groups ${c.normGroups}${c.rowFix ? ', rowFix' : ''} (${c.columns ? 'columns' : 'rows'})`;
    it(`matches the float64 PyTorch port: ${label}`, () => {
      const layer = new OniConv2D({filters: c.filters, kernelSize: c.kernelSize, padding: 'same',
                                   iterations: c.iterations, normGroups: c.normGroups, rowFix: c.rowFix, learnableScale: true, seed: 1});
      const x = decode(c.x);
      layer.apply(x);
      layer.setWeights([decode(c.kernel), decode(c.bias), decode(c.scale)]);
      assert.equal(oniUsesColumns(weightOf(layer, 'kernel').shape, c.rowFix), c.columns);
      close(oniKernel(weightOf(layer, 'kernel') as tf.Tensor4D, c), decode(c.orthogonalized), 1e-5,
            'orthogonalized kernel');
      close(layer.effectiveKernel(), decode(c.effectiveKernel), 1e-5, 'scaled kernel');
      close(layer.apply(x) as tf.Tensor, decode(c.output), 1e-5, 'output');
      const grads = layerGrads(layer, x, decode(c.cotangent), ['kernel', 'scale', 'bias']);
      close(grads.kernel, decode(c.gradKernel), 1e-5, 'kernel gradient');
      close(grads.scale, decode(c.gradScale), 1e-5, 'scale gradient');
      close(grads.bias, decode(c.gradBias), 1e-5, 'bias gradient');
      close(grads.x, decode(c.gradX), 1e-5, 'input gradient');
    });
  }

  it('W W^T -> scale^2 I for large T when C_out <= fan-in, per norm group (T = 40: stable)', () => {
    for (const groups of [1, 2]) {
      // T = 40: the authors' uncoupled iteration is NaN by then in float32; the coupled form used here is not.
      const layer = new OniConv2D({filters: 8, kernelSize: 3, padding: 'same', iterations: 40, normGroups: groups, scale: 1.414});
      layer.apply(tfl.input({shape: [6, 6, 4]}));
      // Large raw weights, so that eps = 1e-5 on S's diagonal is negligible.
      layer.setWeights([randomTensor([3, 3, 4, 8], 40 + groups), randomTensor([8], 39, 0.1)]);
      const w = matrix64(layer.effectiveKernel().dataSync(), [3, 3, 4, 8]);
      const size = 8 / groups;
      for (let a = 0; a < 8; a++) {
        // Rows of different groups are not orthogonalized against each other.
        for (let b = Math.floor(a / size) * size; b < (Math.floor(a / size) + 1) * size; b++) {
          let s = 0;
          for (let k = 0; k < 36; k++) s += w[a * 36 + k] * w[b * 36 + k];
          const target = a === b ? 1.414 ** 2 : 0;
          assert.ok(Math.abs(s - target) < 1e-5 * 1.414 ** 2, `groups ${groups}: (W W^T)[${a},${b}] = ${s}`);
        }
      }
    }
    // Rows are centred: each row of the orthogonalized (unit-norm) kernel sums to zero.
    const w = oniKernel(randomTensor([3, 3, 4, 8], 45) as tf.Tensor4D, {iterations: 5});
    const sums = tf.sum(tf.reshape(tf.transpose(w, [3, 0, 1, 2]), [8, 36]), 1).dataSync();
    assert.ok(sums.every(v => Math.abs(v) < 1e-5), `row sums ${sums}`);
  });

  it('registers, round-trips its config, seeds its weights and refuses bad arguments', () => {
    const a = new OniConv2D({filters: 6, kernelSize: 3, padding: 'same', strides: 2, normGroups: 3, iterations: 4,
                             learnableScale: true, scale: 2, rowFix: true, useBias: false, seed: 9});
    a.apply(tfl.input({shape: [8, 8, 2]}));
    assert.deepEqual(a.weights.map(w => w.originalName.split('/').pop()), ['kernel', 'scale']);
    assert.deepEqual(Array.from(weightOf(a, 'scale').dataSync()), [2, 2, 2, 2, 2, 2]);
    assert.ok(tf.serialization.SerializationMap.getMap().classNameMap['OniConv2D'], 'registered');
    const b = tfl.layers.Layer.fromConfig(OniConv2D, a.getConfig()) as OniConv2D;
    assert.deepEqual(b.getConfig(), a.getConfig());
    b.apply(tfl.input({shape: [8, 8, 2]}));
    assert.deepEqual(weightOf(b, 'kernel').dataSync(), weightOf(a, 'kernel').dataSync(), 'seeded kernel');
    const fixed = new OniConv2D({filters: 4, kernelSize: 1});
    fixed.apply(tfl.input({shape: [4, 4, 8]}));
    assert.deepEqual(fixed.weights.map(w => w.originalName.split('/').pop()), ['kernel', 'bias']);
    const bad = (args: object, pattern: RegExp) =>
      assert.throws(() => new OniConv2D({filters: 6, kernelSize: 3, ...args}), (e: Error) =>
        e instanceof ConvNormArgumentError && pattern.test(e.message));
    bad({iterations: 0}, /iterations \(T\) must be a positive integer/);
    bad({iterations: -2}, /iterations \(T\) must be a positive integer/);
    bad({normGroups: 4}, /normGroups \(4\) must divide the number of output channels \(6\)/);
    bad({normGroups: 0}, /normGroups must be a positive integer/);
    bad({scale: NaN}, /scale must be a finite number/);
    bad({epsilon: -1}, /epsilon must be a finite number >= 0/);
    assert.throws(() => oniKernel(tf.zeros([3, 3, 2, 6]) as tf.Tensor4D, {normGroups: 4}), /must divide/);
  });

  it('keeps the tensor count constant over training steps', () => {
    assertConstantTensorCount(new OniConv2D({filters: 4, kernelSize: 3, padding: 'same', learnableScale: true, seed: 3}));
  });
});

// --------------------------------------------------------------------- OCNN

describe('OCNN penalty (cpu): the authors\' orth_dist / deconv_orth_dist', () => {
  before(() => useTestBackend('cpu'));

  for (const c of FIXTURE.ocnn) {
    it(`matches the float64 PyTorch port: ${c.kernelSize}x${c.kernelSize}, ${c.inChannels} -> ${c.filters}, ` +
       `stride ${c.strides}`, () => {
      const kernel = tf.variable(decode(c.kernel));
      const {value, grads} = tf.variableGrads(() => ocnnPenalty([{kernel: kernel as tf.Tensor as tf.Tensor4D,
                                                                   strides: c.strides}], {lambda: 1}), [kernel]);
      assert.ok(relative(value.dataSync()[0], c.value) < 1e-5, `penalty ${value.dataSync()[0]} vs ${c.value}`);
      close(grads[kernel.name], decode(c.gradKernel), 1e-5, 'gradient');
      kernel.dispose();
    });
  }

  it('equals an independent float64 computation for random 3x3 kernels, scaled by lambda', () => {
    // Stride 3 samples only the shift -1 (an asymmetric set); 5x5 stride 2 the shifts -2, 0, 2.
    for (const [shape, stride] of [[[3, 3, 5, 7], 1], [[3, 3, 5, 7], 2], [[3, 3, 16, 4], 1], [[5, 5, 2, 3], 2],
                                   [[3, 3, 4, 5], 3]] as
           [number[], number][]) {
      const kernel = randomTensor(shape, 50 + stride, 0.3) as tf.Tensor4D;
      const expected = deconvOrthDist64(kernel.dataSync(), shape, stride);
      assert.ok(relative(deconvOrthDist(kernel, stride).dataSync()[0], expected) < 1e-5, `${shape} stride ${stride}`);
      const penalty = ocnnPenalty([{kernel, strides: stride}], {lambda: 0.01}).dataSync()[0];
      assert.ok(relative(penalty, 0.01 * expected) < 1e-5, 'lambda scales the penalty');
    }
    for (const shape of [[1, 1, 8, 4], [1, 1, 4, 8]]) {
      const kernel = randomTensor(shape, 60) as tf.Tensor4D;
      assert.ok(relative(orthDist(kernel).dataSync()[0], orthDist64(kernel.dataSync(), shape)) < 1e-5, `${shape}`);
    }
  });

  it('is ~0 for orthogonal 1x1 kernels, with a finite (zero) gradient at an exactly orthogonal one', () => {
    const q = orthonormalRows(8, 70);
    // [1, 1, C_in, C_out] with M = [C_out, C_in] = the first C_out rows (C_out <= C_in: M M^T = I) ...
    const rowsKernel = (cin: number, cout: number) => tf.tensor4d(
      Float32Array.from({length: cin * cout}, (_, i) => q[i % cout][Math.floor(i / cout)]), [1, 1, cin, cout]);
    // ... or with M's columns orthonormal (C_out > C_in: M^T M = I).
    const columnsKernel = (cin: number, cout: number) => tf.tensor4d(
      Float32Array.from({length: cin * cout}, (_, i) => q[Math.floor(i / cout)][i % cout]), [1, 1, cin, cout]);
    for (const kernel of [rowsKernel(8, 8), rowsKernel(8, 4), columnsKernel(4, 8)]) {
      const value = ocnnPenalty([{kernel}], {lambda: 1}).dataSync()[0];
      assert.ok(value < 1e-5, `penalty of an orthogonal ${kernel.shape} kernel: ${value}`);
      assert.ok(orthDist64(kernel.dataSync(), kernel.shape) < 1e-6);
    }
    const eye = tf.variable(tf.reshape(tf.eye(4), [1, 1, 4, 4]));
    const {value, grads} = tf.variableGrads(() => ocnnPenalty([{kernel: eye as tf.Tensor as tf.Tensor4D}],
                                                              {lambda: 1}), [eye]);
    assert.equal(value.dataSync()[0], 0);
    assert.ok(grads[eye.name].dataSync().every(g => g === 0), 'gradient at an exact orthogonal kernel is 0, not NaN');
    // A random kernel is far from orthogonal.
    assert.ok(ocnnPenalty([{kernel: randomTensor([1, 1, 8, 8], 71) as tf.Tensor4D}], {lambda: 1}).dataSync()[0] > 0.5);
    assert.throws(() => ocnnPenalty([], {lambda: -1}), /lambda must be a finite number >= 0/);
  });

  it('finds the plain conv kernels of a model: all, or those the reference regularizes in ResNet-18', () => {
    const model = resnet({depth: 18, norm: 'bn', inputShape: [8, 8, 3], seed: 3});
    const all = ocnnKernels(model);
    assert.equal(all.length, 20, 'stem + 16 block convs + 3 shortcuts');
    const reference = ocnnKernels(model, 'reference');
    // layerN[b].conv1 for 4 stages x 2 blocks, and the three 1x1 shortcuts.
    assert.equal(reference.length, 11);
    const shapes = reference.map(k => (k.kernel as tfl.LayerVariable).shape.slice(0, 2).join('x'));
    assert.equal(shapes.filter(s => s === '1x1').length, 3);
    const strides3x3 = reference.filter((_, i) => shapes[i] === '3x3').map(k => k.strides);
    assert.deepEqual(strides3x3, [[1, 1], [1, 1], [2, 2], [1, 1], [2, 2], [1, 1], [2, 2], [1, 1]]);
    const snModel = resnet({depth: 18, norm: 'sn', inputShape: [8, 8, 3], seed: 3});
    assert.equal(ocnnKernels(snModel).length, 0, 'SN convs are not plain convs');
    assert.throws(() => ocnnPenalty(snModel, {lambda: 1}), /has no plain convolutions/);
    assert.throws(() => ocnnLoss({lambda: 1})(snModel), /has no plain convolutions/);
    assert.throws(() => ocnnKernels(snModel, 'some' as never), /selection must be 'all' or 'reference'/);
    snModel.dispose();
    // The hook form: a penalty whose gradient reaches exactly the conv kernels.
    const cnn = smallCnn({norm: 'bn', inputShape: [8, 8, 3], seed: 2});
    const hook = ocnnLoss({lambda: 0.1});
    const vars = cnn.trainableWeights.map(w => w.read() as tf.Variable);
    const {value, grads} = tf.variableGrads(() => hook(cnn), vars);
    const direct = ocnnPenalty(cnn, {lambda: 0.1});
    assert.ok(relative(value.dataSync()[0], direct.dataSync()[0]) < 1e-6);
    const gradOf = (w: tfl.LayerVariable) => grads[(w.read() as tf.Variable).name];
    const reached = cnn.trainableWeights.filter(w => gradOf(w) !== undefined &&
      tf.any(tf.notEqual(gradOf(w), 0)).dataSync()[0]).map(w => w.originalName.split('/').pop());
    assert.deepEqual(reached, ['kernel', 'kernel', 'kernel', 'kernel', 'kernel', 'kernel'], 'the six conv kernels');
    assert.ok(!reached.includes('bias'));
    model.dispose();
  });

  it('lowers itself when minimized, with a constant tensor count', () => {
    const kernel = tf.variable(randomTensor([3, 3, 4, 4], 80, 0.3));
    const optimizer = tf.train.sgd(0.05);
    const penalty = () => ocnnPenalty([{kernel: kernel as tf.Tensor as tf.Tensor4D, strides: 1}], {lambda: 1});
    const start = penalty().dataSync()[0];
    optimizer.minimize(penalty);
    const count = tf.memory().numTensors;
    for (let i = 0; i < 30; i++) optimizer.minimize(penalty);
    assert.equal(tf.memory().numTensors, count, 'tensor count grew');
    const end = penalty().dataSync()[0];
    assert.ok(end < 0.5 * start, `penalty ${start} -> ${end}`);
  });
});

// ----------------------------------------------------------- wasm vs cpu

/** Runs fn on the named backend with fresh tensors, returning plain arrays. */
async function on(backend: 'cpu' | 'wasm', fn: () => Float32Array[]): Promise<Float32Array[]> {
  await useTestBackend(backend);
  return tf.tidy(fn);
}

describe('gradients on wasm match cpu (1e-4)', () => {
  after(() => useTestBackend('cpu'));

  const cases: [string, () => Float32Array[]][] = [
    ['SN, 3x3 stride 2, training call', () => {
      const layer = new SpectralNormConv2D({filters: 6, kernelSize: 3, padding: 'same', strides: 2, seed: 90});
      const x = randomTensor([2, 7, 7, 5], 91);
      layer.apply(x);
      const g = layerGrads(layer, x, randomTensor([2, 4, 4, 6], 92), ['kernel', 'bias']);
      return [g.kernel, g.bias, g.x, weightOf(layer, 'weight_u'), weightOf(layer, 'weight_v')].map(t => t.dataSync() as
        Float32Array);
    }],
    ['ONI rows, 2 groups, learned scale', () => {
      const layer = new OniConv2D({filters: 8, kernelSize: 3, padding: 'same', normGroups: 2, learnableScale: true, seed: 93});
      const x = randomTensor([2, 6, 6, 4], 94);
      layer.apply(x);
      const g = layerGrads(layer, x, randomTensor([2, 6, 6, 8], 95), ['kernel', 'scale', 'bias']);
      return [g.kernel, g.scale, g.bias, g.x].map(t => t.dataSync() as Float32Array);
    }],
    ['ONI columns (1x1, C_out > C_in)', () => {
      const layer = new OniConv2D({filters: 12, kernelSize: 1, padding: 'same', strides: 2, seed: 96});
      const x = randomTensor([2, 6, 6, 5], 97);
      layer.apply(x);
      const g = layerGrads(layer, x, randomTensor([2, 3, 3, 12], 98), ['kernel', 'bias']);
      return [g.kernel, g.bias, g.x].map(t => t.dataSync() as Float32Array);
    }],
    ['OCNN 3x3 stride 1 and 2, 1x1', () => {
      const ks = [randomTensor([3, 3, 6, 8], 99, 0.3), randomTensor([3, 3, 6, 8], 100, 0.3),
                  randomTensor([1, 1, 8, 6], 101)].map(k => tf.variable(k));
      const {grads} = tf.variableGrads(() => ocnnPenalty(
        ks.map((k, i) => ({kernel: k as tf.Tensor as tf.Tensor4D, strides: i === 1 ? 2 : 1})), {lambda: 1}), ks);
      return ks.map(k => grads[k.name].dataSync() as Float32Array);
    }],
  ];
  for (const [name, fn] of cases) {
    it(name, async () => {
      const cpu = await on('cpu', fn);
      const wasm = await on('wasm', fn);
      cpu.forEach((expected, i) => close(wasm[i], expected, 1e-4, `${name}: output ${i}`));
    });
  }
});

// ------------------------------------------------------------------ models

const BATCH_NORMED = new Set<NormKind>(['bn', 'convnorm', 'sn', 'oni']);

function memorizationBatch(size: number): [tf.Tensor, tf.Tensor] {
  const x = tf.tensor4d(uniformValues(16 * size * size * 3, 7), [16, size, size, 3]);
  const y = tf.oneHot(tf.tensor1d(Array.from({length: 16}, (_, i) => i % 10), 'int32'), 10);
  return [x, y];
}

async function assertRoundTrip(model: tfl.LayersModel, x: tf.Tensor, dir: string): Promise<void> {
  await model.save(fileSystem(dir));
  const loaded = await tfl.loadLayersModel(fileSystem(dir));
  assert.deepEqual(loaded.layers.map(l => l.getClassName()), model.layers.map(l => l.getClassName()));
  const before = model.predict(x) as tf.Tensor;
  const after = loaded.predict(x) as tf.Tensor;
  assert.deepEqual(after.dataSync(), before.dataSync(), 'inference predictions differ after reloading');
  tf.dispose([before, after]);
  loaded.dispose();
}

describe('every norm in the small CNN and ResNet-18 (wasm): trains, saves, reloads', () => {
  let root: string;
  before(async () => {
    // cpu's Conv2DBackpropFilter takes ~1 s per small-CNN step; wasm ~0.1 s.
    await useTestBackend('wasm');
    root = await mkdtemp(join(tmpdir(), 'convnorm-norms-'));
  });
  after(async () => {
    await rm(root, {recursive: true, force: true});
    await useTestBackend('cpu');
  });

  it('NORMS lists every variant', () => {
    assert.deepEqual([...NORMS].sort(), ['bn', 'convnorm', 'convnorm-nobn', 'none', 'oni', 'sn']);
  });

  for (const norm of NORMS) {
    it(`small CNN with ${norm}: a step descends along its gradient, BN nets memorize 16 images, constant tensor count, disk round trip`, async () => {
      const [x, y] = memorizationBatch(8);
      const probe = smallCnn({norm, inputShape: [8, 8, 3], seed: 1});
      assertFirstOrderDescent(probe, x, y, `small CNN ${norm}`);
      probe.dispose();
      const model = smallCnn({norm, inputShape: [8, 8, 3], seed: 1});
      const step = new TrainStep(model, {learningRate: 0.1});
      const losses = [step.run(x, y), step.run(x, y)];
      const count = tf.memory().numTensors;
      for (let i = 0; i < 13; i++) losses.push(step.run(x, y));
      assert.equal(tf.memory().numTensors, count, 'tensor count grew');
      // Without BatchNorm (none, convnorm-nobn) the net sits on the label marginal (2.253) for tens of
      // steps at this learning rate (the signal fades through the PyTorch-initialized layers).
      if (BATCH_NORMED.has(norm)) {
        assert.ok(losses.at(-1)! < 0.5 * losses[0], `loss did not fall below half: ${losses[0]} -> ${losses.at(-1)}`);
      }
      await assertRoundTrip(model, x, join(root, `cnn-${norm}`));
      tf.dispose([x, y]);
      step.dispose();
      model.dispose();
    });
  }

  it('small CNN with bn and the OCNN penalty as TrainStep\'s extraLoss: it trains, and the penalty shapes the kernels', () => {
    const [x, y] = memorizationBatch(8);
    const penaltyAfterTraining = (lambda: number) => {
      const model = smallCnn({norm: 'bn', inputShape: [8, 8, 3], seed: 1});
      const step = new TrainStep(model, {learningRate: 0.1, extraLoss: lambda > 0 ? ocnnLoss({lambda}) : undefined});
      const before = ocnnPenalty(model, {lambda: 1}).dataSync()[0];
      const first = step.step(x, y);
      if (lambda > 0) {
        assert.ok(relative(first.extraLoss, lambda * before) < 1e-5, `the step's extra loss ${first.extraLoss}`);
        assert.ok(Math.abs(first.loss - first.crossEntropy - first.extraLoss) < 1e-5, 'loss = cross-entropy + penalty');
      }
      let last = first;
      for (let i = 0; i < 12; i++) last = step.step(x, y);
      assert.ok(last.crossEntropy < 0.5 * first.crossEntropy,
                `lambda ${lambda}: cross-entropy ${first.crossEntropy} -> ${last.crossEntropy}`);
      const after = ocnnPenalty(model, {lambda: 1}).dataSync()[0];
      step.dispose();
      model.dispose();
      return after;
    };
    const plain = penaltyAfterTraining(0);
    const regularized = penaltyAfterTraining(0.05);
    assert.ok(regularized < 0.9 * plain, `penalty after training: ${regularized} with OCNN, ${plain} without`);
    tf.dispose([x, y]);
  });

  for (const norm of NORMS) {
    it(`ResNet-18 with ${norm}: a step descends along its gradient; disk round trip with the same inference predictions`, async () => {
      const model = resnet({depth: 18, norm, inputShape: [8, 8, 3], seed: 2});
      const expectedClass = {sn: 'SpectralNormConv2D', oni: 'OniConv2D'}[norm as string];
      if (expectedClass) assert.equal(model.layers.filter(l => l.getClassName() === expectedClass).length, 20);
      const [x, y] = memorizationBatch(8);
      assertFirstOrderDescent(model, x, y, `ResNet-18 ${norm}`);
      await assertRoundTrip(model, x, join(root, `resnet-${norm}`));
      tf.dispose([x, y]);
      model.dispose();
    });
  }

  // Without BatchNorm the PyTorch-initialized ResNet barely moves in 10 steps; the descent check above covers it.
  // ONI is left out too: its ten steps take half a minute (Newton iterations on 512 x 4608 kernels), and its
  // ResNet-18 descent and round trip are checked above, its layer against the authors' ONI_Conv2d in its own suite.
  for (const norm of NORMS.filter(n => BATCH_NORMED.has(n) && n !== 'oni')) {
    it(`ResNet-18 with ${norm} memorizes 16 images`, () => {
      const model = resnet({depth: 18, norm, inputShape: [8, 8, 3], seed: 2});
      // lr 0.1 overshoots on 16 images (the loss climbs to ~7 first).
      const step = new TrainStep(model, {learningRate: 0.02});
      const [x, y] = memorizationBatch(8);
      const losses: number[] = [];
      for (let i = 0; i < 10; i++) losses.push(step.run(x, y));
      assert.ok(losses.at(-1)! < 0.5 * losses[0], `loss did not fall below half: ${losses}`);
      tf.dispose([x, y]);
      step.dispose();
      model.dispose();
    });
  }
});
