/**
 * The SNGAN networks: their parameter counts from the architecture's own
 * arithmetic (SNGAN's 4.28M-parameter generator and 1.05M discriminator at
 * the default widths), the layer kinds each discriminator norm puts in,
 * output shapes and ranges, and the two small layers they need: x2 bilinear
 * upsampling against PyTorch's align_corners=False formula, and sum pooling;
 * and the whole networks against the PyTorch port on the same weights
 * (training-mode outputs, the discriminator's hinge loss and its gradients).
 */
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {ConvNorm2D} from '../src/convnorm/layer.js';
import {GlobalSumPooling2D} from '../src/layers/global_sum_pooling.js';
import {SpectralNormConv2D} from '../src/layers/spectral_norm.js';
import {BilinearUpsampling2D} from '../src/layers/upsampling.js';
import {hingeDiscriminatorLoss} from '../src/gan/losses.js';
import {D_NORMS, snganDiscriminator, snganGenerator} from '../src/models/sngan.js';
import {TEST_BACKENDS, useTestBackend} from './helpers/backends.js';
import {decode, Encoded} from './helpers/fixtures.js';
import {assertClose} from './helpers/numerics.js';
import {uniformValues} from './helpers/random.js';

const trainable = (m: tfl.LayersModel) => m.trainableWeights.reduce((s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);

describe('SNGAN networks', () => {
  it('parameter counts follow the layout: linear, up-blocks of 19 ch^2 + 7 ch, the output conv', async () => {
    await useTestBackend('cpu');
    for (const [shape, blocks, start] of [[[32, 32, 3], 3, 4], [[28, 28, 1], 2, 7]] as const) {
      for (const ch of [256, 16]) {
        const g = snganGenerator({imageShape: shape, ch, seed: 1});
        const expected = (128 + 1) * start * start * ch + blocks * (19 * ch * ch + 7 * ch) + 2 * ch + 9 * ch * shape[2] + shape[2];
        assert.equal(trainable(g), expected, `generator ${shape} ch ${ch}`);
        g.dispose();
      }
    }
    assert.equal((128 + 1) * 16 * 256 + 3 * (19 * 256 * 256 + 7 * 256) + 512 + 9 * 256 * 3 + 3, 4276739);
    for (const ch of [128, 8]) {
      const d = snganDiscriminator({dNorm: 'sn', ch, seed: 1});
      const conv = (cin: number, k: number) => k * k * cin * ch + ch;
      const expected = conv(3, 3) + conv(ch, 3) + conv(3, 1) + 2 * conv(ch, 3) + conv(ch, 1) + 4 * conv(ch, 3) + ch + 1;
      assert.equal(trainable(d), expected, `discriminator ch ${ch}`);
      d.dispose();
    }
  });

  it('each discriminator norm puts its layers in: SN everywhere, ConvNorm convs with a plain or SN linear, or neither', async () => {
    await useTestBackend('cpu');
    const counts: Record<string, [number, number]> = {};
    for (const dNorm of D_NORMS) {
      const d = snganDiscriminator({dNorm, ch: 8, seed: 2});
      counts[dNorm] = [d.layers.filter(l => l instanceof SpectralNormConv2D).length,
                       d.layers.filter(l => l instanceof ConvNorm2D).length];
      for (const l of d.layers.filter((l): l is ConvNorm2D => l instanceof ConvNorm2D)) {
        assert.equal(l.batchNorm, false);
      }
      const logits = tf.tidy(() => (d.apply(tf.randomUniform([3, 32, 32, 3], -1, 1, 'float32', 3), {training: true}) as tf.Tensor).arraySync());
      assert.deepEqual([(logits as number[][]).length, (logits as number[][])[0].length], [3, 1]);
      d.dispose();
    }
    assert.deepEqual(counts, {'sn': [11, 0], 'convnorm': [0, 10], 'convnorm+sn': [1, 10], 'none': [0, 0]});
    assert.throws(() => snganDiscriminator({dNorm: 'bn' as never}), /unknown discriminator norm 'bn'; choose one of sn, convnorm, convnorm\+sn, none/);
    assert.throws(() => snganGenerator({imageShape: [64, 64, 3]}), /32x32x3 or 28x28x1/);
  });

  it('the generator maps z to images in [-1, 1] of the asked shape, the same for the same seed', async () => {
    await useTestBackend('cpu');
    const z = tf.randomNormal([4, 128], 0, 1, 'float32', 5);
    for (const shape of [[32, 32, 3], [28, 28, 1]] as const) {
      const [a, b] = [snganGenerator({imageShape: shape, ch: 8, seed: 7}), snganGenerator({imageShape: shape, ch: 8, seed: 7})];
      const [ya, yb] = [a.apply(z, {training: true}) as tf.Tensor, b.apply(z, {training: true}) as tf.Tensor];
      assert.deepEqual(ya.shape, [4, ...shape]);
      const values = ya.dataSync();
      assert.ok(values.every(v => v >= -1 && v <= 1) && values.some(v => Math.abs(v) > 0.05));
      assert.deepEqual(Array.from(values), Array.from(yb.dataSync()));
      tf.dispose([ya, yb]);
      a.dispose();
      b.dispose();
    }
    z.dispose();
  });
});

describe('the layers the GAN needs', () => {
  it('BilinearUpsampling2D is PyTorch\'s interpolate(scale_factor=2, bilinear, align_corners=False)', async () => {
    await useTestBackend('cpu');
    const [n, h, w, c] = [2, 3, 5, 2];
    const data = uniformValues(n * h * w * c, 4, 1);
    const y = tf.tidy(() => new BilinearUpsampling2D({}).apply(tf.tensor4d(data, [n, h, w, c])) as tf.Tensor).dataSync();
    // PyTorch: source coordinate (dst + 0.5) / 2 - 0.5, clamped at 0; linear weights between floor and floor + 1 (clamped).
    const source = (dst: number, size: number) => {
      const s = Math.max((dst + 0.5) / 2 - 0.5, 0);
      const i0 = Math.floor(s);
      return [i0, Math.min(i0 + 1, size - 1), s - i0] as const;
    };
    for (let b = 0; b < n; b++) {
      for (let yy = 0; yy < 2 * h; yy++) {
        for (let xx = 0; xx < 2 * w; xx++) {
          const [y0, y1, fy] = source(yy, h);
          const [x0, x1, fx] = source(xx, w);
          for (let k = 0; k < c; k++) {
            const at = (i: number, j: number) => data[((b * h + i) * w + j) * c + k];
            const expected = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
            const got = y[((b * 2 * h + yy) * 2 * w + xx) * c + k];
            assert.ok(Math.abs(got - expected) < 1e-6, `(${b}, ${yy}, ${xx}, ${k}): ${got} vs ${expected}`);
          }
        }
      }
    }
  });

  it('GlobalSumPooling2D sums over height and width', async () => {
    await useTestBackend('cpu');
    const x = tf.tensor4d(uniformValues(2 * 3 * 4 * 5, 6, 1), [2, 3, 4, 5]);
    const y = tf.tidy(() => new GlobalSumPooling2D({}).apply(x) as tf.Tensor);
    assert.deepEqual(y.shape, [2, 5]);
    const expected = tf.tidy(() => tf.mul(tf.mean(x, [1, 2]), 12));
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(y, expected))).dataSync()[0]);
    assert.ok(diff < 1e-5, `${diff}`);
    tf.dispose([x, y, expected]);
  });
});

