/**
 * A sweep's grid: the base settings of `convnorm train` and the axes to vary.
 * Its cartesian product is the runs, each named by its varied settings
 * (`norm=bn,noise=0.4,seed=1`); every run's settings pass `convnorm train`'s
 * own validation before any run starts.
 */
import {checkExperiment, EXPERIMENT_KEYS, ExperimentConfig} from '../cli/experiment.js';

/** What a grid file holds. */
export interface GridSpec {
  /** Settings shared by every run: the keys of `convnorm train --config`. */
  base: Partial<ExperimentConfig>;
  /**
   * Axis name (a setting) -> its values, in order; the runs are their
   * cartesian product. A list of such objects is the union of their products
   * (as scikit-learn's ParameterGrid), for settings that only go together:
   * `[{"norm": ["bn", "convnorm"]}, {"norm": ["bn"], "ocnnLambda": [0.1]}]`.
   */
  grid: Axes | Axes[];
}

export type Axes = Record<string, Array<string | number | boolean>>;

/** The grid's sub-grids: itself when it is one object. */
export function subGrids(spec: GridSpec): Axes[] {
  return Array.isArray(spec.grid) ? spec.grid : [spec.grid];
}

/** Every axis name of the grid, in order of first appearance. */
export function axisNames(spec: GridSpec): string[] {
  return [...new Set(subGrids(spec).flatMap(g => Object.keys(g)))];
}

export interface SweepRun {
  /** Directory name of the run: its varied settings, `key=value` joined by commas, in the grid's axis order. */
  name: string;
  /** The varied settings of this run. */
  settings: Record<string, string | number | boolean>;
  /** Its full, checked `convnorm train` settings, without `runDir`. */
  config: ExperimentConfig;
}

/** Settings the sweep itself decides for each run. */
const SWEEP_OWNED = ['runDir', 'resume', 'overwrite'];

/** Characters a run's directory name may hold: safe on every file system and in a shell. */
const NAME_CHARS = /^[A-Za-z0-9._+=,-]+$/;

function bad(where: string, message: string): never {
  throw new Error(`${where}: ${message}`);
}

function checkKey(key: string, where: string): void {
  if (SWEEP_OWNED.includes(key)) bad(where, `'${key}' is set by the sweep for each run; leave it out`);
  if (!EXPERIMENT_KEYS.includes(key)) {
    bad(where, `unknown setting '${key}'; known: ${EXPERIMENT_KEYS.filter(k => !SWEEP_OWNED.includes(k)).join(', ')}`);
  }
}

function formatValue(value: string | number | boolean): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Checks a parsed grid file (`source` names it in errors) and returns it
 * typed. Every run's settings are checked too: see expandGrid.
 */
export function checkGrid(value: unknown, source: string): GridSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    bad(source, 'a grid file holds one JSON object: {"base": {...settings}, "grid": {"setting": [values]}}');
  }
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    if (key !== 'base' && key !== 'grid') bad(source, `unknown key '${key}' (a grid file holds "base" and "grid")`);
  }
  const base = object.base ?? {};
  if (typeof base !== 'object' || base === null || Array.isArray(base)) bad(source, '"base" must be an object of settings');
  for (const key of Object.keys(base)) checkKey(key, `${source} base`);
  const grid = object.grid;
  const grids = Array.isArray(grid) ? grid : [grid];
  if (grids.length === 0) bad(source, '"grid" is an empty list');
  grids.forEach((g, i) => checkAxes(g, base, Array.isArray(grid) ? `${source} grid[${i}]` : `${source} grid`));
  return {base: base as Partial<ExperimentConfig>, grid: grid as GridSpec['grid']};
}

function checkAxes(grid: unknown, base: object, source: string): void {
  if (typeof grid !== 'object' || grid === null || Array.isArray(grid)) {
    bad(source, 'must be an object of axes, e.g. {"norm": ["bn", "convnorm"], "seed": [0, 1, 2]}, or a list of them');
  }
  const axes = Object.entries(grid as Record<string, unknown>);
  if (axes.length === 0) bad(source, 'has no axes');
  for (const [key, values] of axes) {
    checkKey(key, source);
    if (key in base) bad(source, `'${key}' is both in "base" and an axis of "grid"`);
    if (!Array.isArray(values)) bad(source, `the axis '${key}' must be an array of values`);
    if (values.length === 0) bad(source, `the axis '${key}' is empty`);
    const seen = new Set<string>();
    for (const v of values) {
      if (!['string', 'number', 'boolean'].includes(typeof v)) {
        bad(source, `the axis '${key}' holds ${JSON.stringify(v)}: values are strings, numbers or booleans`);
      }
      const text = formatValue(v);
      if (!NAME_CHARS.test(text)) {
        bad(source, `the value '${text}' of the axis '${key}' cannot name a run directory (letters, digits and . _ + - only)`);
      }
      if (seen.has(text)) bad(source, `the axis '${key}' holds ${text} twice`);
      seen.add(text);
    }
  }
}

/** The grid's runs, in order (the last axis varies fastest), each checked as `convnorm train` checks its settings. */
export function expandGrid(spec: GridSpec): SweepRun[] {
  const cells = subGrids(spec).flatMap(axes => {
    let product: Array<Record<string, string | number | boolean>> = [{}];
    for (const [key, values] of Object.entries(axes)) product = product.flatMap(cell => values.map(v => ({...cell, [key]: v})));
    return product;
  });
  const names = new Set<string>();
  return cells.map(settings => {
    const name = Object.entries(settings).map(([k, v]) => `${k}=${formatValue(v)}`).join(',');
    if (names.has(name)) throw new Error(`the run ${name} comes out of two sub-grids; each run must come from one`);
    names.add(name);
    let config: ExperimentConfig;
    try {
      config = checkExperiment({...spec.base, ...settings} as Partial<ExperimentConfig>);
    } catch (e) {
      throw new Error(`run ${name}: ${(e as Error).message}`);
    }
    return {name, settings, config};
  });
}
