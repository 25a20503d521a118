/**
 * Adversarial training: free training's replays step the weights and the
 * perturbation from one backward pass each (checked against the same steps
 * taken by hand), its carried perturbation goes into the checkpoint, killed
 * free and PGD runs resume bitwise, the experiment's switches do what they
 * say, and an adversarially trained network resists PGD better than a
 * normally trained one.
 */
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {after, before, describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {checkExperiment, runExperiment, trainedEpochs} from '../src/cli/experiment.js';
import {makeBatch} from '../src/data/batches.js';
import {Rng} from '../src/data/random.js';
import {evaluateAttacks} from '../src/robustness/attack_eval.js';
import {pgd} from '../src/robustness/pgd.js';
import {AdversarialSteps, FreeAdversarialTraining} from '../src/training/adversarial.js';
import {readCheckpoint} from '../src/training/checkpoint.js';
import {TrainStep} from '../src/training/step.js';
import {train} from '../src/training/trainer.js';
import {useTestBackend} from './helpers/backends.js';
import {tinyDataset, tinyModel, tinyRunOptions} from './helpers/train_child.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const NORMALIZATION = {mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]};

function normalize(x: tf.Tensor): tf.Tensor {
  return tf.div(tf.sub(x, NORMALIZATION.mean), NORMALIZATION.std);
}

function weightBytes(model: tfl.LayersModel): Buffer[] {
  return model.getWeights().map(w => Buffer.from((w.dataSync() as Float32Array).buffer.slice(0)));
}

/**
 * Free training by hand: per replay, the input gradient of the loss at the
 * current weights through tf.grad, then a plain TrainStep on x + delta, then
 * delta <- clip(delta + step sign(g), -eps, eps). (Norm 'none': no running
 * statistics, so the extra forward pass changes nothing.)
 */
function freeByHand(model: tfl.LayersModel, step: TrainStep, x: tf.Tensor, labels: tf.Tensor1D,
                    c: FreeAdversarialTraining, delta: tf.Tensor): {delta: tf.Tensor; losses: number[]} {
  const losses: number[] = [];
  for (let j = 0; j < c.replays; j++) {
    const g = tf.grad(d => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 4), model.apply(
      normalize(tf.clipByValue(tf.add(x, d), 0, 1)), {training: true}) as tf.Tensor) as tf.Scalar)(delta);
    losses.push(step.step(normalize(tf.clipByValue(tf.add(x, delta), 0, 1)), labels).loss);
    delta = tf.clipByValue(tf.add(delta, tf.mul(c.step, tf.sign(g))), -c.eps, c.eps);
  }
  return {delta, losses};
}

