/**
 * A sweep's figure: the clean test top-1 of its finished runs against its
 * numeric axis (noise rate, training fraction), one line per cell of the
 * other axes (the norms), each point the mean over seeds with ± one sample
 * std and every seed's own point.
 */
import {axisNames, subGrids} from '../sweep/grid.js';
import {summarize} from '../sweep/results.js';
import {Sweep} from '../sweep/sweep_dir.js';
import {f4, Figure, lines} from './figures.js';
import {settingsLabel} from './group.js';

/** The axis drawn along x: noise, then trainFraction, then any other numeric axis but the seed. */
function xAxis(sweep: Sweep): string | undefined {
  const values = (k: string) => subGrids(sweep.spec).flatMap(g => g[k] ?? []);
  const numeric = axisNames(sweep.spec)
    .filter(k => k !== 'seed' && new Set(values(k)).size > 1 && values(k).every(v => typeof v === 'number'));
  return ['noise', 'trainFraction'].find(k => numeric.includes(k)) ?? numeric[0];
}

export function sweepFigure(sweep: Sweep, shownDir: string): Figure {
  const summary = summarize(sweep);
  const x = xAxis(sweep);
  const others = axisNames(sweep.spec).filter(k => k !== 'seed' && k !== x);
  const validation = summary.cells.some(c => c.testTop1AtBestValidation !== undefined);
  const data: Record<string, unknown>[] = summary.cells.flatMap(c => c.seeds.map((seed, i) => ({
    series: `${settingsLabel(c.settings, others)} seed=${seed}`, cell: settingsLabel(c.settings, others) || 'all',
    ...(x === undefined ? {} : {[x]: c.settings[x]}), seed,
    testTop1: c.testTop1!.values[i], testTop1AtBestValidation: c.testTop1AtBestValidation?.values[i],
  })));
  const plots = x === undefined || data.length === 0 ? []
    : [lines(data, x, 'testTop1', 'test top-1 (last epoch)'),
       ...(validation ? [lines(data, x, 'testTop1AtBestValidation', 'test top-1 at best validation')] : [])];
  const finished = summary.cells.reduce((n, c) => n + c.runs, 0);
  return {
    title: `Sweep ${shownDir}`,
    caption: `${finished} of ${sweep.runs.length} runs finished. Clean test top-1 ` +
      (x === undefined ? 'per cell' : `against ${x}, one line per ${others.join(', ') || 'cell'}`) +
      ': the mean over seeds, ± one sample standard deviation, and each seed\'s run as a point' +
      (validation ? '; with a validation split also the test top-1 at the epoch of the best validation top-1.' : '.'),
    plots, images: [],
    table: {header: ['cell', ...(x === undefined ? [] : [x]), 'seed', 'test top-1', ...(validation ? ['test top-1 at best val'] : [])],
            rows: data.map(d => [String(d.cell), ...(x === undefined ? [] : [String(d[x])]), String(d.seed), f4(d.testTop1),
                                 ...(validation ? [f4(d.testTop1AtBestValidation)] : [])])},
    sources: [`${shownDir}/status/*.json`],
  };
}
