/**
 * A sweep directory: `sweep.json` (the grid it runs), one ordinary run
 * directory per run (named by its varied settings), `status/<run>.json` (what
 * the process running it last said: running, done with its results, failed
 * with its error) and `logs/<run>.log`. Workers on other machines read the
 * same directory, so everything a run needs is in it.
 */
import {closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync} from 'node:fs';
import {hostname} from 'node:os';
import {basename, dirname, extname, isAbsolute, join, resolve} from 'node:path';

import {canonicalJson} from '../common/canonical_json.js';
import {readJsonFile, writeAtomic} from '../io/file_system.js';
import {axisNames, checkGrid, expandGrid, GridSpec, SweepRun} from './grid.js';

export const SWEEP_FILE = 'sweep.json';
const STATUS_DIR = 'status';
const LOGS_DIR = 'logs';

export interface Sweep {
  /** Absolute path of the sweep directory. */
  dir: string;
  spec: GridSpec;
  runs: SweepRun[];
}

export interface OpenSweepOptions {
  /** Default: beside the grid file, named after it (`studies/x.json` -> `studies/x/`). */
  sweepDir?: string;
  /** Replaces the grid's `dataRoot` (relative to the working directory). */
  dataRoot?: string;
}

/**
 * Reads and checks a grid file and every run it makes; nothing is written. A
 * relative `dataRoot` in the file is relative to the file's own folder, so a
 * committed grid finds its data from any working directory.
 */
export function loadSweep(gridFile: string, options: OpenSweepOptions = {}): Sweep {
  const spec = checkGrid(readJsonFile(gridFile, 'the grid file'), gridFile);
  const dataRoot = options.dataRoot !== undefined ? resolve(options.dataRoot)
    : spec.base.dataRoot !== undefined && !isAbsolute(spec.base.dataRoot) ? resolve(dirname(gridFile), spec.base.dataRoot)
    : spec.base.dataRoot;
  const resolved: GridSpec = {base: dataRoot === undefined ? spec.base : {...spec.base, dataRoot}, grid: spec.grid};
  const dir = resolve(options.sweepDir ?? join(dirname(gridFile), basename(gridFile, extname(gridFile))));
  return {dir, spec: resolved, runs: expandGrid(resolved)};
}

/** The grid a sweep directory was made for, or undefined when it has none. */
function storedGrid(dir: string): GridSpec | undefined {
  const path = join(dir, SWEEP_FILE);
  if (!existsSync(path)) return undefined;
  return checkGrid(readJsonFile(path, 'the sweep file'), path);
}

/**
 * Throws unless `sweep.dir` is free for this grid: missing, empty, or made for
 * a grid with the same base settings and the same axis names (their values
 * and sub-grids may differ: more seeds, another noise rate, more seeds for
 * some cells only). Writes nothing.
 */
export function checkSweepDir(sweep: Sweep): void {
  const {dir} = sweep;
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new Error(`the sweep directory ${dir} is a file`);
  const stored = storedGrid(dir);
  if (stored === undefined) {
    // Status files alone (a study's committed run records) make a sweep directory in the making.
    if (readdirSync(dir).some(entry => entry !== STATUS_DIR && entry !== LOGS_DIR)) {
      throw new Error(`${dir} is not empty and holds no ${SWEEP_FILE}: not a sweep directory; name another with --sweep-dir`);
    }
    return;
  }
  if (canonicalJson(stored.base) !== canonicalJson(sweep.spec.base)) {
    throw new Error(`the sweep directory ${dir} holds runs of another grid (its base settings differ: ` +
                    `${JSON.stringify(stored.base)}); name another with --sweep-dir`);
  }
  const axes = (spec: GridSpec) => axisNames(spec).sort().join(', ');
  if (axes(stored) !== axes(sweep.spec)) {
    throw new Error(`the sweep directory ${dir} holds runs of another grid (its axes are ` +
                    `${axes(stored)}, not ${axes(sweep.spec)}); name another with --sweep-dir`);
  }
}

