import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync} from 'node:fs';
import os from 'node:os';
import {join} from 'node:path';
import {after, describe, it} from 'node:test';

import {checkExperiment, loadExperimentData} from '../src/cli/experiment.js';
import {openRun} from '../src/cli/run_model.js';
import {subset} from '../src/data/splits.js';
import {evaluate} from '../src/training/metrics.js';
import {formatDemoResults, runDemo, writeDemoReport} from '../src/cli/demo.js';
import {useTestBackend} from './helpers/backends.js';
import {CIFAR_SUBSET} from './helpers/datasets.js';

const root = mkdtempSync(join(os.tmpdir(), 'convnorm-cli-'));
after(() => rmSync(root, {recursive: true, force: true}));

/** Runs the built CLI (npm test builds first) in a child process (1 wasm thread: tests run side by side). */
function cli(...args: string[]): {status: number | null; stdout: string; stderr: string} {
  const result = spawnSync(process.execPath, ['dist/cli/main.js', ...args],
                           {encoding: 'utf8', env: {...process.env, CONVNORM_WASM_THREADS: '1'}, timeout: 240_000});
  return {status: result.status, stdout: result.stdout, stderr: result.stderr};
}

// 5 % of the embedded digits (400 images), so a run takes seconds.
const tiny = ['--dataset', 'mnist-embedded', '--model', 'small-cnn', '--train-fraction', '0.05', '--batch-size', '50',
              '--progress', 'none'];

describe('the built command (dist/, as npx runs it)', () => {
  it('starts under plain Node, without tsx, and lists its commands', () => {
    // tsx resolves imports plain Node does not (extension-less ESM deep imports): run what users run.
    const result = spawnSync(process.execPath, ['dist/cli/main.js', '--help'], {encoding: 'utf8'});
    assert.equal(result.status, 0, result.stderr);
    for (const command of ['demo', 'isometry', 'train', 'eval', 'attack', 'spectrum', 'gan', 'gan-eval', 'sweep', 'worker', 'serve-demo']) assert.match(result.stdout, new RegExp(`\\b${command}\\b`));
  });

  it('loads the browser driver, jsdom and the queue client only for the commands that use them', () => {
    // Each takes a second or more to load: --help, and every command that fails its checks, would wait for them.
    const result = spawnSync(process.execPath, ['--require', './test/helpers/loaded_packages.cjs', 'dist/cli/main.js',
                                                'train', '--model', 'nope'], {encoding: 'utf8'});
    assert.equal(result.status, 1);
    assert.match(result.stderr, /argument 'nope' is invalid/);
    assert.match(result.stderr, /^loaded packages: $/m);
  });
});

