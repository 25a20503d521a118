/**
 * The training kernels registered on wasm against tfjs's cpu backend:
 * conv2d and depthwiseConv2d and their gradients over strides 1-3, kernel sizes 1-5
 * (square and not), 'same' and 'valid' padding, odd input sizes.
 * Tolerance: 1e-4 norm-wise relative error.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import {IMAGE_TO_SPECTRUM, PRECONDITIONING_SPECTRUM} from '../src/common/kernel_names.js';
import {convNorm} from '../src/convnorm/op.js';
import {convNormSpectrum} from '../src/convnorm/spectrum.js';
import {BATCH_NORM_BACKWARD, BATCH_NORM_FORWARD} from '../src/engine/batch_norm_kernels.js';
import {SimdExports, setSimdKernels, simdKernels} from '../src/engine/simd.js';
import {SimdHelpers} from '../src/node/simd_helpers.js';
import {collapseTranspose, registerWasmTrainingKernels} from '../src/engine/wasm_kernels.js';
import {useTestBackend, useThreadedWasm} from './helpers/backends.js';
import {assertClose} from './helpers/numerics.js';
import {randomTensor} from './helpers/random.js';

useThreadedWasm();

type Grads = tf.Tensor[];

/** Runs fn on `backend`; on wasm, with the SIMD kernels (checked to be there) or with their fallbacks. */
async function gradsOn(backend: 'cpu' | 'wasm', fn: () => Grads, simd = true): Promise<Float32Array[]> {
  await useTestBackend(backend);
  if (backend === 'wasm' && simd) assert.ok(simdKernels(tf.backend()) !== undefined, 'the SIMD module did not load');
  setSimdKernels(simd);
  try {
    return tf.tidy(() => fn().map(g => g.dataSync() as Float32Array));
  } finally {
    setSimdKernels(true);
  }
}

const SIMD = [true, false];
const simdName = (simd: boolean) => `SIMD kernels ${simd ? 'on' : 'off'}`;

const KERNELS: Array<[number, number]> = [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [3, 1], [2, 5]];

describe('wasm training kernels match cpu', () => {
  registerWasmTrainingKernels();
  for (const [depthwise, simd] of [false, true].flatMap(d => SIMD.map(s => [d, s]))) {
    it(`${depthwise ? 'depthwiseConv2d (multipliers 1, 2)' : 'conv2d'} gradients, ${simdName(simd)}`, async () => {
      let seed = 1;
      for (const [kh, kw] of KERNELS) {
        for (const stride of [1, 2, 3]) {
          for (const pad of ['same', 'valid'] as const) {
            // conv2d: 9 -> 19 channels runs the SIMD filter gradient's blocks of 4 x 8 channels and
            // its leftover input channel and output columns; 3 -> 4 only leftovers. depthwise: 13
            // channels run the SIMD convolution's blocks of 4 and a leftover channel.
            for (const [multiplier, channels] of depthwise ? [[1, 3], [2, 3], [1, 13]] : [[1, 3], [1, 9]]) {
              const [n, h, w, ci] = [2, 9, 7, channels];
              const co = depthwise ? ci * multiplier : ci === 3 ? 4 : 19;
              const s = seed++;
              const run = () => {
                const x = randomTensor([n, h, w, ci], s) as tf.Tensor4D;
                const filter = randomTensor([kh, kw, ci, depthwise ? multiplier : co], s + 1000) as tf.Tensor4D;
                const f = (a: tf.Tensor, b: tf.Tensor) => {
                  const y = depthwise
                    ? tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad)
                    : tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad);
                  return tf.sum(tf.mul(y, randomTensor(y.shape, s + 2000)));
                };
                const y = depthwise ? tf.depthwiseConv2d(x, filter, stride, pad) : tf.conv2d(x, filter, stride, pad);
                return [...tf.grads(f)([x, filter]), y];
              };
              const expected = await gradsOn('cpu', run);
              const actual = await gradsOn('wasm', run, simd);
              const what = `${kh}x${kw} stride ${stride} ${pad} multiplier ${multiplier} ci ${ci} co ${co}`;
              tf.tidy(() => {
                assertClose(tf.tensor(actual[0]), tf.tensor(expected[0]), 1e-4, `${what}: d/dx`);
                assertClose(tf.tensor(actual[1]), tf.tensor(expected[1]), 1e-4, `${what}: d/dfilter`);
                // The forward pass too: tfjs-wasm's own is wrong for some 'same' cases at stride 3.
                assertClose(tf.tensor(actual[2]), tf.tensor(expected[2]), 1e-4, `${what}: y`);
              });
            }
          }
        }
      }
    });
  }
});

