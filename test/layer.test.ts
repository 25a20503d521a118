import assert from 'node:assert/strict';
import {copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {after, before, describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {ConvNorm2D, convNorm, convNorm2d, ConvNormArgumentError, convNormSpectrum, fileSystem,
        registerFileSystemRouter} from '../src/node.js';
import {useTestBackend} from './helpers/backends.js';
import {relativeError} from './helpers/numerics.js';
import {randomTensor} from './helpers/random.js';

function weight(layer: tfl.layers.Layer, name: string): tf.Tensor {
  const w = layer.weights.find(v => v.originalName.split('/').pop() === name);
  assert.ok(w, `layer has no weight ${name}`);
  return w.read();
}

function smallModel(seed: number): tfl.Sequential {
  const model = tfl.sequential({layers: [
    convNorm2d({inputShape: [8, 8, 3], filters: 4, kernelSize: 3, padding: 'same', seed}),
    tfl.layers.activation({activation: 'relu'}),
    convNorm2d({filters: 6, kernelSize: 3, strides: 2, padding: 1, seed: seed + 10}),
    tfl.layers.flatten(),
    tfl.layers.dense({units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({seed})}),
  ]});
  model.compile({optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy'});
  return model;
}

describe('ConvNorm2D in a tfjs model', () => {
  let dir: string;
  before(async () => {
    await useTestBackend('cpu');
    dir = mkdtempSync(join(tmpdir(), 'convnorm-test-'));
  });
  after(() => rmSync(dir, {recursive: true, force: true}));

  it('trains with model.fit, saves to disk and reloads with identical predictions', async () => {
    const model = smallModel(1);
    const x = randomTensor([12, 8, 8, 3], 2);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], 'int32'), 3);
    const history = await model.fit(x, y, {epochs: 8, batchSize: 12, shuffle: false, verbose: 0});
    const losses = history.history.loss as number[];
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    assert.ok(losses[losses.length - 1] < 0.8 * losses[0], `loss did not fall: ${losses}`);
    assert.equal(weight(model.layers[0], 'step').dataSync()[0], 8, 'one running-V update per training step');

    await model.save(fileSystem(join(dir, 'a')));
    assert.deepEqual(readdirSync(join(dir, 'a')).sort(), ['model.json', 'weights.bin']);
    const loaded = await tfl.loadLayersModel(fileSystem(join(dir, 'a')));
    const before = model.predict(x) as tf.Tensor;
    const after = loaded.predict(x) as tf.Tensor;
    assert.deepEqual(after.dataSync(), before.dataSync());
    assert.deepEqual(loaded.layers[0].getConfig(), model.layers[0].getConfig());
    const names = loaded.layers[0].weights.map(w => w.originalName.split('/').pop());
    assert.deepEqual(names, ['kernel', 'affine_kernel', 'affine_bias', 'gamma', 'beta', 'moving_mean',
                             'moving_variance', 'running_v', 'step']);

    registerFileSystemRouter();
    await model.save(`file://${join(dir, 'b')}`);
    const viaUrl = await tfl.loadLayersModel(`file://${join(dir, 'b', 'model.json')}`);
    assert.deepEqual((viaUrl.predict(x) as tf.Tensor).dataSync(), before.dataSync());
    tf.dispose([x, y, before, after]);
  });

  it('refuses a model.json whose weight paths leave its directory (../, absolute), reading nothing', async () => {
    const model = smallModel(5);
    await model.save(fileSystem(join(dir, 'c')));
    const json = JSON.parse(readFileSync(join(dir, 'c', 'model.json'), 'utf8'));
    // The weights sit one level up, so a loader that followed the paths would load them.
    copyFileSync(join(dir, 'c', 'weights.bin'), join(dir, 'outside.bin'));
    for (const [name, path] of [['up', '../outside.bin'], ['absolute', join(dir, 'outside.bin')],
                                ['nested', 'sub/../../outside.bin'], ['itself', '.']]) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'model.json'), JSON.stringify({...json, weightsManifest: [{...json.weightsManifest[0],
                                                                                              paths: [path]}]}));
      await assert.rejects(tfl.loadLayersModel(fileSystem(join(dir, name))),
                           new RegExp(`names the weight file '${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}', outside its own directory`));
    }
    // A path inside its directory still loads.
    mkdirSync(join(dir, 'inside', 'shards'), {recursive: true});
    copyFileSync(join(dir, 'c', 'weights.bin'), join(dir, 'inside', 'shards', 'w.bin'));
    writeFileSync(join(dir, 'inside', 'model.json'), JSON.stringify({...json, weightsManifest: [{...json.weightsManifest[0],
                                                                                                paths: ['./shards/w.bin']}]}));
    (await tfl.loadLayersModel(fileSystem(join(dir, 'inside')))).dispose();
    model.dispose();
  });

  it('keeps the tensor count constant over training steps', async () => {
    const model = smallModel(3);
    const x = randomTensor([6, 8, 8, 3], 4);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3);
    const optimizer = tf.train.momentum(0.05, 0.9);
    const step = () => tf.dispose(optimizer.minimize(() =>
      tf.mean(tfl.metrics.categoricalCrossentropy(y, model.apply(x, {training: true}) as tf.Tensor)) as tf.Scalar) ?? undefined);
    step();
    step();
    const count = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) step();
    assert.equal(tf.memory().numTensors, count);
    tf.dispose([x, y]);
  });

  it('seeded initializers give identical layers', () => {
    const a = convNorm2d({filters: 3, kernelSize: 3, seed: 7});
    const b = convNorm2d({filters: 3, kernelSize: 3, seed: 7});
    const c = convNorm2d({filters: 3, kernelSize: 3, seed: 8});
    for (const l of [a, b, c]) l.build([null, 6, 6, 2]);
    for (const name of ['kernel', 'affine_kernel', 'affine_bias']) {
      assert.deepEqual(weight(a, name).dataSync(), weight(b, name).dataSync());
      assert.notDeepEqual(weight(a, name).dataSync(), weight(c, name).dataSync());
    }
  });

  it('round-trips its config, initializer, regularizer and constraint', () => {
    const layer = convNorm2d({
      filters: 5, kernelSize: [3, 5], strides: [2, 1], padding: [1, 2], affine: false, momentum: 0.2,
      rampdownSteps: 100, epsilon: 1e-9, kernelInitializer: 'heNormal', kernelRegularizer: tfl.regularizers.l2({l2: 1e-4}),
      kernelConstraint: tfl.constraints.maxNorm({maxValue: 2}), seed: 3,
    });
    const config = layer.getConfig();
    const copy = ConvNorm2D.fromConfig(ConvNorm2D, config) as ConvNorm2D;
    assert.deepEqual(copy.getConfig(), config);
    // tfjs serializes heNormal as the VarianceScaling it is.
    assert.deepEqual((config.kernelInitializer as {config: object}).config,
                     {scale: 2, mode: 'fanIn', distribution: 'normal', seed: 3});
  });
});

