/**
 * The report's figures, drawn with Observable Plot in Node (on a jsdom
 * document) to SVG that goes into the page as it is: no script, no network.
 * Each figure carries the numbers it plots, the files they came from and
 * the command that regenerates it. Series are named by the settings that
 * differ between the runs (norm, noise, seed...), or by the run's directory
 * when none do.
 */
import * as Plot from '@observablehq/plot';
import {createRequire} from 'node:module';

import {differingKeys, meanStd, settingsLabel} from './group.js';
import type {ReportRun} from './read_run.js';

export interface Figure {
  title: string;
  /** What the figure shows, a sentence. */
  caption: string;
  /** The plots, as HTML (Plot's figure elements); empty when the figure is images. */
  plots: string[];
  /** Images (PNG) with their captions. */
  images: {caption: string; png: Buffer}[];
  table: {header: string[]; rows: string[][]};
  sources: string[];
}

/** Settings never used to tell runs apart: where they live and how they were started. */
const NOT_SETTINGS = ['runDir', 'resume', 'overwrite', 'dataRoot'];

/** Each run's series name: its differing settings, or its directory name. */
export function seriesNames(runs: ReportRun[]): Map<ReportRun, string> {
  const keys = differingKeys(runs.map(r => r.settings), NOT_SETTINGS);
  const names = new Map(runs.map(r => [r, settingsLabel(r.settings, keys) || r.name]));
  // Runs whose settings are all alike (or unreadable) still need names apart.
  if (new Set(names.values()).size < runs.length) for (const r of runs) names.set(r, `${names.get(r)} (${r.name})`);
  return names;
}

/**
 * Each run's cell: its series name without the seed, so that the seeds of one
 * setting are drawn together as mean ± std with their individual points.
 */
export function cellNames(runs: ReportRun[], series: Map<ReportRun, string>): Map<ReportRun, string> {
  const keys = differingKeys(runs.map(r => r.settings), [...NOT_SETTINGS, 'seed']);
  return new Map(runs.map(r => [r, keys.length > 0 ? settingsLabel(r.settings, keys) || series.get(r)! : 'all seeds']));
}

/** Per cell and x: mean and sample std of y over the cell's runs. */
export function cellMeans(data: Record<string, unknown>[], x: string, y: string): {cell: string; x: number; mean: number;
                                                                                   std: number | null; n: number}[] {
  const groups = new Map<string, {cell: string; x: number; values: number[]}>();
  for (const d of data) {
    const [xv, yv] = [num(d[x]), num(d[y])];
    if (xv === undefined || yv === undefined) continue;
    const key = `${String(d.cell)}\u0000${xv}`;
    const g = groups.get(key) ?? {cell: String(d.cell), x: xv, values: []};
    g.values.push(yv);
    groups.set(key, g);
  }
  return [...groups.values()].map(g => {
    const m = meanStd(g.values);
    return {cell: g.cell, x: g.x, mean: m.mean, std: m.std, n: g.values.length};
  }).sort((a, b) => (a.cell < b.cell ? -1 : a.cell > b.cell ? 1 : a.x - b.x));
}

/**
 * The one jsdom document every plot is drawn on (each plot is serialized at
 * once, nothing is attached to it). jsdom is required on the first plot, not
 * imported: it takes a second or more to load, and every CLI command imports
 * this module.
 */
let plotDocument: Document | undefined;

function plot(options: Plot.PlotOptions): string {
  if (plotDocument === undefined) {
    const {JSDOM} = createRequire(import.meta.url)('jsdom') as typeof import('jsdom');
    plotDocument = new JSDOM('').window.document;
  }
  return (Plot.plot({...options, document: plotDocument}) as unknown as Element).outerHTML;
}

export const f4 = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(4) : '-');

/**
 * y against x, a line per series; where a cell holds several series (seeds),
 * the cell's mean, ± one sample std, and every run's point instead.
 */