describe("a strided convolution's input gradient", () => {
  it('places its phases with the SIMD module as stacking them does, bit for bit, its images shared between threads', async () => {
    registerWasmTrainingKernels();
    // 40 channels (under 64): the phases' correlations run on XNNPACK either way, so only the
    // placement differs. 8 images of 33 x 31 x 40 (over 64K floats per phase: the helpers take a share);
    // 1x1 at stride 2 and 3 leaves phases that no tap reaches.
    for (const [k, stride, depthwise] of [[3, 2, false], [1, 2, false], [1, 3, false], [2, 3, false], [3, 2, true],
                                          [1, 3, true]] as const) {
      const run = () => {
        const x = randomTensor([8, 33, 31, 40], 81 + k) as tf.Tensor4D;
        const filter = randomTensor([k, k, 40, depthwise ? 1 : 24], 82 + stride) as tf.Tensor4D;
        const y = (a: tf.Tensor) => depthwise ? tf.depthwiseConv2d(a as tf.Tensor4D, filter, stride, 'same')
                                              : tf.conv2d(a as tf.Tensor4D, filter, stride, 'same');
        return [tf.grad(a => tf.sum(tf.mul(y(a), randomTensor(y(x).shape, 83))))(x)];
      };
      const [placed] = await gradsOn('wasm', run, true);
      const [stacked] = await gradsOn('wasm', run, false);
      assert.ok(placed.some(v => v !== 0), 'the gradient is all zeros');
      assert.deepEqual(placed, stacked, `${k}x${k} stride ${stride}${depthwise ? ' depthwise' : ''}`);
    }
  });
});

describe('wasm MaxPoolGrad matches cpu', () => {
  it('with ties, a NaN, overlapping windows and padding, its images shared between threads', async () => {
    registerWasmTrainingKernels();
    // Values on a coarse grid, so windows hold ties (the first maximum takes dy); 8 images of 17 x 19 x 13
    // (over 64K inputs: the helpers take a share).
    const x = () => tf.tidy(() => {
      const grid = tf.round(tf.mul(randomTensor([8, 17, 19, 13], 71), 2));
      return tf.where(tf.equal(tf.reshape(tf.range(0, grid.size), grid.shape), 100), tf.fill(grid.shape as [number, number, number, number], NaN), grid);
    }) as tf.Tensor4D;
    for (const [size, stride, pad] of [[2, 2, 'valid'], [3, 2, 'same'], [3, 1, 'same'], [2, 3, 'valid']] as const) {
      const run = () => {
        const input = x();
        const y = tf.maxPool(input, size, stride, pad);
        return [tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, size, stride, pad),
                                                         randomTensor(y.shape, 72))))(input)];
      };
      const expected = await gradsOn('cpu', run);
      const actual = await gradsOn('wasm', run);
      tf.tidy(() => assertClose(tf.tensor(actual[0]), tf.tensor(expected[0]), 1e-6, `${size}x${size} stride ${stride} ${pad}`));
    }
  });
});

