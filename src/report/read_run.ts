/**
 * A run directory as the report reads it: what kind of run it is, its
 * settings, its metrics and the images it holds. Run directories come from
 * other people, so nothing here throws on their contents: a missing or
 * malformed file becomes a problem the report shows and the command warns
 * about, and what could be read is kept.
 */
import {readdir, readFile} from 'node:fs/promises';
import {basename, join} from 'node:path';

import {parseResults, ResultEntry} from '../io/results.js';
import type {GanRecord} from '../training/gan_trainer.js';
import type {EpochRecord} from '../training/trainer.js';

export interface ReportRun {
  dir: string;
  /** A short name for legends and tables: the directory's own name. */
  name: string;
  kind: 'train' | 'gan' | 'unknown';
  /** experiment.json (train) or gan.json (gan); {} when unreadable. */
  settings: Record<string, unknown>;
  epochs: EpochRecord[];
  steps: GanRecord[];
  /** attacks.json, corruptions.json, spectrum.json entries of the run's latest evaluated epoch. */
  attacks: ResultEntry[];
  corruptions: ResultEntry[];
  spectrum: ResultEntry[];
  /** Sample grids of a GAN run, by step, as PNG bytes. */
  samples: {step: number; png: Buffer}[];
  /** What could not be read, one sentence each. */
  problems: string[];
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The JSON lines of metrics.jsonl that are objects with a finite `key`; the others counted as problems. */
function jsonLines<R>(text: string, key: string, file: string, problems: string[]): R[] {
  const records: R[] = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const record = JSON.parse(line) as unknown;
      if (isObject(record) && Number.isFinite(record[key])) records.push(record as R);
      else bad++;
    } catch {
      bad++;
    }
  }
  if (bad > 0) problems.push(`${file}: ${bad} line(s) that are not metrics records were skipped`);
  return records;
}

/** A results file's entries of the latest epoch it has; [] and a problem when it is not one. */
async function resultEntries(path: string, file: string, kind: string, problems: string[]): Promise<ResultEntry[]> {
  let entries: unknown[];
  try {
    entries = parseResults((await readText(path)) ?? '', file, kind);
  } catch (e) {
    problems.push((e as Error).message);
    return [];
  }
  const valid = entries.filter((e): e is ResultEntry => isObject(e) && isObject(e.settings) && isObject(e.result));
  if (valid.length < entries.length) problems.push(`${file}: ${entries.length - valid.length} malformed entries skipped`);
  const epoch = Math.max(...valid.map(e => Number(e.settings.epoch)).filter(Number.isFinite));
  return Number.isFinite(epoch) ? valid.filter(e => Number(e.settings.epoch) === epoch) : valid;
}

/** Reads a run directory; never throws for what it holds. */
export async function readRun(dir: string): Promise<ReportRun> {
  const run: ReportRun = {dir, name: basename(dir), kind: 'unknown', settings: {}, epochs: [], steps: [], attacks: [],
                          corruptions: [], spectrum: [], samples: [], problems: []};
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    run.problems.push(`cannot read the directory: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return run;
  }
  const settingsFile = entries.includes('gan.json') ? 'gan.json' : entries.includes('experiment.json') ? 'experiment.json' : undefined;
  if (settingsFile === undefined) {
    run.problems.push('no experiment.json or gan.json: not a run of convnorm train or convnorm gan');
  } else {
    run.kind = settingsFile === 'gan.json' ? 'gan' : 'train';
    try {
      const settings = JSON.parse((await readText(join(dir, settingsFile))) ?? '') as unknown;
      if (!isObject(settings)) throw new Error('not a JSON object');
      run.settings = settings;
    } catch (e) {
      run.problems.push(`${settingsFile} is not readable JSON (${(e as Error).message}); its settings are missing`);
    }
  }
  const metrics = await readText(join(dir, 'metrics.jsonl'));
  if (metrics === undefined) {
    if (run.kind !== 'unknown') run.problems.push('no metrics.jsonl: no curves');
  } else if (run.kind === 'gan') {
    run.steps = jsonLines<GanRecord>(metrics, 'step', 'metrics.jsonl', run.problems);
  } else {
    run.epochs = jsonLines<EpochRecord>(metrics, 'epoch', 'metrics.jsonl', run.problems);
  }
  for (const [file, kind] of [['attacks.json', 'attacks'], ['corruptions.json', 'corruptions'],
                              ['spectrum.json', 'spectrum']] as const) {
    if (entries.includes(file)) run[kind] = await resultEntries(join(dir, file), file, kind, run.problems);
  }
  if (run.kind === 'gan' && entries.includes('samples')) {
    for (const file of (await readdir(join(dir, 'samples')).catch(() => [] as string[])).sort()) {
      const match = /^step-(\d+)\.png$/.exec(file);
      if (match === null) continue;
      const png = await readFile(join(dir, 'samples', file)).catch(() => undefined);
      if (png === undefined || !png.subarray(0, 8).equals(PNG_SIGNATURE)) run.problems.push(`samples/${file} is not a PNG file`);
      else run.samples.push({step: Number(match[1]), png});
    }
  }
  return run;
}
