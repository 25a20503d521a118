/**
 * `convnorm sweep` and `convnorm worker`: parse, call the sweep library, print.
 */
import {relative, resolve} from 'node:path';

import {checkParentDirectory, writeAtomic} from '../io/file_system.js';
import type {BackendName} from '../node/backend.js';
import {formatTable} from '../report/table.js';
import {runLocalSweep} from '../sweep/runner.js';
import {formatMeanStd, MeanStd} from '../report/group.js';
import {CellComparison, compareCells, parseReference} from '../sweep/compare.js';
import {runTime, summarize, SweepSummary} from '../sweep/results.js';
import {checkSweepDir, loadSweep, runState, Sweep} from '../sweep/sweep_dir.js';
import {slurmScript} from '../sweep/slurm.js';
import {duration} from '../training/trainer.js';

export interface SweepCommandOptions {
  sweepDir?: string;
  dataRoot?: string;
  jobs: number;
  queue?: string;
  wait: boolean;
  status: boolean;
  summary: boolean;
  json?: string;
  markdown?: string;
  /** With summary: `axis=value`, the cells to compare every other cell against. */
  versus?: string;
  printSlurm: boolean;
  runIndex?: number;
  backend?: BackendName;
  threads?: number;
}

function percent(s: MeanStd | null | undefined): string {
  if (s === null || s === undefined) return '-';
  return formatMeanStd({mean: 100 * s.mean, std: s.std === null ? null : 100 * s.std, values: []});
}

/** BullMQ and its Redis client load only for the commands that use a queue. */
const queueModule = () => import('../sweep/queue.js');

/** The summary's header and rows: one row per cell. */
function summaryRows(summary: SweepSummary): {headers: string[]; rows: string[][]} {
  const keys = [...new Set(summary.cells.flatMap(c => Object.keys(c.settings)))];
  const validation = summary.cells.some(c => c.testTop1AtBestValidation !== undefined);
  const headers = [...keys, 'runs', 'test top-1 %', ...(validation ? ['best val top-1 %', 'test top-1 % at best val'] : [])];
  const rows = summary.cells.map(c => [
    ...keys.map(k => String(c.settings[k] ?? '')),
    c.unfinished > 0 ? `${c.runs} (+${c.unfinished} unfinished)` : String(c.runs),
    percent(c.testTop1), ...(validation ? [percent(c.bestValidationTop1), percent(c.testTop1AtBestValidation)] : []),
  ]);
  return {headers, rows};
}

/** The summary as a text table. */
export function formatSummary(summary: SweepSummary): string {
  const {headers, rows} = summaryRows(summary);
  return formatTable(headers, rows);
}