describe('convnorm train / eval', () => {
  it('--help documents every option of train', () => {
    const {status, stdout} = cli('train', '--help');
    assert.equal(status, 0);
    for (const flag of ['--config', '--dataset', '--data-root', '--model', '--norm', '--epochs', '--batch-size', '--lr',
                        '--schedule', '--momentum', '--weight-decay', '--seed', '--noise', '--noise-type',
                        '--train-fraction', '--validation', '--augment', '--no-augment', '--ocnn-lambda', '--adv',
                        '--adv-eps', '--adv-step', '--adv-steps', '--adv-replays', '--free-perturbation',
                        '--free-epochs', '--run-dir',
                        '--resume', '--overwrite', '--progress', '--backend', '--threads']) {
      assert.match(stdout, new RegExp(`${flag}\\b`), `train --help does not mention ${flag}`);
    }
  });

  it('trains from a config file plus flags, records the noise, refuses to overwrite, resumes, evaluates', async () => {
    const runDir = join(root, 'run');
    const config = join(root, 'config.json');
    writeFileSync(config, JSON.stringify({norm: 'bn', epochs: 1, noise: 0.4, schedule: 'constant', lr: 0.05}));
    const first = cli('train', ...tiny, '--config', config, '--run-dir', runDir, '--seed', '3');
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /small-cnn bn: 1 epochs; test top-1 \d+\.\d+ %/);
    const lines = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 1);
    const experiment = JSON.parse(readFileSync(join(runDir, 'experiment.json'), 'utf8'));
    // The config file's settings, the flag's seed.
    assert.deepEqual([experiment.norm, experiment.noise, experiment.seed, experiment.lr], ['bn', 0.4, 3, 0.05]);
    // The noise record matches the labels the run trained on.
    const noise = JSON.parse(readFileSync(join(runDir, 'label-noise.json'), 'utf8'));
    const data = loadExperimentData(checkExperiment({...experiment, runDir: undefined}));
    const clean = loadExperimentData(checkExperiment({...experiment, noise: 0, runDir: undefined}));
    const changed = data.train.labels.filter((l, i) => l !== clean.train.labels[i]).length;
    assert.equal(noise.changed, changed);
    assert.deepEqual(noise.changedIndices,
                     Array.from(data.train.labels.keys()).filter(i => data.train.labels[i] !== clean.train.labels[i]));
    assert.equal(noise.selected, Math.round(0.4 * 400));
    assert.ok(changed > 0.25 * 400 && changed < 0.45 * 400, `changed ${changed} of 400`);
    assert.deepEqual(noise.changedTrueLabels, noise.changedIndices.map((i: number) => clean.train.labels[i]));
    assert.deepEqual(noise.changedNoisyLabels, noise.changedIndices.map((i: number) => data.train.labels[i]));
    // Memorization, as the epoch's record has it, against evaluate() on those images with either label.
    await useTestBackend('wasm');
    const run = await openRun(runDir);
    const changedImages = subset(data.train, noise.changedIndices);
    const record = JSON.parse(lines[0]);
    const normalization = {mean: [0.1307], std: [0.3081]};
    const fitted = await evaluate(run.model, changedImages, {normalization});
    const correct = await evaluate(run.model, {...changedImages, labels: Int32Array.from(noise.changedTrueLabels)},
                                   {normalization});
    assert.ok(Math.abs(record.noisyFitted - fitted.top1) < 1e-12, `${record.noisyFitted} vs ${fitted.top1}`);
    assert.ok(Math.abs(record.noisyCorrect - correct.top1) < 1e-12, `${record.noisyCorrect} vs ${correct.top1}`);
    assert.ok(record.noisyFitted + record.noisyCorrect <= 1 && record.noisyCorrect > 0);
    run.model.dispose();

    const again = cli('train', ...tiny, '--config', config, '--run-dir', runDir, '--seed', '3');
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already exists; resume to continue that run, or overwrite/);

    const resumed = cli('train', ...tiny, '--config', config, '--run-dir', runDir, '--seed', '3', '--epochs', '2',
                        '--resume');
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.equal(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 2);

    const evaluated = cli('eval', runDir);
    assert.equal(evaluated.status, 0, evaluated.stderr);
    assert.match(evaluated.stdout, /epoch 2, small-cnn bn\) on mnist-embedded test, 2000 images.*top-1 \d+\.\d+ %, top-5/);
    // The test accuracy eval reports is the one the run logged after its last epoch.
    const last = JSON.parse(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n')[1]);
    assert.ok(evaluated.stdout.includes(`top-1 ${(100 * last.testTop1).toFixed(2)} %`), evaluated.stdout);

    const wrong = cli('eval', runDir, '--model', 'resnet18');
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /the checkpoint in .* is for model 'small_cnn_bn' .*, not 'resnet18_bn' .*\(it has 38 weights, the model 102\)/);

    // A checkpoint whose model.json points its weights outside the checkpoint is refused by every reader.
    const hostile = join(root, 'hostile');
    cpSync(runDir, hostile, {recursive: true});
    const modelJson = join(hostile, 'checkpoint', 'model.json');
    const json = JSON.parse(readFileSync(modelJson, 'utf8'));
    writeFileSync(modelJson, JSON.stringify({...json, weightsManifest: [{...json.weightsManifest[0], paths: ['../../run/checkpoint/weights.bin']}]}));
    for (const args of [['eval', hostile], ['spectrum', hostile], ['attack', hostile, '--limit', '10']]) {
      const refused = cli(...args);
      assert.equal(refused.status, 1, `${args}: ${refused.stdout}`);
      assert.match(refused.stderr, /names the weight file '\.\.\/\.\.\/run\/checkpoint\/weights\.bin', outside its own directory; refused/);
    }
  });

  it('holds out a validation split for the per-epoch metrics and scores the test set once at the end', () => {
    const runDir = join(root, 'validation');
    const {status, stdout, stderr} = cli('train', ...tiny, '--norm', 'bn', '--epochs', '1', '--validation', '100',
                                         '--run-dir', runDir);
    assert.equal(status, 0, stderr);
    const [line] = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l));
    assert.deepEqual([line.trainImages, line.testImages], [300, 100]);
    const test = JSON.parse(readFileSync(join(runDir, 'test.json'), 'utf8'));
    assert.equal(test.count, 2000);
    assert.ok(test.top1 >= 0 && test.top1 <= 1 && test.top5 >= test.top1);
    // The test set is also scored after every epoch (for the test top-1 at the best validation epoch): the last is test.json's.
    assert.equal(line.testSetTop1, test.top1);
    assert.ok(stdout.includes(`validation top-1 ${(100 * line.testTop1).toFixed(2)} %`), stdout);
    assert.ok(stdout.includes(`test top-1 ${(100 * test.top1).toFixed(2)} %`), stdout);
  });

  it('refuses an unknown model, an unknown norm, a missing dataset folder and a bad config file', () => {
    const model = cli('train', '--model', 'vgg16');
    assert.equal(model.status, 1);
    assert.match(model.stderr, /option '--model <name>' argument 'vgg16' is invalid\. Allowed choices are small-cnn, resnet18, resnet34/);
    const norm = cli('train', '--norm', 'layernorm');
    assert.equal(norm.status, 1);
    assert.match(norm.stderr, /unknown norm 'layernorm'; choose one of bn, convnorm, convnorm-nobn, none, sn, oni/);
    const missing = join(root, 'no-such-cifar');
    const data = cli('train', '--dataset', 'cifar10', '--data-root', missing, '--run-dir', join(root, 'x'));
    assert.equal(data.status, 1);
    assert.ok(data.stderr.includes(missing), data.stderr);
    assert.equal(existsSync(join(root, 'x')), false, 'a failed start left a run directory');
    const badKey = join(root, 'bad.json');
    writeFileSync(badKey, JSON.stringify({epochz: 3}));
    const key = cli('train', '--config', badKey);
    assert.equal(key.status, 1);
    assert.match(key.stderr, /unknown setting 'epochz'/);
    writeFileSync(badKey, '{"epochs": ');
    const json = cli('train', '--config', badKey);
    assert.equal(json.status, 1);
    assert.match(json.stderr, /not valid JSON/);
    const range = cli('train', '--noise', '1.5');
    assert.equal(range.status, 1);
    assert.match(range.stderr, /noise must be a number in \[0, 1\]/);
    const ocnn = cli('train', '--norm', 'convnorm', '--ocnn-lambda', '0.001');
    assert.equal(ocnn.status, 1);
    assert.match(ocnn.stderr, /OCNN penalty regularizes plain convolutions/);
    const several = cli('train', '--norm', 'bn,batchnorm');
    assert.equal(several.status, 1);
    assert.match(several.stderr, /unknown norm 'batchnorm'/);
  });

  it('trains several norms side by side on the CIFAR-10 subset, with augmentation', (t) => {
    if (!existsSync(CIFAR_SUBSET)) {
      t.skip(`${CIFAR_SUBSET} is absent`);
      return;
    }
    const runDir = join(root, 'cifar');
    const {status, stdout, stderr} = cli('train', '--dataset', 'cifar10', '--data-root', CIFAR_SUBSET, '--model',
                                         'small-cnn', '--norm', 'bn,convnorm', '--train-fraction', '0.05', '--epochs',
                                         '1', '--batch-size', '50', '--lr', '0.05', '--run-dir', runDir,
                                         '--progress', 'none');
    assert.equal(status, 0, stderr);
    for (const norm of ['bn', 'convnorm']) {
      const experiment = JSON.parse(readFileSync(join(runDir, norm, 'experiment.json'), 'utf8'));
      assert.equal(experiment.norm, norm);
      const [line] = readFileSync(join(runDir, norm, 'metrics.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l));
      assert.equal(line.trainImages, 200);
      assert.equal(line.testImages, 1000);
    }
    assert.match(stdout, /norm +epochs +test top-1 +test top-5 +train time +run\n/);
    assert.match(stdout, /\nconvnorm +1 +\d+\.\d+ %/);
  });
});

