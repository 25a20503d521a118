import assert from 'node:assert/strict';
import {before, describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {BatchNorm2D} from '../src/layers/batch_norm.js';
import {NormKind} from '../src/models/blocks.js';
import {resnet} from '../src/models/resnet.js';
import {smallCnn} from '../src/models/small_cnn.js';
import {TrainStep} from '../src/training/step.js';
import {useTestBackend} from './helpers/backends.js';
import {relativeError} from './helpers/numerics.js';
import {randomTensor} from './helpers/random.js';

describe('models and the training step (wasm)', () => {
  before(() => useTestBackend('wasm'));

  for (const norm of ['bn', 'convnorm', 'convnorm-nobn', 'none'] as NormKind[]) {
    it(`small CNN with ${norm} memorizes a batch, with a constant tensor count`, () => {
      const model = smallCnn({norm, seed: 1});
      const step = new TrainStep(model, {learningRate: 0.1});
      const x = randomTensor([8, 32, 32, 3], 5);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10);
      const losses = [step.run(x, y), step.run(x, y)];
      const count = tf.memory().numTensors;
      for (let i = 0; i < 38; i++) losses.push(step.run(x, y));
      assert.equal(tf.memory().numTensors, count, 'tensor count grew');
      assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
      // Without BatchNorm this plain SGD learns visibly slower; with it, the batch is nearly memorized.
      const factor = norm === 'bn' || norm === 'convnorm' ? 0.5 : 0.92;
      assert.ok(losses[losses.length - 1] < factor * losses[0], `loss did not fall: ${losses[0]} -> ${losses.at(-1)}`);
      tf.dispose([x, y]);
      step.dispose();
      model.dispose();
    });
  }

  it('ResNet-18 and -34 have the reference layout and run a ConvNorm training step', () => {
    const r18 = resnet({depth: 18, norm: 'convnorm', seed: 2});
    const convs = r18.layers.filter(l => l.getClassName() === 'ConvNorm2D');
    assert.equal(convs.length, 20, 'stem + 16 block convs + 3 shortcuts');
    assert.deepEqual(r18.outputs[0].shape, [null, 10]);
    const step = new TrainStep(r18, {learningRate: 0.01});
    const loss = step.run(randomTensor([2, 32, 32, 3], 3), tf.oneHot(tf.tensor1d([1, 2], 'int32'), 10));
    assert.ok(Number.isFinite(loss));
    step.dispose();
    const r34 = resnet({depth: 34, norm: 'bn', seed: 2});
    assert.equal(r34.layers.filter(l => l.getClassName() === 'Conv2D').length, 36, 'stem + 32 block convs + 3 shortcuts');
    assert.throws(() => resnet({depth: 50 as 18, norm: 'bn'}), /depth must be 18 or 34/);
    assert.throws(() => smallCnn({norm: 'layernorm' as NormKind}), /unknown norm 'layernorm'/);
  });

  it('the same seed builds the same weights', () => {
    const a = smallCnn({norm: 'convnorm', seed: 4}).getWeights().map(w => w.dataSync());
    const b = smallCnn({norm: 'convnorm', seed: 4}).getWeights().map(w => w.dataSync());
    assert.deepEqual(a, b);
  });
});

describe('BatchNorm2D (PyTorch semantics)', () => {
  before(() => useTestBackend('cpu'));

  it('normalizes with batch statistics and keeps the unbiased running variance', () => {
    const layer = new BatchNorm2D();
    const x = tf.add(tf.mul(randomTensor([4, 3, 3, 2], 8), 3), 1);
    const out = layer.apply(x, {training: true}) as tf.Tensor;
    const {mean, variance} = tf.moments(x, [0, 1, 2]);
    const expected = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5)));
    assert.ok(relativeError(out, expected) < 1e-6);
    const byName = (n: string) => layer.weights.find(w => w.originalName.endsWith(n))!.read();
    assert.ok(relativeError(byName('moving_mean'), tf.mul(mean, 0.1)) < 1e-6);
    const unbiased = tf.mul(variance, 36 / 35);
    assert.ok(relativeError(byName('moving_variance'), tf.add(0.9, tf.mul(unbiased, 0.1))) < 1e-6);
    const inference = layer.apply(x, {training: false}) as tf.Tensor;
    const expectedInference = tf.div(tf.sub(x, byName('moving_mean')), tf.sqrt(tf.add(byName('moving_variance'), 1e-5)));
    assert.ok(relativeError(inference, expectedInference) < 1e-6);
    const copy = tfl.layers.Layer.fromConfig(BatchNorm2D, layer.getConfig()) as BatchNorm2D;
    assert.equal(copy.affine, true);
  });
});
