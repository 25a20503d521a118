import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {cp, mkdir, mkdtemp, readFile, rename, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {after, before, describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {makeBatch} from '../src/data/batches.js';
import {loadCheckpoint, readCheckpoint, TrainError} from '../src/training/checkpoint.js';
import {evaluate, topKCorrect} from '../src/training/metrics.js';
import {learningRateAt, parseSchedule, REFERENCE_SCHEDULE, Schedule, validateSchedule} from '../src/training/schedule.js';
import {trainableVariables, TrainStep} from '../src/training/step.js';
import {epochBatches, EpochRecord, TIMING_FIELDS, train, TrainResult} from '../src/training/trainer.js';
import {useTestBackend} from './helpers/backends.js';
import {waitForLine} from './helpers/child_process.js';
import {tinyDataset, tinyModel, tinyRunOptions} from './helpers/train_child.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));

describe('learning-rate schedules', () => {
  // Printed by PyTorch 1.13: optimizer.param_groups[0]['lr'] during epoch e, scheduler.step() after each epoch.
  it('multistep is MultiStepLR, bit for bit', () => {
    const at = (e: number) => learningRateAt(REFERENCE_SCHEDULE, e);
    assert.deepEqual([0, 39, 40, 79, 80, 119].map(at),
                     [0.1, 0.1, 0.010000000000000002, 0.010000000000000002, 0.0010000000000000002, 0.0010000000000000002]);
    // A repeated milestone applies gamma twice (PyTorch keeps a Counter); one at 0 applies from the start.
    const twice: Schedule = {kind: 'multistep', lr: 0.1, milestones: [2, 2, 5], gamma: 0.5};
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(e => learningRateAt(twice, e)), [0.1, 0.1, 0.025, 0.025, 0.025, 0.0125, 0.0125]);
    const zero: Schedule = {kind: 'multistep', lr: 0.1, milestones: [0, 2, 2], gamma: 0.5};
    assert.deepEqual([0, 1, 2, 3].map(e => learningRateAt(zero, e)), [0.05, 0.05, 0.0125, 0.0125]);
  });

  it('cosine is CosineAnnealingLR (float64 within V8-vs-libm cosine ulps, float32 exact), past T_max too', () => {
    const cases: [Schedule, number[]][] = [
      [{kind: 'cosine', lr: 0.1, tMax: 4, etaMin: 0},
       [0.1, 0.08535533905932738, 0.05, 0.014644660940672627, 0.0, 0.014644660940672622, 0.05000000000000001,
        0.0853553390593274, 0.10000000000000003]],
      [{kind: 'cosine', lr: 0.1, tMax: 5, etaMin: 0.001},
       [0.1, 0.0905463412215599, 0.06579634122155989, 0.035203658778440096, 0.010453658778440105, 0.001,
        0.010453658778440102, 0.03520365877844012, 0.06579634122155993, 0.09054634122155995, 0.10000000000000005,
        0.09054634122155998]],
    ];
    for (const [schedule, expected] of cases) {
      expected.forEach((value, e) => {
        const lr = learningRateAt(schedule, e);
        assert.ok(Math.abs(lr - value) <= 1e-16, `epoch ${e}: ${lr} vs PyTorch ${value}`);
        assert.equal(Math.fround(lr), Math.fround(value), `epoch ${e} in float32`);
      });
    }
    const long: Schedule = {kind: 'cosine', lr: 0.1, tMax: 120, etaMin: 0};
    for (const [e, value] of [[1, 0.09998286624877786], [118, 0.00006852326227130829], [119, 0.000017133751222136994], [120, 0]]) {
      assert.ok(Math.abs(learningRateAt(long, e) - value) <= 1e-16, `T_max 120, epoch ${e}`);
    }
    assert.equal(learningRateAt({kind: 'constant', lr: 0.3}, 57), 0.3);
  });

  it('parses the command-line forms and refuses bad ones with the reason', () => {
    assert.deepEqual(parseSchedule('multistep', {epochs: 120}), REFERENCE_SCHEDULE);
    assert.deepEqual(parseSchedule('multistep:80,30:0.2', {epochs: 120, lr: 0.05}),
                     {kind: 'multistep', lr: 0.05, milestones: [30, 80], gamma: 0.2});
    assert.deepEqual(parseSchedule('cosine', {epochs: 90}), {kind: 'cosine', lr: 0.1, tMax: 90, etaMin: 0});
    assert.deepEqual(parseSchedule('cosine:1e-4:50', {epochs: 90}), {kind: 'cosine', lr: 0.1, tMax: 50, etaMin: 1e-4});
    assert.deepEqual(parseSchedule('constant', {epochs: 3, lr: 0.01}), {kind: 'constant', lr: 0.01});
    assert.throws(() => parseSchedule('step', {epochs: 3}), /unknown schedule 'step'; syntax: constant \| multistep/);
    assert.throws(() => parseSchedule('multistep:40,x', {epochs: 3}), /milestone 'x' is not a number/);
    assert.throws(() => parseSchedule('multistep:40.5', {epochs: 3}), /milestones must be non-negative integers/);
    assert.throws(() => parseSchedule('cosine', {epochs: 0}), /tMax must be a positive integer/);
    assert.throws(() => parseSchedule('constant:1', {epochs: 3}), /too many ':' parts/);
    assert.throws(() => parseSchedule('constant', {epochs: 3, lr: -1}), /lr must be a finite number > 0/);
    assert.throws(() => validateSchedule({kind: 'multistep', lr: 0.1, milestones: [1], gamma: 0}), /gamma must be/);
    assert.throws(() => learningRateAt(REFERENCE_SCHEDULE, 1.5), /non-negative integer/);
  });
});

describe('metrics (cpu)', () => {
  before(() => useTestBackend('cpu'));

  it('top-k breaks ties by class index, clamps k, and never counts a NaN row', () => {
    const logits = tf.tensor2d([
      [1, 3, 2, 0], // label 2 is second
      [5, 5, 5, 5], // all tied: class 0 first, class 3 last
      [5, 5, 5, 5],
      [0, 1, 1, 0], // label 2 ties with class 1, which ranks first
      [0, 1, 1, 0], // label 1 wins the tie
      [NaN, 1, 2, 3],
      [-Infinity, Infinity, 0, 0],
    ]);
    const labels = [2, 0, 3, 2, 1, 3, 1];
    assert.equal(topKCorrect(logits, labels, 1), 3); // rows 1, 4, 6
    assert.equal(topKCorrect(logits, labels, 2), 5); // + rows 0, 3
    assert.equal(topKCorrect(logits, labels, 3), 5);
    assert.equal(topKCorrect(logits, labels, 4), 6); // + row 2; never row 5
    assert.equal(topKCorrect(logits, labels, 10), 6);
    assert.equal(topKCorrect(logits, tf.tensor1d(labels, 'int32'), 1), 3);
    assert.throws(() => topKCorrect(logits, labels, 0), /positive integer k/);
    logits.dispose();
  });

  it('evaluation in batches matches one pass over the set, in inference mode, without leaking', async () => {
    const model = tinyModel('convnorm', 2);
    const ds = tinyDataset(23, 5);
    const step = new TrainStep(model, {learningRate: 0.05});
    const batch = makeBatch(ds, Int32Array.from({length: 16}, (_, i) => i));
    step.step(batch.x, batch.labels); // the running statistics move away from their initial values
    step.dispose();
    const weights = model.getWeights().map(w => w.dataSync().slice());
    const count = tf.memory().numTensors;
    const result = await evaluate(model, ds, {batchSize: 10});
    assert.equal(tf.memory().numTensors, count, 'tensors leaked');
    model.getWeights().forEach((w, i) => assert.deepEqual(w.dataSync(), weights[i], 'evaluation changed a weight'));
    const all = makeBatch(ds, Int32Array.from({length: 23}, (_, i) => i));
    const logits = model.apply(all.x, {training: false}) as tf.Tensor2D;
    const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(all.labels, 4), logits);
    assert.equal(result.count, 23);
    assert.equal(result.top1, topKCorrect(logits, all.labels, 1) / 23);
    assert.equal(result.top5, 1, 'k = 5 clamps to the 4 classes');
    assert.ok(Math.abs(result.loss - loss.dataSync()[0]) < 1e-6, `${result.loss} vs ${loss.dataSync()[0]}`);
    tf.dispose([batch.x, batch.labels, all.x, all.labels, logits, loss]);
  });
});

