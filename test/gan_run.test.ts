/**
 * GAN runs: a run killed (SIGKILL) after a checkpoint and resumed, and a
 * short run resumed with more steps, give bitwise the weights, Adam states,
 * metrics and samples of the uninterrupted run; the tensor count stays flat
 * from step to step through checkpoints, sample grids and data passes, and
 * over 500 bare GAN steps; a resume with other settings is refused before
 * anything changes; the sample
 * grid is save_image's layout; the real-batch stream covers the data once
 * per pass; and Inception graph models are checked and wired as documented.
 */
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {mkdtemp, readdir, readFile, rm, writeFile, mkdir} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {after, before, describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import {PNG} from 'pngjs';

import {Rng} from '../src/data/random.js';
import {gaussianNoise} from '../src/gan/evaluate.js';
import {loadInception} from '../src/gan/inception.js';
import {GanStep} from '../src/gan/step.js';
import {snganDiscriminator, snganGenerator} from '../src/models/sngan.js';
import {fileSystem} from '../src/io/file_system.js';
import {imageGridPng} from '../src/io/png.js';
import {TrainError} from '../src/training/checkpoint.js';
import {ganLearningRate, GanRecord, RealStream, trainGan} from '../src/training/gan_trainer.js';
import {useTestBackend} from './helpers/backends.js';
import {waitForLine} from './helpers/child_process.js';
import {tinyGanOptions} from './helpers/gan_child.js';

const REPO = new URL('..', import.meta.url).pathname;
const STEPS = 8;

/** The run's final state as bytes: both networks' weights, both Adam states, the last sample grid. */
async function runBytes(runDir: string): Promise<Record<string, Buffer>> {
  const files = ['checkpoint/generator/weights.bin', 'checkpoint/discriminator/weights.bin', 'checkpoint/adam.bin',
                 `samples/step-${String(STEPS).padStart(6, '0')}.png`];
  return Object.fromEntries(await Promise.all(files.map(async f => [f, await readFile(join(runDir, f))])));
}

async function metrics(runDir: string): Promise<Partial<GanRecord>[]> {
  const lines = (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n');
  return lines.map(l => {
    const {seconds: _s, secondsPerStep: _p, ...rest} = JSON.parse(l) as GanRecord;
    return rest;
  });
}

function assertSameRun(a: Record<string, Buffer>, b: Record<string, Buffer>): void {
  for (const name of Object.keys(a)) assert.ok(a[name].equals(b[name]), `${name} differs`);
}

describe('GAN runs (wasm)', () => {
  let root: string;
  let uninterrupted: Record<string, Buffer>;
  before(async () => {
    await useTestBackend('wasm');
    root = await mkdtemp(join(tmpdir(), 'convnorm-gan-'));
  });
  after(async () => {
    await rm(root, {recursive: true, force: true});
  });

  it('a run killed (SIGKILL) after its step-3 checkpoint and resumed gives bitwise the uninterrupted run', async () => {
    const dirA = join(root, 'a');
    const optionsA = tinyGanOptions(dirA, STEPS);
    const tensors: number[] = [];
    const result = await trainGan({...optionsA, onStep: () => { tensors.push(tf.memory().numTensors); }});
    // Steps 3 and 6 checkpoint, 4 and 8 write samples, a pass over the 10 images ends every step: none leaves a tensor.
    assert.deepEqual(tensors, new Array(STEPS).fill(tensors[0]), `tensor counts per step ${tensors}`);
    assert.deepEqual(result.history.map(r => r.step), [2, 3, 4, 6, 8]);
    assert.deepEqual((await readdir(join(dirA, 'samples'))).sort(), ['step-000004.png', 'step-000008.png']);
    uninterrupted = await runBytes(dirA);
    optionsA.generator.dispose();
    optionsA.discriminator.dispose();

    const dirB = join(root, 'b');
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/gan_child.ts', dirB, String(STEPS), '5'],
                        {cwd: REPO, stdio: ['ignore', 'pipe', 'pipe']});
    try {
      assert.equal(await waitForLine(child, /^HANGING/, 60_000), 'HANGING 5');
    } finally {
      const exited = new Promise(resolve => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    assert.equal(JSON.parse(await readFile(join(dirB, 'checkpoint', 'state.json'), 'utf8')).step, 3);
    // Lines after the checkpoint (step 4) are on disk and must not be doubled.
    assert.deepEqual((await metrics(dirB)).map(r => r.step), [2, 3, 4]);

    const optionsB = tinyGanOptions(dirB, STEPS);
    const resumed = await trainGan({...optionsB, resume: true});
    assert.equal(resumed.resumedFrom, 3);
    assertSameRun(uninterrupted, await runBytes(dirB));
    assert.deepEqual(await metrics(dirB), await metrics(dirA));
    optionsB.generator.dispose();
    optionsB.discriminator.dispose();
  });

  it('a shorter run resumed with more steps reaches the same weights', async () => {
    const dir = join(root, 'c');
    const first = tinyGanOptions(dir, 4);
    await trainGan(first);
    first.generator.dispose();
    first.discriminator.dispose();
    const more = tinyGanOptions(dir, STEPS);
    await trainGan({...more, resume: true});
    assertSameRun(uninterrupted, await runBytes(dir));
    more.generator.dispose();
    more.discriminator.dispose();
  });

  it('refuses a resume with other settings, and bad options, before anything changes', async () => {
    const dir = join(root, 'a');
    const before = await readFile(join(dir, 'metrics.jsonl'), 'utf8');
    const cases: [Partial<Parameters<typeof trainGan>[0]>, string, RegExp][] = [
      [{lr: 1e-3, resume: true}, 'CONFIG_MISMATCH', /lr: 0\.0002 in the checkpoint, 0\.001 now/],
      [{lrDecay: 'linear', resume: true}, 'CONFIG_MISMATCH', /lrDecay/],
      [{nDis: 1, resume: true}, 'CONFIG_MISMATCH', /nDis: 2 in the checkpoint, 1 now/],
      [{}, 'RUN_EXISTS', /already exists/],
      [{steps: 0, runDir: join(root, 'never')}, 'BAD_OPTIONS', /steps must be an integer >= 1, got 0/],
      [{batchSize: 11, runDir: join(root, 'never')}, 'BAD_OPTIONS', /10 images, fewer than a batch of 11/],
    ];
    for (const [change, code, message] of cases) {
      const o = tinyGanOptions(dir, STEPS);
      await assert.rejects(trainGan({...o, ...change}), (e: unknown) => {
        assert.ok(e instanceof TrainError, `not a TrainError: ${e}`);
        assert.equal(e.code, code, e.message);
        assert.match(e.message, message);
        return true;
      });
      o.generator.dispose();
      o.discriminator.dispose();
    }
    assert.equal(await readFile(join(dir, 'metrics.jsonl'), 'utf8'), before);
    await assert.rejects(readdir(join(root, 'never')), /ENOENT/);
  });
});

describe('GAN steps (wasm)', () => {
  // `npm run bench -- --gan` soaks 500 at n_dis 5 and width 2 on 32x32x3 images; here 28x28x1, n_dis 1.
  it('500 GAN steps (width 2, ConvNorm discriminator, n_dis 1) leave the tensor count where the first step left it', async () => {
    await useTestBackend('wasm');
    const g = snganGenerator({imageShape: [28, 28, 1], ch: 2, zDim: 2, seed: 1});
    const d = snganDiscriminator({imageShape: [28, 28, 1], ch: 2, dNorm: 'convnorm', seed: 2});
    const step = new GanStep({generator: g, discriminator: d, nDis: 1});
    const rng = new Rng(5);
    const real = tf.randomUniform([2, 28, 28, 1], -1, 1, 'float32', 6) as tf.Tensor4D;
    const counts: number[] = [];
    for (let s = 0; s < 500; s++) {
      await step.step(() => tf.clone(real), () => gaussianNoise(rng, 2, 2));
      counts.push(tf.memory().numTensors);
    }
    const grew = counts.findIndex(c => c !== counts[0]);
    assert.equal(grew, -1, `${counts[0]} tensors after step 1, ${counts[grew]} after step ${grew + 1}`);
    real.dispose();
    step.dispose();
    g.dispose();
    d.dispose();
  });
});

describe('GAN run pieces', () => {
  it('linear decay is lr (1 - s / steps); none keeps lr', () => {
    assert.equal(ganLearningRate(2e-4, 'linear', 0, 100), 2e-4);
    assert.equal(ganLearningRate(2e-4, 'linear', 50, 100), 1e-4);
    assert.ok(Math.abs(ganLearningRate(2e-4, 'linear', 99, 100) - 2e-6) < 1e-18);
    assert.equal(ganLearningRate(2e-4, 'none', 99, 100), 2e-4);
  });

  it('the real batches of one pass are distinct images, the incomplete batch dropped; the next pass reshuffles', () => {
    const stream = new RealStream(10, 3, 7, 2);
    const pass = (first: number) => [0, 1, 2].flatMap(r => [...stream.indices(Math.floor((first + r) / 2), (first + r) % 2)]);
    const p0 = pass(0);
    const p1 = pass(3);
    assert.equal(new Set(p0).size, 9);
    assert.equal(new Set(p1).size, 9);
    assert.ok(p0.every(i => i >= 0 && i < 10));
    assert.notDeepEqual(p0, p1);
    assert.deepEqual(p0, [...Rng.derive(7, 1, 0).permutation(10).subarray(0, 9)]);
  });

  it('the sample grid is save_image\'s: 2-pixel black border, (v + 1) 127.5 + 0.5 truncated, row-major images', () => {
    const [h, w] = [3, 2];
    // Image n is filled with value -1 + n / 2 on the red channel, -v on green, 0 on blue.
    const values = new Float32Array(5 * h * w * 3);
    for (let n = 0; n < 5; n++) {
      for (let p = 0; p < h * w; p++) values.set([-1 + n / 2, 1 - n / 2, 0], (n * h * w + p) * 3);
    }
    const png = PNG.sync.read(imageGridPng(values, 5, [h, w, 3], {columns: 3}));
    assert.deepEqual([png.width, png.height], [3 * (w + 2) + 2, 2 * (h + 2) + 2]);
    const pixel = (x: number, y: number) => [...png.data.subarray(4 * (y * png.width + x), 4 * (y * png.width + x) + 3)];
    assert.deepEqual(pixel(0, 0), [0, 0, 0]);
    assert.deepEqual(pixel(1, 1), [0, 0, 0]);
    const expected = (v: number) => Math.floor((v + 1) * 127.5 + 0.5);
    for (let n = 0; n < 5; n++) {
      const [x, y] = [2 + (n % 3) * (w + 2), 2 + Math.floor(n / 3) * (h + 2)];
      for (const [dx, dy] of [[0, 0], [w - 1, h - 1]]) {
        assert.deepEqual(pixel(x + dx, y + dy), [expected(-1 + n / 2), expected(1 - n / 2), expected(0)], `image ${n}`);
      }
    }
    // The sixth cell is empty: border colour.
    assert.deepEqual(pixel(2 + 2 * (w + 2), 2 + (h + 2)), [0, 0, 0]);
    assert.throws(() => imageGridPng(values, 5, [h, w, 2]), /1 or 3 channels/);
    assert.throws(() => imageGridPng(values, 4, [h, w, 3]), /90 values for 4 images/);
  });
});

/** A hand-written tfjs graph model: pool_3 = the mean over H and W, softmax/logits = pool_3 W. */
async function writeGraphModel(dir: string, w: Float32Array, names = {features: 'pool_3', logits: 'softmax/logits'}): Promise<void> {
  await mkdir(dir, {recursive: true});
  const dim = (sizes: number[]) => ({dim: sizes.map(size => ({size: String(size)}))});
  const json = {
    format: 'graph-model', generatedBy: 'hand', convertedBy: 'hand',
    modelTopology: {
      node: [
        {name: 'images', op: 'Placeholder', attr: {dtype: {type: 'DT_FLOAT'}, shape: {shape: dim([-1, 299, 299, 3])}}},
        {name: 'axes', op: 'Const', attr: {value: {tensor: {dtype: 'DT_INT32', tensorShape: dim([2])}}, dtype: {type: 'DT_INT32'}}},
        {name: 'w', op: 'Const', attr: {value: {tensor: {dtype: 'DT_FLOAT', tensorShape: dim([3, 4])}}, dtype: {type: 'DT_FLOAT'}}},
        {name: names.features, op: 'Mean', input: ['images', 'axes'],
         attr: {keep_dims: {b: false}, T: {type: 'DT_FLOAT'}, Tidx: {type: 'DT_INT32'}}},
        {name: names.logits, op: 'MatMul', input: [names.features, 'w'],
         attr: {transpose_a: {b: false}, transpose_b: {b: false}, T: {type: 'DT_FLOAT'}}},
      ],
      library: {}, versions: {producer: 1},
    },
    weightsManifest: [{paths: ['weights.bin'], weights: [{name: 'axes', shape: [2], dtype: 'int32'},
                                                         {name: 'w', shape: [3, 4], dtype: 'float32'}]}],
  };
  await writeFile(join(dir, 'model.json'), JSON.stringify(json));
  await writeFile(join(dir, 'weights.bin'), Buffer.concat([Buffer.from(new Int32Array([1, 2]).buffer), Buffer.from(w.buffer)]));
}

describe('Inception graph models (wasm)', () => {
  let root: string;
  before(async () => {
    await useTestBackend('wasm');
    root = await mkdtemp(join(tmpdir(), 'convnorm-inception-'));
  });
  after(async () => {
    await rm(root, {recursive: true, force: true});
  });

  it('features and logits come from the named nodes, on 299x299 inputs, grey images as three equal channels', async () => {
    const rng = new Rng(17);
    const w = Float32Array.from({length: 12}, () => rng.normal());
    await writeGraphModel(join(root, 'ok'), w);
    const net = await loadInception(fileSystem(join(root, 'ok')), [299, 299, 3]);
    assert.deepEqual(net.labels, {fd: 'FID', is: 'IS'});
    const values = Float32Array.from({length: 2 * 299 * 299 * 3}, () => 2 * rng.next() - 1);
    const images = tf.tensor4d(values, [2, 299, 299, 3]);
    const count = tf.memory().numTensors;
    const {features, logits} = net.apply(images);
    assert.equal(tf.memory().numTensors, count + 2);
    const f = await features.data();
    const l = await logits.data();
    for (let n = 0; n < 2; n++) {
      // float64 means, computed here: a 299x299 resize to 299x299 with half-pixel centres is the identity.
      const mean = [0, 1, 2].map(c => {
        let s = 0;
        for (let p = 0; p < 299 * 299; p++) s += values[(n * 299 * 299 + p) * 3 + c];
        return s / (299 * 299);
      });
      mean.forEach((m, c) => assert.ok(Math.abs(f[n * 3 + c] - m) < 1e-5, `image ${n} channel ${c}: ${f[n * 3 + c]} vs ${m}`));
      for (let k = 0; k < 4; k++) {
        const expected = mean.reduce((s, m, c) => s + m * w[c * 4 + k], 0);
        assert.ok(Math.abs(l[n * 4 + k] - expected) < 1e-5, `logit ${n}, ${k}`);
      }
    }
    tf.dispose([images, features, logits]);
    net.dispose();

    const grey = await loadInception(fileSystem(join(root, 'ok')), [28, 28, 1]);
    const digits = tf.randomUniform([3, 28, 28, 1], -1, 1, 'float32', 5) as tf.Tensor4D;
    const out = grey.apply(digits);
    const g = await out.features.data();
    for (let n = 0; n < 3; n++) assert.ok(g[3 * n] === g[3 * n + 1] && g[3 * n] === g[3 * n + 2], `image ${n}: ${g.slice(3 * n, 3 * n + 3)}`);
    tf.dispose([digits, out.features, out.logits]);
    grey.dispose();
  });

  it('refuses a layers model, a graph without the named nodes, and a missing directory', async () => {
    await writeGraphModel(join(root, 'renamed'), new Float32Array(12), {features: 'avg_pool', logits: 'predictions'});
    await assert.rejects(loadInception(fileSystem(join(root, 'renamed')), [32, 32, 3]), /no node 'pool_3' or 'softmax\/logits'/);
    const renamed = await loadInception(fileSystem(join(root, 'renamed')), [32, 32, 3], {features: 'avg_pool', logits: 'predictions'});
    renamed.dispose();
    await mkdir(join(root, 'layers'));
    await writeFile(join(root, 'layers', 'model.json'), JSON.stringify({format: 'layers-model', modelTopology: {}, weightsManifest: []}));
    await assert.rejects(loadInception(fileSystem(join(root, 'layers')), [32, 32, 3]), /not a tfjs graph model \(format 'layers-model'\)/);
    await assert.rejects(loadInception(fileSystem(join(root, 'nothing')), [32, 32, 3]), /cannot read a tfjs model/);
  });
});
