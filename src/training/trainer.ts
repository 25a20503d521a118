/**
 * The training loop: SGD with momentum and weight decay as PyTorch's, a
 * per-epoch learning-rate schedule, a seeded shuffle and augmentation per
 * epoch, evaluation after each epoch, metrics as JSON lines, and an atomic
 * checkpoint after each epoch from which a run resumes bitwise exactly.
 */
import {appendFile} from 'node:fs/promises';
import {join} from 'node:path';

import cliProgress from 'cli-progress';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {Augmentation, makeBatch, Normalization} from '../data/batches.js';
import {datasetSize, ImageDataset} from '../data/dataset.js';
import {Rng} from '../data/random.js';
import {
  checkpointDir, checkReadable, checkSameRun, describeDataset, describeWeights, loadCheckpoint, recoverCheckpoint,
  RunConfig, saveCheckpoint, TrainError,
} from './checkpoint.js';
import {METRICS_FILE, prepareRunDir, progressOutput, recoverMetrics} from './run_dir.js';
import {evaluate, labelAgreement} from './metrics.js';
import {subset} from '../data/splits.js';
import {describeSchedule, learningRateAt, Schedule, validateSchedule} from './schedule.js';
import {AdversarialSteps, AdversarialTraining, checkAdversarial} from './adversarial.js';
import {TrainStep} from './step.js';

export {METRICS_FILE} from './run_dir.js';

/** One line of metrics.jsonl. Accuracies are fractions in [0, 1]; losses mean cross-entropy per image. */
export interface EpochRecord {
  /** 1-based: the number of epochs completed with this one. */
  epoch: number;
  /** The learning rate of this epoch. */
  lr: number;
  /**
   * Mean softmax cross-entropy over the epoch's training images (training
   * mode, before each step's update; with adversarial training, on the
   * adversarial images, over every replay).
   */
  trainLoss: number;
  /** Top-1 accuracy of the same logits. */
  trainTop1: number;
  /** Training images seen this epoch. */
  trainImages: number;
  /** Weight steps taken this epoch (the batches, times the replays of free adversarial training). */
  trainSteps?: number;
  /** Mean extra loss per step, when an extra loss is set. */
  trainExtraLoss?: number;
  /** Test-set metrics in inference mode after the epoch, when a test set is given. */
  testLoss?: number;
  testTop1?: number;
  testTop5?: number;
  testImages?: number;
  /** The same metrics of `testSet`, when given. */
  testSetLoss?: number;
  testSetTop1?: number;
  testSetTop5?: number;
  /**
   * With label noise: the fraction of the training images whose label the
   * noise changed that the model (inference mode, after the epoch) assigns
   * their noisy label (memorized), and their true one.
   */
  noisyFitted?: number;
  noisyCorrect?: number;
  /** Wall time of the epoch's training and evaluation (not the checkpoint write), seconds. */
  seconds: number;
  trainSeconds: number;
  evalSeconds: number;
  /** Training images per second. */
  imagesPerSecond: number;
}

/** The fields of an EpochRecord that vary from run to run on the same inputs. */
export const TIMING_FIELDS = ['seconds', 'trainSeconds', 'evalSeconds', 'imagesPerSecond'] as const;

export interface BatchProgress {
  /** 1-based epoch and batch. */
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  /** Images trained on so far this epoch. */
  images: number;
  /** Running means over the epoch so far. */
  loss: number;
  top1: number;
  lr: number;
  imagesPerSecond: number;
}

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'none';

