import assert from 'node:assert/strict';
import {ChildProcess, spawn, spawnSync} from 'node:child_process';
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {createServer} from 'node:net';
import os from 'node:os';
import {join} from 'node:path';
import {after, describe, it} from 'node:test';

import {QueueEvents} from 'bullmq';

import {meanStd} from '../src/report/group.js';
import {buildReport} from '../src/report/page.js';
import {checkGrid, expandGrid} from '../src/sweep/grid.js';
import {checkQueue, enqueueSweep, parseQueueUrl, queueStatus, waitForSweep} from '../src/sweep/queue.js';
import {compareCells, parseReference} from '../src/sweep/compare.js';
import {runResult, summarize, SweepSummary} from '../src/sweep/results.js';
import {runLocalSweep} from '../src/sweep/runner.js';
import {slurmScript} from '../src/sweep/slurm.js';
import {checkSweepDir, loadSweep, prepareSweepDir, runDirOf, writeStatus} from '../src/sweep/sweep_dir.js';

const root = mkdtempSync(join(os.tmpdir(), 'convnorm-sweep-'));
after(() => { if (!process.env.KEEP) rmSync(root, {recursive: true, force: true}); });

function cli(...args: string[]): {status: number | null; stdout: string; stderr: string} {
  const r = spawnSync(process.execPath, ['dist/cli/main.js', ...args],
                      {encoding: 'utf8', env: {...process.env, CONVNORM_WASM_THREADS: '1'}, timeout: 240_000});
  return {status: r.status, stdout: r.stdout, stderr: r.stderr};
}

function writeGrid(name: string, grid: unknown): string {
  const path = join(root, `${name}.json`);
  writeFileSync(path, JSON.stringify(grid));
  return path;
}

// 5 % of the embedded digits (400 images), batch 50: a run takes seconds.
const TINY = {dataset: 'mnist-embedded', model: 'small-cnn', trainFraction: 0.05, batchSize: 50, lr: 0.05,
              schedule: 'constant'};

