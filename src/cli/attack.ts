/**
 * `convnorm attack <run-dir>`: clean and robust top-1 of a run's checkpoint
 * under FGSM, PGD and APGD-CE + APGD-T at each eps, printed as a table,
 * stored in the run's attacks.json (keyed by the settings) and, with --json,
 * written to a file of its own.
 */
import type {ResultEntry} from '../io/results.js';
import {formatTable} from '../report/table.js';
import {ATTACK_NAMES, AttackEvaluation, AttackName, AttackRow, AttackSetting, evaluateAttacks,
        resolveAttackSetting, ResolvedAttackSetting} from '../robustness/attack_eval.js';
import {progressReporter} from './progress.js';
import {startRunCommand} from './run_model.js';

export const ATTACKS_FILE = 'attacks.json';

export interface AttackCommandOptions {
  /** Comma-separated attack names. */
  attack: string;
  /** Comma-separated eps values in 1/255. */
  eps: string;
  step?: number;
  steps: number;
  restarts: number;
  limit?: number;
  seed: number;
  batchSize: number;
  json?: string;
  dataset?: string;
  dataRoot?: string;
}

/** How an attack result is keyed in attacks.json: everything that determines it. */
export interface AttackEntrySettings extends ResolvedAttackSetting {
  images: number;
  seed: number;
  /** The checkpoint's epoch: a run trained further is another model. */
  epoch: number;
}

export interface AttackEntryResult {
  label: string;
  top1: number;
  cleanTop1: number;
}

function list(text: string, what: string): string[] {
  const items = text.split(',').map(s => s.trim()).filter(s => s !== '');
  if (items.length === 0) throw new Error(`${what} lists nothing`);
  return items;
}

/** The settings the options ask for: every attack at every eps, checked before anything runs. */
export function attackSettings(options: Pick<AttackCommandOptions, 'attack' | 'eps' | 'step' | 'steps' | 'restarts'>):
    AttackSetting[] {
  const attacks = list(options.attack, '--attack').map(a => {
    if (!(ATTACK_NAMES as readonly string[]).includes(a)) {
      throw new Error(`unknown attack '${a}'; choose from ${ATTACK_NAMES.join(', ')}`);
    }
    return a as AttackName;
  });
  const epsValues = list(options.eps, '--eps').map(e => {
    const v = Number(e);
    if (!Number.isFinite(v)) throw new Error(`--eps takes numbers (units of 1/255), got '${e}'`);
    return v;
  });
  const settings = attacks.flatMap(attack => epsValues.map(eps => ({
    attack, eps, step: options.step, steps: options.steps, restarts: options.restarts,
  })));
  for (const s of settings) resolveAttackSetting(s);
  return settings;
}

export function formatAttackTable(evaluation: AttackEvaluation): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
  return formatTable(['attack', 'eps', 'step', 'steps', 'restarts', 'top-1'], [
    ['clean', '0', '-', '-', '-', pct(evaluation.cleanTop1)],
    ...evaluation.results.map((r: AttackRow) => [r.label, `${r.eps}/255`, r.step === null ? 'adaptive' : `${r.step}/255`,
                                                 String(r.steps), String(r.restarts), pct(r.top1)]),
  ]);
}

/**
 * Runs the command: every option is checked, and the run's attacks.json read,
 * before `startEngine` starts the backend and before any work, so bad input
 * writes nothing.
 */
export async function attackCommand(runDir: string, options: AttackCommandOptions,
                                    startEngine: () => Promise<string>): Promise<void> {
  const settings = attackSettings(options);
  if (options.limit !== undefined && !(Number.isInteger(options.limit) && options.limit >= 1)) {
    throw new Error(`--limit must be a positive integer, got ${options.limit}`);
  }
  const {run, engine, test, finish} = await startRunCommand(runDir, {
    store: {file: ATTACKS_FILE, kind: 'attacks'}, json: options.json, dataset: options.dataset,
    dataRoot: options.dataRoot, testSet: true}, startEngine);
  try {
    const images = Math.min(options.limit ?? Infinity, test!.labels.length);
    console.error(`${runDir} (epoch ${run.state.epoch}, ${run.spec.architecture} ${run.spec.norm}) on ${run.dataset} ` +
                  `test, ${images} images, backend ${engine}; inference mode, attacks in pixel space [0, 1]`);
    const progress = progressReporter('attack');
    let evaluation: AttackEvaluation;
    try {
      evaluation = await evaluateAttacks({model: run.model, normalization: run.normalization}, test!, {
        settings, limit: options.limit, batchSize: options.batchSize, seed: options.seed,
        onProgress: (done, total, label) => progress.update(done, total, label),
      });
    } finally {
      progress.stop();
    }
    console.log(formatAttackTable(evaluation));
    const savedAt = new Date().toISOString();
    const entries: ResultEntry<AttackEntrySettings, AttackEntryResult>[] = evaluation.results.map(r => {
      const {label, top1, ...setting} = r;
      return {settings: {...setting, images: evaluation.images, seed: options.seed, epoch: run.state.epoch},
              result: {label, top1, cleanTop1: evaluation.cleanTop1}, savedAt};
    });
    console.log(`\n${await finish(entries, {run: runDir, epoch: run.state.epoch, seed: options.seed,
                                            cleanTop1: evaluation.cleanTop1, images: evaluation.images,
                                            results: evaluation.results})}`);
  } finally {
    run.model.dispose();
  }
}
