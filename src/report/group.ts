/**
 * Runs compared in a report or a sweep summary: which settings differ
 * between them (those colour the figures and name the groups), the cells of
 * runs that differ only in the seed, and a cell's mean and sample standard
 * deviation.
 */
import {canonicalJson} from '../common/canonical_json.js';

type Settings = Record<string, unknown>;

const canonical = (value: unknown) => canonicalJson(value) ?? 'undefined';

/**
 * The keys whose values are not the same in every run (a key missing from a
 * run counts as a value of its own), in the order they first appear; `ignore`
 * names keys never reported (e.g. the run directory).
 */
export function differingKeys(runs: Settings[], ignore: readonly string[] = []): string[] {
  const keys = [...new Set(runs.flatMap(r => Object.keys(r)))].filter(k => !ignore.includes(k));
  return keys.filter(k => new Set(runs.map(r => (k in r ? canonical(r[k]) : '<missing>'))).size > 1);
}

/** "norm=bn, noise=0.4": the given keys' values in a run's settings (keys it lacks left out). */
export function settingsLabel(settings: Settings, keys: readonly string[]): string {
  return keys.filter(k => k in settings)
    .map(k => `${k}=${typeof settings[k] === 'string' ? settings[k] : canonical(settings[k])}`).join(', ');
}

export interface Cell<T> {
  /** The settings the cell's runs share, without the keys grouped over. */
  settings: Settings;
  members: T[];
}

/**
 * Groups items by their settings without the keys in `over` (default the
 * seed): each cell holds the runs of one setting. Cells and their members
 * keep the order in which they first appear.
 */
export function groupRuns<T>(items: T[], settingsOf: (item: T) => Settings,
                             over: readonly string[] = ['seed']): Cell<T>[] {
  const cells = new Map<string, Cell<T>>();
  for (const item of items) {
    const settings = Object.fromEntries(Object.entries(settingsOf(item)).filter(([k]) => !over.includes(k)));
    const key = canonical(settings);
    let cell = cells.get(key);
    if (cell === undefined) {
      cell = {settings, members: []};
      cells.set(key, cell);
    }
    cell.members.push(item);
  }
  return [...cells.values()];
}

export interface MeanStd {
  mean: number;
  /** The sample standard deviation (n - 1); null for a single value. */
  std: number | null;
  values: number[];
}

/** Mean and sample standard deviation of finite values (at least one). */
export function meanStd(values: number[]): MeanStd {
  if (values.length === 0) throw new Error('mean and std of no values');
  const bad = values.find(v => !Number.isFinite(v));
  if (bad !== undefined) throw new Error(`mean and std of a value that is not a finite number: ${bad}`);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = values.length < 2 ? null
    : Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1));
  return {mean, std, values: [...values]};
}

/** "93.12 ± 0.41" (or "93.12" for one value), in `digits` decimals. */
export function formatMeanStd(m: MeanStd, digits = 2): string {
  return m.std === null ? m.mean.toFixed(digits) : `${m.mean.toFixed(digits)} ± ${m.std.toFixed(digits)}`;
}