describe('running V', () => {
  before(() => useTestBackend('cpu'));

  it('starts at zero as in the reference: inference before training outputs the affine bias only', () => {
    const layer = convNorm2d({filters: 4, kernelSize: 3, padding: 1, batchNorm: false, seed: 1});
    const x = randomTensor([2, 5, 5, 3], 9);
    const out = layer.apply(x, {training: false}) as tf.Tensor;
    const bias = tf.broadcastTo(weight(layer, 'affine_bias'), out.shape);
    assert.deepEqual(out.dataSync(), bias.dataSync());
    assert.ok(tf.max(tf.abs(bias)).dataSync()[0] > 0);
  });

  it('the first training step copies V (rampdown factor 1), then follows the cosine rampdown', () => {
    const layer = convNorm2d({filters: 4, kernelSize: 3, padding: 1, seed: 2});
    const x = randomTensor([2, 5, 5, 3], 10);
    tf.dispose(layer.apply(x, {training: true}) as tf.Tensor);
    const v = convNormSpectrum(weight(layer, 'kernel') as tf.Tensor4D, [7, 7]);
    assert.ok(relativeError(weight(layer, 'running_v'), v) < 1e-7);
    // The reference keeps V from the current weights; after a weight change the running V moves by f(n=2).
    const k = weight(layer, 'kernel');
    layer.weights[0].write(tf.mul(k, 2));
    tf.dispose(layer.apply(x, {training: true}) as tf.Tensor);
    const f = Math.max(0.5 * (Math.cos(Math.PI * 2 / 40000) + 1), 0.01);
    const expected = tf.add(tf.mul(f, tf.mul(v, 0.5)), tf.mul(1 - f, v));
    assert.ok(relativeError(weight(layer, 'running_v'), expected) < 1e-6);
  });

  it('with momentum m the first step stores m V', () => {
    const layer = convNorm2d({filters: 2, kernelSize: 1, momentum: 0.1, seed: 4});
    tf.dispose(layer.apply(randomTensor([2, 3, 3, 3], 12), {training: true}) as tf.Tensor);
    const v = convNormSpectrum(weight(layer, 'kernel') as tf.Tensor4D, [3, 3]);
    assert.deepEqual(weight(layer, 'running_v').shape, [2]);
    assert.ok(relativeError(weight(layer, 'running_v'), tf.mul(v, 0.1)) < 1e-6);
  });
});