export function lines(data: Record<string, unknown>[], x: string, y: string, label: string): string {
  const seeded = new Map<string, Set<unknown>>();
  for (const d of data) seeded.set(String(d.cell), (seeded.get(String(d.cell)) ?? new Set()).add(d.series));
  if (![...seeded.values()].some(s => s.size > 1)) {
    return plot({
      width: 520, height: 260, marginLeft: 56, grid: true,
      x: {label: x}, y: {label}, color: {legend: true},
      marks: [Plot.lineY(data, {x, y, stroke: 'series', z: 'series'}),
              Plot.dot(data, {x, y, fill: 'series', r: 2.5})],
    });
  }
  // Several seeds of a setting: their mean, ± one sample std, and every run's point.
  // The mean is also drawn as a ring because a partly run sweep can hold a cell
  // with one x so far, whose line has no segment to show. z is named because
  // Plot warns when it infers one with as many groups as half the points,
  // which is just that partly run sweep.
  const means = cellMeans(data, x, y);
  return plot({
    width: 520, height: 260, marginLeft: 56, grid: true,
    x: {label: x}, y: {label: `${label} (mean ± std over seeds)`}, color: {legend: true},
    marks: [Plot.dot(data, {x, y, fill: 'cell', r: 2, fillOpacity: 0.45}),
            Plot.lineY(means, {x: 'x', y: 'mean', stroke: 'cell', z: 'cell'}),
            Plot.dot(means, {x: 'x', y: 'mean', stroke: 'cell', r: 4}),
            Plot.ruleX(means.filter(m => m.std !== null),
                       {x: 'x', y1: (m: {mean: number; std: number}) => m.mean - m.std,
                        y2: (m: {mean: number; std: number}) => m.mean + m.std, stroke: 'cell'})],
  });
}

/** Training curves: loss and top-1 per epoch, every run overlaid. */
export function trainingFigure(runs: ReportRun[]): Figure | undefined {
  const trained = runs.filter(r => r.kind === 'train' && r.epochs.length > 0);
  if (trained.length === 0) return undefined;
  const names = seriesNames(trained);
  const cells = cellNames(trained, names);
  const validation = trained.some(r => Number(r.settings.validation) > 0);
  const held = validation ? 'validation / test' : 'test';
  const data = trained.flatMap(r => r.epochs.map(e => ({series: names.get(r)!, cell: cells.get(r)!, ...e})));
  return {
    title: 'Training',
    caption: `Per epoch: mean training cross-entropy, training top-1 (against the labels trained on, noisy ones ` +
      `included), and ${held} top-1 in inference mode (validation when the run holds a split out).`,
    plots: [lines(data, 'epoch', 'trainLoss', 'training loss'), lines(data, 'epoch', 'trainTop1', 'training top-1'),
            lines(data.filter(d => d.testTop1 !== undefined), 'epoch', 'testTop1', `${held} top-1`)],
    images: [],
    table: {header: ['run', 'epoch', 'lr', 'train loss', 'train top-1', `${held} loss`, `${held} top-1`],
            rows: data.map(d => [d.series, String(d.epoch), f4(d.lr), f4(d.trainLoss), f4(d.trainTop1), f4(d.testLoss),
                                 f4(d.testTop1)])},
    sources: trained.map(r => `${r.dir}/metrics.jsonl`),
  };
}

