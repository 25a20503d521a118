/**
 * `convnorm gan` and `convnorm gan-eval` as users run them (the built
 * command): two d-norms on the same seed side by side, scored on a
 * classifier `convnorm train` made and labelled as its scores (never FID or
 * IS); gan-eval rebuilding the networks from the checkpoint and reproducing
 * the run's final scores; and bad input refused with nothing written.
 */
import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import {join} from 'node:path';
import {after, before, describe, it} from 'node:test';

import {openFeatureNetwork} from '../src/cli/gan.js';
import {useTestBackend} from './helpers/backends.js';

const root = mkdtempSync(join(os.tmpdir(), 'convnorm-gan-cli-'));
after(() => rmSync(root, {recursive: true, force: true}));

function cli(...args: string[]): {status: number | null; stdout: string; stderr: string} {
  const result = spawnSync(process.execPath, ['dist/cli/main.js', ...args],
                           {encoding: 'utf8', env: {...process.env, CONVNORM_WASM_THREADS: '1'}, timeout: 240_000});
  return {status: result.status, stdout: result.stdout, stderr: result.stderr};
}

const TINY = ['--ch', '2', '--g-ch', '2', '--z-dim', '4', '--batch-size', '4', '--n-dis', '1', '--samples', '40',
              '--progress', 'none'];

describe('convnorm gan / gan-eval', () => {
  const clf = join(root, 'clf');
  const gan = join(root, 'gan');
  before(() => {
    const trained = cli('train', '--dataset', 'mnist-embedded', '--train-fraction', '0.05', '--batch-size', '50',
                        '--epochs', '1', '--norm', 'bn', '--run-dir', clf, '--progress', 'none');
    assert.equal(trained.status, 0, trained.stderr);
  });

  it('--help documents every option of gan and gan-eval', () => {
    const gan = cli('gan', '--help');
    for (const flag of ['--dataset', '--data-root', '--d-norm', '--steps', '--ch', '--g-ch', '--z-dim', '--batch-size',
                        '--n-dis', '--lr', '--beta1', '--beta2', '--lr-decay', '--seed', '--log-every', '--checkpoint-every',
                        '--sample-every', '--score-every', '--samples', '--feature-run', '--inception',
                        '--inception-features', '--inception-logits', '--run-dir', '--resume', '--overwrite', '--progress',
                        '--backend', '--threads']) {
      assert.match(gan.stdout, new RegExp(`${flag}\\b`), `gan --help does not mention ${flag}`);
    }
    const evaluation = cli('gan-eval', '--help');
    for (const flag of ['--samples', '--feature-run', '--inception', '--seed']) assert.match(evaluation.stdout, new RegExp(`${flag}\\b`));
  });

  it('trains sn and convnorm on the same seed and prints the scores under the feature run\'s name', () => {
    const r = cli('gan', '--d-norm', 'sn,convnorm', '--steps', '2', ...TINY, '--feature-run', clf, '--run-dir', gan);
    assert.equal(r.status, 0, r.stderr);
    const header = r.stdout.split('\n').find(l => l.startsWith('d-norm'));
    assert.ok(header !== undefined, r.stdout);
    assert.match(header, new RegExp(`FD \\(features of ${clf}\\)\\s+IS \\(${clf}\\)`));
    assert.doesNotMatch(r.stdout, /\bFID\b|\bIS \d/);
    for (const norm of ['sn', 'convnorm']) {
      const scores = JSON.parse(readFileSync(join(gan, norm, 'scores.json'), 'utf8'));
      assert.deepEqual(Object.keys(scores.scores), [`FD (features of ${clf})`, `IS (${clf})`, `IS (${clf}) std`]);
      assert.ok(existsSync(join(gan, norm, 'samples', 'step-000002.png')));
    }
    // The same seed: the same generator at the start of both runs, whose weights then part.
    const spec = (norm: string) => JSON.parse(readFileSync(join(gan, norm, 'checkpoint', 'state.json'), 'utf8')).config.generator.spec;
    assert.deepEqual(spec('sn'), spec('convnorm'));
  });

  it('gan-eval rebuilds the networks from the checkpoint and reproduces the run\'s final scores', () => {
    const r = cli('gan-eval', join(gan, 'sn'));
    assert.equal(r.status, 0, r.stderr);
    const stored = JSON.parse(readFileSync(join(gan, 'sn', 'scores.json'), 'utf8')).scores as Record<string, number>;
    for (const [label, value] of Object.entries(stored)) {
      assert.ok(r.stdout.includes(`${label} ${value.toFixed(3)}`), `${label} ${value.toFixed(3)} not in: ${r.stdout}`);
    }
    assert.equal(JSON.parse(readFileSync(join(gan, 'sn', 'eval-step-2.json'), 'utf8')).step, 2);

    // A discriminator model.json that points its weights outside the checkpoint: refused.
    const hostile = join(root, 'hostile');
    cpSync(join(gan, 'sn'), hostile, {recursive: true});
    const modelJson = join(hostile, 'checkpoint', 'discriminator', 'model.json');
    const json = JSON.parse(readFileSync(modelJson, 'utf8'));
    writeFileSync(modelJson, JSON.stringify({...json, weightsManifest: [{...json.weightsManifest[0], paths: ['/etc/passwd']}]}));
    const refused = cli('gan-eval', hostile);
    assert.equal(refused.status, 1, refused.stdout);
    assert.match(refused.stderr, /names the weight file '\/etc\/passwd', outside its own directory; refused/);
  });

  it('refuses an unknown d-norm, steps below 1, a layers model as Inception and an existing run, writing nothing', () => {
    const never = join(root, 'never');
    const cases: [string[], RegExp][] = [
      [['--d-norm', 'sn,bogus'], /unknown discriminator norm 'bogus'; choose one of sn, convnorm, convnorm\+sn, none/],
      [['--steps', '0'], /steps must be an integer >= 1, got 0/],
      [['--inception', join(clf, 'checkpoint')], /--inception .*checkpoint: not a tfjs graph model \(format 'layers-model'\)/],
      [['--feature-run', join(root, 'nothing')], /holds no complete checkpoint/],
    ];
    for (const [args, message] of cases) {
      const r = cli('gan', ...TINY, '--run-dir', never, ...args);
      assert.equal(r.status, 1, `${args}: ${r.stdout}`);
      assert.match(r.stderr, message);
      assert.ok(!existsSync(never), `${args} wrote ${never}`);
    }
    const again = cli('gan', '--d-norm', 'sn', ...TINY, '--run-dir', join(gan, 'sn'));
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already exists; --resume to continue that run, or --overwrite/);
  });

  it('refuses a feature run of another dataset or image size', async () => {
    await useTestBackend('wasm');
    await assert.rejects(openFeatureNetwork({featureRun: clf}, 'fashion-mnist', [28, 28, 1]),
                         /was trained on 'mnist-embedded', the GAN on 'fashion-mnist'/);
    await assert.rejects(openFeatureNetwork({featureRun: clf}, 'mnist-embedded', [32, 32, 3]),
                         /takes \[28,28,1\] images, the GAN makes \[32,32,3\]/);
  });
});