describe('adversarial training (cpu)', () => {
  let root: string;
  before(async () => {
    await useTestBackend('cpu');
    root = await mkdtemp(join(tmpdir(), 'convnorm-adv-'));
  });
  after(() => rm(root, {recursive: true, force: true}));

  for (const perturbation of ['reset', 'carry'] as const) {
    it(`free training (${perturbation}): each replay's one backward pass steps the weights and the perturbation`, async () => {
      const c: FreeAdversarialTraining = {kind: 'free', replays: 3, eps: 10 / 255, step: 6 / 255, perturbation};
      const ds = tinyDataset(16, 21);
      const batch = (first: number) => makeBatch(ds, Int32Array.from({length: 8}, (_, i) => first + i));
      const [a, b] = [tinyModel('none', 5), tinyModel('none', 5)];
      const stepA = new TrainStep(a, {learningRate: 0.05});
      const stepB = new TrainStep(b, {learningRate: 0.05});
      const adversarial = new AdversarialSteps(stepA, a, c, NORMALIZATION, [8, 8, 8, 3]);
      let delta: tf.Tensor = tf.zeros([8, 8, 8, 3]);
      for (const first of [0, 8]) {
        const {x, labels} = batch(first);
        const before = tf.memory().numTensors;
        const results = await adversarial.run(x, labels, new Rng(1));
        assert.equal(tf.memory().numTensors, before, 'a replayed batch leaked tensors');
        const byHand = freeByHand(b, stepB, x, labels, c, perturbation === 'reset' ? tf.zeros(x.shape) : delta);
        delta = byHand.delta;
        assert.deepEqual(results.map(r => r.loss), byHand.losses, `batch at ${first}: losses per replay`);
        weightBytes(a).forEach((w, i) => assert.ok(w.equals(weightBytes(b)[i]), `batch at ${first}: weight ${i} differs`));
      }
      const state = adversarial.state();
      if (perturbation === 'carry') {
        // What a checkpoint saves: the perturbation after the last replay, within eps and not zero.
        assert.deepEqual(state[0].dataSync(), delta.dataSync());
        const values = delta.dataSync();
        assert.ok(values.every(v => Math.abs(v) <= c.eps + 1e-7) && values.some(v => v !== 0));
      } else {
        assert.deepEqual(state, []);
      }
      adversarial.dispose();
      stepA.dispose();
      stepB.dispose();
    });
  }

  it('PGD training steps on the PGD examples of each batch, made in inference mode from the step\'s seed', async () => {
    const ds = tinyDataset(8, 22);
    const {x, labels} = makeBatch(ds, Int32Array.from({length: 8}, (_, i) => i));
    const [a, b] = [tinyModel('bn', 6), tinyModel('bn', 6)];
    const stepA = new TrainStep(a, {learningRate: 0.05});
    const stepB = new TrainStep(b, {learningRate: 0.05});
    const c = {kind: 'pgd' as const, eps: 8 / 255, step: 2 / 255, steps: 3};
    const adversarial = new AdversarialSteps(stepA, a, c, NORMALIZATION, [8, 8, 8, 3]);
    const [result] = await adversarial.run(x, labels, new Rng(9));
    const {adversarial: examples} = await pgd({classifier: {model: b, normalization: NORMALIZATION}, images: x, labels,
                                               cleanCorrect: new Uint8Array(8).fill(1)},
                                              {eps: c.eps, step: c.step, steps: c.steps, rng: new Rng(9)});
    assert.equal(result.loss, stepB.step(normalize(examples), labels).loss);
    weightBytes(a).forEach((w, i) => assert.ok(w.equals(weightBytes(b)[i]), `weight ${i} differs`));
    adversarial.dispose();
    stepA.dispose();
    stepB.dispose();
  });

  it('free training with eps 0 and one replay is normal training (normalization applied once, inside the step)', async () => {
    const normal = tinyRunOptions('bn', join(root, 'normal'), 2);
    const free = tinyRunOptions('bn', join(root, 'free0'), 2);
    const runs = [await train(normal),
                  await train({...free, adversarial: {kind: 'free', replays: 1, eps: 0, step: 0, perturbation: 'reset'}})];
    assert.deepEqual(runs.map(r => r.history.map(h => h.trainImages)), [[40, 40], [40, 40]]);
    // The lookup table and tf's (x - mean) / std may round differently in the last bit; nothing more.
    const [wa, wb] = [normal.model.getWeights(), free.model.getWeights()];
    wa.forEach((w, i) => {
      const diff = tf.max(tf.abs(tf.sub(w, wb[i]))).dataSync()[0];
      assert.ok(diff < 1e-4, `weight ${i} differs by ${diff}`);
    });
    assert.ok(Math.abs(runs[0].history[1].trainLoss - runs[1].history[1].trainLoss) < 1e-4);
    normal.model.dispose();
    free.model.dispose();
  });

  for (const mode of ['free-carry', 'pgd']) {
    it(`a ${mode} adversarial run killed mid-epoch (SIGKILL) and resumed gives bitwise the uninterrupted run`, async () => {
      const dirA = join(root, `${mode}-a`);
      const optionsA = tinyRunOptions('convnorm', dirA, 2, mode);
      const runA = await train(optionsA);
      assert.equal(runA.history[0].trainSteps, mode === 'pgd' ? 3 : 9, 'weight steps per epoch');
      const dirB = join(root, `${mode}-b`);
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/train_child.ts', dirB, 'convnorm', '2', '2',
                                             '1', mode], {cwd: REPO, stdio: ['ignore', 'pipe', 'pipe']});
      try {
        const line = await new Promise<string>((resolve, reject) => {
          let out = '';
          let err = '';
          child.stdout!.on('data', d => { out += d; if (/HANGING/.test(out)) resolve(out.trim()); });
          child.stderr!.on('data', d => { err += d; });
          child.once('exit', code => reject(new Error(`child exited with ${code}: ${err}`)));
        });
        assert.equal(line, 'HANGING 2 1');
      } finally {
        const exited = new Promise(resolve => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      const saved = await readCheckpoint(dirB);
      assert.equal(saved?.epoch, 1);
      assert.deepEqual(saved?.extra?.map(e => [e.name, e.shape]), mode === 'pgd' ? undefined : [['perturbation', [16, 8, 8, 3]]]);
      const optionsB = tinyRunOptions('convnorm', dirB, 2, mode);
      const runB = await train({...optionsB, resume: true});
      assert.equal(runB.resumedFrom, 1);
      const a = weightBytes(optionsA.model);
      weightBytes(optionsB.model).forEach((w, i) => assert.ok(w.equals(a[i]), `weight ${i} differs`));
      for (const file of ['weights.bin', 'optimizer.bin', ...(mode === 'pgd' ? [] : ['extra.bin'])]) {
        assert.ok((await readFile(join(dirA, 'checkpoint', file))).equals(await readFile(join(dirB, 'checkpoint', file))),
                  `${file} differs`);
      }
      // Another adversarial setting is another run.
      await assert.rejects(train({...tinyRunOptions('convnorm', dirB, 2, mode === 'pgd' ? 'free-carry' : 'pgd'), resume: true}),
                           /adversarial training: .* in the checkpoint/);
      optionsA.model.dispose();
      optionsB.model.dispose();
    });
  }

  it('the experiment\'s switches: the authors\' settings by default, Shafahi et al.\'s epochs divided, bad values refused', () => {
    const authors = checkExperiment({adv: 'free', epochs: 30});
    assert.deepEqual([authors.advReplays, authors.advEps, authors.freePerturbation, authors.freeEpochs, trainedEpochs(authors)],
                     [4, 8, 'reset', 'keep', 30]);
    assert.equal(trainedEpochs(checkExperiment({adv: 'free', epochs: 30, freeEpochs: 'divide'})), 8);
    assert.equal(trainedEpochs(checkExperiment({adv: 'pgd', epochs: 30, freeEpochs: 'divide'})), 30);
    assert.throws(() => checkExperiment({adv: 'fgsm' as never}), /adv must be none, free or pgd/);
    assert.throws(() => checkExperiment({adv: 'pgd', advEps: 4, advStep: 5}), /advStep \(5\/255\) is larger than advEps \(4\/255\)/);
    assert.throws(() => checkExperiment({adv: 'free', advReplays: 0}), /advReplays must be an integer >= 1/);
    assert.throws(() => checkExperiment({adv: 'free', advEps: 300}), /advEps must be a number in \[0, 255\]/);
    assert.throws(() => checkExperiment({adv: 'free', freePerturbation: 'keep' as never}), /freePerturbation must be reset or carry/);
  });
});