/** GAN runs: both losses and the scores over steps, and the last sample grid of each run. */
export function ganFigures(runs: ReportRun[]): Figure[] {
  const gans = runs.filter(r => r.kind === 'gan' && (r.steps.length > 0 || r.samples.length > 0));
  if (gans.length === 0) return [];
  const names = seriesNames(gans);
  const cells = cellNames(gans, names);
  const data = gans.flatMap(r => r.steps.map(s => ({series: names.get(r)!, cell: cells.get(r)!, ...s})));
  const labels = [...new Set(data.flatMap(d => Object.keys(d.scores ?? {})).filter(l => !l.endsWith(' std')))];
  const scored = labels.flatMap(label => data.filter(d => d.scores?.[label] !== undefined)
    .map(d => ({series: d.series, cell: d.cell, step: d.step, score: label, value: d.scores![label]})));
  const figures: Figure[] = [];
  if (data.length > 0) {
    figures.push({
      title: 'GAN training',
      caption: 'Hinge losses per logged step (means since the previous line of metrics.jsonl), and the scores ' +
        'under their feature network\'s labels: FID and IS only on Inception-v3.',
      plots: [lines(data, 'step', 'dLoss', 'discriminator loss'), lines(data, 'step', 'gLoss', 'generator loss'),
              ...labels.map(label => lines(scored.filter(s => s.score === label), 'step', 'value', label))],
      images: [],
      table: {header: ['run', 'step', 'D loss', 'G loss', ...labels],
              rows: data.map(d => [d.series, String(d.step), f4(d.dLoss), f4(d.gLoss),
                                   ...labels.map(l => f4(d.scores?.[l]))])},
      sources: gans.map(r => `${r.dir}/metrics.jsonl`),
    });
  }
  const grids = gans.filter(r => r.samples.length > 0);
  if (grids.length > 0) {
    const last = grids.map(r => ({run: r, sample: r.samples[r.samples.length - 1]}));
    figures.push({
      title: 'GAN samples',
      caption: 'Each run\'s latest sample grid, from its fixed noise batch (the same z at every step).',
      plots: [],
      images: last.map(({run, sample}) => ({caption: `${names.get(run)}, step ${sample.step}`, png: sample.png})),
      table: {header: ['run', 'step', 'grids in the run'],
              rows: last.map(({run, sample}) => [names.get(run)!, String(sample.step), String(run.samples.length)])},
      sources: last.map(({run, sample}) => `${run.dir}/samples/step-${String(sample.step).padStart(6, '0')}.png`),
    });
  }
  return figures;
}

const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

/** Top-1 against eps per attack (`convnorm attack`), the clean top-1 at eps 0. */
export function attackFigure(runs: ReportRun[]): Figure | undefined {
  const attacked = runs.filter(r => r.attacks.length > 0);
  if (attacked.length === 0) return undefined;
  const names = seriesNames(attacked);
  const cells = cellNames(attacked, names);
  const rows = attacked.flatMap(r => r.attacks.flatMap(e => {
    const [eps, top1, clean] = [num(e.settings.eps), num(e.result.top1), num(e.result.cleanTop1)];
    const label = typeof e.result.label === 'string' ? e.result.label : String(e.settings.attack);
    if (eps === undefined || top1 === undefined) return [];
    return [{series: names.get(r)!, cell: cells.get(r)!, attack: label, eps, top1, clean}];
  }));
  const attacks = [...new Set(rows.map(d => d.attack))];
  const withClean = attacks.flatMap(a => {
    const of = rows.filter(d => d.attack === a);
    const clean = [...new Map(of.filter(d => d.clean !== undefined).map(d => [d.series, d])).values()]
      .map(d => ({series: d.series, cell: d.cell, attack: a, eps: 0, top1: d.clean!}));
    return [...clean, ...of].sort((x, y) => x.eps - y.eps);
  });
  return {
    title: 'Adversarial robustness',
    caption: 'Top-1 under each attack (L-infinity, pixel space, inference mode) against its radius in 1/255, ' +
      'the clean top-1 at 0.',
    plots: attacks.map(a => lines(withClean.filter(d => d.attack === a), 'eps', 'top1', `${a} top-1`)),
    images: [],
    table: {header: ['run', 'attack', 'eps (1/255)', 'top-1', 'clean top-1'],
            rows: rows.map(d => [d.series, d.attack, String(d.eps), f4(d.top1), f4(d.clean)])},
    sources: attacked.map(r => `${r.dir}/attacks.json`),
  };
}

