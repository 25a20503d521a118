/**
 * `convnorm report` on real run directories (a training run with its
 * attack, corruption and spectrum results, a GAN run) and
 * one with a hostile name and malformed files: the visible notes and the
 * command's warnings, the escaping of every run string, and the page in
 * headless Chromium with the network blocked: no console error, no dialog,
 * every figure drawn (SVG marks, decoded images), and each figure as a PNG
 * (--png); a missing browser refused before anything is written. The screenshot goes to
 * test/screenshots/ (gitignored). Skips the Chromium part, saying why,
 * without Chromium.
 */
import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';
import {after, before, describe, it} from 'node:test';

import {PNG} from 'pngjs';

import {unitSpectra} from '../src/analysis/layer_spectra.js';
import {storeResults} from '../src/io/results.js';
import {buildReport} from '../src/report/page.js';
import {writeFigurePngs} from '../src/report/png_export.js';
import {evaluateAttacks} from '../src/robustness/attack_eval.js';
import {evaluateCorruptions} from '../src/robustness/corruption_eval.js';
import {trainGan} from '../src/training/gan_trainer.js';
import {train} from '../src/training/trainer.js';
import {useTestBackend} from './helpers/backends.js';
import {chromiumMissing, launchChromium} from './helpers/chromium.js';
import {tinyGanOptions} from './helpers/gan_child.js';
import {tinyRunOptions} from './helpers/train_child.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const HOSTILE = '<img src=x onerror=alert(1)>';

