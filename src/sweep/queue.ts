/**
 * A sweep on a BullMQ queue (Redis): the sweep enqueues one job per unfinished
 * run; `convnorm worker` processes on any number of machines take them, each
 * run in a child process (runner.ts). The run directories live on a path
 * every worker sees. A worker that dies mid-run stops renewing its job's
 * lock; BullMQ's stalled-job check hands the job to another worker, which
 * resumes the run from its last checkpoint.
 */
import {createHash} from 'node:crypto';

import {Job, Queue, QueueEvents, Worker} from 'bullmq';
import {Redis} from 'ioredis';

import type {ChildOptions} from './run_child.js';
import {runInChild} from './runner.js';
import {openSweepDir, prepareSweepDir, RunResult, runState, Sweep} from './sweep_dir.js';

export interface QueueAddress {
  /** As given, without a password. */
  url: string;
  host: string;
  port: number;
  /** The BullMQ queue: the URL's path, default `convnorm`. */
  name: string;
  username?: string;
  password?: string;
}

const DEFAULT_QUEUE = 'convnorm';
const DEFAULT_PORT = 6379;

/** redis://[user:password@]host[:port][/queue-name]. */
export function parseQueueUrl(url: string): QueueAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`'${url}' is not a queue URL: redis://host:port[/name]`);
  }
  if (u.protocol !== 'redis:') throw new Error(`'${url}' is not a queue URL: redis://host:port[/name] (got ${u.protocol})`);
  if (u.hostname === '') throw new Error(`the queue URL '${url}' names no host`);
  const name = decodeURIComponent(u.pathname.replace(/^\/+|\/+$/g, '')) || DEFAULT_QUEUE;
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`the queue name '${name}' in '${url}' may hold letters, digits and . _ - only`);
  const port = u.port === '' ? DEFAULT_PORT : Number(u.port);
  const shown = new URL(url);
  shown.password = '';
  return {url: shown.toString(), host: u.hostname.replace(/^\[|\]$/g, ''), port, name,
          username: u.username === '' ? undefined : decodeURIComponent(u.username),
          password: u.password === '' ? undefined : decodeURIComponent(u.password)};
}

function connection(a: QueueAddress) {
  // BullMQ's workers block on Redis: no limit on a request's retries (BullMQ's own advice).
  return {host: a.host, port: a.port, username: a.username, password: a.password, maxRetriesPerRequest: null};
}

/** Throws, naming the URL and the reason, unless Redis answers at the address within `timeoutMs`. */
export async function checkQueue(a: QueueAddress, timeoutMs = 3000): Promise<void> {
  const redis = new Redis({...connection(a), lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0,
                           retryStrategy: () => null, enableOfflineQueue: false});
  // The socket's error (ECONNREFUSED, ENOTFOUND) says more than connect()'s "Connection is closed".
  let cause: Error | undefined;
  redis.on('error', (e: Error) => (cause ??= e));
  try {
    await redis.connect();
    await redis.ping();
  } catch (e) {
    throw new Error(`the queue ${a.url} does not answer: ${(cause ?? (e as Error)).message}`);
  } finally {
    redis.disconnect();
  }
}

/** What a job carries: where the sweep is and which run; the settings are read from the sweep directory. */
export interface RunJob {
  sweepDir: string;
  run: string;
}

/** One job per run and sweep directory, so that enqueueing again adds nothing twice. */
export function jobId(sweep: Sweep, name: string): string {
  return `run-${createHash('sha256').update(`${sweep.dir}\n${name}`).digest('hex').slice(0, 32)}`;
}

export interface EnqueueResult {
  /** New jobs. */
  added: string[];
  /** Failed jobs put back in the queue. */
  retried: string[];
  /** Jobs already waiting or running. */
  queued: string[];
  /** Runs already finished. */
  skipped: string[];
}

/** Records the grid in the sweep directory and puts every unfinished run on the queue. */
export async function enqueueSweep(sweep: Sweep, a: QueueAddress): Promise<EnqueueResult> {
  await checkQueue(a);
  await prepareSweepDir(sweep);
  const queue = new Queue<RunJob>(a.name, {connection: connection(a)});
  const result: EnqueueResult = {added: [], retried: [], queued: [], skipped: []};
  try {
    for (const run of sweep.runs) {
      if (runState(sweep, run.name).state === 'done') {
        result.skipped.push(run.name);
        continue;
      }
      const id = jobId(sweep, run.name);
      const existing = await queue.getJob(id);
      const state = existing === undefined ? undefined : await existing.getState();
      if (existing !== undefined && state === 'failed') {
        await existing.retry('failed');
        result.retried.push(run.name);
      } else if (existing !== undefined && state !== 'completed' && state !== 'unknown') {
        result.queued.push(run.name);
      } else {
        // A completed job whose run is not done (its directory deleted): run it again.
        if (existing !== undefined) await existing.remove();
        await queue.add(run.name, {sweepDir: sweep.dir, run: run.name},
                        {jobId: id, attempts: 1, removeOnComplete: false, removeOnFail: false});
        result.added.push(run.name);
      }
    }
  } finally {
    await queue.close();
  }
  return result;
}

