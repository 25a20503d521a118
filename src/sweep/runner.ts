/**
 * Running a sweep's runs: each in a process of its own (run_child.ts), so that
 * a run that crashes takes nothing else down and a queue worker's event loop
 * stays free to keep its jobs' locks; locally, `jobs` of them at a time.
 */
import {fork} from 'node:child_process';
import {closeSync, openSync} from 'node:fs';
import {fileURLToPath} from 'node:url';

import type {ChildMessage, ChildOptions} from './run_child.js';
import {claimRun, logPathOf, prepareSweepDir, RunResult, RunState, runState, Sweep} from './sweep_dir.js';

/** The child's script beside this module: .js when built, .ts under tsx. */
function childScript(): string {
  const here = fileURLToPath(import.meta.url);
  return here.replace(/runner\.(ts|js)$/, 'run_child.$1');
}

export interface RunOutcome {
  name: string;
  ok: boolean;
  result?: RunResult;
  /** Why it failed: the child's error, or how it ended (exit code, signal). */
  error?: string;
}

export interface ChildRunOptions extends ChildOptions {
  /** After each epoch. */
  onEpoch?: (epoch: number, epochs: number) => void;
  /** Aborting kills the child (SIGTERM); the run stays resumable from its last checkpoint. */
  signal?: AbortSignal;
}

/** Trains one run of the sweep in a child process, its output appended to logs/<run>.log. */
export function runInChild(sweep: Sweep, name: string, options: ChildRunOptions = {}): Promise<RunOutcome> {
  const {onEpoch, signal, ...childOptions} = options;
  const log = openSync(logPathOf(sweep, name), 'a');
  return new Promise(resolveRun => {
    let last: ChildMessage | undefined;
    const child = fork(childScript(), [sweep.dir, name, JSON.stringify(childOptions)],
                       {stdio: ['ignore', log, log, 'ipc'], signal, killSignal: 'SIGTERM'});
    child.on('message', (m: ChildMessage) => {
      if (m.kind === 'epoch') onEpoch?.(m.epoch, m.epochs);
      else last = m;
    });
    child.on('error', () => {
      // Reported with the exit below (an abort also ends in 'exit').
    });
    child.on('exit', (code, sig) => {
      closeSync(log);
      if (code === 0 && last?.kind === 'done') resolveRun({name, ok: true, result: last.result});
      else if (last?.kind === 'failed') resolveRun({name, ok: false, error: last.error});
      else resolveRun({name, ok: false, error: sig !== null ? `killed by ${sig}` : `exited with code ${code}`});
    });
  });
}

export interface LocalSweepOptions extends ChildOptions {
  /** Runs at a time. Default 1. */
  jobs?: number;
  /** Each run as it starts, each epoch, and each run as it ends. */
  onStart?: (name: string) => void;
  onEpoch?: (name: string, epoch: number, epochs: number) => void;
  onEnd?: (outcome: RunOutcome) => void;
  signal?: AbortSignal;
}

export interface LocalSweepResult {
  /** Runs already finished (before this call, or by another sweep during it). */
  skipped: string[];
  /** Runs another live process was running. */
  busy: string[];
  outcomes: RunOutcome[];
}

/**
 * Runs every unfinished run of the sweep (fresh, or resumed from its
 * checkpoint), `jobs` at a time; a failed run is reported and the others go on.
 */
export async function runLocalSweep(sweep: Sweep, options: LocalSweepOptions = {}): Promise<LocalSweepResult> {
  const jobs = options.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`jobs must be an integer >= 1, got ${jobs}`);
  await prepareSweepDir(sweep);
  const states = sweep.runs.map(r => ({name: r.name, state: runState(sweep, r.name).state as RunState}));
  const todo = states.filter(s => s.state === 'pending' || s.state === 'failed').map(s => s.name);
  const skipped = states.filter(s => s.state === 'done').map(s => s.name);
  const busy = states.filter(s => s.state === 'running').map(s => s.name);
  const outcomes: RunOutcome[] = [];
  const lane = async () => {
    for (let name = todo.shift(); name !== undefined && !options.signal?.aborted; name = todo.shift()) {
      // Another sweep over this directory may have taken or finished the run since the list was made.
      const release = claimRun(sweep, name);
      if (release === undefined) {
        busy.push(name);
        continue;
      }
      try {
        if (runState(sweep, name).state === 'done') {
          skipped.push(name);
          continue;
        }
        options.onStart?.(name);
        const outcome = await runInChild(sweep, name, {
          backend: options.backend, threads: options.threads, signal: options.signal,
          onEpoch: (epoch, epochs) => options.onEpoch?.(name!, epoch, epochs),
        });
        outcomes.push(outcome);
        options.onEnd?.(outcome);
      } finally {
        release();
      }
    }
  };
  await Promise.all(Array.from({length: Math.min(jobs, todo.length)}, lane));
  return {skipped, busy, outcomes};
}