interface SnganFixture {
  ch: number;
  zDim: number;
  z: Encoded;
  x: Encoded;
  generator: {weights: Record<string, Encoded>; output: Encoded};
  discriminators: Record<string, {weights: Record<string, Encoded>; realLogits: Encoded; loss: number;
                                  grads: Record<string, Encoded>}>;
}

/** Sets every weight the PyTorch port has, by '<layer>/<weight>'; returns the weights it has none for. */
function loadPortWeights(model: tfl.LayersModel, weights: Record<string, Encoded>): string[] {
  const unmatched: string[] = [];
  const used = new Set<string>();
  for (const layer of model.layers) {
    for (const w of layer.weights) {
      const key = `${layer.name}/${w.originalName.slice(w.originalName.lastIndexOf('/') + 1)}`;
      if (weights[key] === undefined) {
        unmatched.push(key);
        continue;
      }
      used.add(key);
      const value = decode(weights[key]);
      w.write(value);
      value.dispose();
    }
  }
  const unused = Object.keys(weights).filter(k => !used.has(k));
  assert.deepEqual(unused, [], 'port weights with no layer here');
  return unmatched;
}

describe('SNGAN against the PyTorch port (reference/sngan_ref.py)', () => {
  const fixture = JSON.parse(readFileSync(new URL('./fixtures/sngan-reference.json', import.meta.url), 'utf8')) as SnganFixture;

  for (const backend of TEST_BACKENDS) {
    it(`${backend}: the generator's training-mode output, each discriminator's logits, hinge loss and every weight gradient`, async () => {
      await useTestBackend(backend);
      const before = tf.memory().numTensors;
      const g = snganGenerator({ch: fixture.ch, zDim: fixture.zDim, seed: 1});
      assert.deepEqual(loadPortWeights(g, fixture.generator.weights), []);
      const [z, x, fake] = [decode(fixture.z), decode(fixture.x), decode(fixture.generator.output)];
      const out = g.apply(z, {training: true}) as tf.Tensor;
      assertClose(out, fake, 1e-4, 'G(z)');
      out.dispose();
      g.dispose();
      for (const dNorm of D_NORMS) {
        const ref = fixture.discriminators[dNorm];
        const d = snganDiscriminator({dNorm, ch: fixture.ch, seed: 1});
        // ConvNorm's running V and step count are the layer's own state: training-mode outputs do not read them.
        assert.deepEqual(loadPortWeights(d, ref.weights).filter(k => !/\/(running_v|step)$/.test(k)), [], dNorm);
        const [logits, expectedLogits] = [d.apply(x, {training: true}) as tf.Tensor, decode(ref.realLogits)];
        assertClose(logits, expectedLogits, 1e-4, `${dNorm}: D(x)`);
        const variables = d.trainableWeights.map(w => w.read() as tf.Variable);
        const {value, grads} = tf.variableGrads(() => hingeDiscriminatorLoss(
          d.apply(x, {training: true}) as tf.Tensor, d.apply(fake, {training: true}) as tf.Tensor), variables);
        const loss = value.dataSync()[0];
        assert.ok(Math.abs(loss - ref.loss) <= 1e-4 * Math.abs(ref.loss), `${dNorm}: loss ${loss} vs ${ref.loss}`);
        d.trainableWeights.forEach((w, i) => {
          const layer = d.layers.find(l => l.weights.includes(w))!;
          const key = `${layer.name}/${w.originalName.slice(w.originalName.lastIndexOf('/') + 1)}`;
          const expected = decode(ref.grads[key]);
          assertClose(grads[variables[i].name], expected, 2e-4, `${dNorm}: d loss / d ${key}`);
          expected.dispose();
        });
        tf.dispose([logits, expectedLogits, value, grads]);
        d.dispose();
      }
      tf.dispose([z, x, fake]);
      assert.ok(tf.memory().numTensors <= before, `tensors before ${before}, after ${tf.memory().numTensors}`);
    });
  }
});