describe('wasm Slice, Sum and BatchMatMul match cpu', () => {
  registerWasmTrainingKernels();
  // Tolerance 1e-6, or `tolerance` where float32 sums run over thousands of terms in another order.
  const compare = async (what: string, run: () => tf.Tensor, tolerance = 1e-6) => {
    const expected = await gradsOn('cpu', () => [run()]);
    for (const simd of SIMD) {
      const actual = await gradsOn('wasm', () => [run()], simd);
      const label = `${what}, ${simdName(simd)}`;
      assert.deepEqual(actual[0].length, expected[0].length, label);
      if (expected[0].length > 0) {
        tf.tidy(() => assertClose(tf.tensor(actual[0]), tf.tensor(expected[0]), tolerance, label));
      }
    }
  };

  it('Slice: contiguous, strided, every rank, empty', async () => {
    const cases: Array<[number[], number[], number[]]> = [
      [[10], [3], [4]],
      [[6, 5], [1, 0], [3, 5]],
      [[6, 5], [2, 1], [3, 3]],
      [[4, 5, 6], [1, 2, 0], [2, 2, 6]],
      [[4, 5, 6], [0, 1, 2], [4, 3, 3]],
      [[3, 4, 5, 6], [1, 0, 2, 1], [2, 4, 2, 4]],
      [[2, 3, 4, 5, 6], [1, 1, 0, 2, 3], [1, 2, 4, 2, 2]],
      [[4, 5], [1, 1], [0, 3]],
    ];
    for (const [shape, begin, size] of cases) {
      await compare(`slice ${shape} at ${begin} size ${size}`,
                    () => tf.slice(randomTensor(shape, shape.length), begin, size));
    }
  });

  it('Transpose: axes that move together merged (rank 5 and 6, size-1 axes, identity after merging)', async () => {
    const cases: Array<[number[], number[]]> = [
      [[3, 4, 5, 2, 6], [3, 4, 2, 0, 1]],
      [[3, 4, 5, 2, 6], [4, 3, 2, 1, 0]],
      [[2, 3, 4, 5, 6], [0, 1, 4, 3, 2]],
      [[2, 1, 4, 5, 3, 2], [4, 5, 0, 1, 2, 3]],
      [[4, 5, 1, 6], [0, 2, 1, 3]],
      [[4, 5, 6], [2, 0, 1]],
      [[7, 9], [1, 0]],
      // SIMD planes: 4 x 4 blocks, 32 x 32 tiles and their ragged edges; two looped axes and more.
      [[37, 70], [1, 0]],
      [[3, 33, 2, 35], [0, 3, 2, 1]],
      [[2, 3, 5, 6, 9, 7], [5, 1, 3, 0, 4, 2]],
      [[66, 5, 8], [2, 1, 0]],
      // Large enough (64K elements) to be shared with the helper threads: the spectrum layouts.
      [[2, 18, 34, 130], [3, 2, 0, 1]],
      [[130, 34, 2, 18], [3, 2, 1, 0]],
      [[70, 33, 36], [0, 2, 1]],
    ];
    for (const [shape, perm] of cases) {
      await compare(`transpose ${shape} by ${perm}`, () => tf.transpose(randomTensor(shape, shape.length), perm));
    }
    await compare('int32 transpose', () => tf.transpose(tf.reshape(tf.range(0, 5 * 6 * 7, 1, 'int32'), [5, 6, 7]), [2, 0, 1]));
    assert.deepEqual(collapseTranspose([2, 3, 4, 5, 6], [3, 4, 2, 0, 1]), {shape: [6, 4, 30], perm: [2, 1, 0]});
    assert.deepEqual(collapseTranspose([4, 5, 1, 6], [0, 2, 1, 3]), {shape: [120], perm: [0]});
  });

  it('Add, Sub and Multiply: same shapes (small, and shared with the helper threads), and broadcast', async () => {
    for (const op of [tf.add, tf.sub, tf.mul]) {
      for (const [sa, sb] of [[[3, 5], [3, 5]], [[7, 101, 97], [7, 101, 97]], [[7, 101, 97], [97]], [[4, 1], [1, 6]]]) {
        await compare(`${op.name} ${sa} and ${sb}`, () => op(randomTensor(sa, 3), randomTensor(sb, 4)));
      }
    }
  });

  it('Sum over adjacent axes before the last (its own kernel) and over others (tfjs\'s), with keepDims', async () => {
    const cases: Array<[number[], number[], boolean]> = [
      [[4, 5, 6, 7], [0, 1, 2], false],
      [[4, 5, 6, 7], [2, 0, 1], true],
      [[9, 3], [0], false],
      [[3, 4, 5], [0, 1], true],
      // Middle axes (ConvNorm's V sums [F, C_in, C_out] over C_in); then axes that are not adjacent.
      [[4, 5, 6, 7], [1, 2], false],
      [[6, 9, 5], [1], false],
      [[2, 3, 4, 5], [1], true],
      [[4, 5, 6, 7], [0, 2], false],
      [[4, 5, 6, 7], [0, 1, 2, 3], false],
      [[4, 5, 6], [-1], false],
    ];
    for (const [shape, axes, keepDims] of cases) {
      await compare(`sum ${shape} over ${axes} keepDims=${keepDims}`,
                    () => tf.sum(randomTensor(shape, shape.length, 3), axes, keepDims));
    }
  });

  it('BatchMatMul: batched (small and large entries), transposed, broadcast, and their gradients', async () => {
    const cases: Array<[number[], number[], boolean, boolean]> = [
      [[5, 3, 4], [5, 4, 2], false, false],
      [[5, 4, 3], [5, 4, 2], true, false],
      [[5, 3, 4], [5, 2, 4], false, true],
      [[5, 4, 3], [5, 2, 4], true, true],
      [[2, 3, 3, 4], [2, 3, 4, 5], false, false],
      [[1, 3, 4], [6, 4, 2], false, false],
      [[6, 3, 4], [4, 2], false, false],
      // Row and column counts off the SIMD product's 4 x 8 blocks; more entries than threads.
      [[7, 37, 29], [7, 29, 19], false, false],
      // Single products shared between threads by rows (with 64-row blocks and a 4-column strip),
      // and by 8-column blocks (few rows: 2 x 16 blocks, then 8-, 4- and 1-column strips, and an odd
      // row; the gradients have a long inner dimension).
      [[300, 29], [29, 36], false, false],
      [[9, 24], [24, 8200], false, false],
      [[9, 90], [90, 8201], false, false],
      [[5, 33], [33, 45], false, false],
      // A transposed left operand read in place: batched with 64-row blocks, by rows, and few rows.
      [[2, 29, 300], [2, 29, 36], true, false],
      [[29, 300], [29, 36], true, false],
      [[64, 9], [64, 8200], true, false],
      // Entries large enough for XNNPACK's blocked kernels.
      [[3, 64, 48], [3, 48, 64], false, false],
      [[3, 48, 64], [3, 64, 48], true, true],
      [[1, 64, 48], [3, 48, 64], false, false],
      // Few rows against many columns: computed as (B^T A^T)^T.
      [[3, 8, 48], [3, 48, 64], false, false],
      [[3, 48, 8], [3, 64, 48], true, true],
      [[3, 48, 8], [3, 48, 64], true, false],
      [[3, 8, 48], [1, 48, 64], false, false],
      [[1, 8, 48], [3, 48, 64], false, false],
      [[2, 3, 8, 48], [2, 3, 64, 48], false, true],
    ];
    for (const [sa, sb, ta, tb] of cases) {
      const what = `matMul ${sa} x ${sb} transposeA=${ta} transposeB=${tb}`;
      // The gradients of the 8200-column products sum 8200 terms: 1e-5.
      const tolerance = Math.max(...sa, ...sb) > 1000 ? 1e-5 : 1e-6;
      await compare(what, () => tf.matMul(randomTensor(sa, 1), randomTensor(sb, 2), ta, tb), tolerance);
      // tfjs-core's BatchMatMul gradient does not reduce broadcast batch axes, on any backend.
      if (tf.util.sizeFromShape(sa.slice(0, -2)) !== tf.util.sizeFromShape(sb.slice(0, -2))) continue;
      await compare(`${what}: gradients`, () => {
        const [ga, gb] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a, b, ta, tb))))(
          [randomTensor(sa, 1), randomTensor(sb, 2)]);
        return tf.concat([tf.reshape(ga, [-1]), tf.reshape(gb, [-1])]);
      }, tolerance);
    }
  });
});