describe('sweep grids', () => {
  it('expands the cartesian product in the grid\'s order and names each run by its varied settings', () => {
    const spec = checkGrid({base: TINY, grid: {norm: ['bn', 'convnorm'], noise: [0, 0.4], seed: [0, 1]}}, 'g.json');
    const runs = expandGrid(spec);
    assert.deepEqual(runs.map(r => r.name).slice(0, 5),
                     ['norm=bn,noise=0,seed=0', 'norm=bn,noise=0,seed=1', 'norm=bn,noise=0.4,seed=0',
                      'norm=bn,noise=0.4,seed=1', 'norm=convnorm,noise=0,seed=0']);
    assert.equal(runs.length, 8);
    // Base and axis values merged, the defaults of convnorm train filled in.
    assert.deepEqual([runs[3].config.norm, runs[3].config.noise, runs[3].config.seed, runs[3].config.lr,
                      runs[3].config.momentum], ['bn', 0.4, 1, 0.05, 0.9]);
  });

  it('takes a list of grids as the union of their products, for settings that only go together', () => {
    const runs = expandGrid(checkGrid({base: TINY, grid: [{norm: ['bn', 'convnorm'], seed: [0]},
                                                          {norm: ['bn'], ocnnLambda: [0.1], seed: [0]}]}, 'g.json'));
    assert.deepEqual(runs.map(r => r.name), ['norm=bn,seed=0', 'norm=convnorm,seed=0', 'norm=bn,ocnnLambda=0.1,seed=0']);
    assert.deepEqual(runs.map(r => r.config.ocnnLambda), [0, 0, 0.1]);
    assert.throws(() => expandGrid(checkGrid({base: TINY, grid: [{seed: [0, 1]}, {seed: [1]}]}, 'g.json')),
                  /the run seed=1 comes out of two sub-grids/);
    assert.throws(() => expandGrid(checkGrid({base: TINY, grid: [{norm: ['convnorm'], ocnnLambda: [0.1]}]}, 'g.json')),
                  /run norm=convnorm,ocnnLambda=0\.1: the OCNN penalty regularizes plain convolutions/);
    assert.throws(() => checkGrid({base: TINY, grid: [{seed: [0]}, {}]}, 'g.json'), /g\.json grid\[1\]: has no axes/);
  });

  it('refuses bad grids, naming the problem, before anything starts', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{base: {...TINY, learningRate: 0.1}, grid: {seed: [0]}}, /base: unknown setting 'learningRate'/],
      [{base: TINY, grid: {norm: ['bn', 'batchnorm']}}, /run norm=batchnorm: unknown norm 'batchnorm'/],
      [{base: TINY, grid: {noise: [0, 1.5]}}, /run noise=1\.5: noise must be a number in \[0, 1\], got 1\.5/],
      [{base: TINY, grid: {seed: []}}, /the axis 'seed' is empty/],
      [{base: TINY, grid: {}}, /grid: has no axes/],
      [{base: TINY, grid: {momentum: [0.9, 0.9]}}, /the axis 'momentum' holds 0\.9 twice/],
      [{base: TINY, grid: {noiseType: ['symmetric', 'class/flip']}}, /the value 'class\/flip' of the axis 'noiseType' cannot name a run directory/],
      [{base: {...TINY, runDir: 'x'}, grid: {seed: [0]}}, /'runDir' is set by the sweep for each run/],
      [{base: TINY, grid: {lr: [0.1]}}, /'lr' is both in "base" and an axis of "grid"/],
      [{base: TINY, grid: {seed: [0]}, axes: {}}, /unknown key 'axes'/],
      [[1, 2], /a grid file holds one JSON object/],
    ];
    for (const [i, [grid, message]] of cases.entries()) {
      const file = writeGrid('bad', grid);
      assert.throws(() => loadSweep(file), message, JSON.stringify(grid));
      // The command says the same (a few of them: each is a process start).
      if (i % 4 !== 1) continue;
      const {status, stderr} = cli('sweep', file);
      assert.equal(status, 1);
      assert.match(stderr, message);
      assert.equal(existsSync(join(root, 'bad')), false, 'a refused grid creates no sweep directory');
    }
  });

  it('refuses a sweep directory of another grid or one that is not a sweep, and overwrites nothing', async () => {
    const a = loadSweep(writeGrid('a', {base: TINY, grid: {seed: [0, 1]}}), {sweepDir: join(root, 'shared-dir')});
    await prepareSweepDir(a);
    const stored = readFileSync(join(a.dir, 'sweep.json'), 'utf8');
    // More seeds, for all cells or for some in a sub-grid of their own: the same grid, accepted.
    checkSweepDir(loadSweep(writeGrid('a2', {base: TINY, grid: {seed: [0, 1, 2]}}), {sweepDir: a.dir}));
    checkSweepDir(loadSweep(writeGrid('a3', {base: TINY, grid: [{seed: [0, 1]}, {seed: [5]}]}), {sweepDir: a.dir}));
    const otherBase = loadSweep(writeGrid('b', {base: {...TINY, lr: 0.1}, grid: {seed: [0, 1]}}), {sweepDir: a.dir});
    assert.throws(() => checkSweepDir(otherBase), /holds runs of another grid \(its base settings differ/);
    const otherAxes = loadSweep(writeGrid('c', {base: TINY, grid: {norm: ['bn'], seed: [0]}}), {sweepDir: a.dir});
    assert.throws(() => checkSweepDir(otherAxes), /holds runs of another grid \(its axes are seed, not norm, seed\)/);
    const {status, stderr} = cli('sweep', join(root, 'b.json'), '--sweep-dir', a.dir);
    assert.equal(status, 1);
    assert.match(stderr, /holds runs of another grid/);
    assert.equal(readFileSync(join(a.dir, 'sweep.json'), 'utf8'), stored);
    const foreign = join(root, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    assert.throws(() => checkSweepDir(loadSweep(join(root, 'a.json'), {sweepDir: foreign})), /not a sweep directory/);
  });

  it('resolves a relative dataRoot against the grid file\'s folder', () => {
    const sub = join(root, 'studies');
    mkdirSync(sub, {recursive: true});
    const file = join(sub, 'g.json');
    writeFileSync(file, JSON.stringify({base: {...TINY, dataRoot: '../data/cifar'}, grid: {seed: [0]}}));
    const sweep = loadSweep(file);
    assert.equal(sweep.runs[0].config.dataRoot, join(root, 'data', 'cifar'));
    assert.equal(sweep.dir, join(sub, 'g'));
    assert.equal(loadSweep(file, {dataRoot: '/elsewhere'}).runs[0].config.dataRoot, '/elsewhere');
  });

  it('prints a SLURM job array, one task per run', () => {
    const sweep = loadSweep(writeGrid('slurm', {base: TINY, grid: {norm: ['bn', 'convnorm'], seed: [0, 1, 2]}}));
    const script = slurmScript(sweep, {gridFile: '/g/slurm.json', workingDirectory: '/project', threads: 2});
    assert.match(script, /^#SBATCH --array=0-5$/m);
    assert.match(script, /^#SBATCH --cpus-per-task=2$/m);
    assert.match(script, /^# {3}4: norm=convnorm,seed=1$/m);
    assert.match(script, /npx convnorm sweep '\/g\/slurm\.json' --sweep-dir '.*slurm' --threads 2 --run-index "\$SLURM_ARRAY_TASK_ID"$/m);
  });
});

describe('sweep comparisons', () => {
  const cell = (settings: Record<string, string | number>, values: number[]) => ({
    settings, runs: values.length, unfinished: 0, seeds: values.map((_, i) => i), testTop1: meanStd(values),
  });
  const summary: SweepSummary = {cells: [
    cell({norm: 'bn', noise: 0.4}, [0.5, 0.6, 0.7]),
    cell({norm: 'convnorm', noise: 0.4}, [0.8, 0.9]),
    cell({norm: 'bn', ocnnLambda: 0.01, noise: 0.4}, [0.84, 0.86]),
    cell({norm: 'sn', noise: 0.4}, [0.2, 0.3, 0.25]),
    cell({norm: 'oni', noise: 0.4}, [0.7]),
    cell({norm: 'bn', noise: 0.8}, [0.3, 0.35]),
  ]};

  it('puts each cell against the reference cell of its other settings: difference and Welch standard errors', () => {
    const byOther = new Map(compareCells(summary, {axis: 'norm', value: 'convnorm'})
      .map(c => [JSON.stringify(c.other), c]));
    // Expected standard errors by hand: sqrt(s1²/n1 + s2²/n2) with the sample variances.
    const bn = byOther.get('{"norm":"bn"}')!;
    assert.deepEqual(bn.shared, {noise: 0.4});
    assert.ok(Math.abs(bn.difference - 0.25) < 1e-12);
    assert.ok(Math.abs(bn.standardError! - 0.07637626158259732) < 1e-12);
    assert.ok(Math.abs(bn.standardErrors! - 3.273268353539888) < 1e-9);
    assert.equal(bn.verdict, 'ahead');
    // The OCNN cell (a setting the reference lacks) still finds ConvNorm at 40 %.
    const ocnn = byOther.get('{"norm":"bn","ocnnLambda":0.01}')!;
    assert.ok(Math.abs(ocnn.standardErrors!) < 1e-9);
    assert.equal(ocnn.verdict, 'inconclusive');
    assert.ok(Math.abs(byOther.get('{"norm":"sn"}')!.standardErrors! - 10.392304845413266) < 1e-9);
    assert.equal(byOther.get('{"norm":"oni"}')!.verdict, 'too few runs');
    // BN at 80 % has no ConvNorm cell to meet.
    assert.equal(byOther.size, 4);
    assert.equal(compareCells(summary, {axis: 'norm', value: 'convnorm', threshold: 4}).find(c => c.other.norm === 'bn'
      && c.other.ocnnLambda === undefined)!.verdict, 'inconclusive');
  });

  it('refuses a reference no cell has, and text that is not axis=value', () => {
    assert.throws(() => compareCells(summary, {axis: 'norm', value: 'oni2'}), /no cell of this sweep has norm=oni2 \(its norm values: bn, convnorm, sn, oni\)/);
    assert.throws(() => compareCells(summary, {axis: 'nrm', value: 'bn'}), /it has no axis nrm/);
    assert.throws(() => parseReference('norm'), /--versus takes axis=value/);
    assert.deepEqual(parseReference('noise=0.4'), {axis: 'noise', value: 0.4});
    assert.deepEqual(parseReference('norm=convnorm'), {axis: 'norm', value: 'convnorm'});
    const grid = 'studies/label-noise/cifar-asymmetric.json';
    const records = ['--sweep-dir', 'studies/label-noise/results/sweeps/cifar-asymmetric'];
    for (const [args, message] of [[['--versus', 'norm=convnorm'], /--versus go with --summary/],
                                   [['--summary', '--versus', 'norm=bnn'], /no cell of this sweep has norm=bnn/]] as const) {
      const {status, stderr} = cli('sweep', grid, ...records, ...args);
      assert.notEqual(status, 0, args.join(' '));
      assert.match(stderr, message);
    }
    const {status, stdout} = cli('sweep', grid, ...records, '--summary', '--versus', 'norm=convnorm');
    assert.equal(status, 0);
    assert.match(stdout, /^0\.4 +norm=oni +50\.08 ± 1\.18 \(5\) +51\.80 ± 1\.08 \(3\) +-1\.72 +-2\.11 +behind$/m);
  });
});

/** The number of circles in each of the page's dot marks, in order. */
function dotCounts(html: string): number[] {
  return [...html.matchAll(/<g aria-label="dot"[^>]*>(.*?)<\/g>/gs)].map(m => (m[1].match(/<circle /g) ?? []).length);
}

describe('sweep results', () => {
  it('summarizes each cell over its seeds: count, mean and sample std', async () => {
    const sweep = loadSweep(writeGrid('summary', {base: TINY, grid: {norm: ['bn', 'convnorm'], seed: [0, 1, 2]}}));
    await prepareSweepDir(sweep);
    const who = {host: 'elsewhere', pid: 1};
    const top1 = {'norm=bn,seed=0': 0.5, 'norm=bn,seed=1': 0.6, 'norm=bn,seed=2': 0.7, 'norm=convnorm,seed=0': 0.81,
                  'norm=convnorm,seed=2': 0.84} as Record<string, number>;
    // Run times for all but one finished run (records from before they were kept have none).
    const seconds = [1500, 2000, undefined, 130, 40];
    for (const [i, [name, testTop1]] of Object.entries(top1).entries()) {
      await writeStatus(sweep, name, {state: 'done', ...who, result: {epochs: 3, testTop1, seconds: seconds[i]}});
    }
    await writeStatus(sweep, 'norm=convnorm,seed=1', {state: 'failed', ...who, error: 'out of memory'});
    const {cells} = summarize(sweep);
    assert.deepEqual(cells.map(c => [c.settings, c.runs, c.unfinished, c.seeds]),
                     [[{norm: 'bn'}, 3, 0, [0, 1, 2]], [{norm: 'convnorm'}, 2, 1, [0, 2]]]);
    // By hand: bn mean 0.6, std sqrt((0.01 + 0 + 0.01) / 2) = 0.1; convnorm mean 0.825, std 0.03 / sqrt(2).
    assert.ok(Math.abs(cells[0].testTop1!.mean - 0.6) < 1e-12 && Math.abs(cells[0].testTop1!.std! - 0.1) < 1e-12);
    assert.ok(Math.abs(cells[1].testTop1!.mean - 0.825) < 1e-12);
    assert.ok(Math.abs(cells[1].testTop1!.std! - 0.03 / Math.SQRT2) < 1e-12);
    const {status, stdout} = cli('sweep', join(root, 'summary.json'), '--summary', '--json', join(root, 'summary-out.json'),
                                 '--markdown', join(root, 'summary-out.md'));
    assert.equal(status, 0);
    assert.match(stdout, /bn +3 +60\.00 ± 10\.00/);
    assert.match(stdout, /convnorm +2 \(\+1 unfinished\) +82\.50 ± 2\.12/);
    const json = JSON.parse(readFileSync(join(root, 'summary-out.json'), 'utf8'));
    assert.deepEqual(json.cells[1].testTop1.values, [0.81, 0.84]);
    assert.equal(readFileSync(join(root, 'summary-out.md'), 'utf8'),
                 '| norm | runs | test top-1 % |\n| --- | --- | --- |\n| bn | 3 | 60.00 ± 10.00 |\n' +
                 '| convnorm | 2 (+1 unfinished) | 82.50 ± 2.12 |\n');
    const listed = cli('sweep', join(root, 'summary.json'), '--status');
    assert.match(listed.stdout, /norm=convnorm,seed=1 +failed +out of memory/);
    assert.match(listed.stdout, /6 runs: 5 done, 0 running, 0 pending, 1 failed/);
    // 3670 s summed: 61.2 minutes.
    assert.match(listed.stdout, /run time of the 4 finished runs that record it: 1h01m, summed \(1 finished earlier without it\)/);
  });

  it('with a validation split, summarizes the best validation top-1 and the test top-1 at that epoch', async () => {
    const sweep = loadSweep(writeGrid('val-summary', {base: {...TINY, validation: 0.1}, grid: {momentum: [0.01, 0.1], seed: [0, 1]}}));
    await prepareSweepDir(sweep);
    const results = [[0.7, 0.6, 0.65], [0.8, 0.7, 0.75], [0.5, 0.4, 0.45], [0.6, 0.5, 0.5]];
    for (const [i, run] of sweep.runs.entries()) {
      const [bestValidationTop1, testTop1AtBestValidation, testTop1] = results[i];
      await writeStatus(sweep, run.name, {state: 'done', host: 'h', pid: 1, result: {
        epochs: 3, testTop1, bestValidationEpoch: 2, bestValidationTop1, testTop1AtBestValidation}});
    }
    const {cells} = summarize(sweep);
    assert.deepEqual(cells.map(c => [c.bestValidationTop1!.values, c.testTop1AtBestValidation!.values, c.testTop1!.values]),
                     [[[0.7, 0.8], [0.6, 0.7], [0.65, 0.75]], [[0.5, 0.6], [0.4, 0.5], [0.45, 0.5]]]);
    const {stdout} = cli('sweep', join(root, 'val-summary.json'), '--summary');
    assert.match(stdout, /best val top-1 % +test top-1 % at best val/);
    assert.match(stdout, /0\.01 +2 +70\.00 ± 7\.07 +75\.00 ± 7\.07 +65\.00 ± 7\.07/);
  });

  it('draws the report\'s sweep figure: top-1 against the noise rate per norm, mean ± std and every seed', async () => {
    const sweep = loadSweep(writeGrid('figure', {base: TINY, grid: {norm: ['bn', 'convnorm'], noise: [0, 0.4], seed: [0, 1]}}));
    await prepareSweepDir(sweep);
    const top1 = [0.9, 0.92, 0.6, 0.5, 0.91, 0.93, 0.8, 0.7];
    for (const [i, run] of sweep.runs.entries()) {
      if (i === 7) continue;
      await writeStatus(sweep, run.name, {state: 'done', host: 'h', pid: 1, result: {epochs: 3, testTop1: top1[i]}});
    }
    const {html} = await buildReport([sweep.dir]);
    assert.match(html, /<h2>Sweep .*figure<\/h2>/);
    assert.match(html, /7 of 8 runs finished\. Clean test top-1 against noise, one line per norm/);
    // One table row per finished run, with its seed and value.
    assert.match(html, /<tr><td>norm=convnorm<\/td><td>0\.4<\/td><td>0<\/td><td>0\.8000<\/td><\/tr>/);
    assert.equal((html.match(/<tr><td>norm=/g) ?? []).length, 7);
    // Error bars where a cell has two seeds (3 of 4 cells), the seeds' points, the means' lines.
    const rules = html.match(/<g aria-label="rule"[^>]*>(.*?)<\/g>/s);
    assert.ok(rules !== null, 'no error bars');
    assert.equal((rules[1].match(/<line /g) ?? []).length, 3);
    // Every finished run's point, then every cell's mean as a ring.
    assert.deepEqual(dotCounts(html), [7, 4]);
    assert.match(html, /aria-label="line"/);
  });

  it('draws a partly run sweep whose cells each have one noise rate so far: every mean as a ring, no Plot warning', async () => {
    const sweep = loadSweep(writeGrid('partial', {base: TINY, grid: [
      {norm: ['bn', 'convnorm'], noise: [0.4], seed: [0, 1]},
      {norm: ['bn', 'convnorm'], noise: [0], seed: [0, 1]}]}));
    await prepareSweepDir(sweep);
    for (const [i, run] of sweep.runs.slice(0, 4).entries()) {
      await writeStatus(sweep, run.name, {state: 'done', host: 'h', pid: 1, result: {epochs: 3, testTop1: 0.5 + i / 20}});
    }
    const warnings: unknown[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => { warnings.push(args); };
    let html: string;
    try {
      ({html} = await buildReport([sweep.dir]));
    } finally {
      console.warn = warn;
    }
    assert.deepEqual(warnings, []);
    assert.match(html, /4 of 8 runs finished/);
    assert.deepEqual(dotCounts(html), [4, 2]);
  });

  it('takes the test top-1 at the best validation epoch, never choosing by the test set', () => {
    const dir = join(root, 'val-run');
    mkdirSync(dir);
    const records = [{epoch: 1, testTop1: 0.5, testSetTop1: 0.45, seconds: 10.5},
                     {epoch: 2, testTop1: 0.7, testSetTop1: 0.6, seconds: 12},
                     {epoch: 3, testTop1: 0.7, testSetTop1: 0.9, seconds: 11.25},
                     {epoch: 4, testTop1: 0.65, testSetTop1: 0.62, seconds: 9}];
    writeFileSync(join(dir, 'metrics.jsonl'), records.map(r => JSON.stringify(r)).join('\n') + '\n');
    writeFileSync(join(dir, 'test.json'), JSON.stringify({epoch: 4, top1: 0.62}));
    assert.deepEqual(runResult(dir, 0.1), {epochs: 4, testTop1: 0.62, bestValidationEpoch: 2, bestValidationTop1: 0.7,
                                           testTop1AtBestValidation: 0.6, seconds: 42.75});
    assert.deepEqual(runResult(dir, 0), {epochs: 4, testTop1: 0.65, seconds: 42.75});
  });
});

/** A run's checkpoint files, byte for byte, but for the time state.json says it was saved. */
function checkpointFiles(runDir: string): Map<string, Buffer | object> {
  const dir = join(runDir, 'checkpoint');
  return new Map(readdirSync(dir).sort().map(f => {
    const bytes = readFileSync(join(dir, f));
    if (f !== 'state.json') return [f, bytes];
    const {savedAt: _, ...state} = JSON.parse(bytes.toString('utf8'));
    return [f, state];
  }));
}

describe('local sweeps', () => {
  it('runs the grid --jobs at a time, reports a failed run without stopping the others, skips finished runs', async () => {
    // fashion-mnist with a missing data folder fails when its data loads; the digits runs go on.
    const {dataset: _, ...base} = TINY;
    const file = writeGrid('local', {base: {...base, epochs: 2, dataRoot: 'no-such-folder'},
                                     grid: {dataset: ['mnist-embedded', 'fashion-mnist'], norm: ['bn', 'convnorm']}});
    const first = cli('sweep', file, '--jobs', '2', '--threads', '1');
    assert.equal(first.status, 1, first.stderr);
    assert.match(first.stdout, /4 runs in .*local: 2 trained, 0 already finished, 0 running elsewhere, 2 failed \(dataset=fashion-mnist,norm=bn, dataset=fashion-mnist,norm=convnorm\)/);
    assert.match(first.stderr, /failed: dataset=fashion-mnist,norm=bn: .*no-such-folder/);
    const sweep = loadSweep(file);
    for (const name of ['dataset=mnist-embedded,norm=bn', 'dataset=mnist-embedded,norm=convnorm']) {
      const lines = readFileSync(join(runDirOf(sweep, name), 'metrics.jsonl'), 'utf8').trim().split('\n');
      assert.equal(lines.length, 2);
      const status = JSON.parse(readFileSync(join(sweep.dir, 'status', `${name}.json`), 'utf8'));
      assert.equal(status.state, 'done');
      assert.equal(status.result.testTop1, JSON.parse(lines[1]).testTop1);
      assert.match(readFileSync(join(sweep.dir, 'logs', `${name}.log`), 'utf8'), /epoch 2\/2/);
    }
    const before = checkpointFiles(runDirOf(sweep, 'dataset=mnist-embedded,norm=bn'));
    const again = cli('sweep', file, '--jobs', '2', '--threads', '1');
    assert.match(again.stdout, /4 runs in .*local: 0 trained, 2 already finished, 0 running elsewhere, 2 failed/);
    assert.deepEqual(checkpointFiles(runDirOf(sweep, 'dataset=mnist-embedded,norm=bn')), before);
  });
});

describe('two sweeps over one directory', () => {
  it('never train the same run twice: each run is claimed by one of them', async () => {
    const file = writeGrid('twice', {base: {...TINY, epochs: 1}, grid: {norm: ['bn'], seed: [0, 1, 2]}});
    const start = () => new Promise<string>(resolveRun => {
      const child = spawn(process.execPath, ['dist/cli/main.js', 'sweep', file, '--threads', '1'],
                          {stdio: ['ignore', 'pipe', 'ignore']});
      let out = '';
      child.stdout!.on('data', d => (out += d));
      child.on('exit', () => resolveRun(out));
    });
    const outputs = await Promise.all([start(), start()]);
    const trained = outputs.map(o => Number(/: (\d+) trained/.exec(o)?.[1]));
    assert.equal(trained[0] + trained[1], 3, outputs.join('\n'));
    const sweep = loadSweep(file);
    for (const run of sweep.runs) {
      const log = readFileSync(join(sweep.dir, 'logs', `${run.name}.log`), 'utf8');
      assert.equal(log.match(/^run /gm)?.length, 1, `${run.name} started ${log.match(/^run /gm)?.length} times`);
      assert.doesNotMatch(log, /resuming/);
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number};
      server.close(() => resolvePort(port));
    });
    server.on('error', reject);
  });
}

const redisServer = spawnSync('redis-server', ['--version']).status === 0;

describe('sweeps on a BullMQ queue (a real redis-server)', {skip: redisServer ? false : 'redis-server is not installed'}, () => {
  it('refuses a queue that does not answer before anything is written', async () => {
    const port = await freePort();
    const file = writeGrid('noqueue', {base: TINY, grid: {seed: [0]}});
    await assert.rejects(checkQueue(parseQueueUrl(`redis://127.0.0.1:${port}`)),
                         new RegExp(`the queue redis://127\\.0\\.0\\.1:${port} does not answer: .*ECONNREFUSED`));
    const {status, stderr} = cli('sweep', file, '--queue', `redis://127.0.0.1:${port}/q`);
    assert.equal(status, 1);
    assert.match(stderr, /does not answer/);
    assert.equal(existsSync(join(root, 'noqueue')), false);
    assert.throws(() => parseQueueUrl('http://host:1'), /not a queue URL/);
    assert.deepEqual(parseQueueUrl('redis://h:7000/lab.grids'), {url: 'redis://h:7000/lab.grids', host: 'h', port: 7000,
                                                                 name: 'lab.grids', username: undefined, password: undefined});
  });

  it('two workers run a grid; one killed mid-run, its run resumes on the other and ends as the same run done locally', async () => {
    const port = await freePort();
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
                        {stdio: 'ignore'});
    const workers: ChildProcess[] = [];
    const url = `redis://127.0.0.1:${port}/sweep-test`;
    const address = parseQueueUrl(url);
    const events = new QueueEvents(address.name, {connection: {host: '127.0.0.1', port}});
    try {
      for (let tries = 0; ; tries++) {
        try {
          await checkQueue(address, 500);
          break;
        } catch (e) {
          if (tries > 40) throw e;
          await new Promise(r => setTimeout(r, 100));
        }
      }
      const grid = {base: {...TINY, epochs: 2}, grid: {norm: ['bn', 'convnorm'], seed: [0, 1]}};
      const file = writeGrid('queued', grid);
      const sweep = loadSweep(file);
      await events.waitUntilReady();
      const firstEpoch = new Promise<string>(resolveEpoch => {
        events.on('progress', ({jobId, data}) => {
          if ((data as {epoch: number}).epoch >= 1) resolveEpoch(jobId);
        });
      });
      const enqueued = await enqueueSweep(sweep, address);
      assert.equal(enqueued.added.length, 4);
      assert.deepEqual((await enqueueSweep(sweep, address)).queued.length, 4, 'enqueueing again adds nothing');
      const worker = () => spawn(process.execPath, ['dist/cli/main.js', 'worker', '--queue', url,
                                                    '--lock-duration', '2000', '--threads', '1'],
                                 {stdio: ['ignore', 'ignore', 'pipe']});
      const a = worker();
      workers.push(a);
      await firstEpoch;
      // A's run has a checkpoint: kill A (no clean-up of any kind), start B.
      a.kill('SIGKILL');
      const b = worker();
      workers.push(b);
      let bLog = '';
      b.stderr!.on('data', d => (bLog += d));
      const outcomes = await waitForSweep(sweep, address);
      assert.deepEqual(outcomes.map(o => o.ok), [true, true, true, true], JSON.stringify(outcomes));
      assert.match(bLog, /stalled job run-[0-9a-f]+ taken back/);
      const states = await queueStatus(sweep, address);
      assert.deepEqual(states.map(s => s.state), ['done', 'done', 'done', 'done']);
      // The resumed run's log holds both lives of the run.
      const resumedLog = sweep.runs.map(r => readFileSync(join(sweep.dir, 'logs', `${r.name}.log`), 'utf8'))
        .find(text => /resum/i.test(text));
      assert.ok(resumedLog !== undefined, 'no run was resumed');

      const local = loadSweep(file, {sweepDir: join(root, 'queued-local')});
      const result = await runLocalSweep(local, {jobs: 2, threads: 1});
      assert.equal(result.outcomes.filter(o => o.ok).length, 4);
      for (const run of sweep.runs) {
        assert.deepEqual(checkpointFiles(runDirOf(sweep, run)), checkpointFiles(runDirOf(local, run)), run.name);
      }
    } finally {
      for (const w of workers) w.kill('SIGKILL');
      await events.close();
      redis.kill('SIGTERM');
    }
  });
});