describe('adversarial training on digits (wasm)', () => {
  let root: string;
  before(async () => {
    await useTestBackend('wasm');
    root = await mkdtemp(join(tmpdir(), 'convnorm-adv-digits-'));
  });
  after(async () => {
    await rm(root, {recursive: true, force: true});
    await useTestBackend('cpu');
  });

  it('free training makes the small CNN more robust to PGD than normal training', async () => {
    const common = {dataset: 'mnist-embedded' as const, model: 'small-cnn' as const, norm: 'bn' as const, epochs: 2,
                    batchSize: 50, lr: 0.05, schedule: 'cosine', trainFraction: 0.15, seed: 3};
    const robustTop1 = async (extra: object, dir: string) => {
      const run = await runExperiment({...common, ...extra, runDir: join(root, dir)}, {log: null});
      const evaluation = await evaluateAttacks({model: run.model, normalization: {mean: [0.1307], std: [0.3081]}},
                                               run.data.test, {settings: [{attack: 'pgd', eps: 32, step: 8}],
                                                               limit: 200, seed: 0});
      run.model.dispose();
      return evaluation.results[0].top1;
    };
    const normal = await robustTop1({}, 'normal');
    const free = await robustTop1({adv: 'free', advEps: 32, advStep: 32, advReplays: 3}, 'free');
    assert.ok(free > normal + 0.2, `PGD-10 at 32/255: free training ${free}, normal training ${normal}`);
  });
});
