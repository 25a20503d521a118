/**
 * `convnorm gan` and `convnorm gan-eval`: SNGAN on a dataset with one or
 * more discriminator normalizations on the same seed, scored on a feature
 * network (Inception-v3 for FID and IS, or a classifier `convnorm train`
 * trained, whose scores carry its name), and a checkpoint scored afterwards.
 */
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';

import {ImageDataset} from '../data/dataset.js';
import {DATASET_NAMES, DatasetName, loadDataset} from '../data/load.js';
import {Rng} from '../data/random.js';
import type {GanScores} from '../gan/evaluate.js';
import {classifierFeatures, FeatureNetwork} from '../gan/features.js';
import {loadInception} from '../gan/inception.js';
import {fileSystem, writeAtomic} from '../io/file_system.js';
import {checkDNorm, DNorm, GAN_IMAGE_SHAPES, snganDiscriminator, snganGenerator} from '../models/sngan.js';
import {formatTable} from '../report/table.js';
import {loadGanCheckpoint, readGanCheckpoint} from '../training/gan_checkpoint.js';
import {ganScorer, GanScorer, GanTrainResult, scoreDocument, trainGan} from '../training/gan_trainer.js';
import type {ProgressMode} from '../training/trainer.js';
import {openRun} from './run_model.js';

export interface GanConfig {
  dataset: DatasetName;
  dataRoot?: string;
  /** The discriminator's normalization. */
  dNorm: DNorm;
  steps: number;
  /** Discriminator width (SNGAN: 128). */
  ch: number;
  /** Generator width (SNGAN: 256). */
  gCh: number;
  zDim: number;
  batchSize: number;
  nDis: number;
  lr: number;
  beta1: number;
  beta2: number;
  lrDecay: 'none' | 'linear';
  seed: number;
  logEvery: number;
  checkpointEvery: number;
  sampleEvery: number;
  scoreEvery: number;
  /** Generated (and real) images per score. */
  samples: number;
  /** A `convnorm train` run whose classifier gives the features and logits. */
  featureRun?: string;
  /** A tfjs graph model of Inception-v3 (see gan/inception.ts). */
  inception?: string;
  /** Its nodes of the pool features and of the logits (default pool_3, softmax/logits). */
  inceptionFeatures?: string;
  inceptionLogits?: string;
  runDir?: string;
  resume: boolean;
  overwrite: boolean;
}

export const DEFAULT_GAN: GanConfig = {
  dataset: 'mnist-embedded', dNorm: 'sn', steps: 1000, ch: 128, gCh: 256, zDim: 128, batchSize: 64, nDis: 5,
  lr: 2e-4, beta1: 0, beta2: 0.9, lrDecay: 'none', seed: 0, logEvery: 10, checkpointEvery: 100, sampleEvery: 0,
  scoreEvery: 0, samples: 1000, resume: false, overwrite: false,
};

/** The settings `convnorm gan` takes from its flags: every key of GanConfig but the d-norm and the run directory, which it fans out. */
export const GAN_FLAG_KEYS = [
  ...Object.keys(DEFAULT_GAN).filter(k => k !== 'dNorm'),
  'dataRoot', 'featureRun', 'inception', 'inceptionFeatures', 'inceptionLogits',
] as (keyof GanConfig)[];

function bad(message: string): never {
  throw new Error(message);
}

function integerAtLeast(value: unknown, minimum: number, what: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) {
    bad(`${what} must be an integer >= ${minimum}, got ${JSON.stringify(value)}`);
  }
}

/** The full configuration, every setting checked. */
export function checkGanConfig(partial: Partial<GanConfig>): GanConfig {
  const c = {...DEFAULT_GAN, ...partial} as GanConfig;
  if (!(DATASET_NAMES as readonly string[]).includes(c.dataset)) {
    bad(`unknown dataset '${c.dataset}'; known: ${DATASET_NAMES.join(', ')}`);
  }
  checkDNorm(c.dNorm);
  integerAtLeast(c.steps, 1, 'steps');
  for (const key of ['ch', 'gCh', 'zDim', 'nDis', 'logEvery', 'checkpointEvery'] as const) integerAtLeast(c[key], 1, key);
  integerAtLeast(c.batchSize, 2, 'batchSize');
  integerAtLeast(c.sampleEvery, 0, 'sampleEvery');
  integerAtLeast(c.scoreEvery, 0, 'scoreEvery');
  integerAtLeast(c.samples, 2, 'samples');
  integerAtLeast(c.seed, -(2 ** 31), 'seed');
  if (!(c.lr >= 0) || !Number.isFinite(c.lr)) bad(`lr must be a finite number >= 0, got ${c.lr}`);
  for (const key of ['beta1', 'beta2'] as const) if (!(c[key] >= 0 && c[key] < 1)) bad(`${key} must be in [0, 1), got ${c[key]}`);
  if (c.lrDecay !== 'none' && c.lrDecay !== 'linear') bad(`lrDecay must be none or linear, got '${c.lrDecay}'`);
  if (c.featureRun !== undefined && c.inception !== undefined) bad('give --feature-run or --inception, not both');
  if (c.resume && c.overwrite) bad('--resume and --overwrite exclude each other');
  return c;
}

