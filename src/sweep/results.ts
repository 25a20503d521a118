/**
 * A sweep's results: each finished run's clean test top-1 (and, with a
 * validation split, the test top-1 at the epoch of the best validation
 * top-1), and per cell (the settings without the seed) the mean and sample
 * standard deviation over its seeds.
 */
import {readFileSync} from 'node:fs';
import {join} from 'node:path';

import type {EpochRecord} from '../training/trainer.js';
import {groupRuns, meanStd, MeanStd} from '../report/group.js';
import {RunResult, runState, Sweep} from './sweep_dir.js';

/** The results of a finished run, from its metrics.jsonl (and test.json with a validation split). */
export function runResult(runDir: string, validation: number): RunResult {
  const records = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n').filter(l => l.trim() !== '')
    .map(l => JSON.parse(l) as EpochRecord);
  const last = records[records.length - 1];
  if (last === undefined) throw new Error(`${runDir}/metrics.jsonl holds no epoch`);
  // A resumed run's metrics hold every epoch, each timed where it ran: their sum is the run's time.
  const seconds = records.reduce((sum, r) => sum + r.seconds, 0);
  if (validation <= 0) return {epochs: last.epoch, testTop1: last.testTop1!, seconds};
  // With a validation split the trainer's "test" is the validation set and testSet the test set.
  const test = JSON.parse(readFileSync(join(runDir, 'test.json'), 'utf8')) as {top1: number};
  let best = records[0];
  for (const r of records) if (r.testTop1! > best.testTop1!) best = r;
  return {epochs: last.epoch, testTop1: test.top1, bestValidationEpoch: best.epoch, bestValidationTop1: best.testTop1,
          testTop1AtBestValidation: best.testSetTop1, seconds};
}

export interface SummaryCell {
  /** The cell's settings: the varied ones without the seed. */
  settings: Record<string, string | number | boolean>;
  /** Finished runs (seeds) in the cell. */
  runs: number;
  /** Runs of the cell the grid holds that have not finished (pending, running or failed). */
  unfinished: number;
  /** Seeds of the finished runs, aligned with the values below. */
  seeds: number[];
  /** Clean test top-1 (a fraction) after the last epoch; null before any run has finished. */
  testTop1: MeanStd | null;
  /** With a validation split: each run's best validation top-1 (what a learning rate is chosen by). */
  bestValidationTop1?: MeanStd | null;
  /** With a validation split: the test top-1 at each run's best validation epoch. */
  testTop1AtBestValidation?: MeanStd | null;
}

export interface SweepSummary {
  cells: SummaryCell[];
}

const statOf = (values: number[]) => (values.length === 0 ? null : meanStd(values));

/** Per cell, in the grid's order, the statistics of its finished runs. */
export function summarize(sweep: Sweep): SweepSummary {
  const validation = sweep.runs.some(r => r.config.validation > 0);
  return {
    cells: groupRuns(sweep.runs, r => r.settings).map(cell => {
      const finished = cell.members.flatMap(run => {
        const {state, status} = runState(sweep, run.name);
        return state === 'done' && status?.state === 'done' ? [{seed: run.config.seed, result: status.result}] : [];
      });
      return {
        settings: cell.settings as SummaryCell['settings'], runs: finished.length,
        unfinished: cell.members.length - finished.length, seeds: finished.map(r => r.seed),
        testTop1: statOf(finished.map(r => r.result.testTop1)),
        ...(validation ? {bestValidationTop1: statOf(finished.flatMap(r => r.result.bestValidationTop1 ?? [])),
                          testTop1AtBestValidation: statOf(finished.flatMap(r => r.result.testTop1AtBestValidation ?? []))}
          : {}),
      };
    }),
  };
}

/** The summed run time of the sweep's finished runs, over those whose records hold it. */
export function runTime(sweep: Sweep): {timed: number; untimed: number; seconds: number} {
  const out = {timed: 0, untimed: 0, seconds: 0};
  for (const run of sweep.runs) {
    const {state, status} = runState(sweep, run.name);
    if (state !== 'done' || status?.state !== 'done') continue;
    if (status.result.seconds === undefined) {
      out.untimed++;
    } else {
      out.timed++;
      out.seconds += status.result.seconds;
    }
  }
  return out;
}
