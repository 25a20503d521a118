import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import {useBackend} from '../src/engine/backend.js';

describe('useBackend', () => {
  it('picks wasm when tfjs-node is absent, and can train a conv on it', async () => {
    assert.equal(await useBackend(), 'wasm');
    const x = tf.randomNormal([2, 5, 5, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const k = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
    const [gx, gk] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same')))([x, k]);
    assert.deepEqual(gx.shape, x.shape);
    assert.deepEqual(gk.shape, k.shape);
  });

  it('switches to a named backend and refuses unknown names', async () => {
    assert.equal(await useBackend('cpu'), 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    await assert.rejects(useBackend('webgpu' as never), /unknown backend 'webgpu'/);
    await assert.rejects(useBackend('tensorflow'), /tfjs-node is not installed/);
  });
});
