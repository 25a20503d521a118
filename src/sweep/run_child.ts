/**
 * The process that trains one run of a sweep: `node run_child.js <sweep-dir>
 * <run-name> <options JSON>`, forked by a local sweep or by a queue worker.
 * The run's settings come from the sweep directory's own sweep.json, so every
 * machine trains the same run. It resumes from the run's checkpoint when
 * there is one, records its state in status/<run>.json and tells its parent
 * about each epoch over the IPC channel. When the parent dies (a worker
 * killed), the channel closes and this process stops at the next batch: the
 * run's last checkpoint is where the next worker takes it up.
 */
import {existsSync} from 'node:fs';
import {hostname} from 'node:os';

import {runExperiment} from '../cli/experiment.js';
import {BackendName, useBackend} from '../node/backend.js';
import {TrainError} from '../training/checkpoint.js';
import type {EpochRecord} from '../training/trainer.js';
import {runResult} from './results.js';
import {openSweepDir, RunResult, runDirOf, writeStatus} from './sweep_dir.js';

export interface ChildOptions {
  backend?: BackendName;
  threads?: number;
}

/** Messages to the parent. */
export type ChildMessage =
  | {kind: 'epoch'; epoch: number; epochs: number}
  | {kind: 'done'; result: RunResult}
  | {kind: 'failed'; error: string};

function send(message: ChildMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const [dir, name, optionsJson] = process.argv.slice(2);
  // The parent gone: stop now; the checkpoint of the last finished epoch stays.
  process.on('disconnect', () => process.exit(3));
  const sweep = openSweepDir(dir);
  const run = sweep.runs.find(r => r.name === name);
  if (run === undefined) throw new Error(`${dir}/sweep.json has no run named ${name}`);
  const options = JSON.parse(optionsJson ?? '{}') as ChildOptions;
  const runDir = runDirOf(sweep, run);
  const who = {host: hostname(), pid: process.pid};
  await writeStatus(sweep, name, {state: 'running', ...who, epoch: 0, epochs: run.config.epochs});
  try {
    await useBackend(options.backend, {wasmThreads: options.threads});
    const onEpoch = async (record: EpochRecord) => {
      await writeStatus(sweep, name, {state: 'running', ...who, epoch: record.epoch, epochs: run.config.epochs});
      send({kind: 'epoch', epoch: record.epoch, epochs: run.config.epochs});
    };
    const start = (resume: boolean, overwrite: boolean) =>
      runExperiment({...run.config, runDir, resume, overwrite}, {progress: 'lines', onEpoch});
    let result;
    try {
      result = await start(existsSync(runDir), false);
    } catch (e) {
      // Stopped before its first checkpoint: the directory is this sweep's, so it starts over.
      if (!(e instanceof TrainError && e.code === 'NO_CHECKPOINT')) throw e;
      result = await start(false, true);
    }
    result.model.dispose();
    const summary = runResult(runDir, run.config.validation);
    await writeStatus(sweep, name, {state: 'done', ...who, result: summary});
    send({kind: 'done', result: summary});
  } catch (e) {
    const error = (e as Error).message;
    await writeStatus(sweep, name, {state: 'failed', ...who, error});
    send({kind: 'failed', error});
    throw e;
  }
}

main().then(() => process.exit(0), (e: Error) => {
  console.error(`run failed: ${e.stack ?? e.message}`);
  process.exit(1);
});