describe('epsilon and degenerate weights', () => {
  before(() => useTestBackend('cpu'));

  it('the default epsilon does not change results on ordinary weights', () => {
    for (const shape of [[3, 3, 8, 16], [5, 5, 4, 4], [1, 1, 16, 8]] as const) {
      const fanIn = shape[0] * shape[1] * shape[2];
      const kernel = randomTensor([...shape], shape[2], 1 / Math.sqrt(fanIn)) as tf.Tensor4D;
      const x = randomTensor([2, 9, 9, shape[2]], 5) as tf.Tensor4D;
      const size: [number, number] = [9 + shape[0] - 1, 9 + shape[1] - 1];
      const withEps = convNorm(x, kernel, {spectrum: convNormSpectrum(kernel, size)});
      const without = convNorm(x, kernel, {spectrum: convNormSpectrum(kernel, size, 0)});
      assert.deepEqual(withEps.dataSync(), without.dataSync());
    }
  });

  it('an all-zero filter gives a finite output, in training and in inference', () => {
    const layer = convNorm2d({filters: 3, kernelSize: 3, padding: 1, kernelInitializer: 'zeros'});
    const x = randomTensor([2, 6, 6, 2], 6);
    for (const training of [true, false]) {
      const out = layer.apply(x, {training}) as tf.Tensor;
      assert.ok(out.dataSync().every(Number.isFinite), `training=${training}`);
    }
    const zero = tf.zeros([3, 3, 2, 3]) as tf.Tensor4D;
    assert.ok(convNorm(x as tf.Tensor4D, zero).dataSync().every(Number.isFinite));
    assert.ok(convNormSpectrum(zero, [8, 8]).dataSync().every(Number.isFinite));
  });
});