describe('convnorm attack', () => {
  const runDir = join(root, 'attacked');
  const stored = () => JSON.parse(readFileSync(join(runDir, 'attacks.json'), 'utf8'));

  it('prints clean and robust top-1, stores results keyed by their settings, writes --json', () => {
    const trained = cli('train', ...tiny, '--norm', 'bn', '--epochs', '1', '--run-dir', runDir);
    assert.equal(trained.status, 0, trained.stderr);
    const out = join(root, 'attack.json');
    const first = cli('attack', runDir, '--attack', 'fgsm,pgd', '--eps', '0,8', '--limit', '40', '--json', out);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /attack +eps +step +steps +restarts +top-1\n/);
    assert.match(first.stdout, /\nPGD +8\/255 +2\/255 +10 +1 +\d+\.\d+ %/);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(doc.images, 40);
    assert.deepEqual(doc.results.map((r: {attack: string; eps: number}) => `${r.attack}@${r.eps}`),
                     ['fgsm@0', 'fgsm@8', 'pgd@0', 'pgd@8']);
    // eps 0 moves nothing: the robust accuracy is the clean one.
    for (const r of doc.results.filter((r: {eps: number}) => r.eps === 0)) assert.equal(r.top1, doc.cleanTop1);
    assert.ok(first.stdout.includes(`${(100 * doc.results[3].top1).toFixed(2)} %`));
    assert.equal(stored().entries.length, 4);

    // The same settings replace their entry; other settings add one.
    const again = cli('attack', runDir, '--attack', 'pgd', '--eps', '8', '--limit', '40');
    assert.equal(again.status, 0, again.stderr);
    assert.equal(stored().entries.length, 4);
    const more = cli('attack', runDir, '--attack', 'pgd', '--eps', '8', '--steps', '3', '--limit', '40');
    assert.equal(more.status, 0, more.stderr);
    const entries = stored().entries;
    assert.equal(entries.length, 5);
    assert.deepEqual(entries[4].settings, {attack: 'pgd', eps: 8, step: 2, steps: 3, restarts: 1, images: 40, seed: 0,
                                           epoch: 1});
  });

  it('refuses bad input with a message naming it, exit 1, and writes nothing', () => {
    const before = readFileSync(join(runDir, 'attacks.json'), 'utf8');
    const out = join(root, 'never.json');
    const cases: [string[], RegExp][] = [
      [['--eps', '300'], /eps must be in \[0, 255\]/],
      [['--eps', '-1'], /eps must be in \[0, 255\]/],
      [['--attack', 'pgd', '--eps', '8', '--step', '9'], /the step \(9\/255\) is larger than eps \(8\/255\)/],
      [['--attack', 'cw'], /unknown attack 'cw'/],
      [['--limit', '0'], /--limit must be a positive integer/],
      [['--steps', '0'], /steps must be a positive integer/],
    ];
    for (const [args, pattern] of cases) {
      const r = cli('attack', runDir, ...args, '--json', out);
      assert.equal(r.status, 1, `${args}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
    const missing = cli('attack', join(root, 'no-run'), '--json', out);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /holds no complete checkpoint/);
    assert.equal(existsSync(out), false);
    assert.equal(readFileSync(join(runDir, 'attacks.json'), 'utf8'), before);
  });
});

describe('convnorm eval --corruptions', () => {
  const runDir = join(root, 'attacked');

  it('prints top-1 per corruption and severity with the means, stores them, writes --json', () => {
    assert.ok(existsSync(join(runDir, 'checkpoint')), 'the attack tests train this run');
    const out = join(root, 'corruptions.json');
    const r = cli('eval', runDir, '--corruptions', 'contrast,saturate,gaussian_noise', '--severities', '1,5', '--json', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /corruption +severity 1 +severity 5 +mean\n/);
    assert.match(r.stdout, /\ncontrast +\d+\.\d %/);
    assert.match(r.stdout, /skipped: saturate \(saturate scales HSV saturation, which grey/);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual(doc.corruptions.map((c: {name: string; severity: number}) => `${c.name}-${c.severity}`),
                     ['contrast-1', 'contrast-5', 'gaussian_noise-1', 'gaussian_noise-5']);
    const mean = doc.corruptions.reduce((a: number, c: {top1: number}) => a + c.top1, 0) / 4;
    assert.ok(Math.abs(doc.mean - mean) < 1e-12);
    assert.ok(r.stdout.includes(`mean over every corruption and severity ${(100 * doc.mean).toFixed(1)} %`), r.stdout);
    const stored = JSON.parse(readFileSync(join(runDir, 'corruptions.json'), 'utf8'));
    assert.equal(stored.entries.length, 4);
    assert.deepEqual(stored.entries[0].settings, {name: 'contrast', severity: 1, seed: 0, images: 2000, epoch: 1});
  });

  it('refuses an unknown corruption, severities outside 1-5 and a missing run, writing nothing', () => {
    const before = readFileSync(join(runDir, 'corruptions.json'), 'utf8');
    const out = join(root, 'never-corrupted.json');
    const cases: [string[], RegExp][] = [
      [['--corruptions', 'fogg'], /unknown corruption 'fogg'; known corruptions: gaussian_noise/],
      [['--corruptions', 'fog', '--severities', '0-3'], /--severities takes integers in 1-5/],
      [['--corruptions', 'fog', '--severities', '6'], /--severities takes integers in 1-5/],
      [['--corruptions', 'fog', '--split', 'train'], /--corruptions evaluates the test set/],
    ];
    for (const [args, pattern] of cases) {
      const r = cli('eval', runDir, ...args, '--json', out);
      assert.equal(r.status, 1, `${args}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
    const missing = cli('eval', join(root, 'no-run'), '--corruptions', 'fog', '--json', out);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /holds no complete checkpoint/);
    assert.equal(existsSync(out), false);
    assert.equal(readFileSync(join(runDir, 'corruptions.json'), 'utf8'), before);
  });
});