describe('the SIMD module', () => {
  it('gives the results of the JS loops it replaces, bit for bit (BatchNorm, depthwise filter gradient, Sum)', async () => {
    await useTestBackend('wasm');
    // 13 channels: SIMD lanes plus a remainder; mean 3, std 2 so the BatchNorm pivot matters;
    // over 64K elements, so that the helper threads take their share.
    const run = () => {
      const x = tf.add(tf.mul(randomTensor([8, 33, 31, 13], 31), 2), 3) as tf.Tensor4D;
      const dy = randomTensor([8, 33, 31, 13], 32);
      const gamma = randomTensor([13], 33);
      const beta = randomTensor([13], 34);
      const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_FORWARD, {x, gamma, beta}, {epsilon: 1e-3}) as tf.Tensor[];
      const bnGrads = tf.engine().runKernel(BATCH_NORM_BACKWARD, {dy, x, mean, variance, gamma}, {epsilon: 1e-3}) as tf.Tensor[];
      const filterGrads = [1, 2].map(stride => {
        const dyConv = randomTensor(tf.depthwiseConv2d(x, tf.ones([3, 3, 13, 1]), stride, 'same').shape, 35 + stride);
        return tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', {x, dy: dyConv},
                                     {strides: stride, pad: 'same', dilations: 1, filterShape: [3, 3, 13, 1]}) as tf.Tensor;
      });
      return [y, mean, variance, ...bnGrads, ...filterGrads, tf.sum(x, [0, 1, 2])];
    };
    const simd = await gradsOn('wasm', run, true);
    const js = await gradsOn('wasm', run, false);
    const names = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta', 'filter gradient stride 1',
                   'filter gradient stride 2', 'sum'];
    simd.forEach((values, i) => assert.deepEqual(values, js[i], names[i]));
  });
});