export function defaultGanRunDir(c: GanConfig): string {
  return join('runs', `gan-${c.dataset}-${c.dNorm.replace('+', '_')}-ch${c.ch}-seed${c.seed}`);
}

function imageShapeOf(ds: ImageDataset): [number, number, number] {
  if (!GAN_IMAGE_SHAPES.some(s => s.every((x, i) => x === ds.shape[i]))) {
    bad(`the SNGAN networks take 32x32x3 or 28x28x1 images; '${ds.name}' has [${ds.shape}]`);
  }
  return ds.shape;
}

export function generatorSpec(c: GanConfig, imageShape: [number, number, number]) {
  return {kind: 'sngan-generator', imageShape, ch: c.gCh, zDim: c.zDim, seed: c.seed};
}

export function discriminatorSpec(c: GanConfig, imageShape: [number, number, number]) {
  // Its own stream: the same seed gives every d-norm the same generator, and the discriminator differs from it.
  return {kind: 'sngan-discriminator', imageShape, ch: c.ch, dNorm: c.dNorm, seed: Rng.derive(c.seed, 5).getState()};
}

/**
 * The feature network the scores are taken on, checked against the data:
 * a feature run of another dataset or image size is refused.
 */
export async function openFeatureNetwork(source: Pick<GanConfig, 'featureRun' | 'inception' | 'inceptionFeatures' | 'inceptionLogits'>,
                                         dataset: DatasetName, imageShape: readonly number[]): Promise<FeatureNetwork | undefined> {
  if (source.inception !== undefined) {
    try {
      return await loadInception(fileSystem(source.inception), imageShape as [number, number, number],
                                 {features: source.inceptionFeatures, logits: source.inceptionLogits});
    } catch (e) {
      bad(`--inception ${source.inception}: ${(e as Error).message}`);
    }
  }
  if (source.featureRun === undefined) return undefined;
  const run = await openRun(source.featureRun);
  const input = run.model.inputs[0].shape.slice(1);
  try {
    if (run.dataset === undefined) bad(`the feature run ${source.featureRun} has no experiment.json naming its dataset`);
    if (run.dataset !== dataset) bad(`the feature run ${source.featureRun} was trained on '${run.dataset}', the GAN on '${dataset}'`);
    if (!input.every((x, i) => x === imageShape[i])) {
      bad(`the feature run ${source.featureRun} takes [${input}] images, the GAN makes [${imageShape}]`);
    }
    const net = classifierFeatures(run.model, {name: source.featureRun, normalization: run.normalization});
    return {labels: net.labels, imageShape: net.imageShape, apply: x => net.apply(x),
            dispose() { net.dispose(); run.model.dispose(); }};
  } catch (e) {
    run.model.dispose();
    throw e;
  }
}

export interface GanRunResult extends GanTrainResult {
  config: GanConfig;
}

/**
 * One GAN run from its configuration; `data` and `scorer` (ganScorer with
 * the configuration's samples, batch and seed) may serve several runs.
 */
