/**
 * The report's figures, drawn with Observable Plot in Node (on a jsdom
 * document) to SVG that goes into the page as it is: no script, no network.
 * Each figure carries the numbers it plots, the files they came from and
 * the command that regenerates it. Series are named by the settings that
 * differ between the runs (norm, noise, seed...), or by the run's directory
 * when none do.
 */
import * as Plot from '@observablehq/plot';
import {JSDOM} from 'jsdom';

import {differingKeys, settingsLabel} from './group.js';
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

function plot(options: Plot.PlotOptions): string {
  const {document} = new JSDOM('').window;
  return (Plot.plot({...options, document}) as unknown as Element).outerHTML;
}

const f4 = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(4) : '-');

function lines(data: Record<string, unknown>[], x: string, y: string, label: string): string {
  return plot({
    width: 520, height: 260, marginLeft: 56, grid: true,
    x: {label: x}, y: {label}, color: {legend: true},
    marks: [Plot.lineY(data, {x, y, stroke: 'series'}), Plot.dot(data, {x, y, fill: 'series', r: 2.5})],
  });
}

/** Training curves: loss and top-1 per epoch, every run overlaid. */
export function trainingFigure(runs: ReportRun[]): Figure | undefined {
  const trained = runs.filter(r => r.kind === 'train' && r.epochs.length > 0);
  if (trained.length === 0) return undefined;
  const names = seriesNames(trained);
  const validation = trained.some(r => Number(r.settings.validation) > 0);
  const held = validation ? 'validation / test' : 'test';
  const data = trained.flatMap(r => r.epochs.map(e => ({series: names.get(r)!, ...e})));
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
  const data = gans.flatMap(r => r.steps.map(s => ({series: names.get(r)!, ...s})));
  const labels = [...new Set(data.flatMap(d => Object.keys(d.scores ?? {})).filter(l => !l.endsWith(' std')))];
  const scored = labels.flatMap(label => data.filter(d => d.scores?.[label] !== undefined)
    .map(d => ({series: d.series, step: d.step, score: label, value: d.scores![label]})));
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