/** The summary as a GitHub markdown table. */
export function summaryMarkdown(summary: SweepSummary): string {
  const {headers, rows} = summaryRows(summary);
  const line = (cells: string[]) => `| ${cells.map(c => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}

/** The comparisons as a text table: the reference's lead over each other cell. */
export function formatComparisons(comparisons: CellComparison[], reference: string): string {
  const keys = [...new Set(comparisons.flatMap(c => Object.keys(c.shared)))];
  const stat = (top1: MeanStd) => `${percent(top1)} (${top1.values.length})`;
  const rows = comparisons.map(c => [
    ...keys.map(k => String(c.shared[k] ?? '')),
    Object.entries(c.other).map(([k, v]) => `${k}=${v}`).join(', '),
    stat(c.referenceTop1), stat(c.otherTop1),
    `${c.difference >= 0 ? '+' : ''}${(100 * c.difference).toFixed(2)}`,
    c.standardErrors === null ? '-' : `${c.standardErrors >= 0 ? '+' : ''}${c.standardErrors.toFixed(2)}`,
    c.verdict,
  ]);
  return formatTable([...keys, 'other', `${reference} % (runs)`, 'other % (runs)', 'difference (points)',
                      'standard errors', `${reference}`], rows);
}

async function printStatus(sweep: Sweep, queueUrl: string | undefined): Promise<void> {
  let rows: string[][];
  if (queueUrl !== undefined) {
    const {parseQueueUrl, queueStatus} = await queueModule();
    const states = await queueStatus(sweep, parseQueueUrl(queueUrl));
    rows = states.map(s => [s.name, s.state,
                            s.state === 'running' && s.epoch !== undefined ? `epoch ${s.epoch}/${s.epochs}` : s.error ?? '']);
  } else {
    rows = sweep.runs.map(r => {
      const {state, status} = runState(sweep, r.name);
      const detail = status?.state === 'running' && state === 'running'
        ? `epoch ${status.epoch}/${status.epochs} on ${status.host} (pid ${status.pid})`
        : status?.state === 'failed' ? status.error
        : status?.state === 'done' ? `test top-1 ${(100 * status.result.testTop1).toFixed(2)} %`
        : status?.state === 'running' ? `interrupted at epoch ${status.epoch}/${status.epochs}: resumes from its checkpoint` : '';
      return [r.name, state, detail];
    });
  }
  console.log(formatTable(['run', 'state', ''], rows));
  const count = (state: string) => rows.filter(r => r[1] === state).length;
  console.log(`\n${rows.length} runs: ${count('done')} done, ${count('running')} running, ` +
              `${count('pending') + count('unqueued')} pending, ${count('failed')} failed`);
  const time = runTime(sweep);
  if (time.timed > 0) {
    console.log(`run time of the ${time.timed} finished runs that record it: ${duration(time.seconds)}, summed` +
                (time.untimed > 0 ? ` (${time.untimed} finished earlier without it)` : ''));
  }
}


export async function sweepCommand(gridFile: string, o: SweepCommandOptions): Promise<void> {
  const modes = [o.status, o.summary, o.printSlurm, o.runIndex !== undefined].filter(Boolean).length;
  if (modes > 1) throw new Error('--status, --summary, --print-slurm and --run-index exclude each other');
  if ((o.json !== undefined || o.markdown !== undefined || o.versus !== undefined) && !o.summary) {
    throw new Error('--json, --markdown and --versus go with --summary');
  }
  const reference = o.versus === undefined ? undefined : parseReference(o.versus);
  if (o.wait && o.queue === undefined) throw new Error('--wait goes with --queue');
  if (o.queue !== undefined && (o.runIndex !== undefined || o.printSlurm)) {
    throw new Error('--queue does not go with --run-index or --print-slurm');
  }
  const sweep = loadSweep(gridFile, {sweepDir: o.sweepDir, dataRoot: o.dataRoot});
  checkSweepDir(sweep);
  if (o.status) return printStatus(sweep, o.queue);
  if (o.summary) {
    for (const file of [o.json, o.markdown]) if (file !== undefined) await checkParentDirectory(file);
    const summary = summarize(sweep);
    const comparisons = reference === undefined ? undefined : compareCells(summary, reference);
    console.log(formatSummary(summary));
    if (comparisons !== undefined) {
      console.log(`\n${o.versus} against each other cell (mean test top-1; standard errors of the difference, ` +
                  'sqrt(s1²/n1 + s2²/n2); ahead or behind beyond 2 of them):\n' + formatComparisons(comparisons, o.versus!));
    }
    if (o.json !== undefined) await writeAtomic(o.json, JSON.stringify(summary, null, 2) + '\n');
    if (o.markdown !== undefined) await writeAtomic(o.markdown, summaryMarkdown(summary));
    for (const file of [o.json, o.markdown]) if (file !== undefined) console.log(`\nSummary written to ${file}`);
    return;
  }
  if (o.printSlurm) {
    process.stdout.write(slurmScript(sweep, {gridFile: resolve(gridFile), workingDirectory: process.cwd(),
                                            dataRoot: o.dataRoot === undefined ? undefined : resolve(o.dataRoot),
                                            threads: o.threads}));
    return;
  }
  const shown = relative(process.cwd(), sweep.dir) || '.';
  if (o.queue !== undefined) {
    const {enqueueSweep, parseQueueUrl, waitForSweep} = await queueModule();
    const address = parseQueueUrl(o.queue);
    const r = await enqueueSweep(sweep, address);
    console.log(`${sweep.runs.length} runs in ${shown}: ${r.added.length} queued, ${r.retried.length} failed ones ` +
                `queued again, ${r.queued.length} already on the queue, ${r.skipped.length} finished (queue ${address.url})`);
    if (!o.wait) return;
    const outcomes = await waitForSweep(sweep, address, out => {
      console.error(out.ok ? `done: ${out.name}` : `failed: ${out.name}: ${out.error}`);
    });
    const failed = outcomes.filter(x => !x.ok);
    console.log(`${outcomes.length - failed.length} of ${outcomes.length} runs finished` +
                (failed.length > 0 ? `; failed: ${failed.map(f => f.name).join(', ')}` : ''));
    if (failed.length > 0) process.exitCode = 1;
    return;
  }
  if (o.runIndex !== undefined) {
    if (!Number.isInteger(o.runIndex) || o.runIndex < 0 || o.runIndex >= sweep.runs.length) {
      throw new Error(`--run-index must be in 0..${sweep.runs.length - 1}, got ${o.runIndex}`);
    }
    sweep.runs = [sweep.runs[o.runIndex]];
  }
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const r = await runLocalSweep(sweep, {
    jobs: o.jobs, backend: o.backend, threads: o.threads, signal: controller.signal,
    onStart: name => console.error(`start: ${name}`),
    onEpoch: (name, epoch, epochs) => console.error(`${name}: epoch ${epoch}/${epochs}`),
    onEnd: out => console.error(out.ok ? `done: ${out.name}, test top-1 ${(100 * out.result!.testTop1).toFixed(2)} %`
                                       : `failed: ${out.name}: ${out.error} (log: ${shown}/logs/${out.name}.log)`),
  });
  const failed = r.outcomes.filter(x => !x.ok);
  console.log(`${sweep.runs.length} runs in ${shown}: ${r.outcomes.length - failed.length} trained, ` +
              `${r.skipped.length} already finished, ${r.busy.length} running elsewhere, ${failed.length} failed` +
              (failed.length > 0 ? ` (${failed.map(f => f.name).join(', ')})` : ''));
  if (failed.length > 0 || controller.signal.aborted) process.exitCode = 1;
}

export interface WorkerCommandOptions {
  queue: string;
  concurrency: number;
  lockDuration: number;
  backend?: BackendName;
  threads?: number;
}

export async function workerCommand(o: WorkerCommandOptions): Promise<void> {
  const {parseQueueUrl, startWorker} = await queueModule();
  const address = parseQueueUrl(o.queue);
  await startWorker(address, {
    concurrency: o.concurrency, lockDuration: o.lockDuration, backend: o.backend, threads: o.threads,
    onStart: job => console.error(`start: ${job.run} (${job.sweepDir})`),
    onEnd: (job, out) => console.error(out.ok ? `done: ${job.run}` : `failed: ${job.run}: ${out.error}`),
    onStalled: id => console.error(`stalled job ${id} taken back from a worker that stopped`),
  });
  console.error(`convnorm worker on ${address.url} (queue ${address.name}), ${o.concurrency} run(s) at a time`);
  // Stopping a worker is like losing it: its runs' jobs stall and go to another worker, which resumes them.
  const stop = () => process.exit(130);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await new Promise(() => {
    // Runs until stopped.
  });
}