describe('convnorm spectrum', () => {
  const runDir = join(root, 'attacked');

  it('prints every conv unit and the Lipschitz bounds, stores the singular values, writes --json', () => {
    assert.ok(existsSync(join(runDir, 'checkpoint')), 'the attack tests train this run');
    const out = join(root, 'spectrum.json');
    const r = cli('spectrum', runDir, '--json', out, '--power-iterations', '5');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /unit +norm +input +stride +grid +conv +folded +strided +power it\. +bound\n/);
    assert.match(r.stdout, /Lipschitz bound of the network \(its normalized input\): \d/);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(doc.units.length, 6);
    assert.deepEqual(doc.units.map((u: {grid: number[]}) => u.grid[0]), [30, 30, 16, 16, 9, 9]);
    assert.ok(doc.units.every((u: {values?: unknown}) => u.values === undefined), 'values only with --values');
    for (const u of doc.units) assert.ok(r.stdout.includes(u.folded.toFixed(3)), `${u.name} folded ${u.folded}`);
    const stored = JSON.parse(readFileSync(join(runDir, 'spectrum.json'), 'utf8'));
    assert.deepEqual(stored.entries.map((e: {settings: unknown}) => e.settings), [{epoch: 1, powerIterations: 5, seed: 0}]);
    const first = stored.entries[0].result.units[0];
    // min(C_in, C_out) values per grid frequency, the largest the folded norm.
    assert.equal(first.values.length, 30 * 30 * 1);
    assert.equal(first.values[0], first.folded);
    const withValues = cli('spectrum', runDir, '--json', out, '--values', '--power-iterations', '5');
    assert.equal(withValues.status, 0, withValues.stderr);
    assert.equal(JSON.parse(readFileSync(out, 'utf8')).units[5].values.length, 9 * 9 * 32);
    assert.equal(JSON.parse(readFileSync(join(runDir, 'spectrum.json'), 'utf8')).entries.length, 1, 'same settings, same entry');
  });

  it('refuses a missing run and bad options, writing nothing', () => {
    const out = join(root, 'never-spectrum.json');
    const missing = cli('spectrum', join(root, 'no-run'), '--json', out);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /holds no complete checkpoint/);
    const bad = cli('spectrum', runDir, '--power-iterations', '-1', '--json', out);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--power-iterations must be an integer >= 0/);
    assert.equal(existsSync(out), false);
  });
});

