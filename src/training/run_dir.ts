/**
 * A run directory's life as training runs and GAN runs share it: created
 * fresh, replaced (only when it holds a run), or resumed from its latest
 * checkpoint; and its metrics.jsonl cut back to the checkpoint on resume, so
 * that lines written after the last checkpoint (or torn by a crash) are
 * written again rather than doubled.
 */
import {mkdir, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises';
import {join} from 'node:path';

import {CHECKPOINT_DIR, CHECKPOINT_OLD_DIR, CHECKPOINT_TMP_DIR} from '../io/checkpoint_dirs.js';
import {writeAtomic} from '../io/file_system.js';
import {TrainError} from './checkpoint.js';

export const METRICS_FILE = 'metrics.jsonl';

const RUN_MARKERS = [METRICS_FILE, CHECKPOINT_DIR, CHECKPOINT_TMP_DIR, CHECKPOINT_OLD_DIR];

export interface RunDirOptions {
  runDir: string;
  resume?: boolean;
  overwrite?: boolean;
  /** Files written (atomically) into a fresh run directory, name -> text; a resumed run keeps the originals. */
  runFiles?: Record<string, string>;
}

async function isDirectory(path: string): Promise<boolean | null> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return null;
  }
}

/**
 * Creates, replaces or (with `resume`) recovers the run directory. `recover`
 * tidies the checkpoint directories, checks the checkpoint against the run
 * and returns how far it got (epochs, steps), or null when there is no
 * complete checkpoint. Returns that progress, 0 for a fresh run.
 */
export async function prepareRunDir(o: RunDirOptions, recover: () => Promise<number | null>,
                                    unit: string): Promise<number> {
  const dir = o.runDir;
  const kind = await isDirectory(dir);
  if (kind === false) throw new TrainError('BAD_OPTIONS', `the run directory ${dir} is a file`);
  if (o.resume) {
    if (kind === null) throw new TrainError('NO_CHECKPOINT', `nothing to resume: ${dir} does not exist`);
    const done = await recover();
    if (done === null) {
      throw new TrainError('NO_CHECKPOINT', `nothing to resume in ${dir}: it has no complete checkpoint ` +
        `(the run stopped before its first ${unit} ended); start it again with overwrite`);
    }
    return done;
  }
  if (kind === true) {
    const entries = await readdir(dir);
    if (entries.length > 0) {
      if (!o.overwrite) {
        throw new TrainError('RUN_EXISTS', `the run directory ${dir} already exists; resume to continue that run, or overwrite to replace it`);
      }
      if (!entries.some(e => RUN_MARKERS.includes(e))) {
        throw new TrainError('RUN_EXISTS', `refusing to overwrite ${dir}: it holds no run (no ${METRICS_FILE} or ${CHECKPOINT_DIR}/); delete it yourself`);
      }
      await rm(dir, {recursive: true, force: true});
    }
  }
  await mkdir(dir, {recursive: true});
  for (const [name, text] of Object.entries(o.runFiles ?? {})) {
    if (name.includes('/') || RUN_MARKERS.includes(name)) {
      throw new TrainError('BAD_OPTIONS', `runFiles: '${name}' is not a plain file name of its own`);
    }
    await writeAtomic(join(dir, name), text);
  }
  await writeFile(join(dir, METRICS_FILE), '');
  return 0;
}

/**
 * The records of metrics.jsonl whose `key` (epoch, step) is from 1 to
 * `upTo`, in order, one per key; the file is rewritten without later or torn lines.
 */
export async function recoverMetrics<R extends object>(runDir: string, key: keyof R & string, upTo: number): Promise<R[]> {
  const path = join(runDir, METRICS_FILE);
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch {
    // No metrics file: the records are gone, the run can still continue.
  }
  const byKey = new Map<number, R>();
  for (const line of text.split('\n')) {
    try {
      const record = JSON.parse(line) as R;
      const at = (record as Record<string, unknown>)[key];
      if (typeof at === 'number' && Number.isInteger(at) && at >= 1 && at <= upTo) byKey.set(at, record);
    } catch {
      // A line cut short by a crash.
    }
  }
  const records = [...byKey.keys()].sort((a, b) => a - b).map(k => byKey.get(k)!);
  await writeAtomic(path, records.map(r => `${JSON.stringify(r)}\n`).join(''));
  return records;
}

/**
 * Where a run's progress goes and how: `log` (default stderr; null = nowhere)
 * and the requested mode, 'auto' meaning a bar on a terminal, lines elsewhere.
 */
export function progressOutput(log: NodeJS.WritableStream | null | undefined, requested: 'auto' | 'bar' | 'lines' | 'none' = 'auto'):
    {stream: NodeJS.WritableStream | null; mode: 'bar' | 'lines' | 'none'} {
  const stream = log === undefined ? process.stderr : log;
  if (stream === null) return {stream, mode: 'none'};
  return {stream, mode: requested === 'auto' ? ((stream as NodeJS.WriteStream).isTTY ? 'bar' : 'lines') : requested};
}
