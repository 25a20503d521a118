/**
 * Attacks, tested the way cleverhans and foolbox test theirs: an eps of 0
 * changes nothing, every perturbation lies in the eps-ball and every image in
 * [0, 1], FGSM on a linear model is the analytic perturbation, the losses
 * match a float64 computation, and on trained networks (on wasm, through the
 * engine's custom gradients) PGD is at least as strong as FGSM, APGD at least
 * as strong as PGD, and a large eps leaves next to nothing robust.
 */
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {after, before, describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {runExperiment} from '../src/cli/experiment.js';
import {Rng} from '../src/data/random.js';
import {NormKind} from '../src/models/blocks.js';
import {apgd, apgdCe, apgdSingleRun, apgdTargeted} from '../src/robustness/apgd.js';
import {AttackInputs, AttackResult} from '../src/robustness/attack.js';
import {evaluateAttacks, resolveAttackSetting} from '../src/robustness/attack_eval.js';
import {PixelClassifier} from '../src/robustness/classifier.js';
import {fgsm} from '../src/robustness/fgsm.js';
import {crossEntropyPerImage, dlrLoss, dlrTargetedLoss} from '../src/robustness/losses.js';
import {pgd} from '../src/robustness/pgd.js';
import {useTestBackend} from './helpers/backends.js';
import {decode} from './helpers/fixtures.js';
import {relativeError} from './helpers/numerics.js';
import {uniformValues} from './helpers/random.js';

const SHAPE: [number, number, number] = [4, 4, 3];
const CLASSES = 5;
const NORMALIZATION = {mean: [0.4, 0.5, 0.6], std: [0.2, 0.25, 0.3]};

/** flatten + dense: logits z = W^T ((x - mean) / std) + b, with seeded weights. */
function linearClassifier(seed: number): {classifier: PixelClassifier; w: Float32Array; b: Float32Array} {
  const model = tfl.sequential({layers: [tfl.layers.flatten({inputShape: SHAPE}), tfl.layers.dense({units: CLASSES})]});
  const d = SHAPE[0] * SHAPE[1] * SHAPE[2];
  const w = uniformValues(d * CLASSES, seed, 1);
  const b = uniformValues(CLASSES, seed + 1, 0.5);
  model.setWeights([tf.tensor2d(w, [d, CLASSES]), tf.tensor1d(b)]);
  return {classifier: {model, normalization: NORMALIZATION}, w, b};
}

/** Images with values at and near 0 and 1 too, so that clipping matters. */
function images(n: number, seed: number): tf.Tensor4D {
  const values = uniformValues(n * SHAPE[0] * SHAPE[1] * SHAPE[2], seed, 0.6).map(v => Math.min(1, Math.max(0, v + 0.5)));
  return tf.tensor4d(values, [n, ...SHAPE]);
}

function labelsOf(n: number, seed: number): tf.Tensor1D {
  const rng = new Rng(seed);
  return tf.tensor1d(Int32Array.from({length: n}, () => rng.int(CLASSES)), 'int32');
}

/** dCE/dx of the linear classifier in float64: W (softmax(z) - e_y) / std, per pixel. */
function analyticGradient(x: Float32Array, label: number, w: Float32Array, b: Float32Array): Float64Array {
  const d = x.length;
  const u = Float64Array.from(x, (v, i) => (v - NORMALIZATION.mean[i % 3]) / NORMALIZATION.std[i % 3]);
  const z = Array.from({length: CLASSES}, (_, k) => u.reduce((s, ui, i) => s + ui * w[i * CLASSES + k], b[k]));
  const max = Math.max(...z);
  const e = z.map(v => Math.exp(v - max));
  const sum = e.reduce((a, v) => a + v, 0);
  const r = e.map((v, k) => v / sum - (k === label ? 1 : 0));
  return Float64Array.from({length: d}, (_, i) =>
    r.reduce((s, rk, k) => s + w[i * CLASSES + k] * rk, 0) / NORMALIZATION.std[i % 3]);
}

type Run = (inputs: AttackInputs, eps: number, seed: number) => Promise<AttackResult>;
const ATTACKS: [string, Run][] = [
  ['FGSM', (inputs, eps) => fgsm(inputs, {eps})],
  ['PGD', (inputs, eps, seed) => pgd(inputs, {eps, step: eps / 4, steps: 5, restarts: 2, rng: new Rng(seed)})],
  ['APGD-CE', (inputs, eps, seed) => apgdCe(inputs, {eps, steps: 8, rng: new Rng(seed)})],
  ['APGD-T', (inputs, eps, seed) => apgdTargeted(inputs, {eps, steps: 8, targets: 3, rng: new Rng(seed)})],
  ['APGD-CE + APGD-T', (inputs, eps, seed) => apgd(inputs, {eps, steps: 8, rng: new Rng(seed)})],
];

async function cleanCorrect(classifier: PixelClassifier, x: tf.Tensor4D, y: tf.Tensor1D): Promise<Uint8Array> {
  const logits = classifier.model.predict(tf.div(tf.sub(x, NORMALIZATION.mean), NORMALIZATION.std)) as tf.Tensor2D;
  const hits = Uint8Array.from(await tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32').data());
  return hits;
}

describe('attacks on a linear classifier (cpu)', () => {
  before(() => useTestBackend('cpu'));

  it('FGSM is x + eps sign(W (softmax(z) - e_y) / std), clipped to [0, 1]', async () => {
    const {classifier, w, b} = linearClassifier(3);
    const x = images(16, 4);
    const y = labelsOf(16, 5);
    const eps = 8 / 255;
    const {adversarial} = await fgsm({classifier, images: x, labels: y, cleanCorrect: new Uint8Array(16).fill(1)}, {eps});
    const xs = x.dataSync() as Float32Array;
    const ys = y.dataSync();
    const adv = adversarial.dataSync();
    const d = xs.length / 16;
    let checked = 0;
    for (let n = 0; n < 16; n++) {
      const g = analyticGradient(xs.subarray(n * d, (n + 1) * d), ys[n], w, b);
      for (let i = 0; i < d; i++) {
        // Where the float32 gradient could round to the other sign, the sign is not defined well enough to test.
        if (Math.abs(g[i]) < 1e-5) continue;
        const expected = Math.fround(Math.min(1, Math.max(0, Math.fround(xs[n * d + i] + Math.fround(eps * Math.sign(g[i]))))));
        assert.equal(adv[n * d + i], expected, `image ${n} value ${i}: ${adv[n * d + i]} != ${expected} (gradient ${g[i]})`);
        checked++;
      }
    }
    assert.ok(checked > 0.95 * xs.length, `only ${checked} of ${xs.length} values had a clear gradient sign`);
    tf.dispose([x, y, adversarial]);
    classifier.model.dispose();
  });

  it('eps 0 leaves every image unchanged and the robust accuracy equal to the clean one', async () => {
    const {classifier} = linearClassifier(6);
    const x = images(24, 7);
    const y = labelsOf(24, 8);
    const clean = await cleanCorrect(classifier, x, y);
    assert.ok(clean.some(c => c === 1) && clean.some(c => c === 0), 'want both right and wrong images');
    for (const [name, run] of ATTACKS) {
      const result = name === 'PGD'
        ? await pgd({classifier, images: x, labels: y}, {eps: 0, step: 0, steps: 5, restarts: 2, rng: new Rng(1)})
        : await run({classifier, images: x, labels: y}, 0, 1);
      assert.deepEqual(result.adversarial.dataSync(), x.dataSync(), `${name} moved an image at eps 0`);
      assert.deepEqual(result.robust, clean, `${name}: robust accuracy at eps 0 is not the clean one`);
      result.adversarial.dispose();
    }
    tf.dispose([x, y]);
    classifier.model.dispose();
  });

  it('every perturbation lies within eps (1e-6) and every image in [0, 1]; attacks fool some images', async () => {
    const {classifier} = linearClassifier(9);
    const x = images(32, 10);
    const y = labelsOf(32, 11);
    const clean = (await cleanCorrect(classifier, x, y)).reduce((a, c) => a + c, 0);
    const eps = 16 / 255;
    for (const [name, run] of ATTACKS) {
      const before = tf.memory().numTensors;
      const result = await run({classifier, images: x, labels: y}, eps, 12);
      const adv = result.adversarial.dataSync();
      const xs = x.dataSync();
      let worst = 0;
      for (let i = 0; i < xs.length; i++) {
        assert.ok(adv[i] >= 0 && adv[i] <= 1, `${name}: value ${adv[i]} outside [0, 1]`);
        worst = Math.max(worst, Math.abs(adv[i] - xs[i]));
      }
      assert.ok(worst <= eps + 1e-6, `${name}: perturbation ${worst} > eps ${eps}`);
      // The perturbation is not empty: the attack used its budget.
      assert.ok(worst > 0.9 * eps, `${name}: largest perturbation ${worst}`);
      const robust = result.robust.reduce((a, c) => a + c, 0);
      assert.ok(robust < clean, `${name}: ${robust} of ${clean} correctly classified images survive`);
      result.adversarial.dispose();
      assert.equal(tf.memory().numTensors, before, `${name} leaked tensors`);
    }
    tf.dispose([x, y]);
    classifier.model.dispose();
  });

  it('random starts follow the seed', async () => {
    const {classifier} = linearClassifier(13);
    const x = images(8, 14);
    const y = labelsOf(8, 15);
    const run = async (seed: number) => {
      const r = await pgd({classifier, images: x, labels: y, cleanCorrect: new Uint8Array(8).fill(1)},
                          {eps: 0.1, step: 0.001, steps: 1, rng: new Rng(seed)});
      const values = r.adversarial.dataSync().slice();
      r.adversarial.dispose();
      return values;
    };
    assert.deepEqual(await run(1), await run(1));
    assert.notDeepEqual(await run(1), await run(2));
    tf.dispose([x, y]);
    classifier.model.dispose();
  });

  it('cross-entropy, DLR and targeted DLR match a float64 computation', () => {
    const z = [[2.0, -1.0, 0.5, 3.0, 0.0], [1.5, 1.5, -2.0, 0.25, 1.0], [-0.3, 0.8, 0.1, -1.2, 2.2]];
    const y = [3, 0, 1];
    const t = [0, 4, 2];
    const logits = tf.tensor2d(z);
    const labels = tf.tensor1d(y, 'int32');
    const sorted = z.map(row => [...row].sort((a, b) => b - a));
    const expectedCe = z.map((row, i) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[y[i]]);
    const expectedDlr = z.map((row, i) => {
      const other = Math.max(...row.filter((_, k) => k !== y[i]));
      return -(row[y[i]] - other) / (sorted[i][0] - sorted[i][2] + 1e-12);
    });
    const expectedTargeted = z.map((row, i) =>
      -(row[y[i]] - row[t[i]]) / (sorted[i][0] - 0.5 * (sorted[i][2] + sorted[i][3]) + 1e-12));
    const check = (actual: tf.Tensor, expected: number[], what: string) =>
      Array.from(actual.dataSync()).forEach((v, i) =>
        assert.ok(Math.abs(v - expected[i]) <= 1e-6 * Math.max(1, Math.abs(expected[i])), `${what} row ${i}: ${v} != ${expected[i]}`));
    check(crossEntropyPerImage(logits, labels), expectedCe, 'cross-entropy');
    check(dlrLoss(logits, labels), expectedDlr, 'DLR');
    check(dlrTargetedLoss(tf.tensor1d(t, 'int32'))(logits, labels), expectedTargeted, 'targeted DLR');
    // Their gradients reach the logits (tfjs has no TopK gradient; the losses must not need one).
    const g = tf.grad((l: tf.Tensor) => tf.sum(dlrLoss(l as tf.Tensor2D, labels)))(logits);
    assert.ok(g.dataSync().some(v => v !== 0));
  });

  it('APGD runs match a float64 port of AutoAttack\'s (step sizes, robust images, kept points, best losses)', async () => {
    // reference/apgd_ref.py, checked against autoattack/autopgd_base.py itself (identical to 1e-16 in float64).
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/apgd-reference.json', import.meta.url), 'utf8'));
    for (const c of fixture.cases) {
      const model = tfl.sequential({layers: [tfl.layers.flatten({inputShape: fixture.shape}),
                                             tfl.layers.dense({units: fixture.classes})]});
      model.setWeights([decode(c.w), decode(c.b)]);
      const classifier = {model, normalization: {mean: fixture.mean, std: fixture.std}};
      const x = decode(c.x) as tf.Tensor4D;
      const y = tf.tensor1d(c.labels, 'int32');
      // The stored start noise t, replayed through the draws 2 u - 1 the attack makes.
      const start = decode(c.start).dataSync();
      let next = 0;
      const rng = {next: () => (start[next++] + 1) / 2} as unknown as Rng;
      const target = c.targeted ? tf.tensor1d(c.target, 'int32') : undefined;
      const loss = target === undefined ? crossEntropyPerImage : dlrTargetedLoss(target);
      const run = await apgdSingleRun({classifier, images: x, labels: y}, x, y, loss, {eps: c.eps, steps: c.steps, rng});
      assert.equal(next, start.length, `${c.name}: the start drew ${next} values, not one per pixel`);
      const steps = decode(c.stepSizes).dataSync();
      const n = c.labels.length;
      assert.deepEqual(Array.from(run.stepSize), Array.from(steps.subarray((c.steps - 1) * n)), `${c.name}: step sizes`);
      assert.deepEqual(Array.from(run.robust), c.robust, `${c.name}: robust images`);
      assert.ok(relativeError(run.adversarial, decode(c.kept)) < 1e-5, `${c.name}: kept points`);
      assert.ok(relativeError(tf.tensor1d(run.lossBest), decode(c.lossBest)) < 1e-5, `${c.name}: best losses`);
      assert.ok(c.robust.some((r: number) => r === 0) && new Set(steps).size > 1,
                `${c.name}: the case should fool some images and halve some step sizes`);
      tf.dispose([x, y, run.adversarial, ...(target ? [target] : [])]);
      model.dispose();
    }
  });

  it('refuses bad settings, naming the problem', () => {
    const bad = (setting: object, pattern: RegExp) =>
      assert.throws(() => resolveAttackSetting({attack: 'pgd', eps: 8, ...setting} as never, 10), pattern);
    bad({attack: 'cw'}, /unknown attack 'cw'; choose from fgsm, pgd, apgd/);
    bad({eps: -1}, /eps must be in \[0, 255\]/);
    bad({eps: 256}, /eps must be in \[0, 255\]/);
    bad({eps: NaN}, /eps must be in \[0, 255\]/);
    bad({step: 9}, /the step \(9\/255\) is larger than eps \(8\/255\)/);
    bad({steps: 0}, /steps must be a positive integer/);
    bad({restarts: 1.5}, /restarts must be a positive integer/);
    assert.throws(() => resolveAttackSetting({attack: 'apgd', eps: 8}, 3), /needs at least 4 classes, the model has 3/);
    assert.deepEqual(resolveAttackSetting({attack: 'pgd', eps: 8}, 10), {attack: 'pgd', eps: 8, step: 2, steps: 10, restarts: 1});
    assert.equal(resolveAttackSetting({attack: 'pgd', eps: 32}, 10).step, 8);
    assert.deepEqual(resolveAttackSetting({attack: 'apgd', eps: 8}, 10),
                     {attack: 'apgd', eps: 8, step: null, steps: 10, restarts: 1, targets: 9});
  });
});

describe('attacks on trained small CNNs (wasm)', () => {
  let root: string;
  before(async () => {
    await useTestBackend('wasm');
    root = await mkdtemp(join(tmpdir(), 'convnorm-attacks-'));
  });
  after(async () => {
    await rm(root, {recursive: true, force: true});
    await useTestBackend('cpu');
  });

  for (const norm of ['bn', 'convnorm'] as NormKind[]) {
    it(`${norm}: PGD >= FGSM, APGD-CE + APGD-T >= PGD, a large eps leaves almost nothing; no tensor growth`, async () => {
      // 2,000 digits, 2 epochs: a model that is right on most clean digits, as a trained model is.
      const run = await runExperiment({dataset: 'mnist-embedded', model: 'small-cnn', norm, epochs: 2, batchSize: 50,
                                       lr: 0.05, schedule: 'cosine', trainFraction: 0.25, seed: 2,
                                       runDir: join(root, norm)}, {log: null});
      const classifier = {model: run.model, normalization: {mean: [0.1307], std: [0.3081]}};
      const before = tf.memory().numTensors;
      const evaluation = await evaluateAttacks(classifier, run.data.test, {
        settings: [{attack: 'fgsm', eps: 32}, {attack: 'pgd', eps: 32, step: 8}, {attack: 'apgd', eps: 32},
                   {attack: 'pgd', eps: 128, step: 32}],
        limit: 100, batchSize: 100, seed: 0,
      });
      assert.equal(tf.memory().numTensors, before, 'the attacks left tensors behind');
      const [fgsmTop1, pgdTop1, apgdTop1, largeTop1] = evaluation.results.map(r => r.top1);
      assert.ok(evaluation.cleanTop1 > 0.8, `clean top-1 ${evaluation.cleanTop1}`);
      assert.ok(fgsmTop1 < evaluation.cleanTop1, `FGSM ${fgsmTop1} vs clean ${evaluation.cleanTop1}`);
      assert.ok(pgdTop1 <= fgsmTop1, `PGD ${pgdTop1} > FGSM ${fgsmTop1}`);
      assert.ok(apgdTop1 <= pgdTop1, `APGD ${apgdTop1} > PGD ${pgdTop1}`);
      assert.ok(largeTop1 <= 0.02, `PGD at eps 128/255 leaves ${largeTop1} robust`);
      run.model.dispose();
    });
  }
});
