/**
 * The SNGAN networks: their parameter counts from the architecture's own
 * arithmetic (SNGAN's 4.28M-parameter generator and 1.05M discriminator at
 * the default widths), the layer kinds each discriminator norm puts in,
 * output shapes and ranges, and the two small layers they need: x2 bilinear
 * upsampling against PyTorch's align_corners=False formula, and sum pooling.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {ConvNorm2D} from '../src/convnorm/layer.js';
import {GlobalSumPooling2D} from '../src/layers/global_sum_pooling.js';
import {SpectralNormConv2D} from '../src/layers/spectral_norm.js';
import {BilinearUpsampling2D} from '../src/layers/upsampling.js';
import {D_NORMS, snganDiscriminator, snganGenerator} from '../src/models/sngan.js';
import {useTestBackend} from './helpers/backends.js';
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