/** Checks the directory (checkSweepDir), then creates it and records this grid in it. */
export async function prepareSweepDir(sweep: Sweep): Promise<void> {
  checkSweepDir(sweep);
  for (const sub of ['', STATUS_DIR, LOGS_DIR]) mkdirSync(join(sweep.dir, sub), {recursive: true});
  await writeAtomic(join(sweep.dir, SWEEP_FILE), JSON.stringify(sweep.spec, null, 2) + '\n');
}

export function isSweepDir(dir: string): boolean {
  return existsSync(join(dir, SWEEP_FILE));
}

/** The sweep recorded in a sweep directory (what a worker runs). */
export function openSweepDir(dir: string): Sweep {
  const spec = storedGrid(dir);
  if (spec === undefined) throw new Error(`${dir} holds no ${SWEEP_FILE}: not a sweep directory`);
  return {dir: resolve(dir), spec, runs: expandGrid(spec)};
}

export function runDirOf(sweep: Sweep, run: SweepRun | string): string {
  return join(sweep.dir, typeof run === 'string' ? run : run.name);
}

export function logPathOf(sweep: Sweep, name: string): string {
  return join(sweep.dir, LOGS_DIR, `${name}.log`);
}

/** A run's results, as the process that finished it recorded them. */
export interface RunResult {
  /** Epochs trained. */
  epochs: number;
  /** Clean test top-1 after the last epoch. */
  testTop1: number;
  /** With a validation split: the epoch of the best validation top-1 (the first, on ties). */
  bestValidationEpoch?: number;
  /** With a validation split: the best validation top-1 and the test top-1 at that epoch. */
  bestValidationTop1?: number;
  testTop1AtBestValidation?: number;
  /**
   * Wall time of the run's epochs (training and evaluation), summed, seconds;
   * absent from the records of runs finished before it was recorded.
   */
  seconds?: number;
}

export type RunStatus =
  | {state: 'running'; host: string; pid: number; epoch: number; epochs: number}
  | {state: 'done'; host: string; pid: number; result: RunResult}
  | {state: 'failed'; host: string; pid: number; error: string};

export type RunState = 'done' | 'running' | 'pending' | 'failed';

function statusPath(sweep: Sweep, name: string): string {
  return join(sweep.dir, STATUS_DIR, `${name}.json`);
}

export function readStatus(sweep: Sweep, name: string): RunStatus | undefined {
  try {
    return JSON.parse(readFileSync(statusPath(sweep, name), 'utf8')) as RunStatus;
  } catch {
    return undefined;
  }
}

export async function writeStatus(sweep: Sweep, name: string, status: RunStatus): Promise<void> {
  await writeAtomic(statusPath(sweep, name), JSON.stringify(status) + '\n');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Where a run stands by its status file. A run whose process on this host has
 * gone (killed, machine restarted) is pending again: the next sweep resumes
 * it from its checkpoint. Running on another host is taken at its word.
 */
export function runState(sweep: Sweep, name: string): {state: RunState; status?: RunStatus} {
  const status = readStatus(sweep, name);
  if (status === undefined) return {state: 'pending'};
  if (status.state === 'running' && status.host === hostname() && !alive(status.pid)) return {state: 'pending', status};
  return {state: status.state, status};
}

/**
 * Claims a run for this process (status/<run>.claim, created exclusively),
 * so that two sweeps over one directory never train the same run at once. A
 * claim whose process on this host has gone is taken over. Returns the
 * release, or undefined when another live process holds the run.
 */
export function claimRun(sweep: Sweep, name: string): (() => void) | undefined {
  const path = join(sweep.dir, STATUS_DIR, `${name}.claim`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify({host: hostname(), pid: process.pid}));
      closeSync(fd);
      return () => rmSync(path, {force: true});
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: {host?: string; pid?: number} | undefined;
    try {
      holder = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      // Torn by a crash between creating and writing it: stale.
    }
    if (holder !== undefined && (holder.host !== hostname() || alive(holder.pid ?? -1))) return undefined;
    rmSync(path, {force: true});
  }
  return undefined;
}