describe('convnorm report', () => {
  const root = mkdtempSync(join(tmpdir(), 'convnorm-report-'));
  const dirs = [join(root, 'train'), join(root, 'gan'), join(root, HOSTILE)];
  after(() => rmSync(root, {recursive: true, force: true}));
  before(async () => {
    await useTestBackend('wasm');
    const t = tinyRunOptions('convnorm', dirs[0], 2);
    // Images 0-5 stand for those whose label noise changed, with made-up true labels.
    await train({...t, noisyLabels: {indices: [0, 1, 2, 3, 4, 5], clean: [0, 1, 2, 3, 0, 1]},
                 runFiles: {'experiment.json': JSON.stringify({norm: 'convnorm', noise: 0.2, seed: 3})}});
    // What convnorm attack, eval --corruptions and spectrum store, from the library calls behind them.
    const classifier = {model: t.model, normalization: t.normalization};
    const attacks = await evaluateAttacks(classifier, t.test!, {settings: [{attack: 'fgsm', eps: 4}, {attack: 'fgsm', eps: 8},
                                                                           {attack: 'pgd', eps: 8, steps: 2}], seed: 0});
    const savedAt = new Date().toISOString();
    await storeResults(join(dirs[0], 'attacks.json'), 'attacks', attacks.results.map(({label, top1, ...setting}) => ({
      settings: {...setting, epoch: 2}, result: {label, top1, cleanTop1: attacks.cleanTop1}, savedAt})));
    const corruptions = await evaluateCorruptions(t.model, t.test!, {names: ['contrast', 'gaussian_noise'], severities: [1, 5],
                                                                    seed: 0, normalization: t.normalization});
    await storeResults(join(dirs[0], 'corruptions.json'), 'corruptions', corruptions.corruptions.map(c => ({
      settings: {name: c.name, severity: c.severity, epoch: 2}, result: {top1: c.top1}, savedAt})));
    await storeResults(join(dirs[0], 'spectrum.json'), 'spectrum', [{settings: {epoch: 2},
      result: unitSpectra(t.model, {values: true, powerIterations: 0}), savedAt}]);
    t.model.dispose();
    const g = tinyGanOptions(dirs[1], 2);
    await trainGan({...g, sampleEvery: 1, logEvery: 1, runFiles: {'gan.json': JSON.stringify({dNorm: 'convnorm', seed: 9})}});
    g.generator.dispose();
    g.discriminator.dispose();
    // Malformed: a cut-off experiment.json, one torn metrics line beside a good one, a sample that is not a PNG.
    mkdirSync(dirs[2]);
    writeFileSync(join(dirs[2], 'experiment.json'), '{"norm": "bn", "noi');
    writeFileSync(join(dirs[2], 'metrics.jsonl'), `${JSON.stringify({epoch: 1, trainLoss: 1.5, trainTop1: 0.4, testTop1: 0.5})}\n{"epo`);
  });

  it('notes what it could not read, draws the rest, and escapes every string from a run', async () => {
    const report = await buildReport(dirs);
    const noted = report.problems.filter(p => p.startsWith(dirs[2])).map(p => p.slice(dirs[2].length + 2));
    assert.equal(noted.length, 2, `${noted}`);
    // The parser's own words differ between Node versions.
    assert.match(noted[0], /^experiment\.json is not readable JSON \(.*\); its settings are missing$/);
    assert.equal(noted[1], 'metrics.jsonl: 1 line(s) that are not metrics records were skipped');
    assert.deepEqual(report.problems.filter(p => !p.startsWith(dirs[2])), []);
    assert.equal(report.runs[2].epochs.length, 1);
    assert.ok(!report.html.includes(HOSTILE), 'the run directory\'s name reached the page as markup');
    assert.ok(report.html.includes('&lt;img src=x onerror=alert(1)&gt;'));
    assert.doesNotMatch(report.html, /<script/i);

    const cli = spawnSync(process.execPath, ['dist/cli/main.js', 'report', ...dirs, '-o', join(root, 'report.html')],
                          {cwd: REPO, encoding: 'utf8'});
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stderr, /warning: .*experiment\.json is not readable JSON/);
    const noBrowser = spawnSync(process.execPath, ['dist/cli/main.js', 'report', ...dirs, '-o', join(root, 'never.html'),
                                                   '--png', join(root, 'never')],
                                {cwd: REPO, encoding: 'utf8', env: {...process.env, CONVNORM_CHROMIUM: join(root, 'no-chromium')}});
    assert.equal(noBrowser.status, 1);
    assert.match(noBrowser.stderr, /--png draws the figures in headless Chromium, and there is none at .*no-chromium/);
    assert.ok(!existsSync(join(root, 'never.html')) && !existsSync(join(root, 'never')), 'written before the refusal');
    // The file is the library's report, its regenerating command naming the output.
    const output = join(root, 'report.html');
    assert.equal(readFileSync(output, 'utf8'), (await buildReport(dirs, {output})).html);
    assert.ok(report.html.includes(`&#39;${dirs[2].replace('<', '&lt;').replace('>', '&gt;')}&#39;`), 'the command quotes the path');
  });

  it('loads in Chromium with the network blocked: no console error, no dialog, every figure drawn', async t => {
    const missing = chromiumMissing();
    if (missing !== undefined) {
      t.skip(missing);
      return;
    }
    const file = join(root, 'report.html');
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
      page.on('pageerror', e => errors.push(e.message));
      page.on('dialog', d => { errors.push(`dialog: ${d.message()}`); void d.dismiss(); });
      await page.route('**/*', route => {
        const url = route.request().url();
        if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
        requests.push(url);
        return route.abort();
      });
      await page.goto(pathToFileURL(file).href);
      const figures = await page.$$eval('section.figure', sections => sections.map(s => ({
        title: s.querySelector('h2')?.textContent,
        marks: s.querySelectorAll('svg path, svg circle').length,
        images: [...s.querySelectorAll('img')].map(i => (i as HTMLImageElement).naturalWidth),
      })));
      assert.deepEqual(figures.map(f => f.title), ['Training', 'Label noise: memorization', 'Adversarial robustness',
                                                   'Common corruptions', 'Layer spectra', 'GAN training', 'GAN samples']);
      for (const f of figures) {
        assert.ok(f.marks > 0 || (f.images.length > 0 && f.images.every(w => w > 0)), `${f.title}: nothing drawn`);
      }
      // 6 samples of 28x28 in 3 columns, 2-pixel borders.
      assert.deepEqual(figures[6].images, [3 * (28 + 2) + 2]);
      assert.ok((await page.textContent('body'))!.includes(HOSTILE));
      assert.deepEqual(errors, []);
      assert.deepEqual(requests, []);
      // --png: every plot and image of the page, as PNG files.
      const parts = await page.$$eval('section.figure', sections =>
        sections.reduce((n, s) => n + s.querySelectorAll('.plots > figure, .plots > svg, .images > figure').length, 0));
      const pngs = await writeFigurePngs(file, join(root, 'png'));
      assert.equal(pngs.length, parts);
      assert.ok(pngs[0].endsWith('1-training-1.png'), pngs[0]);
      for (const path of pngs) {
        const image = PNG.sync.read(readFileSync(path));
        assert.ok(image.width > 100 && image.height > 50, `${path}: ${image.width} x ${image.height}`);
      }
      mkdirSync(join(REPO, 'test/screenshots'), {recursive: true});
      await page.screenshot({path: join(REPO, 'test/screenshots/report.png'), fullPage: true});
    } finally {
      await browser.close();
    }
  });
});