describe('convnorm demo', () => {
  it('trains BN and ConvNorm side by side and reports accuracy and layer spectral norms', async () => {
    await useTestBackend('wasm');
    const results = await runDemo({outDir: join(root, 'demo'), epochs: 3, noise: 0.2, seed: 1, batchSize: 25, lr: 0.05,
                                   norms: ['bn', 'convnorm'], trainFraction: 0.05, log: null});
    assert.deepEqual(results.map(r => r.norm), ['bn', 'convnorm']);
    for (const r of results) {
      assert.ok(existsSync(join(r.runDir, 'checkpoint', 'weights.bin')));
      // The spectra the demo prints are stored with the run, singular values included.
      const spectrum = JSON.parse(readFileSync(join(r.runDir, 'spectrum.json'), 'utf8')).entries[0].result;
      assert.deepEqual(spectrum.units.map((u: {folded: number}) => u.folded), r.spectralNorms);
      // 10 classes: a model that learned nothing scores ~10 %.
      assert.ok(r.testTop1 > 0.3 && r.testTop1 <= 1, `${r.norm} test top-1 ${r.testTop1}`);
      assert.equal(r.spectralNorms.length, 6);
      assert.ok(r.spectralNorms.every(s => Number.isFinite(s) && s > 0), `${r.spectralNorms}`);
    }
    const table = formatDemoResults(results).split('\n');
    assert.equal(table.length, 4);
    assert.match(table[3], /^convnorm /);
    // The report of both runs: their curves and spectra, named by the setting that differs, nothing unread.
    const report = await writeDemoReport(join(root, 'demo'), results);
    assert.deepEqual(report.problems, []);
    const html = readFileSync(report.path, 'utf8');
    assert.deepEqual([...html.matchAll(/<h2>([^<]*)<\/h2>/g)].map(m => m[1]), ['Training', 'Label noise: memorization', 'Layer spectra']);
    assert.match(html, /norm=bn/);
    assert.match(html, /norm=convnorm/);
  });
});