describe('SIMD helper threads', () => {
  it('compute their share of a batch of products, and a failing share is an error, not a hang', async () => {
    await useTestBackend('wasm');
    const kernels = simdKernels(tf.backend())!;
    // A memory of their own (one 64 KB page), so that the failing job cannot touch tfjs's.
    const memory = new WebAssembly.Memory({initial: 1, maximum: 1, shared: true});
    assert.ok(kernels.memory.buffer instanceof SharedArrayBuffer, 'the threaded wasm backend did not start');
    const helpers = await SimdHelpers.start(kernels.compiled, memory, 2);
    const direct = new WebAssembly.Instance(kernels.compiled, {env: {memory}}).exports as unknown as SimdExports;
    const heap = new Float32Array(memory.buffer);
    // 6 products of 3 x 5 by 5 x 9: a at 0, b at 4096, c at 8192 (bytes).
    const [m, k, n, batch] = [3, 5, 9, 6];
    const values = randomTensor([batch * (m * k + k * n)], 41).dataSync();
    heap.set(values.subarray(0, batch * m * k), 0);
    heap.set(values.subarray(batch * m * k), 1024);
    const expected = new Float32Array(batch * m * n);
    for (let e = 0; e < batch; e++) {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let t = 0; t < k; t++) s += heap[e * m * k + i * k + t] * heap[1024 + e * k * n + t * n + j];
          expected[e * m * n + i * n + j] = s;
        }
      }
    }
    const args = [0, 4096, 8192, m, k, n, m * k, k * n, 0];
    // No packing scratch: 3 rows are too few for it.
    const run = (c: number) => helpers.split('gemm_batch', () => [...args.slice(0, 2), c, ...args.slice(3), 0], batch,
                                             (first, last) => direct.gemm_batch(0, 4096, c, m, k, n, m * k, k * n, 0, 0,
                                                                                first, last));
    run(8192);
    assertClose(tf.tensor(heap.slice(2048, 2048 + batch * m * n)), tf.tensor(expected), 1e-6, 'products');
    // Outputs past the end of the memory for the helpers' entries only: they trap.
    const late = 65536 - 4 * m * n * 2;
    assert.throws(() => run(late), /SIMD helper thread failed/);
    heap.fill(0, 2048, 2048 + batch * m * n);
    run(8192);
    assertClose(tf.tensor(heap.slice(2048, 2048 + batch * m * n)), tf.tensor(expected), 1e-6, 'after a failure');
  });
});

