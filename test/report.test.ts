/**
 * The report's building blocks: the settings that differ between runs, the
 * cells of runs that differ only in the seed, mean and sample std against
 * hand-computed values, and HTML escaping of strings from run files.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {differingKeys, formatMeanStd, groupRuns, meanStd, settingsLabel} from '../src/report/group.js';
import {cellMeans, cellNames, seriesNames} from '../src/report/figures.js';
import {escapeHtml} from '../src/report/html.js';
import type {ReportRun} from '../src/report/read_run.js';

const RUNS = [
  {runDir: 'a', norm: 'bn', noise: 0.4, seed: 0, schedule: {kind: 'cosine', lr: 0.1}},
  {runDir: 'b', norm: 'convnorm', noise: 0.4, seed: 0, schedule: {lr: 0.1, kind: 'cosine'}},
  {runDir: 'c', norm: 'bn', noise: 0.4, seed: 1, schedule: {kind: 'cosine', lr: 0.1}},
  {runDir: 'd', norm: 'convnorm', noise: 0.4, seed: 1, schedule: {kind: 'cosine', lr: 0.1}, ocnnLambda: 0},
];

describe('grouping runs', () => {
  it('reports the keys whose values differ (objects by value, whatever their key order; a missing key differs)', () => {
    assert.deepEqual(differingKeys(RUNS, ['runDir']), ['norm', 'seed', 'ocnnLambda']);
    assert.deepEqual(differingKeys(RUNS), ['runDir', 'norm', 'seed', 'ocnnLambda']);
    assert.deepEqual(differingKeys(RUNS.slice(0, 1)), []);
    assert.deepEqual(differingKeys([{schedule: {lr: 0.1}}, {schedule: {lr: 0.2}}]), ['schedule']);
    assert.equal(settingsLabel(RUNS[1], ['norm', 'noise', 'schedule']), 'norm=convnorm, noise=0.4, schedule={"kind":"cosine","lr":0.1}');
    assert.equal(settingsLabel(RUNS[1], ['ocnnLambda', 'norm']), 'norm=convnorm');
  });

  it('puts runs that differ only in the seed into one cell, in the order they first appear', () => {
    const cells = groupRuns(RUNS.slice(0, 3), r => ({norm: r.norm, noise: r.noise, seed: r.seed, schedule: r.schedule}));
    assert.deepEqual(cells.map(c => c.settings.norm), ['bn', 'convnorm']);
    assert.deepEqual(cells.map(c => c.members.map(m => m.runDir)), [['a', 'c'], ['b']]);
    assert.ok(!('seed' in cells[0].settings));
    // Grouped over the norm instead: the seeds stay apart.
    const bySeed = groupRuns(RUNS.slice(0, 3), r => ({norm: r.norm, seed: r.seed}), ['norm']);
    assert.deepEqual(bySeed.map(c => c.members.map(m => m.runDir)), [['a', 'b'], ['c']]);
  });

  it('mean and sample std (n - 1), null std for one value; no values or a NaN refused', () => {
    const m = meanStd([1, 2, 3, 4]);
    assert.equal(m.mean, 2.5);
    assert.ok(Math.abs(m.std! - Math.sqrt(5 / 3)) < 1e-15, `${m.std}`);
    assert.deepEqual(m.values, [1, 2, 3, 4]);
    assert.deepEqual(meanStd([0.9312]), {mean: 0.9312, std: null, values: [0.9312]});
    assert.equal(formatMeanStd(meanStd([93.1, 93.5, 92.7])), '93.10 ± 0.40');
    assert.equal(formatMeanStd(meanStd([93.1])), '93.10');
    assert.throws(() => meanStd([]), /no values/);
    assert.throws(() => meanStd([1, NaN]), /not a finite number: NaN/);
  });
});

describe('seeds in figures', () => {
  const run = (name: string, settings: Record<string, unknown>): ReportRun => ({
    dir: `runs/${name}`, name, kind: 'train', settings, epochs: [], steps: [], attacks: [], corruptions: [], spectrum: [],
    samples: [], problems: []});

  it('names each run by what differs, and its cell by what differs but the seed', () => {
    const runs = [run('a', {norm: 'bn', seed: 0, runDir: 'x'}), run('b', {norm: 'bn', seed: 1}),
                  run('c', {norm: 'convnorm', seed: 0}), run('d', {norm: 'convnorm', seed: 1})];
    const series = seriesNames(runs);
    assert.deepEqual([...series.values()], ['norm=bn, seed=0', 'norm=bn, seed=1', 'norm=convnorm, seed=0', 'norm=convnorm, seed=1']);
    assert.deepEqual([...cellNames(runs, series).values()], ['norm=bn', 'norm=bn', 'norm=convnorm', 'norm=convnorm']);
    // Settings alike: the directory names keep the runs apart; one unreadable beside them is named by its directory.
    assert.deepEqual([...seriesNames([run('a', {norm: 'bn'}), run('b', {norm: 'bn'})]).values()], ['a', 'b']);
    assert.deepEqual([...seriesNames([run('a', {norm: 'bn'}), run('b', {})]).values()], ['norm=bn', 'b']);
  });

  it('draws a cell as the mean and sample std of its seeds at each x', () => {
    const data = [{cell: 'bn', series: 's0', epoch: 1, top1: 0.5}, {cell: 'bn', series: 's1', epoch: 1, top1: 0.7},
                  {cell: 'bn', series: 's2', epoch: 1, top1: 0.9}, {cell: 'bn', series: 's0', epoch: 2, top1: 0.8},
                  {cell: 'cn', series: 's3', epoch: 1, top1: 0.6}, {cell: 'cn', series: 's3', epoch: 2, top1: undefined}];
    const means = cellMeans(data, 'epoch', 'top1');
    assert.deepEqual(means.map(m => [m.cell, m.x, m.n]), [['bn', 1, 3], ['bn', 2, 1], ['cn', 1, 1]]);
    assert.ok(Math.abs(means[0].mean - 0.7) < 1e-15 && Math.abs(means[0].std! - 0.2) < 1e-15, JSON.stringify(means[0]));
    assert.equal(means[1].std, null);
  });
});

describe('HTML escaping', () => {
  it('turns markup from run files into text, in element text and quoted attributes', () => {
    assert.equal(escapeHtml('<img src=x onerror=alert(1)>'), '&lt;img src=x onerror=alert(1)&gt;');
    assert.equal(escapeHtml('a "b" & \'c\''), 'a &quot;b&quot; &amp; &#39;c&#39;');
    assert.equal(escapeHtml(0.4), '0.4');
  });
});
