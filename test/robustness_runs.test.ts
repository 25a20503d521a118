/**
 * The robustness commands' library code on checkpoints of every norm and of
 * every architecture: a run trained by train(), reopened from disk as the
 * commands open it (openRun), then attacked, corrupted and analysed. The
 * spectra run on the small CNN with every norm and on ResNet-18; ResNet-34
 * has the same units as ResNet-18, more of them at 512 channels, whose exact
 * spectra take half a minute, so there only its units are counted.
 */
import assert from 'node:assert/strict';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {after, before, describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import {convKernels, unitSpectra} from '../src/analysis/layer_spectra.js';
import {openRun} from '../src/cli/run_model.js';
import {Architecture, buildModel, ModelSpec} from '../src/models/build.js';
import {NormKind, NORMS} from '../src/models/blocks.js';
import {evaluateAttacks} from '../src/robustness/attack_eval.js';
import {evaluateCorruptions} from '../src/robustness/corruption_eval.js';
import {train} from '../src/training/trainer.js';
import {useTestBackend} from './helpers/backends.js';
import {tinyDataset} from './helpers/train_child.js';

const CASES: [Architecture, NormKind, number][] = [
  ...NORMS.map(norm => ['small-cnn', norm, 6] as [Architecture, NormKind, number]),
  ['resnet18', 'convnorm', 20], ['resnet34', 'bn', 36],
];
const NORMALIZATION = {mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]};

describe('attack, corruptions and spectrum on checkpoints of every norm and architecture (wasm)', () => {
  let root: string;
  before(async () => {
    await useTestBackend('wasm');
    root = await mkdtemp(join(tmpdir(), 'convnorm-runs-'));
  });
  after(async () => {
    await rm(root, {recursive: true, force: true});
    await useTestBackend('cpu');
  });

  const trainSet = tinyDataset(48, 31, 'tiny-train');
  const testSet = tinyDataset(24, 32, 'tiny-test');

  for (const [architecture, norm, units] of CASES) {
    it(`${architecture} ${norm}`, async () => {
      const spec: ModelSpec = {architecture, norm, numClasses: 4, inputShape: [8, 8, 3], seed: 1};
      const runDir = join(root, `${architecture}-${norm}`);
      const trained = buildModel(spec);
      await train({model: trained, modelSpec: spec as unknown as Record<string, unknown>, train: trainSet, batchSize: 16,
                   epochs: 1, schedule: {kind: 'constant', lr: 0.02}, seed: 0, normalization: NORMALIZATION, runDir,
                   log: null});
      trained.dispose();

      const run = await openRun(runDir);
      const before = tf.memory().numTensors;
      const classifier = {model: run.model, normalization: NORMALIZATION};
      const attacks = await evaluateAttacks(classifier, testSet, {
        settings: [{attack: 'fgsm', eps: 8}, {attack: 'pgd', eps: 8, steps: 2}, {attack: 'apgd', eps: 8, steps: 2},
                   {attack: 'pgd', eps: 0, step: 0, steps: 1}],
        seed: 0,
      });
      assert.ok(attacks.results.every(r => r.top1 <= attacks.cleanTop1), JSON.stringify(attacks));
      assert.equal(attacks.results[3].top1, attacks.cleanTop1, 'eps 0 is the clean accuracy');
      const corruptions = await evaluateCorruptions(run.model, testSet, {names: ['contrast', 'gaussian_noise'],
                                                                        severities: [5], seed: 0, normalization: NORMALIZATION});
      assert.equal(corruptions.corruptions.length, 2);
      assert.equal(convKernels(run.model).length, units);
      if (architecture === 'resnet34') {
        assert.equal(tf.memory().numTensors, before, 'the commands left tensors behind');
        run.model.dispose();
        return;
      }
      const spectra = unitSpectra(run.model, {powerIterations: 10, values: true});
      assert.equal(tf.memory().numTensors, before, 'the commands left tensors behind');
      assert.equal(spectra.units.length, units);
      for (const u of spectra.units) {
        assert.equal(u.norm, norm, `${u.name} is reported as ${u.norm}`);
        // Power iteration on the unit as it runs reads below the bound of that operator (float32 slack).
        assert.ok(u.powerIteration! <= u.bound * (1 + 1e-4), `${u.name}: power iteration ${u.powerIteration} > bound ${u.bound}`);
        assert.equal(u.values![0], u.folded);
      }
      assert.ok(spectra.lipschitzBound >= spectra.circularBound && spectra.circularBound > 0);
      run.model.dispose();
    });
  }
});