export interface TrainOptions {
  /** A model that maps [N, H, W, C] images to [N, classes] logits. Trained in place. */
  model: tfl.LayersModel;
  /**
   * How the model was built, e.g. `{architecture: 'resnet18', norm: 'convnorm', numClasses: 10,
   * inputShape: [32, 32, 3], seed: 0}`; JSON. Stored in checkpoints, so that `convnorm eval`
   * can rebuild the model (`readCheckpoint(runDir).config.model.spec`) and a checkpoint of
   * another architecture is refused. Default: none (the weights' names and shapes are still compared).
   */
  modelSpec?: Record<string, unknown>;
  train: ImageDataset;
  /** Evaluated after every epoch, when given. */
  test?: ImageDataset;
  /**
   * Also evaluated after every epoch: the test set, when `test` is a
   * validation split, so that the test top-1 at the best validation epoch can
   * be read from the metrics (the epoch chosen by validation, never by test).
   */
  testSet?: ImageDataset;
  /**
   * The training images whose label noise changed (indices into `train`) and
   * their true labels: after every epoch the record says how many of them the
   * model predicts as the noisy label and as the true one.
   */
  noisyLabels?: {indices: ArrayLike<number>; clean: ArrayLike<number>};
  batchSize: number;
  /** Batch size of the evaluation. Default: batchSize. */
  evalBatchSize?: number;
  /** Total epochs of the run (on resume: may be more than before). */
  epochs: number;
  schedule: Schedule;
  /** Default 0.9. */
  momentum?: number;
  /** Default 1e-4 (PyTorch's coupled L2, on every trainable weight). */
  weightDecay?: number;
  /** Seeds the shuffle and the augmentation (not the model's initialization: build the model with its own seed). */
  seed: number;
  /** Training-time random crop / flip (passed to makeBatch); none by default. */
  augmentation?: Augmentation;
  /** Input normalization of training and test batches; default pixel / 255. */
  normalization?: Normalization;
  /** A term added to each step's loss (e.g. the OCNN penalty). Put its parameters in `settings`. */
  extraLoss?: (model: tfl.LayersModel) => tf.Scalar;
  /** Anything else that determines the results (compared on resume), e.g. `{ocnnLambda: 0.1, labelNoise: 0.2}`. */
  settings?: Record<string, unknown>;
  /**
   * Adversarial training (free or PGD, see adversarial.ts). Its batches are
   * made in pixel space and `normalization` is applied inside the step, after
   * the perturbation.
   */
  adversarial?: AdversarialTraining;
  /** Directory of the run: metrics.jsonl and checkpoint/. */
  runDir: string;
  /**
   * Files written into the run directory when a fresh run starts (name -> text),
   * e.g. the experiment's full configuration or its label-noise record. Each is
   * written to a temporary name and renamed. A resumed run keeps the originals.
   */
  runFiles?: Record<string, string>;
  /** Continue the run in runDir from its last checkpoint. */
  resume?: boolean;
  /** Delete runDir (when it holds a run) and start afresh. */
  overwrite?: boolean;
  /** Called after each epoch's metrics and checkpoint are written; awaited. */
  onEpoch?: (record: EpochRecord) => void | Promise<void>;
  /** Called after each training step; awaited. */
  onBatch?: (progress: BatchProgress) => void | Promise<void>;
  /** Where progress and epoch lines go. Default process.stderr; null = silent. */
  log?: NodeJS.WritableStream | null;
  /** 'auto' (default): a progress bar when `log` is a TTY, else one line per epoch. */
  progress?: ProgressMode;
  /** In 'lines' mode, also a progress line during an epoch every this many seconds (default 60; 0 = never). */
  progressInterval?: number;
}

export interface TrainResult {
  runDir: string;
  /** The checkpoint directory (`tfl.loadLayersModel(fileSystem(checkpointDir))` reads the model). */
  checkpointDir: string;
  /** Epochs completed, in all. */
  epochs: number;
  /** Epochs that were already done when this call started (0 unless resumed). */
  resumedFrom: number;
  /** Every epoch's record, earlier ones (from metrics.jsonl) included. */
  history: EpochRecord[];
}

/**
 * Steps per epoch: the data in batches of `batchSize`, the last incomplete
 * batch kept as PyTorch's DataLoader does, except when it would hold a single
 * image (batch statistics of one image are noise, and this repo's BatchNorm
 * refuses one value per channel): then those images sit out that epoch.
 */
export function epochBatches(count: number, batchSize: number): number {
  const full = Math.floor(count / batchSize);
  const rest = count % batchSize;
  return full + (rest >= 2 ? 1 : 0);
}

function fail(message: string): never {
  throw new TrainError('BAD_OPTIONS', message);
}

function positiveInteger(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) fail(`${what} must be a positive integer, got ${value}`);
}

function nonNegative(value: number, what: string): void {
  if (!Number.isFinite(value) || value < 0) fail(`${what} must be a finite number >= 0, got ${value}`);
}

function checkDataset(model: tfl.LayersModel, ds: ImageDataset, role: string): void {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) fail('the model must have one input and one output');
  const input = model.inputs[0].shape.slice(1);
  if (input.length !== 3 || input.some((d, i) => d !== ds.shape[i])) {
    fail(`the model takes [${input}] images, the ${role} set '${ds.name}' has [${ds.shape}]`);
  }
  const output = model.outputs[0].shape;
  if (output.length !== 2 || output[1] !== ds.numClasses) {
    fail(`the model outputs [${output.slice(1)}] per image, the ${role} set '${ds.name}' has ${ds.numClasses} classes`);
  }
  if (datasetSize(ds) === 0) fail(`the ${role} set '${ds.name}' is empty`);
}

