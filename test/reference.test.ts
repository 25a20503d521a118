/**
 * ConvNorm against the authors' algorithm: fixtures written by
 * reference/make_fixtures.py (a PyTorch port of PreConv, float64) for every
 * kernel/stride/padding geometry and every affine/batchNorm/momentum setting.
 * Tolerance: 1e-4 norm-wise relative error in float32 (observed ~1e-6). The
 * checks themselves are test/helpers/reference_checks.ts, which the Chromium
 * tests run on the browser backends.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import {ConvNorm2D, convNorm, ConvNormMethod, convNormSpectrum} from '../src/index.js';
import {useBackend} from '../src/node/backend.js';
import {TEST_BACKENDS, useTestBackend, useThreadedWasm} from './helpers/backends.js';
import {caseName, decode} from './helpers/fixtures.js';
import {assertClose} from './helpers/numerics.js';
import {randomTensor} from './helpers/random.js';
import {checkLayer, checkOp, Comparisons, NODE_TOLERANCES} from './helpers/reference_checks.js';
import {loadReference} from './helpers/reference_file.js';

useThreadedWasm();

const TOL = NODE_TOLERANCES.value;
const ref = loadReference();
const {Cin, Cout} = ref.shape;
const exports = {ConvNorm2D, convNorm, convNormSpectrum};

/** Runs a check and fails the test with every mismatch it found. */
async function expectClose(check: (out: Comparisons) => Promise<void>): Promise<void> {
  const out = new Comparisons(TOL);
  const before = tf.memory().numTensors;
  await check(out);
  assert.deepEqual(out.failures, []);
  assert.equal(tf.memory().numTensors, before, 'the checks left tensors behind');
}

/** tfjs-node, where it is installed (it cannot be here: its install downloads libtensorflow). */
async function tfjsNodeMissing(): Promise<string | undefined> {
  try {
    await import('@tensorflow/tfjs-node' as string);
    return undefined;
  } catch {
    return '@tensorflow/tfjs-node is not installed: the fixtures run on cpu and wasm here, and in Chromium';
  }
}

for (const backend of [...TEST_BACKENDS, 'tensorflow'] as const) {
  describe(`reference fixtures on ${backend}`, {concurrency: false}, () => {
    const use = async (t: {skip: (message: string) => void}) => {
      if (backend === 'tensorflow') {
        const missing = await tfjsNodeMissing();
        if (missing !== undefined) {
          t.skip(missing);
          return false;
        }
        await useBackend('tensorflow');
      } else {
        await useTestBackend(backend);
      }
      return true;
    };
    for (const method of ['spatial', 'fourier'] as const) it(`convNormSpectrum and the convNorm op, ${method}`, async t => {
      if (await use(t)) await expectClose(out => checkOp(exports, ref, method, out));
    });

    it('convNorm op, fourier with more images than channels (spectra images-first) agrees with the spatial algorithm', async t => {
      if (!(await use(t))) return;
      // The fixtures (N < channels) take the channels-first layout; N > max(C_in, C_out) takes the other.
      const n = Math.max(Cin, Cout) + 2;
      let seed = 500;
      for (const c of ref.cases) {
        tf.tidy(() => {
          const [, h, w, cin] = decode(c.x[0]).shape;
          const x = randomTensor([n, h, w, cin], seed++) as tf.Tensor4D;
          const kernel = decode(c.kernels[0]) as tf.Tensor4D;
          const args = {strides: c.strides, padding: c.padding};
          const cotangent = randomTensor(convNorm(x, kernel, {...args, method: 'spatial'}).shape, seed++);
          const run = (method: ConvNormMethod) => {
            const f = (a: tf.Tensor, k: tf.Tensor) =>
              tf.sum(tf.mul(convNorm(a as tf.Tensor4D, k as tf.Tensor4D, {...args, method}), cotangent));
            return [convNorm(x, kernel, {...args, method}), ...tf.grads(f)([x, kernel])];
          };
          const [expected, actual] = [run('spatial'), run('fourier')];
          ['output', 'd/dx', 'd/dkernel'].forEach((what, i) =>
            assertClose(actual[i], expected[i], TOL, `${caseName(c)} ${n} images: ${what}`));
        });
      }
    });

    for (const method of ['spatial', 'fourier'] as const) it(`ConvNorm2D, ${method}: training output, gradients, running V after 3 steps, inference output`, async t => {
      if (await use(t)) await expectClose(out => checkLayer(exports, ref, method, NODE_TOLERANCES, out));
    });
  });
}
