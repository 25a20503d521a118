/**
 * Top-1 accuracy under the common corruptions (Hendrycks & Dietterich 2019),
 * the CIFAR-10-C protocol on any test set: each (corruption, severity) is
 * generated from the clean test set on the fly (src/robustness/corruptions)
 * and evaluated in inference mode; the summary is the mean over every row
 * evaluated, as the corruption accuracy CIFAR-10-C papers report.
 */
import * as tfl from '@tensorflow/tfjs-layers';

import {Normalization} from '../data/batches.js';
import {ImageDataset} from '../data/dataset.js';
import {evaluate} from '../training/metrics.js';
import {
  checkCorruptionName, checkSeverity, CORRUPTION_NAMES, CorruptionName, corruptDataset, corruptionSeed,
  inapplicableReason,
} from './corruptions/index.js';

export interface CorruptionEvalOptions {
  /**
   * Corruptions to evaluate, CIFAR-10-C names (CORRUPTION_NAMES); 'all' stands
   * for every one of them. Repeats are evaluated once. A corruption that does
   * not apply to the test set's channels (saturate on grey images) is skipped
   * and listed in the result's `skipped`, whether named or implied by 'all'.
   */
  names: string[];
  /** Severities to evaluate, integers in 1-5 (repeats evaluated once). */
  severities: number[];
  /** Seed of the random corruptions; each (name, severity) derives its own stream from it. */
  seed: number;
  /** Input normalization, as in training (passed to evaluate). */
  normalization?: Normalization;
  /** Images per forward pass (evaluate's default, 256, when absent). */
  batchSize?: number;
  /**
   * Called after the clean pass and after each (corruption, severity) with the
   * passes done, the passes in all (1 + rows) and a label: 'clean' or
   * '<name>-<severity>'.
   */
  onProgress?: (done: number, total: number, label: string) => void;
}

export interface CorruptionEvalRow {
  /** The corruption's CIFAR-10-C name. */
  name: string;
  /** Its severity, 1-5. */
  severity: number;
  /** Top-1 accuracy on the corrupted test set, a fraction in [0, 1]. */
  top1: number;
}

export interface CorruptionMean {
  /** The corruption's CIFAR-10-C name. */
  name: string;
  /** Mean top-1 over the severities evaluated. */
  mean: number;
}

export interface SkippedCorruption {
  /** The corruption's CIFAR-10-C name. */
  name: string;
  /** Why it does not apply to the test set (e.g. saturate on grey images). */
  reason: string;
}

export interface CorruptionEvalResult {
  /** Top-1 accuracy on the clean test set. */
  cleanTop1: number;
  /** Images in the test set (each row evaluates that many). */
  images: number;
  /** One row per (corruption, severity) evaluated, corruptions in the order asked, severities within. */
  corruptions: CorruptionEvalRow[];
  /** Mean top-1 over every row; NaN when no row was evaluated. */
  mean: number;
  /** Per corruption evaluated, the mean top-1 over its severities. */
  perCorruption: CorruptionMean[];
  /** Corruptions asked for that do not apply to the test set, with why. */
  skipped: SkippedCorruption[];
}

/**
 * Evaluates `model` on `testSet` clean and under each requested corruption
 * and severity, one corrupted copy of the test set in memory at a time.
 * Options are validated before any evaluation. The corrupted images of
 * (name, severity) come from corruptionSeed(seed, name, severity), so they do
 * not depend on which other corruptions run. Inference mode throughout; no
 * tensor outlives the call.
 */
export async function evaluateCorruptions(
  model: tfl.LayersModel, testSet: ImageDataset, options: CorruptionEvalOptions,
): Promise<CorruptionEvalResult> {
  if (!Array.isArray(options.names) || options.names.length === 0) {
    throw new Error(`evaluateCorruptions: names must list at least one corruption or 'all'; known: ${CORRUPTION_NAMES.join(', ')}`);
  }
  if (!Array.isArray(options.severities) || options.severities.length === 0) {
    throw new Error('evaluateCorruptions: severities must list at least one severity in 1-5');
  }
  if (!Number.isFinite(options.seed)) throw new Error(`evaluateCorruptions: seed must be a finite number, got ${options.seed}`);
  const requested: CorruptionName[] = [];
  for (const n of options.names) {
    const expanded = n === 'all' ? [...CORRUPTION_NAMES] : [checkCorruptionName(n)];
    for (const e of expanded) if (!requested.includes(e)) requested.push(e);
  }
  const severities: number[] = [];
  for (const s of options.severities) if (!severities.includes(checkSeverity(s))) severities.push(s);
  const channels = testSet.shape[2];
  const skipped: SkippedCorruption[] = [];
  const names: CorruptionName[] = [];
  for (const n of requested) {
    const reason = inapplicableReason(n, channels);
    if (reason === null) names.push(n);
    else skipped.push({name: n, reason});
  }

  const evalOptions = {batchSize: options.batchSize, normalization: options.normalization};
  const total = 1 + names.length * severities.length;
  const clean = await evaluate(model, testSet, evalOptions);
  options.onProgress?.(1, total, 'clean');
  const rows: CorruptionEvalRow[] = [];
  for (const name of names) {
    for (const severity of severities) {
      const corrupted = corruptDataset(testSet, name, severity, corruptionSeed(options.seed, name, severity));
      const r = await evaluate(model, corrupted, evalOptions);
      rows.push({name, severity, top1: r.top1});
      options.onProgress?.(1 + rows.length, total, `${name}-${severity}`);
    }
  }
  const mean = (xs: number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
  return {
    cleanTop1: clean.top1,
    images: clean.count,
    corruptions: rows,
    mean: mean(rows.map((r) => r.top1)),
    perCorruption: names.map((name) => ({name, mean: mean(rows.filter((r) => r.name === name).map((r) => r.top1))})),
    skipped,
  };
}