export async function runGan(c: GanConfig, data: ImageDataset, scorer: GanScorer | undefined,
                             options: {progress?: ProgressMode; log?: NodeJS.WritableStream | null} = {}): Promise<GanRunResult> {
  const imageShape = imageShapeOf(data);
  const runDir = c.runDir ?? defaultGanRunDir(c);
  const gSpec = generatorSpec(c, imageShape);
  const dSpec = discriminatorSpec(c, imageShape);
  const g = snganGenerator(gSpec);
  const d = snganDiscriminator(dSpec);
  try {
    const result = await trainGan({
      generator: g, discriminator: d, generatorSpec: gSpec, discriminatorSpec: dSpec, data, steps: c.steps,
      batchSize: c.batchSize, nDis: c.nDis, lr: c.lr, betas: [c.beta1, c.beta2], lrDecay: c.lrDecay, seed: c.seed,
      runDir, resume: c.resume, overwrite: c.overwrite, logEvery: c.logEvery, checkpointEvery: c.checkpointEvery,
      sampleEvery: c.sampleEvery, scoreEvery: c.scoreEvery, scorer,
      runFiles: {'gan.json': `${JSON.stringify({...c, runDir}, null, 2)}\n`},
      progress: options.progress, log: options.log,
    });
    return {...result, config: {...c, runDir}};
  } finally {
    g.dispose();
    d.dispose();
  }
}

/** Loads the GAN run's data as its configuration names it. */
export function loadGanData(c: Pick<GanConfig, 'dataset' | 'dataRoot'>): ImageDataset {
  const data = loadDataset(c.dataset, {split: 'train', root: c.dataRoot});
  imageShapeOf(data);
  return data;
}

/** The side-by-side table of several runs. */
export function formatGanRuns(results: GanRunResult[]): string {
  const labels = [...new Set(results.flatMap(r => Object.keys(r.scores ?? {})))];
  const rows = results.map(r => {
    const timed = r.history.filter(h => h.steps > 0);
    const seconds = timed.reduce((t, h) => t + h.seconds, 0) / Math.max(1, timed.reduce((t, h) => t + h.steps, 0));
    return [r.config.dNorm, String(r.steps), ...labels.map(l => r.scores?.[l]?.toFixed(3) ?? '-'),
            `${seconds.toFixed(3)} s`, r.runDir];
  });
  return formatTable(['d-norm', 'steps', ...labels, 'time per step', 'run'], rows);
}

export interface GanEvalOptions {
  samples?: number;
  batchSize?: number;
  featureRun?: string;
  inception?: string;
  seed?: number;
}

/**
 * Scores a GAN run's latest checkpoint on a feature network (default the
 * run's own), with `samples` generated and real images.
 */
export async function ganEval(runDir: string, o: GanEvalOptions): Promise<{step: number; scores: GanScores; samples: number}> {
  const state = await readGanCheckpoint(runDir);
  if (state === null) bad(`${runDir} holds no complete GAN checkpoint (run convnorm gan there first)`);
  let saved: GanConfig;
  try {
    saved = JSON.parse(await readFile(join(runDir, 'gan.json'), 'utf8')) as GanConfig;
  } catch (e) {
    bad(`cannot read ${join(runDir, 'gan.json')}: ${(e as Error).message}`);
  }
  const c = checkGanConfig({...saved, resume: false, overwrite: false, samples: o.samples ?? saved.samples,
                            featureRun: o.inception !== undefined ? undefined : o.featureRun ?? saved.featureRun,
                            inception: o.inception ?? (o.featureRun !== undefined ? undefined : saved.inception),
                            batchSize: o.batchSize ?? saved.batchSize});
  if (c.featureRun === undefined && c.inception === undefined) {
    bad(`${runDir} was trained without a feature network: name one with --feature-run or --inception`);
  }
  const data = loadGanData(c);
  const network = (await openFeatureNetwork(c, c.dataset, data.shape))!;
  const g = snganGenerator(state.config.generator.spec as Parameters<typeof snganGenerator>[0]);
  const d = snganDiscriminator(state.config.discriminator.spec as unknown as Parameters<typeof snganDiscriminator>[0]);
  try {
    await loadGanCheckpoint(runDir, g, d, {generatorSpec: state.config.generator.spec ?? undefined,
                                           discriminatorSpec: state.config.discriminator.spec ?? undefined});
    const seed = o.seed ?? c.seed;
    const scorer = await ganScorer(network, data, {samples: c.samples, batchSize: c.batchSize, seed});
    const entry = await scoreDocument(g, scorer, {step: state.step, batchSize: c.batchSize, seed});
    await writeAtomic(join(runDir, `eval-step-${state.step}.json`), `${JSON.stringify(entry, null, 1)}\n`);
    return {step: state.step, scores: entry.scores, samples: c.samples};
  } finally {
    g.dispose();
    d.dispose();
    network.dispose();
  }
}