function runConfig(o: TrainOptions, schedule: Schedule): RunConfig {
  return {
    model: {name: o.model.name, spec: o.modelSpec ?? null, weights: describeWeights(o.model)},
    train: describeDataset(o.train),
    test: o.test ? describeDataset(o.test) : null,
    batchSize: o.batchSize,
    lastBatch: 'kept unless it has a single image',
    schedule,
    momentum: o.momentum ?? 0.9,
    weightDecay: o.weightDecay ?? 1e-4,
    seed: o.seed,
    augmentation: o.augmentation ?? null,
    normalization: o.normalization ?? null,
    extraLoss: o.extraLoss !== undefined,
    settings: o.settings ?? null,
    adversarial: o.adversarial ?? null,
  };
}

function percent(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

/** `seconds` as 42s, 3m05s or 1h05m. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/** One line per epoch, as the log and the progress bar print it. */
export function formatEpoch(r: EpochRecord, epochs: number): string {
  const test = r.testLoss === undefined ? '' :
    ` | test loss ${r.testLoss.toFixed(4)} top1 ${percent(r.testTop1!)} top5 ${percent(r.testTop5!)}`;
  const extra = r.trainExtraLoss === undefined ? '' : ` extra ${r.trainExtraLoss.toFixed(4)}`;
  return `epoch ${r.epoch}/${epochs} lr ${r.lr.toPrecision(3)} | train loss ${r.trainLoss.toFixed(4)}${extra} ` +
    `top1 ${percent(r.trainTop1)}${test} | ${r.seconds.toFixed(1)} s, ${r.imagesPerSecond.toFixed(1)} img/s`;
}

/** The progress display: a cli-progress bar on a terminal, plain lines otherwise. */
class Progress {
  private bar?: cliProgress.SingleBar;
  private lastLine = 0;

  constructor(private readonly mode: 'bar' | 'lines' | 'none', private readonly stream: NodeJS.WritableStream | null,
              private readonly epochs: number, private readonly interval: number) {}

  message(text: string): void {
    if (this.mode !== 'none') this.stream!.write(`${text}\n`);
  }

  startEpoch(epoch: number, batches: number, lr: number): void {
    this.lastLine = performance.now();
    if (this.mode !== 'bar') return;
    this.bar = new cliProgress.SingleBar({
      stream: this.stream as NodeJS.WriteStream,
      format: `epoch ${epoch}/${this.epochs} [{bar}] {value}/{total} | loss {loss} | top1 {top1} | {speed} img/s | ETA {eta_formatted}`,
      barsize: 24, clearOnComplete: true, hideCursor: false, etaBuffer: 20, fps: 5,
    }, cliProgress.Presets.legacy);
    this.bar.start(batches, 0, {loss: '-', top1: '-', speed: '-', lr});
  }

  batch(p: BatchProgress): void {
    if (this.mode === 'bar') {
      this.bar?.update(p.batch, {loss: p.loss.toFixed(4), top1: percent(p.top1), speed: p.imagesPerSecond.toFixed(1)});
    } else if (this.mode === 'lines' && this.interval > 0 && performance.now() - this.lastLine > 1000 * this.interval) {
      this.lastLine = performance.now();
      const eta = (p.batches - p.batch) * (p.images / p.batch) / p.imagesPerSecond;
      this.message(`epoch ${p.epoch}/${p.epochs} batch ${p.batch}/${p.batches} loss ${p.loss.toFixed(4)} ` +
        `top1 ${percent(p.top1)} | ${p.imagesPerSecond.toFixed(1)} img/s, epoch ETA ${duration(eta)}`);
    }
  }

  endEpoch(record: EpochRecord): void {
    this.stop();
    this.message(formatEpoch(record, this.epochs));
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise(resolve => setImmediate(resolve));
}

/**
 * Trains `options.model` in place for `options.epochs` epochs, writing
 * `<runDir>/metrics.jsonl` (one EpochRecord per line) and, after every epoch,
 * `<runDir>/checkpoint/` (see checkpoint.ts). Epoch e (0-based) shuffles with
 * `Rng.derive(seed, e, 0)`, augments with `Rng.derive(seed, e, 1)` and uses
 * `learningRateAt(schedule, e)`, so an epoch depends only on the state at its
 * start, and a resumed run gives bitwise the weights of an uninterrupted one
 * (on the same backend).
 *
 * runDir must not exist (or be empty) unless `resume` (continue from its
 * latest checkpoint; refused when it has none or when anything but `epochs`
 * differs) or `overwrite` (delete it first) is set. Throws TrainError for
 * these and for bad options; the training loss turning NaN or infinite stops
 * the run with code DIVERGED, keeping the previous epoch's checkpoint.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const o = options;
  const {model, train: trainSet, test: testSet, batchSize, epochs, seed} = o;
  positiveInteger(batchSize, 'batchSize');
  if (o.evalBatchSize !== undefined) positiveInteger(o.evalBatchSize, 'evalBatchSize');
  if (!Number.isInteger(epochs) || epochs < 0) fail(`epochs must be a non-negative integer, got ${epochs}`);
  if (!Number.isInteger(seed)) fail(`seed must be an integer, got ${seed}`);
  nonNegative(o.momentum ?? 0.9, 'momentum');
  nonNegative(o.weightDecay ?? 1e-4, 'weightDecay');
  if (o.resume && o.overwrite) fail('resume and overwrite exclude each other');
  if (typeof o.runDir !== 'string' || o.runDir === '') fail('runDir must name a directory');
  let schedule: Schedule;
  try {
    schedule = validateSchedule(o.schedule);
  } catch (e) {
    fail((e as Error).message);
  }
  checkDataset(model, trainSet, 'training');
  if (o.adversarial !== undefined) {
    try {
      checkAdversarial(o.adversarial);
    } catch (e) {
      fail((e as Error).message);
    }
  }
  if (testSet) checkDataset(model, testSet, 'test');
  if (o.testSet) checkDataset(model, o.testSet, 'testSet');
  const count = datasetSize(trainSet);
  let noisy: {images: ImageDataset; labelSets: Int32Array[]} | undefined;
  if (o.noisyLabels !== undefined && o.noisyLabels.indices.length > 0) {
    const {indices, clean} = o.noisyLabels;
    if (clean.length !== indices.length) fail(`noisyLabels: ${indices.length} indices, ${clean.length} true labels`);
    for (let i = 0; i < indices.length; i++) {
      if (!Number.isInteger(indices[i]) || indices[i] < 0 || indices[i] >= count) fail(`noisyLabels: index ${indices[i]} is outside the training set`);
    }
    const images = subset(trainSet, indices);
    noisy = {images, labelSets: [images.labels, Int32Array.from(clean)]};
  }
  const batches = epochBatches(count, batchSize);
  if (batches === 0) fail(`the training set has ${count} image(s): too few for a batch of two or more`);

  const config = runConfig(o, schedule);
  const done = await prepareRunDir(o, async () => {
    const state = await recoverCheckpoint(o.runDir);
    if (state === null) return null;
    checkReadable(state, o.runDir);
    checkSameRun(state.config, config, o.runDir);
    return state.epoch;
  }, 'epoch');
  const history = done > 0 ? await recoverMetrics<EpochRecord>(o.runDir, 'epoch', done) : [];
  const {stream, mode} = progressOutput(o.log, o.progress);
  const progress = new Progress(mode, stream, epochs, o.progressInterval ?? 60);
  const metricsPath = join(o.runDir, METRICS_FILE);

  let lr = schedule.lr;
  const step = new TrainStep(model, {learningRate: () => lr, momentum: config.momentum, weightDecay: config.weightDecay,
                                     extraLoss: o.extraLoss});
  const adversarial = o.adversarial === undefined ? undefined
    : new AdversarialSteps(step, model, o.adversarial, o.normalization, [batchSize, ...trainSet.shape]);
  try {
    if (done > 0) {
      const {state, buffers, extra} = await loadCheckpoint(model, o.runDir, {modelSpec: o.modelSpec, withOptimizer: true});
      try {
        step.setOptimizerState(buffers);
        adversarial?.setState(extra);
      } finally {
        tf.dispose([...buffers, ...extra]);
      }
      if (state.backend !== tf.getBackend()) {
        progress.message(`warning: the checkpoint was trained on the ${state.backend} backend, this is ${tf.getBackend()}: ` +
          'the continued run is not bitwise the uninterrupted one');
      }
    }
    progress.message(`${done > 0 ? `resuming ${o.runDir} after epoch ${done}` : `run ${o.runDir}`}: ${model.name} on ` +
      `'${trainSet.name}' (${count} images, ${batches} steps of ${batchSize}), ${describeSchedule(schedule)}, ` +
      `${epochs} epochs, seed ${seed}`);

    for (let e = done; e < epochs; e++) {
      lr = learningRateAt(schedule, e);
      const order = Rng.derive(seed, e, 0).permutation(count);
      const augmentationRng = Rng.derive(seed, e, 1);
      const started = performance.now();
      progress.startEpoch(e + 1, batches, lr);
      let images = 0;
      // Each weight step's images: the batch once, or once per replay of free adversarial training.
      let presented = 0;
      let steps = 0;
      let lossSum = 0;
      let extraSum = 0;
      let correct = 0;
      for (let b = 0; b < batches; b++) {
        const indices = order.subarray(b * batchSize, Math.min(count, (b + 1) * batchSize));
        const {x, labels} = makeBatch(trainSet, indices, {
          normalization: adversarial === undefined ? o.normalization : undefined, augmentation: o.augmentation,
          rng: augmentationRng,
        });
        let results;
        try {
          results = adversarial === undefined ? [step.step(x, labels)]
            : await adversarial.run(x, labels, Rng.derive(seed, e, 2, b));
        } finally {
          tf.dispose([x, labels]);
        }
        for (const result of results) {
          if (!Number.isFinite(result.loss)) {
            throw new TrainError('DIVERGED', `the training loss is ${result.loss} at epoch ${e + 1}, step ${b + 1} ` +
              `(lr ${lr}); the checkpoint of epoch ${e} is kept`);
          }
          presented += indices.length;
          steps++;
          lossSum += result.crossEntropy * indices.length;
          extraSum += result.extraLoss;
          correct += result.correct;
        }
        images += indices.length;
        const info: BatchProgress = {
          epoch: e + 1, epochs, batch: b + 1, batches, images, loss: lossSum / presented, top1: correct / presented, lr,
          imagesPerSecond: images / ((performance.now() - started) / 1000),
        };
        progress.batch(info);
        await o.onBatch?.(info);
        await yieldToEventLoop();
      }
      const trainSeconds = (performance.now() - started) / 1000;
      let test: Partial<EpochRecord> = {};
      let evalSeconds = 0;
      if (testSet) {
        const evalStarted = performance.now();
        const r = await evaluate(model, testSet, {batchSize: o.evalBatchSize ?? batchSize, normalization: o.normalization});
        test = {testLoss: r.loss, testTop1: r.top1, testTop5: r.top5, testImages: r.count};
        evalSeconds = (performance.now() - evalStarted) / 1000;
      }
      if (o.testSet) {
        const evalStarted = performance.now();
        const r = await evaluate(model, o.testSet, {batchSize: o.evalBatchSize ?? batchSize, normalization: o.normalization});
        test = {...test, testSetLoss: r.loss, testSetTop1: r.top1, testSetTop5: r.top5};
        evalSeconds += (performance.now() - evalStarted) / 1000;
      }
      if (noisy !== undefined) {
        const evalStarted = performance.now();
        const [fitted, correct] = await labelAgreement(model, noisy.images, noisy.labelSets,
                                                       {batchSize: o.evalBatchSize ?? batchSize, normalization: o.normalization});
        test = {...test, noisyFitted: fitted, noisyCorrect: correct};
        evalSeconds += (performance.now() - evalStarted) / 1000;
      }
      const record: EpochRecord = {
        epoch: e + 1, lr, trainLoss: lossSum / presented, trainTop1: correct / presented, trainImages: images,
        ...(adversarial === undefined ? {} : {trainSteps: steps}),
        ...(o.extraLoss ? {trainExtraLoss: extraSum / steps} : {}),
        ...test,
        seconds: (performance.now() - started) / 1000, trainSeconds, evalSeconds, imagesPerSecond: images / trainSeconds,
      };
      // Metrics first: a line whose checkpoint never landed is dropped on resume and written again.
      await appendFile(metricsPath, `${JSON.stringify(record)}\n`);
      await saveCheckpoint(o.runDir, model, step.optimizerState(), {epoch: e + 1, epochs, config},
                           (adversarial?.state() ?? []).map(tensor => ({name: 'perturbation', tensor})));
      history.push(record);
      progress.endEpoch(record);
      await o.onEpoch?.(record);
    }
  } finally {
    progress.stop();
    step.dispose();
    adversarial?.dispose();
  }
  return {runDir: o.runDir, checkpointDir: checkpointDir(o.runDir), epochs: Math.max(done, epochs), resumedFrom: done, history};
}
