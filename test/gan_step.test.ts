/**
 * The GAN's training pieces: Adam against values PyTorch 1.13 printed
 * (torch.optim.Adam in float64; ours runs float32, so within 1e-6), the hinge
 * losses against their formulas, and SNGAN's step: n_dis discriminator
 * updates that leave the generator alone, then one generator update that
 * leaves the discriminator's weights alone, reproducible from the same
 * seed, with no tensor left behind.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import {hingeDiscriminatorLoss, hingeGeneratorLoss} from '../src/gan/losses.js';
import {GanStep} from '../src/gan/step.js';
import {snganDiscriminator, snganGenerator} from '../src/models/sngan.js';
import {Adam} from '../src/training/adam.js';
import {useTestBackend} from './helpers/backends.js';

const GRADS = [[0.1, -0.2, 0.3], [0.05, 0.4, -0.1], [-0.3, 0.2, 0.0], [1e-9, -0.5, 0.25]];

describe('Adam', () => {
  it('takes PyTorch\'s steps (betas (0, 0.9) as SNGAN; and the defaults)', async () => {
    await useTestBackend('cpu');
    const expected = [
      [0.490000001000, -0.990000000500, 1.990000000333],
      [0.483573155957, -1.002453997094, 1.994569367792],
      [0.499163194510, -1.009531596821, 1.994569367792],
      [0.499163194449, -0.995628126332, 1.982007576362],
    ];
    const w = tf.variable(tf.tensor1d([0.5, -1.0, 2.0]));
    const adam = new Adam([w], {betas: [0, 0.9]});
    GRADS.forEach((g, i) => {
      const grad = tf.tensor1d(g);
      adam.apply([grad], 0.01);
      grad.dispose();
      Array.from(w.dataSync()).forEach((x, j) => assert.ok(Math.abs(x - expected[i][j]) < 1e-6, `step ${i + 1}, ${j}: ${x}`));
    });
    const u = tf.variable(tf.tensor1d([0.5, -1.0, 2.0]));
    const defaults = new Adam([u]);
    const count = tf.memory().numTensors;
    for (const g of GRADS.slice(0, 3)) tf.tidy(() => defaults.apply([tf.tensor1d(g)], 0.1));
    assert.equal(tf.memory().numTensors, count);
    Array.from(u.dataSync()).forEach((x, j) =>
      assert.ok(Math.abs(x - [0.341504406730, -0.988534436332, 1.829041138015][j]) < 1e-6, `defaults ${j}: ${x}`));
    assert.throws(() => defaults.setState([tf.zeros([3])], 1), /has 1 tensors, expected 2/);
    tf.dispose([w, u]);
    adam.dispose();
    defaults.dispose();
  });
});

describe('hinge losses', () => {
  it('are mean relu(1 - real) + mean relu(1 + fake) and -mean fake', async () => {
    await useTestBackend('cpu');
    const real = [2, 0.5, -1, 1];
    const fake = [-2, 0.25, 3, -0.5];
    const d = tf.tidy(() => hingeDiscriminatorLoss(tf.tensor2d(real, [4, 1]), tf.tensor2d(fake, [4, 1])).dataSync()[0]);
    const expected = real.reduce((s, x) => s + Math.max(0, 1 - x), 0) / 4 + fake.reduce((s, x) => s + Math.max(0, 1 + x), 0) / 4;
    assert.ok(Math.abs(d - expected) < 1e-6, `${d} vs ${expected}`);
    const g = tf.tidy(() => hingeGeneratorLoss(tf.tensor2d(fake, [4, 1])).dataSync()[0]);
    assert.ok(Math.abs(g + 0.1875) < 1e-6, `${g}`);
  });
});

describe('the SNGAN step', () => {
  const snapshot = (m: tfl.LayersModel) => m.trainableWeights.map(w => Array.from(w.read().dataSync()));
  const changed = (a: number[][], b: number[][]) => a.filter((w, i) => w.some((x, j) => x !== b[i][j])).length;

  function setup(dNorm: 'sn' | 'convnorm') {
    const g = snganGenerator({ch: 8, seed: 3});
    const d = snganDiscriminator({dNorm, ch: 8, seed: 4});
    return {g, d, step: new GanStep({generator: g, discriminator: d, nDis: 2})};
  }
  const real = (k: number) => tf.randomUniform([4, 32, 32, 3], -1, 1, 'float32', 10 + k) as tf.Tensor4D;
  const noise = (k: number) => tf.randomNormal([4, 128], 0, 1, 'float32', 20 + k) as tf.Tensor2D;

  for (const dNorm of ['sn', 'convnorm'] as const) {
    it(`${dNorm}: a D update leaves G's weights alone, a G update D's; n_dis of them; reproducible; no leak`, async () => {
      await useTestBackend('wasm');
      const {g, d, step} = setup(dNorm);
      const [g0, d0] = [snapshot(g), snapshot(d)];
      await step.discriminatorStep(real(0), noise(0));
      const d1 = snapshot(d);
      assert.equal(changed(snapshot(g), g0), 0, 'a D update moved a generator weight');
      assert.equal(changed(d1, d0), d0.length, 'every discriminator weight moves');
      await step.generatorStep(noise(1));
      assert.equal(changed(snapshot(d), d1), 0, 'a G update moved a discriminator weight');
      assert.equal(changed(snapshot(g), g0), g0.length, 'every generator weight moves');
      const count = tf.memory().numTensors;
      const first = await step.step(real, noise);
      assert.deepEqual([step.dOptimizer.steps, step.gOptimizer.steps], [1 + 2, 1 + 1]);
      await step.step(real, noise);
      assert.equal(tf.memory().numTensors, count, 'tensors left behind');
      assert.ok(first.dLoss > 0 && Number.isFinite(first.gLoss), JSON.stringify(first));
      // The same seeds and the same calls: the same numbers and weights, bit for bit.
      const again = setup(dNorm);
      await again.step.discriminatorStep(real(0), noise(0));
      await again.step.generatorStep(noise(1));
      assert.deepEqual(await again.step.step(real, noise), first);
      await again.step.step(real, noise);
      assert.deepEqual(snapshot(again.g), snapshot(g));
      assert.deepEqual(snapshot(again.d), snapshot(d));
      for (const x of [step, again.step]) x.dispose();
      for (const m of [g, d, again.g, again.d]) m.dispose();
    });
  }
});
