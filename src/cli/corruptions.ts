/**
 * `convnorm eval <run-dir> --corruptions ...`: top-1 of a run's checkpoint on
 * its test set under the common corruptions (the CIFAR-10-C construction),
 * per corruption and severity, with the mean per corruption and overall;
 * stored in the run's corruptions.json (keyed by the settings) and, with
 * --json, written to a file of its own.
 */
import type {ResultEntry} from '../io/results.js';
import {formatTable} from '../report/table.js';
import {CorruptionEvalResult, evaluateCorruptions} from '../robustness/corruption_eval.js';
import {checkCorruptionName} from '../robustness/corruptions/index.js';
import {progressReporter} from './progress.js';
import {startRunCommand} from './run_model.js';

export const CORRUPTIONS_FILE = 'corruptions.json';

export interface CorruptionCommandOptions {
  /** 'all' or comma-separated CIFAR-10-C names. */
  corruptions: string;
  /** '1-5', '3' or '1,3,5'. */
  severities: string;
  seed: number;
  batchSize: number;
  json?: string;
  dataset?: string;
  dataRoot?: string;
}

/** How a corruption result is keyed in corruptions.json. */
export interface CorruptionEntrySettings {
  name: string;
  severity: number;
  seed: number;
  images: number;
  epoch: number;
}

/** '1-5' | '2' | '1,3,5' -> severities, each checked to be an integer in 1-5. */
export function parseSeverities(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',').map(s => s.trim()).filter(s => s !== '')) {
    const range = /^(\d+)-(\d+)$/.exec(part);
    const [lo, hi] = range === null ? [Number(part), Number(part)] : [Number(range[1]), Number(range[2])];
    const bad = () => new Error(`--severities takes integers in 1-5 ('1-5', '3' or '1,3,5'), got '${part}'`);
    if (!(Number.isInteger(lo) && lo >= 1 && hi <= 5 && lo <= hi)) throw bad();
    for (let s = lo; s <= hi; s++) if (!out.includes(s)) out.push(s);
  }
  if (out.length === 0) throw new Error('--severities lists nothing');
  return out;
}

/** 'all' | 'gaussian_noise,fog' -> names, each checked. */
export function parseCorruptions(text: string): string[] {
  const names = text.split(',').map(s => s.trim()).filter(s => s !== '');
  if (names.length === 0) throw new Error('--corruptions lists nothing');
  for (const n of names) if (n !== 'all') checkCorruptionName(n);
  return names;
}

export function formatCorruptionTable(r: CorruptionEvalResult): string {
  const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(1)} %`);
  const severities = [...new Set(r.corruptions.map(c => c.severity))].sort((a, b) => a - b);
  const rows = r.perCorruption.map(p => [
    p.name,
    ...severities.map(s => pct(r.corruptions.find(c => c.name === p.name && c.severity === s)?.top1)),
    pct(p.mean),
  ]);
  return formatTable(['corruption', ...severities.map(s => `severity ${s}`), 'mean'], rows) +
    `\n\nclean top-1 ${pct(r.cleanTop1)}; mean over every corruption and severity ${pct(r.mean)}` +
    (r.skipped.length === 0 ? '' : `\nskipped: ${r.skipped.map(s => `${s.name} (${s.reason})`).join('; ')}`);
}

/**
 * Runs the command; options, the run's corruptions.json and the --json
 * folder are checked before `startEngine` and before any work.
 */
export async function corruptionCommand(runDir: string, options: CorruptionCommandOptions,
                                        startEngine: () => Promise<string>): Promise<void> {
  const names = parseCorruptions(options.corruptions);
  const severities = parseSeverities(options.severities);
  if (!Number.isInteger(options.seed)) throw new Error(`--seed must be an integer, got ${options.seed}`);
  const {run, engine, test, finish} = await startRunCommand(runDir, {
    store: {file: CORRUPTIONS_FILE, kind: 'corruptions'}, json: options.json, dataset: options.dataset,
    dataRoot: options.dataRoot, testSet: true}, startEngine);
  try {
    console.error(`${runDir} (epoch ${run.state.epoch}, ${run.spec.architecture} ${run.spec.norm}) on ${run.dataset} ` +
                  `test, ${test!.labels.length} images, backend ${engine}; corruptions generated with seed ${options.seed}`);
    const progress = progressReporter('corruptions');
    let result: CorruptionEvalResult;
    try {
      result = await evaluateCorruptions(run.model, test!, {
        names, severities, seed: options.seed, normalization: run.normalization, batchSize: options.batchSize,
        onProgress: (done, total, label) => progress.update(done, total, label),
      });
    } finally {
      progress.stop();
    }
    console.log(formatCorruptionTable(result));
    const savedAt = new Date().toISOString();
    const entries: ResultEntry<CorruptionEntrySettings, {top1: number; cleanTop1: number}>[] =
      result.corruptions.map(c => ({
        settings: {name: c.name, severity: c.severity, seed: options.seed, images: result.images, epoch: run.state.epoch},
        result: {top1: c.top1, cleanTop1: result.cleanTop1}, savedAt,
      }));
    console.log(`\n${await finish(entries, {run: runDir, epoch: run.state.epoch, seed: options.seed,
                                            images: result.images, cleanTop1: result.cleanTop1,
                                            corruptions: result.corruptions, perCorruption: result.perCorruption,
                                            mean: result.mean, skipped: result.skipped})}`);
  } finally {
    run.model.dispose();
  }
}