describe('the SIMD conv2d filter gradient', () => {
  it('matches cpu when shared with the helper threads in chunks that cross images, and the share does not change it', async () => {
    registerWasmTrainingKernels();
    for (const [stride, pad] of [[1, 'same'], [2, 'valid']] as const) {
      const x = () => randomTensor([8, 17, 15, 9], 51) as tf.Tensor4D;
      const outSize = (size: number) => (pad === 'same' ? Math.ceil(size / stride) : Math.ceil((size - 2) / stride));
      const dy = () => randomTensor([8, outSize(17), outSize(15), 19], 52) as tf.Tensor4D;
      const gradient = () => [tf.engine().runKernel('Conv2DBackpropFilter', {x: x(), dy: dy()},
                                                    {strides: [stride, stride], pad, dataFormat: 'NHWC', filterShape: [3, 3, 9, 19]}) as
                              tf.Tensor];
      const expected = await gradsOn('cpu', gradient);
      const shared = await gradsOn('wasm', gradient);
      assertClose(tf.tensor(shared[0]), tf.tensor(expected[0]), 1e-4, `stride ${stride} ${pad}`);
      // The same kernel over every item on this thread alone: bit for bit.
      const kernels = simdKernels(tf.backend())!;
      assert.ok(kernels.helpers !== undefined && kernels.helpers.count > 0, 'no helper threads');
      const wasm = tf.backend() as unknown as {dataIdMap: {get(id: object): {memoryOffset: number}}};
      const [xs, dys, out] = [x(), dy(), tf.zeros([3, 3, 9, 19])];
      const at = (t: tf.Tensor) => wasm.dataIdMap.get(t.dataId).memoryOffset;
      const ho = dys.shape[1];
      const wo = dys.shape[2];
      const [top, left] = pad === 'same' ? [1, 1] : [0, 0];
      kernels.exports.conv_filter_gradient(at(xs), at(dys), at(out), 8, 17, 15, 9, ho, wo, 19, 3, 3, stride, stride,
                                           top, left, 5, 0, 27);
      assert.deepEqual(Array.from(out.dataSync()), Array.from(shared[0]), `stride ${stride} ${pad}: one thread`);
      tf.dispose([xs, dys, out]);
    }
    // Channels-first data is refused by name rather than read as NHWC.
    assert.throws(() => tf.engine().runKernel('Conv2DBackpropFilter', {x: tf.ones([1, 3, 5, 5]), dy: tf.ones([1, 3, 5, 5])},
                                              {strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 3, 3]}),
                  /NHWC data, not NCHW/);
  });
});

describe('the SIMD convolution (64 input channels or more)', () => {
  it('matches cpu with its gradients over kernel sizes, strides 1-3, both paddings, fused and not', async () => {
    registerWasmTrainingKernels();
    let seed = 300;
    for (const [kh, kw] of [[3, 3], [1, 1], [2, 5]]) {
      for (const stride of [1, 2, 3]) {
        for (const pad of ['same', 'valid'] as const) {
          // 67 output channels: 8 blocks of 8 and 3 left over; dx is then a convolution of 67 channels,
          // also on the module. 3 x 9 x 7 positions: blocks of 64 and quads with a remainder.
          const s = seed++;
          const run = () => {
            const x = randomTensor([3, 9, 7, 64], s);
            const filter = randomTensor([kh, kw, 64, 67], s + 1000);
            const f = (a: tf.Tensor, b: tf.Tensor) => {
              const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad);
              return tf.sum(tf.mul(y, randomTensor(y.shape, s + 2000)));
            };
            const [dx, dFilter] = tf.grads(f)([x, filter]);
            return [tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, stride, pad), dx, dFilter,
                    tf.fused.conv2d({x: x as tf.Tensor4D, filter: filter as tf.Tensor4D, strides: stride, pad}),
                    tf.fused.conv2d({x: x as tf.Tensor4D, filter: filter as tf.Tensor4D, strides: stride, pad,
                                     bias: randomTensor([67], s + 3000), activation: 'relu'})];
          };
          const expected = await gradsOn('cpu', run);
          const actual = await gradsOn('wasm', run);
          const names = ['y', 'dx', 'dfilter', 'fused y', 'fused y + bias, relu'];
          tf.tidy(() => names.forEach((name, i) => assertClose(tf.tensor(actual[i]), tf.tensor(expected[i]), 1e-4,
                                                               `${kh}x${kw} stride ${stride} ${pad}: ${name}`)));
        }
      }
    }
  });
});