/** Top-1 per corruption and severity as a heatmap per run (`convnorm eval --corruptions`), and the means. */
export function corruptionFigure(runs: ReportRun[]): Figure | undefined {
  const corrupted = runs.filter(r => r.corruptions.length > 0);
  if (corrupted.length === 0) return undefined;
  const names = seriesNames(corrupted);
  const rows = corrupted.flatMap(r => r.corruptions.flatMap(e => {
    const [severity, top1] = [num(e.settings.severity), num(e.result.top1)];
    return severity === undefined || top1 === undefined ? []
      : [{series: names.get(r)!, corruption: String(e.settings.name), severity, top1}];
  }));
  const means = corrupted.map(r => {
    const of = rows.filter(d => d.series === names.get(r));
    return {series: names.get(r)!, mean: of.reduce((s, d) => s + d.top1, 0) / Math.max(1, of.length), count: of.length};
  });
  const heat = plot({
    width: 300 * corrupted.length + 160, height: 40 + 22 * new Set(rows.map(d => d.corruption)).size, marginLeft: 130,
    // No colour legend: Plot draws continuous ones on a canvas, which jsdom lacks; each cell prints its value.
    color: {scheme: 'viridis', domain: [0, 1], label: 'top-1'},
    x: {label: 'severity'}, fx: {label: null}, y: {label: null},
    marks: [Plot.cell(rows, {x: 'severity', y: 'corruption', fx: 'series', fill: 'top1'}),
            Plot.text(rows, {x: 'severity', y: 'corruption', fx: 'series', text: (d: {top1: number}) => d.top1.toFixed(2),
                             fill: 'white', fontSize: 9})],
  });
  const bars = plot({
    width: 520, height: 40 + 28 * means.length, marginLeft: 200, x: {label: 'mean top-1', domain: [0, 1]}, y: {label: null},
    marks: [Plot.barX(means, {x: 'mean', y: 'series', fill: 'series'}), Plot.ruleX([0])],
  });
  return {
    title: 'Common corruptions',
    caption: 'Top-1 on the corrupted test set per corruption and severity (the CIFAR-10-C construction), and its ' +
      'mean over every corruption and severity evaluated.',
    plots: [heat, bars],
    images: [],
    table: {header: ['run', 'corruption', 'severity', 'top-1'],
            rows: [...rows.map(d => [d.series, d.corruption, String(d.severity), f4(d.top1)]),
                   ...means.map(m => [m.series, `mean of ${m.count}`, '', f4(m.mean)])]},
    sources: corrupted.map(r => `${r.dir}/corruptions.json`),
  };
}

interface SpectrumUnit {
  name: string;
  conv: number;
  folded: number;
  values?: number[];
}

/** At most `count` of a descending list, evenly by rank, the first and last kept. */
function thin(values: number[], count: number): {rank: number; value: number}[] {
  const n = values.length;
  const picks = n <= count ? values.map((_, i) => i)
    : Array.from({length: count}, (_, i) => Math.round((i * (n - 1)) / (count - 1)));
  return picks.map(i => ({rank: n === 1 ? 0 : i / (n - 1), value: values[i]}));
}

