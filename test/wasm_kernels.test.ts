/**
 * The training kernels registered on wasm against tfjs's cpu backend:
 * gradients of conv2d and depthwiseConv2d over strides 1-3, kernel sizes 1-5
 * (square and not), 'same' and 'valid' padding, odd input sizes.
 * Tolerance: 1e-4 norm-wise relative error.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import {collapseTranspose, registerWasmTrainingKernels} from '../src/engine/wasm_kernels.js';
import {useTestBackend} from './helpers/backends.js';
import {assertClose} from './helpers/numerics.js';
import {randomTensor} from './helpers/random.js';

type Grads = tf.Tensor[];

async function gradsOn(backend: 'cpu' | 'wasm', fn: () => Grads): Promise<Float32Array[]> {
  await useTestBackend(backend);
  return tf.tidy(() => fn().map(g => g.dataSync() as Float32Array));
}

const KERNELS: Array<[number, number]> = [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [3, 1], [2, 5]];

describe('wasm training kernels match cpu', () => {
  registerWasmTrainingKernels();
  for (const depthwise of [false, true]) {
    it(`${depthwise ? 'depthwiseConv2d (multipliers 1, 2)' : 'conv2d'} gradients`, async () => {
      let seed = 1;
      for (const [kh, kw] of KERNELS) {
        for (const stride of [1, 2, 3]) {
          for (const pad of ['same', 'valid'] as const) {
            for (const multiplier of depthwise ? [1, 2] : [1]) {
              const [n, h, w, ci] = [2, 9, 7, 3];
              const co = depthwise ? ci * multiplier : 4;
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
                return tf.grads(f)([x, filter]);
              };
              const expected = await gradsOn('cpu', run);
              const actual = await gradsOn('wasm', run);
              const what = `${kh}x${kw} stride ${stride} ${pad} multiplier ${multiplier} co ${co}`;
              tf.tidy(() => {
                assertClose(tf.tensor(actual[0]), tf.tensor(expected[0]), 1e-4, `${what}: d/dx`);
                assertClose(tf.tensor(actual[1]), tf.tensor(expected[1]), 1e-4, `${what}: d/dfilter`);
              });
            }
          }
        }
      }
    });
  }
});

describe('wasm Slice, Sum and BatchMatMul match cpu', () => {
  registerWasmTrainingKernels();
  const compare = async (what: string, run: () => tf.Tensor) => {
    const expected = await gradsOn('cpu', () => [run()]);
    const actual = await gradsOn('wasm', () => [run()]);
    assert.deepEqual(actual[0].length, expected[0].length, what);
    if (expected[0].length > 0) {
      tf.tidy(() => assertClose(tf.tensor(actual[0]), tf.tensor(expected[0]), 1e-6, what));
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
    ];
    for (const [shape, perm] of cases) {
      await compare(`transpose ${shape} by ${perm}`, () => tf.transpose(randomTensor(shape, shape.length), perm));
    }
    assert.deepEqual(collapseTranspose([2, 3, 4, 5, 6], [3, 4, 2, 0, 1]), {shape: [6, 4, 30], perm: [2, 1, 0]});
    assert.deepEqual(collapseTranspose([4, 5, 1, 6], [0, 2, 1, 3]), {shape: [120], perm: [0]});
  });

  it('Sum over leading axes (its own kernel) and over others (tfjs\'s), with keepDims', async () => {
    const cases: Array<[number[], number[], boolean]> = [
      [[4, 5, 6, 7], [0, 1, 2], false],
      [[4, 5, 6, 7], [2, 0, 1], true],
      [[9, 3], [0], false],
      [[3, 4, 5], [0, 1], true],
      [[4, 5, 6, 7], [1, 2], false],
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
      await compare(what, () => tf.matMul(randomTensor(sa, 1), randomTensor(sb, 2), ta, tb));
      // tfjs-core's BatchMatMul gradient does not reduce broadcast batch axes, on any backend.
      if (tf.util.sizeFromShape(sa.slice(0, -2)) !== tf.util.sizeFromShape(sb.slice(0, -2))) continue;
      await compare(`${what}: gradients`, () => {
        const [ga, gb] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a, b, ta, tb))))(
          [randomTensor(sa, 1), randomTensor(sb, 2)]);
        return tf.concat([tf.reshape(ga, [-1]), tf.reshape(gb, [-1])]);
      });
    }
  });
});
