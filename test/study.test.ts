// The committed label-noise study: its grids, its records and the protocol that ties them together.
import assert from 'node:assert/strict';
import {cpSync, mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs';
import os from 'node:os';
import {join} from 'node:path';
import {after, describe, it} from 'node:test';

import {canonicalJson} from '../src/common/canonical_json.js';
import {summaryMarkdown} from '../src/cli/sweep.js';
import {meanStd} from '../src/report/group.js';
import {summarize, SweepSummary} from '../src/sweep/results.js';
import {loadSweep} from '../src/sweep/sweep_dir.js';

const STUDY = 'studies/label-noise';
const RESULTS = join(STUDY, 'results');
const root = mkdtempSync(join(os.tmpdir(), 'convnorm-study-'));
after(() => rmSync(root, {recursive: true, force: true}));

const gridFiles = () => readdirSync(STUDY).filter(f => f.endsWith('.json')).map(f => join(STUDY, f));
const readSummary = (grid: string): SweepSummary => JSON.parse(readFileSync(join(RESULTS, `${grid}.json`), 'utf8'));

/**
 * The protocol's rate: the lr whose mean over BN and ConvNorm of the best validation top-1 is highest.
 * Returns null while a norm's run at some rate is missing, so that a half-run rate grid chooses nothing.
 */
function chosenRate(summary: SweepSummary): number | null {
  const byRate = new Map<number, number[]>();
  for (const {settings, bestValidationTop1} of summary.cells) {
    const {norm, lr, ...rest} = settings as {norm: string; lr: number};
    if (Object.keys(rest).length > 0 || !['bn', 'convnorm'].includes(norm)) continue;
    if (bestValidationTop1 == null) return null;
    byRate.set(lr, [...(byRate.get(lr) ?? []), bestValidationTop1.mean]);
  }
  const rates = [...byRate];
  if (rates.length === 0 || rates.some(([, values]) => values.length !== 2)) return null;
  const meanOf = (values: number[]) => meanStd(values).mean;
  return rates.reduce((a, b) => (meanOf(b[1]) > meanOf(a[1]) ? b : a))[0];
}

describe('the label-noise study', () => {
  it('every committed grid, of every study, passes convnorm train\'s checks', () => {
    const studies = readdirSync('studies', {withFileTypes: true}).filter(d => d.isDirectory());
    const files = studies.flatMap(d => readdirSync(join('studies', d.name)).filter(f => f.endsWith('.json'))
      .map(f => join('studies', d.name, f)));
    assert.ok(files.length >= 5, files.join(', '));
    for (const file of files) {
      const sweep = loadSweep(file);
      assert.ok(sweep.runs.length > 0, file);
      assert.ok(sweep.runs.every(r => r.config.seed >= 0), file);
    }
  });

  it('the full CIFAR grid holds every run of the core CIFAR grids, with the same settings', () => {
    const key = (r: {config: object}) => canonicalJson(r.config);
    const full = new Set(loadSweep(join(STUDY, 'cifar-full.json')).runs.map(key));
    for (const core of ['cifar-noise', 'cifar-asymmetric', 'cifar-scarcity', 'resnet20-cifar']) {
      const missing = loadSweep(join(STUDY, `${core}.json`)).runs.filter(r => !full.has(key(r)));
      assert.deepEqual(missing.map(r => r.name), [], core);
    }
  });

  it('the committed run records of each grid give its committed summary and table', () => {
    // results/sweeps/<grid>/status: the status files of the grid's finished runs, which hold each
    // run's results (a sweep directory without its run directories and sweep.json).
    const grids = readdirSync(join(RESULTS, 'sweeps'));
    assert.ok(grids.length >= 1);
    for (const grid of grids) {
      const dir = join(root, `records-${grid}`);
      cpSync(join(RESULTS, 'sweeps', grid), dir, {recursive: true});
      const summary = summarize(loadSweep(join(STUDY, `${grid}.json`), {sweepDir: dir}));
      assert.deepEqual(summary, readSummary(grid), grid);
      assert.equal(summaryMarkdown(summary), readFileSync(join(RESULTS, `${grid}.md`), 'utf8'), grid);
    }
  });

  it('every grid trains at the rate its model and dataset\'s rate grid chose, from the committed summary', () => {
    // A grid kept at another rate says so in its name, for comparison with the chosen one.
    const keptAtOtherRate = new Set(['fashion-noise-lr0.05']);
    const modelData = (config: {model: string; dataset: string}) => `${config.model} on ${config.dataset}`;
    const chosen = new Map<string, number>();
    const rest: {file: string; runs: ReturnType<typeof loadSweep>['runs']}[] = [];
    for (const file of gridFiles()) {
      const grid = file.slice(STUDY.length + 1, -'.json'.length);
      const runs = loadSweep(file).runs;
      if (new Set(runs.map(r => r.config.lr)).size > 1 && grid.startsWith('lr-')) {
        const rate = chosenRate(readSummary(grid));
        assert.ok(rate !== null, `${grid}: its summary lacks a BN or ConvNorm run at some rate`);
        const key = modelData(runs[0].config);
        assert.ok(!chosen.has(key), `two rate grids for ${key}`);
        chosen.set(key, rate);
      } else if (!keptAtOtherRate.has(grid)) {
        rest.push({file, runs});
      }
    }
    assert.ok(chosen.size >= 3, [...chosen.keys()].join(', '));
    for (const {file, runs} of rest) {
      for (const run of runs) {
        const rate = chosen.get(modelData(run.config));
        if (rate === undefined) continue;  // a model and dataset the study chose no rate for
        assert.equal(run.config.lr, rate, `${file}: ${run.name} trains ${modelData(run.config)} at lr ` +
          `${run.config.lr}, but its rate grid chose ${rate}`);
      }
    }
  });
});