/** Per-unit spectral norms and sorted singular values (`convnorm spectrum`), and the Lipschitz bound. */
export function spectrumFigure(runs: ReportRun[]): Figure | undefined {
  const analysed = runs.filter(r => r.spectrum.length > 0);
  if (analysed.length === 0) return undefined;
  const names = seriesNames(analysed);
  const per = analysed.map(r => {
    const result = r.spectrum[r.spectrum.length - 1].result as {units?: SpectrumUnit[]; lipschitzBound?: number};
    return {run: r, units: Array.isArray(result.units) ? result.units : [], bound: num(result.lipschitzBound)};
  });
  const norms = per.flatMap(p => p.units.flatMap((u, i) => [
    {series: names.get(p.run)!, unit: i + 1, name: u.name, what: 'folded unit', value: u.folded},
    {series: names.get(p.run)!, unit: i + 1, name: u.name, what: 'kernel alone', value: u.conv},
  ])).filter(d => num(d.value) !== undefined);
  const spectra = per.flatMap(p => p.units.filter(u => Array.isArray(u.values) && u.values.length > 0)
    .flatMap((u, i) => thin(u.values!, 100).map(v => ({series: names.get(p.run)!, unit: `${i + 1} ${u.name}`, ...v}))));
  const plots = [
    plot({width: 520, height: 260, marginLeft: 56, grid: true, x: {label: 'conv unit (forward order)'},
          y: {label: 'spectral norm', type: 'log'}, color: {legend: true},
          marks: [Plot.lineY(norms.filter(d => d.what === 'folded unit'), {x: 'unit', y: 'value', stroke: 'series'}),
                  Plot.dot(norms, {x: 'unit', y: 'value', stroke: 'series',
                                   symbol: 'what', fill: (d: {what: string}) => (d.what === 'folded unit' ? 'currentColor' : 'none')})]}),
    ...[...new Set(spectra.map(d => d.series))].map(series => plot({
      width: 520, height: 260, marginLeft: 56, grid: true, x: {label: 'rank (0 = largest)'},
      y: {label: `singular values, ${series}`, type: 'log'},
      marks: [Plot.lineY(spectra.filter(d => d.series === series), {x: 'rank', y: 'value', z: 'unit', stroke: 'unit',
                                                                      strokeOpacity: 0.7})]})),
  ];
  return {
    title: 'Layer spectra',
    caption: 'Per conv unit, the spectral norm of the kernel alone and of the whole unit as it runs in inference ' +
      '(circular on its grid; line: the unit), and every unit\'s singular values, sorted; the Lipschitz bound is ' +
      'in the table.',
    plots, images: [],
    table: {header: ['run', 'unit', 'name', 'kernel alone', 'folded unit'],
            rows: [...per.flatMap(p => p.units.map((u, i) => [names.get(p.run)!, String(i + 1), u.name, f4(u.conv), f4(u.folded)])),
                   ...per.map(p => [names.get(p.run)!, 'Lipschitz bound', '', '', f4(p.bound)])]},
    sources: analysed.map(r => `${r.dir}/spectrum.json`),
  };
}

/** Label noise: how much of it the model has memorized per epoch, beside clean test top-1. */
export function memorizationFigure(runs: ReportRun[]): Figure | undefined {
  const noisy = runs.filter(r => r.kind === 'train' && r.epochs.some(e => num(e.noisyFitted) !== undefined));
  if (noisy.length === 0) return undefined;
  const names = seriesNames(noisy);
  const cells = cellNames(noisy, names);
  const data = noisy.flatMap(r => r.epochs.filter(e => num(e.noisyFitted) !== undefined)
    .map(e => ({series: names.get(r)!, cell: cells.get(r)!, epoch: e.epoch, fitted: e.noisyFitted!, correct: e.noisyCorrect, test: e.testTop1})));
  return {
    title: 'Label noise: memorization',
    caption: 'Per epoch, of the training images whose label the noise changed: the fraction the model predicts as ' +
      'the noisy label (memorized) and as the true one; beside them the top-1 on the clean held-out images.',
    plots: [lines(data, 'epoch', 'fitted', 'noisy labels fitted'),
            lines(data.filter(d => d.correct !== undefined), 'epoch', 'correct', 'true labels of those images'),
            lines(data.filter(d => d.test !== undefined), 'epoch', 'test', 'clean held-out top-1')],
    images: [],
    table: {header: ['run', 'epoch', 'noisy labels fitted', 'true labels', 'clean held-out top-1'],
            rows: data.map(d => [d.series, String(d.epoch), f4(d.fitted), f4(d.correct), f4(d.test)])},
    sources: noisy.map(r => `${r.dir}/metrics.jsonl`),
  };
}