describe("the Fourier ConvNorm's transform kernels", () => {
  it('give convNorm and its gradients as the tf-op form does on cpu, with SIMD on (shared between threads) and off', async () => {
    // 6 images of 33 x 15 x 24 -> 20: both transforms share images between threads, run packed (38
    // and 33 rows) and unpacked (18 rows) products, and leave partial 8-column strips (24 and 20).
    // 2 images of 8 x 8 x 64 -> 64: too little work to share, so one thread takes both of the taps'
    // gradient's blocks of 32 input channels. 4 images of 9 x 7 x 3 -> 12: the input's transforms
    // in the height-first order of fewer than 8 channels, the output's in the width-first one.
    for (const [[n, h, w, cin, cout], strides] of [[[6, 33, 15, 24, 20], 1], [[6, 33, 15, 24, 20], 2],
                                                   [[2, 8, 8, 64, 64], 1], [[4, 9, 7, 3, 12], 1]] as const) {
      const run = () => {
        const x = randomTensor([n, h, w, cin], 61 + strides) as tf.Tensor4D;
        const kernel = randomTensor([3, 3, cin, cout], 63 + strides) as tf.Tensor4D;
        const f = (a: tf.Tensor, k: tf.Tensor) => {
          const y = convNorm(a as tf.Tensor4D, k as tf.Tensor4D, {strides, padding: 1, method: 'fourier'});
          return tf.sum(tf.mul(y, randomTensor(y.shape, 65)));
        };
        return [convNorm(x, kernel, {strides, padding: 1, method: 'fourier'}), ...tf.grads(f)([x, kernel])];
      };
      const expected = await gradsOn('cpu', run);
      for (const simd of SIMD) {
        await useTestBackend('wasm');
        assert.ok(tf.getKernel(IMAGE_TO_SPECTRUM, 'wasm') !== undefined, 'the transform kernels are not registered');
        const actual = await gradsOn('wasm', run, simd);
        ['output', 'd/dx', 'd/dkernel'].forEach((what, i) => tf.tidy(() =>
          assertClose(tf.tensor(actual[i]), tf.tensor(expected[i]), 1e-5,
                      `${n}x${h}x${w}x${cin} -> ${cout} stride ${strides}, ${simdName(simd)}: ${what}`)));
      }
    }
  });
});

describe('the preconditioning spectrum kernel', () => {
  /** V from its definition in float64: (sum over j of |DFT2 of kernel[:, :, j, k] on mh x mw|^2 + epsilon)^(-1/2). */
  function spectrumFloat64(kernel: Float32Array, [kh, kw, cin, cout]: number[], [mh, mw]: number[], epsilon: number) {
    const fw = Math.floor(mw / 2) + 1;
    const v = new Float64Array(cout * mh * fw);
    for (let k = 0; k < cout; k++) {
      for (let p = 0; p < mh; p++) {
        for (let q = 0; q < fw; q++) {
          let power = 0;
          for (let j = 0; j < cin; j++) {
            let re = 0, im = 0;
            for (let a = 0; a < kh; a++) {
              for (let b = 0; b < kw; b++) {
                const angle = -2 * Math.PI * (p * a / mh + q * b / mw);
                const w = kernel[((a * kw + b) * cin + j) * cout + k];
                re += w * Math.cos(angle);
                im += w * Math.sin(angle);
              }
            }
            power += re * re + im * im;
          }
          v[(k * mh + p) * fw + q] = 1 / Math.sqrt(power + epsilon);
        }
      }
    }
    return v;
  }

  it('gives V from the taps as its float64 definition does, shared between threads or not, SIMD on and off', async () => {
    // 24 -> 22 channels on 34 x 34: shared (2.9M multiply-adds), columns in blocks of 4 and a
    // leftover pair; 5 -> 7 with a 2 x 5 kernel on 10 x 9: one thread, 4 + 3 columns. Output
    // channel 3 of the first is all zeros: V = epsilon^(-1/2) there.
    await useTestBackend('wasm');
    for (const [shape, size] of [[[3, 3, 24, 22], [34, 34]], [[2, 5, 5, 7], [10, 9]]] as const) {
      const values = randomTensor([...shape], 71 + shape[2]).dataSync() as Float32Array;
      if (shape[3] === 22) for (let e = 3; e < values.length; e += 22) values[e] = 0;
      const expected = spectrumFloat64(values, [...shape], [...size], 1e-12);
      for (const simd of SIMD) {
        assert.ok(tf.getKernel(PRECONDITIONING_SPECTRUM, 'wasm') !== undefined, 'the spectrum kernel is not registered');
        setSimdKernels(simd);
        try {
          const before = tf.memory().numTensors;
          const actual = tf.tidy(() => convNormSpectrum(tf.tensor4d(values, [...shape]), size).dataSync());
          assert.equal(tf.memory().numTensors, before, 'tensors left behind');
          let worst = 0;
          for (let i = 0; i < expected.length; i++) {
            worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.abs(expected[i]));
          }
          // float32 sums of 9 x 24 terms: relative error ~1e-6.
          assert.ok(worst < 1e-5, `[${shape}] on [${size}], ${simdName(simd)}: worst relative error ${worst}`);
          if (shape[3] === 22) assert.equal(actual[3 * size[0] * 18], 1e6);
        } finally {
          setSimdKernels(true);
        }
      }
    }
  });
});