describe('bad input', () => {
  before(() => useTestBackend('cpu'));

  const bad = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: Error) =>
    e instanceof ConvNormArgumentError && pattern.test(e.message));

  it('refuses bad constructor arguments with a message naming the problem', () => {
    bad(() => convNorm2d({filters: 0, kernelSize: 3}), /filters must be a positive integer/);
    bad(() => convNorm2d({filters: 2, kernelSize: 0}), /kernelSize must be a positive integer/);
    bad(() => convNorm2d({filters: 2, kernelSize: [3, -1]}), /kernelSize\[1\] must be a positive integer/);
    bad(() => convNorm2d({filters: 2, kernelSize: 3, strides: 0}), /strides must be a positive integer/);
    bad(() => convNorm2d({filters: 2, kernelSize: 3, padding: 3}), /padding 3 is greater than kernel size - 1 \(2\) along height/);
    bad(() => convNorm2d({filters: 2, kernelSize: [5, 3], padding: 3}), /along width/);
    bad(() => convNorm2d({filters: 2, kernelSize: [3, 4], padding: 'same'}), /'same' needs odd kernel sizes/);
    bad(() => convNorm2d({filters: 2, kernelSize: 3, padding: -1}), /non-negative/);
    bad(() => convNorm2d({filters: 2, kernelSize: 3, momentum: 1.5}), /momentum must be in \(0, 1\]/);
    bad(() => convNorm2d({filters: 2, kernelSize: 3, epsilon: -1}), /epsilon/);
    bad(() => convNorm2d({filters: 2, kernelSize: 3, kernelInitializer: 'noSuchInit'}), /unknown initializer/);
  });

  it('refuses bad inputs and leaves the layer state untouched', () => {
    const layer = convNorm2d({filters: 2, kernelSize: 3, padding: 1, seed: 1});
    tf.dispose(layer.apply(randomTensor([2, 5, 5, 3], 1), {training: true}) as tf.Tensor);
    const state = ['running_v', 'step', 'moving_mean', 'moving_variance'].map(n => weight(layer, n).dataSync().slice());
    bad(() => layer.apply(randomTensor([5, 5, 3], 2), {training: true}), /rank 4/);
    bad(() => layer.apply(randomTensor([2, 5, 5, 4], 2), {training: true}), /4 channels but the kernel expects 3/);
    bad(() => layer.apply(randomTensor([2, 6, 5, 3], 2), {training: true}), /built for 5x5 inputs, got 6x5/);
    bad(() => layer.apply(randomTensor([1, 1, 1, 3], 2), {training: true}), /built for 5x5/);
    ['running_v', 'step', 'moving_mean', 'moving_variance'].forEach((n, i) =>
      assert.deepEqual(weight(layer, n).dataSync(), state[i], `${n} changed`));
    bad(() => convNorm2d({filters: 2, kernelSize: 3}).apply(tfl.input({shape: [null, null, 3]})),
        /known height, width/);
    bad(() => convNorm2d({filters: 2, kernelSize: 3}).apply(randomTensor([1, 2, 2, 3], 3)), /smaller than the kernel/);
    bad(() => convNorm2d({filters: 2, kernelSize: 1}).apply(randomTensor([1, 1, 1, 3], 3), {training: true}),
        /BatchNorm needs more than one value per channel/);
  });

  it('the op refuses mismatched input, kernel and spectrum', () => {
    const x = randomTensor([1, 5, 5, 3], 1) as tf.Tensor4D;
    const k = randomTensor([3, 3, 3, 2], 2) as tf.Tensor4D;
    bad(() => convNorm(randomTensor([5, 5, 3], 1) as tf.Tensor4D, k), /input must have rank 4/);
    bad(() => convNorm(x, randomTensor([3, 3, 2], 2) as tf.Tensor4D), /kernel must have rank 4/);
    bad(() => convNorm(x, randomTensor([3, 3, 4, 2], 2) as tf.Tensor4D), /3 channels but the kernel expects 4/);
    bad(() => convNorm(x, k, {padding: 4}), /greater than kernel size - 1/);
    bad(() => convNorm(x, k, {spectrum: tf.ones([2, 6, 4])}), /spectrum has shape \[2,6,4\] but this kernel and input need \[2,7,4\]/);
    bad(() => convNormSpectrum(k, [2, 9]), /smaller than the kernel/);
  });
});