function bytes(t: tf.Tensor): Buffer {
  const d = t.dataSync();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

function weightBytes(model: tfl.LayersModel): Buffer[] {
  return model.getWeights().map(bytes);
}

async function metricsWithoutTiming(runDir: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(runDir, 'metrics.jsonl'), 'utf8');
  return text.trim().split('\n').map(line => {
    const record = JSON.parse(line) as Record<string, unknown>;
    for (const f of TIMING_FIELDS) {
      assert.ok(f in record, `metrics line without ${f}`);
      delete record[f];
    }
    return record;
  });
}

async function sameFile(a: string, b: string): Promise<boolean> {
  return (await readFile(a)).equals(await readFile(b));
}

/** Resolves with the child's first stdout line matching `pattern`; rejects if it exits first. */
async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof TrainError, `not a TrainError: ${e}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

describe('training (cpu)', () => {
  let root: string;
  before(async () => {
    await useTestBackend('cpu');
    root = await mkdtemp(join(tmpdir(), 'convnorm-train-'));
  });
  after(() => rm(root, {recursive: true, force: true}));

  it('epochs keep a last incomplete batch unless it has one image', () => {
    assert.deepEqual([[40, 16], [32, 16], [33, 16], [34, 16], [1, 1], [5, 1], [1, 16]].map(([n, b]) => epochBatches(n, b)),
                     [3, 2, 2, 3, 1, 5, 0]);
  });

  it('the first SGD step sets the momentum buffer to the decayed gradient, as PyTorch does', () => {
    const p = tinyModel('bn', 5);
    const q = tinyModel('bn', 5);
    const ds = tinyDataset(8, 11);
    const {x, labels} = makeBatch(ds, Int32Array.from({length: 8}, (_, i) => i));
    const w0 = trainableVariables(q).map(v => tf.clone(v));
    let logits: tf.Tensor | undefined;
    const {grads} = tf.variableGrads(() => {
      logits = tf.keep(p.apply(x, {training: true}) as tf.Tensor);
      return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 4), logits) as tf.Scalar;
    }, trainableVariables(p));
    const step = new TrainStep(q, {learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4});
    const result = step.step(x, labels);
    // The step's top-1 hits are those of the same model's training-mode logits before the update.
    const predicted = tf.argMax(logits!, 1).dataSync();
    const expectedHits = Array.from(labels.dataSync()).filter((l, i) => predicted[i] === l).length;
    assert.equal(result.correct, expectedHits);
    assert.ok(expectedHits > 0 && expectedHits < 8, `${expectedHits} of 8: the check would not tell a count from 0 or 8`);
    const pVars = trainableVariables(p);
    step.optimizerState().forEach((buffer, i) => {
      const expected = tf.add(grads[pVars[i].name], tf.mul(1e-4, w0[i]));
      assert.ok(bytes(buffer).equals(bytes(expected)), `buffer ${i} is not g + wd w`);
      const w1 = tf.add(tf.mul(tf.scalar(-0.1), expected), w0[i]);
      assert.ok(bytes(trainableVariables(q)[i]).equals(bytes(w1)), `weight ${i} is not w - lr buf`);
    });
    // An extra loss is added to the objective and reported apart.
    const r = new TrainStep(q, {learningRate: 0.1, extraLoss: m => tf.mul(0.5, tf.sum(tf.square(m.trainableWeights[0].read()))) as tf.Scalar});
    const withExtra = r.step(x, labels);
    const count = tf.memory().numTensors;
    r.step(x, labels);
    assert.equal(tf.memory().numTensors, count, 'a step with an extra loss leaked');
    assert.ok(withExtra.extraLoss > 0);
    assert.ok(Math.abs(withExtra.loss - withExtra.crossEntropy - withExtra.extraLoss) < 1e-5);
    r.dispose();
    step.dispose();
  });

  it('stepAsync takes the same step as step, bit for bit, and leaves no tensor behind', async () => {
    const [a, b] = [tinyModel('convnorm', 6), tinyModel('convnorm', 6)];
    const ds = tinyDataset(8, 12);
    const {x, labels} = makeBatch(ds, Int32Array.from({length: 8}, (_, i) => i));
    const [sa, sb] = [new TrainStep(a, {learningRate: 0.1}), new TrainStep(b, {learningRate: 0.1})];
    for (let i = 0; i < 2; i++) {
      const count = tf.memory().numTensors;
      const async = await sb.stepAsync(x, labels);
      assert.equal(tf.memory().numTensors, count, 'stepAsync leaked');
      assert.deepEqual(async, sa.step(x, labels));
    }
    trainableVariables(a).forEach((v, i) => assert.ok(bytes(v).equals(bytes(trainableVariables(b)[i])), `weight ${i}`));
    sa.dispose();
    sb.dispose();
  });

  let runA: TrainResult;
  let modelA: tfl.LayersModel;
  let dirA: string;

  it('a run killed mid-epoch (SIGKILL) and resumed gives bitwise the uninterrupted ConvNorm run', async () => {
    // Uninterrupted, in this process; the tensor count is the same after every epoch.
    dirA = join(root, 'a');
    const optionsA = tinyRunOptions('convnorm', dirA, 3);
    modelA = optionsA.model;
    const tensors: number[] = [];
    const before = tf.memory().numTensors;
    runA = await train({...optionsA, onEpoch: () => { tensors.push(tf.memory().numTensors); }});
    assert.equal(runA.history.length, 3);
    assert.equal(tensors.length, 3);
    assert.ok(tensors.every(t => t === tensors[0]), `tensor counts per epoch ${tensors}`);
    assert.ok(tf.memory().numTensors <= before + 8, `tensors before ${before}, after ${tf.memory().numTensors}`);

    // The same run in a child process, killed during epoch 2 once epoch 1's checkpoint is on disk.
    const dirB = join(root, 'b');
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/train_child.ts', dirB, 'convnorm', '3', '2', '2'],
                        {cwd: REPO, stdio: ['ignore', 'pipe', 'pipe']});
    try {
      assert.equal(await waitForLine(child, /^HANGING/, 60_000), 'HANGING 2 2');
      assert.equal((await readCheckpoint(dirB))?.epoch, 1);
    } finally {
      const exited = new Promise(resolve => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    assert.equal((await readFile(join(dirB, 'metrics.jsonl'), 'utf8')).trim().split('\n').length, 1);

    // Resumed here, with a freshly built model.
    const optionsB = tinyRunOptions('convnorm', dirB, 3);
    const runB = await train({...optionsB, resume: true});
    assert.equal(runB.resumedFrom, 1);
    assert.equal(runB.history.length, 3);
    const a = weightBytes(modelA);
    const b = weightBytes(optionsB.model);
    assert.equal(a.length, b.length);
    a.forEach((w, i) => assert.ok(w.equals(b[i]), `weight ${i} (${modelA.weights[i].originalName}) differs`));
    // The ConvNorm step counters went on from the checkpoint: 3 epochs of 3 steps.
    const steps = optionsB.model.weights.filter(w => w.originalName.endsWith('/step'));
    assert.equal(steps.length, 2);
    for (const s of steps) assert.equal(s.read().dataSync()[0], 9);
    for (const file of ['weights.bin', 'optimizer.bin']) {
      assert.ok(await sameFile(join(dirA, 'checkpoint', file), join(dirB, 'checkpoint', file)), `${file} differs`);
    }
    assert.deepEqual(await metricsWithoutTiming(dirB), await metricsWithoutTiming(dirA));
    assert.deepEqual(runB.history.map(r => r.epoch), [1, 2, 3]);
  });

  it('refuses an existing run directory, another architecture, other settings; epochs may be raised', async () => {
    const optionsA = () => tinyRunOptions('convnorm', dirA, 3);
    await rejectsWith(train(optionsA()), 'RUN_EXISTS', /already exists; resume to continue that run, or overwrite/);
    await rejectsWith(train({...optionsA(), resume: true, overwrite: true}), 'BAD_OPTIONS', /exclude each other/);
    await rejectsWith(train({...tinyRunOptions('bn', dirA, 3), resume: true}), 'ARCHITECTURE_MISMATCH',
                      /checkpoint in .* is for model 'tiny_convnorm' .*"norm":"convnorm".*, not 'tiny_bn'/);
    // Evaluation loads checkpoints through the same check.
    await rejectsWith(loadCheckpoint(tinyModel('bn', 7), dirA), 'ARCHITECTURE_MISMATCH', /'tiny_convnorm' .* not 'tiny_bn' \(it has 20 weights, the model 12\)/);
    await rejectsWith(train({...optionsA(), batchSize: 8, seed: 4, resume: true}), 'CONFIG_MISMATCH',
                      /batch size: 16 in the checkpoint, 8 now\n {2}seed: 3 in the checkpoint, 4 now/);
    await rejectsWith(train({...optionsA(), runDir: join(root, 'none'), resume: true}), 'NO_CHECKPOINT', /does not exist/);
    const foreign = join(root, 'foreign');
    await mkdir(foreign);
    await writeFile(join(foreign, 'notes.txt'), 'mine');
    await rejectsWith(train({...optionsA(), runDir: foreign, overwrite: true}), 'RUN_EXISTS', /holds no run/);
    const empty = join(root, 'empty-run');
    await mkdir(join(empty, 'checkpoint.tmp'), {recursive: true});
    await rejectsWith(train({...optionsA(), runDir: empty, resume: true}), 'NO_CHECKPOINT', /no complete checkpoint/);

    // A loss that is no longer finite stops the run before its checkpoint.
    const diverging = join(root, 'diverging');
    await rejectsWith(train({...tinyRunOptions('bn', diverging, 2), extraLoss: () => tf.scalar(NaN)}), 'DIVERGED',
                      /training loss is NaN at epoch 1, step 1/);
    assert.equal(await readCheckpoint(diverging), null);

    // A finished run resumed with the same epochs trains nothing; with more it goes on.
    const same = await train({...optionsA(), resume: true});
    assert.equal(same.resumedFrom, 3);
    assert.equal(same.history.length, 3);
    const more = await train({...optionsA(), epochs: 4, resume: true});
    assert.equal(more.resumedFrom, 3);
    assert.deepEqual(more.history.map(r => r.epoch), [1, 2, 3, 4]);
    assert.equal(more.history[3].lr, 0.005000000000000001);
    assert.equal((await readCheckpoint(dirA))?.epoch, 4);
  });

  it('the same seed trains the same weights, another seed others; leftovers of a crashed save do not break resume', async () => {
    const run = async (dir: string, epochs: number, extra: object = {}) => {
      const options = {...tinyRunOptions('bn', join(root, dir), epochs), ...extra};
      const result = await train(options);
      return {result, weights: weightBytes(options.model)};
    };
    const d1 = await run('d1', 2);
    const d2 = await run('d2', 2);
    const d3 = await run('d3', 2, {seed: 4});
    d1.weights.forEach((w, i) => assert.ok(w.equals(d2.weights[i]), `same seed, weight ${i} differs`));
    assert.ok(d1.weights.some((w, i) => !w.equals(d3.weights[i])), 'another seed gave the same weights');
    assert.equal(d1.result.history[0].trainImages, 40, 'the incomplete batch of 8 is trained on');

    // One epoch, then a half-written checkpoint.tmp and a stray checkpoint.old, then resume to two.
    const dirC = join(root, 'c');
    await run('c', 1);
    await cp(join(dirC, 'checkpoint'), join(root, 'c-epoch1'), {recursive: true});
    await cp(join(dirC, 'checkpoint'), join(dirC, 'checkpoint.tmp'), {recursive: true});
    const weights = await readFile(join(dirC, 'checkpoint.tmp', 'weights.bin'));
    await writeFile(join(dirC, 'checkpoint.tmp', 'weights.bin'), weights.subarray(0, 100));
    await writeFile(join(dirC, 'checkpoint.tmp', 'state.json'), '{"format": "convnorm-chec');
    await mkdir(join(dirC, 'checkpoint.old'));
    await writeFile(join(dirC, 'metrics.jsonl'), `${await readFile(join(dirC, 'metrics.jsonl'), 'utf8')}{"epoch": 2, "tr`);
    const options = tinyRunOptions('bn', dirC, 2);
    const resumed = await train({...options, resume: true});
    assert.equal(resumed.resumedFrom, 1);
    weightBytes(options.model).forEach((w, i) => assert.ok(w.equals(d1.weights[i]), `resumed weight ${i} differs`));
    assert.deepEqual(await metricsWithoutTiming(dirC), await metricsWithoutTiming(join(root, 'd1')));
    assert.ok(await sameFile(join(dirC, 'checkpoint', 'optimizer.bin'), join(root, 'd1', 'checkpoint', 'optimizer.bin')));

    // Killed between the renames of a save: checkpoint/ gone, the new one complete in checkpoint.tmp/.
    await rename(join(dirC, 'checkpoint'), join(dirC, 'checkpoint.tmp'));
    await cp(join(root, 'c-epoch1'), join(dirC, 'checkpoint.old'), {recursive: true});
    assert.equal((await readCheckpoint(dirC))?.epoch, 2);
    const again = await train({...tinyRunOptions('bn', dirC, 2), resume: true});
    assert.equal(again.resumedFrom, 2);
    assert.equal((await readCheckpoint(dirC))?.dir, join(dirC, 'checkpoint'));
    await assert.rejects(readFile(join(dirC, 'checkpoint.tmp', 'state.json')));
    await assert.rejects(readFile(join(dirC, 'checkpoint.old', 'state.json')));

    // overwrite replaces a run.
    const replaced = await run('d3', 1, {overwrite: true});
    assert.deepEqual(replaced.result.history.map((r: EpochRecord) => r.epoch), [1]);
    assert.equal((await metricsWithoutTiming(join(root, 'd3'))).length, 1);
  });

  it('refuses a format-1 checkpoint of a baseline (trained on tfjs\'s \'same\' grid), not one of ConvNorm', async () => {
    // Format 1 as it was: version 1 and tfjs's Conv2D class in the weight names.
    const asFormat1 = async (dir: string, rename: boolean) => {
      const path = join(dir, 'checkpoint', 'state.json');
      const state = JSON.parse(await readFile(path, 'utf8'));
      state.version = 1;
      if (rename) {
        for (const list of [state.config.model.weights, state.optimizer.buffers]) {
          for (const w of list) w.name = w.name.replace(/^PlainConv2D\//, 'Conv2D/');
        }
      }
      await writeFile(path, JSON.stringify(state));
    };
    const bnDir = join(root, 'd1');
    await asFormat1(bnDir, true);
    const grid = /format 1\) was trained when the bn, sn, oni and none convolutions used tfjs's 'same' padding \(its Conv2D\/kernel\)/;
    await rejectsWith(loadCheckpoint(tinyModel('bn', 7), bnDir), 'OLD_GRID', grid);
    await rejectsWith(train({...tinyRunOptions('bn', bnDir, 3), resume: true}), 'OLD_GRID', grid);
    // ConvNorm2D always padded symmetrically: its format-1 checkpoints load.
    const format2 = tinyModel('convnorm', 7);
    await loadCheckpoint(format2, dirA);
    await asFormat1(dirA, false);
    const format1 = tinyModel('convnorm', 7);
    assert.equal((await loadCheckpoint(format1, dirA)).state.version, 1);
    const expected = weightBytes(format2);
    weightBytes(format1).forEach((w, i) => assert.ok(w.equals(expected[i]), `weight ${i} differs`));
    format1.dispose();
    format2.dispose();
  });
});