export interface QueuedRunState {
  name: string;
  /** done / running / pending (waiting in the queue) / failed, or unqueued (not on the queue). */
  state: 'done' | 'running' | 'pending' | 'failed' | 'unqueued';
  /** Epoch reached (running), or the job's failure. */
  epoch?: number;
  epochs?: number;
  error?: string;
}

/** Each run's state by its job on the queue (a finished run by its own directory). */
export async function queueStatus(sweep: Sweep, a: QueueAddress): Promise<QueuedRunState[]> {
  await checkQueue(a);
  const queue = new Queue<RunJob>(a.name, {connection: connection(a)});
  try {
    const states: QueuedRunState[] = [];
    for (const run of sweep.runs) {
      if (runState(sweep, run.name).state === 'done') {
        states.push({name: run.name, state: 'done'});
        continue;
      }
      const job = await queue.getJob(jobId(sweep, run.name));
      const s = job === undefined ? 'unknown' : await job.getState();
      const progress = job?.progress as {epoch?: number; epochs?: number} | undefined;
      if (s === 'active') states.push({name: run.name, state: 'running', epoch: progress?.epoch, epochs: progress?.epochs});
      else if (s === 'failed') states.push({name: run.name, state: 'failed', error: job!.failedReason});
      else if (s === 'completed') states.push({name: run.name, state: 'done'});
      else if (s === 'unknown') states.push({name: run.name, state: 'unqueued'});
      else states.push({name: run.name, state: 'pending'});
    }
    return states;
  } finally {
    await queue.close();
  }
}

export interface WaitOutcome {
  name: string;
  ok: boolean;
  error?: string;
}

/** Resolves when every run's job has completed or failed (BullMQ's own job events). */
export async function waitForSweep(sweep: Sweep, a: QueueAddress,
                                   onEnd?: (outcome: WaitOutcome) => void): Promise<WaitOutcome[]> {
  const queue = new Queue<RunJob>(a.name, {connection: connection(a)});
  const events = new QueueEvents(a.name, {connection: connection(a)});
  try {
    await events.waitUntilReady();
    const waits = sweep.runs.map(async (run): Promise<WaitOutcome> => {
      const job = await queue.getJob(jobId(sweep, run.name));
      let outcome: WaitOutcome;
      if (job === undefined) {
        outcome = runState(sweep, run.name).state === 'done' ? {name: run.name, ok: true}
          : {name: run.name, ok: false, error: 'not on the queue'};
      } else {
        try {
          await job.waitUntilFinished(events);
          outcome = {name: run.name, ok: true};
        } catch (e) {
          outcome = {name: run.name, ok: false, error: (e as Error).message};
        }
      }
      onEnd?.(outcome);
      return outcome;
    });
    return await Promise.all(waits);
  } finally {
    await events.close();
    await queue.close();
  }
}

export interface WorkerOptions extends ChildOptions {
  /** Runs at a time on this worker. Default 1. */
  concurrency?: number;
  /**
   * Milliseconds a job's lock lasts without renewal: how long a dead worker's
   * run waits before another worker takes it. BullMQ's default, 30 s.
   */
  lockDuration?: number;
  onStart?: (job: RunJob) => void;
  onEnd?: (job: RunJob, outcome: {ok: boolean; error?: string; result?: RunResult}) => void;
  onStalled?: (jobId: string) => void;
}

/** A worker that trains the queue's runs until it is closed. */
export async function startWorker(a: QueueAddress, options: WorkerOptions = {}): Promise<{close: () => Promise<void>}> {
  await checkQueue(a);
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be an integer >= 1, got ${concurrency}`);
  const lockDuration = options.lockDuration ?? 30000;
  if (!Number.isInteger(lockDuration) || lockDuration < 1000) {
    throw new Error(`the lock duration must be an integer of at least 1000 ms, got ${lockDuration}`);
  }
  const worker = new Worker<RunJob, RunResult>(a.name, async (job: Job<RunJob>) => {
    options.onStart?.(job.data);
    const sweep = openSweepDir(job.data.sweepDir);
    const outcome = await runInChild(sweep, job.data.run, {
      backend: options.backend, threads: options.threads,
      onEpoch: (epoch, epochs) => void job.updateProgress({epoch, epochs}),
    });
    options.onEnd?.(job.data, outcome);
    if (!outcome.ok) throw new Error(outcome.error);
    return outcome.result!;
  }, {connection: connection(a), concurrency, lockDuration, stalledInterval: lockDuration,
      // Each death of a worker stalls its jobs once; a run survives a few.
      maxStalledCount: 5});
  worker.on('stalled', id => options.onStalled?.(id));
  worker.on('error', () => {
    // Connection trouble: ioredis reconnects; jobs it cost stall and are handed on.
  });
  await worker.waitUntilReady();
  return {close: () => worker.close()};
}
