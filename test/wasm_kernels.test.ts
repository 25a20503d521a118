/**
 * The training kernels registered on wasm against tfjs's cpu backend:
 * gradients of conv2d and depthwiseConv2d over strides 1-3, kernel sizes 1-5
 * (square and not), 'same' and 'valid' padding, odd input sizes.
 * Tolerance: 1e-4 norm-wise relative error.
 */
import {describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import {registerWasmTrainingKernels} from '../src/engine/wasm_kernels.js';
import {useTestBackend} from './helpers/backends.js';
import {assertClose} from './helpers/numerics.js';
import {randomTensor} from './helpers/random.js';

type Grads = tf.Tensor[];

async function gradsOn(backend: string, fn: () => Grads): Promise<Float32Array[]> {
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
