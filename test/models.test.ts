import assert from 'node:assert/strict';
import {before, describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {BATCH_NORM_FORWARD, hasBatchNormKernels} from '../src/engine/batch_norm_kernels.js';
import {setSimdKernels, simdKernels} from '../src/engine/simd.js';
import {BatchNorm2D} from '../src/layers/batch_norm.js';
import {NormKind} from '../src/models/blocks.js';
import {resnet} from '../src/models/resnet.js';
import {smallCnn} from '../src/models/small_cnn.js';
import {TrainStep} from '../src/training/step.js';
import {TEST_BACKENDS, useTestBackend, useThreadedWasm} from './helpers/backends.js';
import {relativeError} from './helpers/numerics.js';
import {assertFirstOrderDescent} from './helpers/descent.js';
import {randomTensor} from './helpers/random.js';

useThreadedWasm();

describe('models and the training step (wasm)', () => {
  before(() => useTestBackend('wasm'));

  for (const norm of ['bn', 'convnorm', 'convnorm-nobn', 'none'] as NormKind[]) {
    it(`small CNN with ${norm}: a step descends along its gradient; with BN it memorizes a batch; constant tensor count`, () => {
      const x = randomTensor([8, 32, 32, 3], 5);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10);
      const probe = smallCnn({norm, seed: 1});
      assertFirstOrderDescent(probe, x, y, `small CNN ${norm}`);
      probe.dispose();
      const model = smallCnn({norm, seed: 1});
      const step = new TrainStep(model, {learningRate: 0.1});
      const losses = [step.run(x, y), step.run(x, y)];
      const count = tf.memory().numTensors;
      for (let i = 0; i < 38; i++) losses.push(step.run(x, y));
      assert.equal(tf.memory().numTensors, count, 'tensor count grew');
      // Without BatchNorm the PyTorch-initialized net sits near the label marginal for tens of steps at this
      // rate (the signal fades through its layers), so only the BN nets are held to memorizing.
      if (norm === 'bn' || norm === 'convnorm') {
        assert.ok(losses[losses.length - 1] < 0.5 * losses[0], `loss did not fall: ${losses[0]} -> ${losses.at(-1)}`);
      }
      tf.dispose([x, y]);
      step.dispose();
      model.dispose();
    });
  }

  it('ResNet-18 and -34 have the reference layout, and a ConvNorm ResNet-18 step descends along its gradient', () => {
    const r18 = resnet({depth: 18, norm: 'convnorm', seed: 2});
    const convs = r18.layers.filter(l => l.getClassName() === 'ConvNorm2D');
    assert.equal(convs.length, 20, 'stem + 16 block convs + 3 shortcuts');
    assert.deepEqual(r18.outputs[0].shape, [null, 10]);
    assertFirstOrderDescent(r18, randomTensor([2, 32, 32, 3], 3), tf.oneHot(tf.tensor1d([1, 2], 'int32'), 10),
                            'ResNet-18 ConvNorm');
    const r34 = resnet({depth: 34, norm: 'bn', seed: 2});
    assert.equal(r34.layers.filter(l => l.getClassName() === 'PlainConv2D').length, 36, 'stem + 32 block convs + 3 shortcuts');
    assert.throws(() => resnet({depth: 50 as 18, norm: 'bn'}), /depth must be one of 18, 34, 20, 32, 44, 56, 110/);
    assert.throws(() => smallCnn({norm: 'layernorm' as NormKind}), /unknown norm 'layernorm'/);
  });

  it("ResNet-20, -32 and -56 have He et al.'s layout, and a ConvNorm ResNet-20 step descends along its gradient", () => {
    const trainable = (m: tfl.LayersModel) => m.trainableWeights.reduce((s, w) => s + tf.util.sizeFromShape(w.shape as number[]), 0);
    // PyTorch's counts for the same networks (bench/torch_bench.py's cifar_resnet and resnet18, with BatchNorm):
    // sum(p.numel() for p in model.parameters()).
    const expected = {20: [272474, 21], 32: [466906, 33], 56: [855770, 57], 18: [11173962, 20]} as const;
    for (const [depth, [params, convs]] of Object.entries(expected)) {
      const m = resnet({depth: Number(depth) as 20, norm: 'bn', seed: 1});
      assert.equal(trainable(m), params, `ResNet-${depth} parameters`);
      assert.equal(m.layers.filter(l => l.getClassName() === 'PlainConv2D').length, convs, `ResNet-${depth} convs`);
      m.dispose();
    }
    const r20 = resnet({depth: 20, norm: 'convnorm', seed: 2});
    // Stages at 32x32x16, 16x16x32 and 8x8x64; the shortcuts where the shape changes are 1x1 at stride 2.
    const units = r20.layers.filter(l => l.getClassName() === 'ConvNorm2D');
    assert.deepEqual([...new Set(units.map(l => (l.outputShape as number[]).slice(1).join('x')))],
                     ['32x32x16', '16x16x32', '8x8x64']);
    assert.deepEqual(units.filter(l => (l.getConfig().kernelSize as number[])[0] === 1)
      .map(l => (l.outputShape as number[]).slice(1).join('x')), ['16x16x32', '8x8x64']);
    assertFirstOrderDescent(r20, randomTensor([2, 32, 32, 3], 5), tf.oneHot(tf.tensor1d([3, 7], 'int32'), 10),
                            'ResNet-20 ConvNorm');
    r20.dispose();
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
  // The fused kernels on cpu and wasm, and the tf-op form other backends (tfjs-node, webgl) run.
  // On wasm the fused kernels run as the SIMD module, or as JS loops where it cannot load.
  const paths = [...TEST_BACKENDS.map(b => [b, true, true] as const), ['wasm', true, false] as const,
                 ['cpu', false, false] as const];
  for (const [backend, fused, simd] of paths) {
    const what = fused ? 'the fused training kernels match' : 'the tf-op form matches';
    const how = backend === 'wasm' ? `, SIMD kernels ${simd ? 'on' : 'off'}` : '';
    it(`${what} autodiff of the plain expression (${backend}${how})`, async () => {
      // Reference: tf's autodiff of (x - mean) / sqrt(var + eps) * gamma + beta on cpu, no custom gradient.
      await useTestBackend('cpu');
      const shape = [6, 5, 7, 8];
      const xValues = tf.add(randomTensor(shape, 21, 2), 3).dataSync();
      const weights = randomTensor(shape, 22).dataSync();
      const gammaValues = tf.add(randomTensor([8], 23), 1.5).dataSync();
      const betaValues = randomTensor([8], 24).dataSync();
      const reference = tf.tidy(() => {
        const x = tf.tensor(xValues, shape);
        const f = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
          const {mean, variance} = tf.moments(x, [0, 1, 2]);
          const y = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), gamma), beta);
          return tf.sum(tf.mul(y, tf.tensor(weights, shape)));
        };
        const grads = tf.grads(f)([x, tf.tensor(gammaValues), tf.tensor(betaValues)]);
        return grads.map(g => g.dataSync());
      });
      await useTestBackend(backend);
      assert.ok(hasBatchNormKernels(), `no fused BatchNorm kernels on ${backend}`);
      const forwardKernel = tf.getKernel(BATCH_NORM_FORWARD, backend)!;
      if (!fused) tf.unregisterKernel(BATCH_NORM_FORWARD, backend);
      if (backend === 'wasm') assert.equal(simdKernels(tf.backend()) !== undefined, true, 'the SIMD module did not load');
      setSimdKernels(simd);
      try {
        const layer = new BatchNorm2D();
        layer.build(shape);
        layer.setWeights([tf.tensor(gammaValues), tf.tensor(betaValues), tf.zeros([8]), tf.ones([8])]);
        const x = tf.tensor(xValues, shape);
        const w = tf.tensor(weights, shape);
        const loss = (input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input, {training: true}) as tf.Tensor, w));
        const dx = tf.grad(loss)(x);
        const [gamma, beta] = layer.trainableWeights.map(v => v.read() as tf.Variable);
        const {grads} = tf.variableGrads(() => loss(x) as tf.Scalar, [gamma, beta]);
        const tolerance = 1e-4;
        assert.ok(relativeError(dx, tf.tensor(reference[0], shape)) < tolerance, 'dx');
        assert.ok(relativeError(grads[gamma.name], tf.tensor(reference[1])) < tolerance, 'dgamma');
        assert.ok(relativeError(grads[beta.name], tf.tensor(reference[2])) < tolerance, 'dbeta');
        tf.dispose([x, w, dx, ...Object.values(grads), ...layer.weights.map(v => v.read())]);
      } finally {
        if (!fused) tf.registerKernel(forwardKernel);
        setSimdKernels(true);
      }
    });
  }
});
