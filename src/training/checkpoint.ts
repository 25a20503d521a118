/**
 * Training checkpoints: everything a run needs to continue bitwise as if it
 * had never stopped, written atomically.
 *
 * Layout of `<runDir>/checkpoint/` (the latest completed epoch):
 *
 * - `model.json`, `weights.bin`: `model.save(fileSystem(dir))`, so
 *   `tfl.loadLayersModel(fileSystem(dir))` reads it. The weights are all of
 *   `model.weights`: trainable ones and the state that is not trained
 *   (BatchNorm running statistics; ConvNorm's running V and step counter).
 * - `optimizer.bin`: the SGD momentum buffers, float32, one per trainable
 *   weight in `model.trainableWeights` order.
 * - `extra.bin` (only when the trainer has such state): further tensors a
 *   bitwise resume needs, e.g. free adversarial training's carried
 *   perturbation, float32, as `state.json`'s `extra` lists them.
 * - `state.json`: the epochs completed, the run configuration (see RunConfig)
 *   and the manifests of both binary files. Written last: a directory whose
 *   state.json parses and whose files have the sizes it lists is complete.
 *
 * The checkpoint is written and swapped in atomically by ../io/checkpoint_dirs.ts:
 * a crash at any point leaves at least one complete checkpoint, and readers
 * take the complete one with the most epochs.
 */
import {createHash} from 'node:crypto';
import {readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import type {Augmentation, Normalization} from '../data/batches.js';
import {datasetSize, ImageDataset} from '../data/dataset.js';
import {
  CHECKPOINT_DIR, commitCheckpoint, fileSize, locateCheckpoint, recoverCheckpoint as recoverDirs,
} from '../io/checkpoint_dirs.js';
import {fileSystem, readModelJson} from '../io/file_system.js';
import {canonicalJson} from '../common/canonical_json.js';
import type {AdversarialTraining} from './adversarial.js';
import type {Schedule} from './schedule.js';

export {CHECKPOINT_DIR, CHECKPOINT_OLD_DIR, CHECKPOINT_TMP_DIR} from '../io/checkpoint_dirs.js';
const STATE_JSON = 'state.json';
const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';
const OPTIMIZER_BIN = 'optimizer.bin';
const EXTRA_BIN = 'extra.bin';
const FORMAT = 'convnorm-checkpoint';
/**
 * 2: the baselines' convolutions (bn, sn, oni, none) pad symmetrically, on
 * PyTorch's grid; format 1 checkpoints of them were trained with tfjs's
 * 'same' padding (see checkReadable).
 */
const VERSION = 2;
/** Layer classes whose format-1 weights were trained on tfjs's asymmetric 'same' grid. */
const OLD_GRID_CLASSES = ['Conv2D', 'SpectralNormConv2D', 'OniConv2D'];

export type TrainErrorCode =
  | 'BAD_OPTIONS' | 'RUN_EXISTS' | 'NO_CHECKPOINT' | 'BAD_CHECKPOINT' | 'ARCHITECTURE_MISMATCH' | 'CONFIG_MISMATCH'
  | 'DIVERGED' | 'OLD_GRID';

/** Errors of run set-up and checkpoints; `code` says which, for command-line tools. */
export class TrainError extends Error {
  override name = 'TrainError';
  constructor(readonly code: TrainErrorCode, message: string) {
    super(message);
  }
}

/** One weight as the checkpoint describes it: `<layer class>/<weight name>` and shape. */
export interface WeightEntry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
}

/** What identifies a dataset: a changed image or label changes the hash. */
export interface DatasetInfo {
  name: string;
  count: number;
  shape: [number, number, number];
  numClasses: number;
  /** sha256 of the pixel bytes, then the labels' int32 bytes, hex. */
  sha256: string;
}

/** Everything that determines a run's results, stored in each checkpoint and compared on resume. */
export interface RunConfig {
  model: {
    /** The tfjs model's name, e.g. `resnet18_convnorm`. */
    name: string;
    /** The caller's description of how the model was built (architecture, norm, arguments), or null. */
    spec: Record<string, unknown> | null;
    /** Every weight, in `model.weights` order. */
    weights: WeightEntry[];
  };
  train: DatasetInfo;
  test: DatasetInfo | null;
  batchSize: number;
  /** How the last incomplete batch of an epoch is treated (fixed by this version). */
  lastBatch: 'kept unless it has a single image';
  schedule: Schedule;
  momentum: number;
  weightDecay: number;
  seed: number;
  augmentation: Augmentation | null;
  normalization: Normalization | null;
  /** Whether an extra loss term was added (the function itself cannot be compared; put its parameters in `settings`). */
  extraLoss: boolean;
  /** Anything else the caller says determines the result (label noise, penalty weights...), or null. */
  settings: Record<string, unknown> | null;
  /** Adversarial training, when the run does it (absent from runs that predate it, which read as null). */
  adversarial?: AdversarialTraining | null;
}

export interface CheckpointState {
  format: typeof FORMAT;
  version: number;
  /** Epochs completed. */
  epoch: number;
  /** The epochs the run was asked for when this was written (may be raised on resume). */
  epochs: number;
  config: RunConfig;
  /** Manifest of weights.bin: `config.model.weights`. */
  optimizer: {kind: 'sgd-momentum'; buffers: WeightEntry[]};
  /** Manifest of extra.bin, when the run has state beyond the model and the optimizer. */
  extra?: WeightEntry[];
  /** The tfjs backend that trained it (results are bitwise reproducible on the same backend only). */
  backend: string;
  savedAt: string;
}

/** The checkpoint's model directory, for `tfl.loadLayersModel(fileSystem(...))`. */
export function checkpointDir(runDir: string): string {
  return join(runDir, CHECKPOINT_DIR);
}

function dtypeOf(dtype: string): 'float32' | 'int32' {
  if (dtype !== 'float32' && dtype !== 'int32') throw new TrainError('BAD_OPTIONS', `cannot checkpoint a ${dtype} weight`);
  return dtype;
}

/** The model's weights as `<layer class>/<weight>` with shapes: names free of tfjs's per-process counters. */
export function describeWeights(model: tfl.LayersModel): WeightEntry[] {
  const owner = new Map<tfl.LayerVariable, string>();
  for (const layer of model.layers) for (const w of layer.weights) owner.set(w, layer.getClassName());
  return model.weights.map(w => ({
    name: `${owner.get(w) ?? '?'}/${w.originalName.slice(w.originalName.lastIndexOf('/') + 1)}`,
    shape: [...w.shape] as number[],
    dtype: dtypeOf(w.dtype),
  }));
}

export function describeDataset(ds: ImageDataset): DatasetInfo {
  const hash = createHash('sha256');
  hash.update(ds.pixels);
  hash.update(new Uint8Array(ds.labels.buffer, ds.labels.byteOffset, ds.labels.byteLength));
  return {name: ds.name, count: datasetSize(ds), shape: [...ds.shape], numClasses: ds.numClasses, sha256: hash.digest('hex')};
}

function short(value: unknown): string {
  const text = canonicalJson(value) ?? 'undefined';
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

function modelLabel(m: RunConfig['model']): string {
  return m.spec === null ? `'${m.name}'` : `'${m.name}' ${short(m.spec)}`;
}

/**
 * Throws an ARCHITECTURE_MISMATCH TrainError when the checkpoint's model is not
 * `model`'s (by spec, when the checkpoint has one and `spec` is given, and by
 * the list of weights and shapes).
 */
export function checkArchitecture(saved: RunConfig['model'], current: RunConfig['model'], where: string): void {
  const specDiffers = saved.spec !== null && current.spec !== null && canonicalJson(saved.spec) !== canonicalJson(current.spec);
  let weightsDiffer = '';
  if (saved.weights.length !== current.weights.length) {
    weightsDiffer = `it has ${saved.weights.length} weights, the model ${current.weights.length}`;
  } else {
    const i = saved.weights.findIndex((w, i) => canonicalJson(w) !== canonicalJson(current.weights[i]));
    if (i >= 0) {
      const s = saved.weights[i];
      const c = current.weights[i];
      weightsDiffer = `weight ${i} is ${s.name} [${s.shape}] there, ${c.name} [${c.shape}] here`;
    }
  }
  if (specDiffers || weightsDiffer !== '') {
    throw new TrainError('ARCHITECTURE_MISMATCH',
      `the checkpoint in ${where} is for model ${modelLabel(saved)}, not ${modelLabel(current)}` +
      (weightsDiffer !== '' ? ` (${weightsDiffer})` : '') + '; use another run directory, or overwrite it');
  }
}

const CONFIG_LABELS: Record<string, string> = {
  train: 'training set', test: 'test set', batchSize: 'batch size', lastBatch: 'last-batch rule', schedule: 'learning-rate schedule',
  momentum: 'momentum', weightDecay: 'weight decay', seed: 'seed', augmentation: 'augmentation',
  normalization: 'normalization', extraLoss: 'extra loss', settings: 'settings', adversarial: 'adversarial training',
};

/**
 * Throws OLD_GRID for a checkpoint whose weights this version would misread:
 * format 1 trained the baselines' convolutions with tfjs's 'same' padding,
 * which at stride 2 pads one pixel at the end of an axis and none at its
 * start, so those weights were learned on a grid one pixel off the one their
 * layers sample now. ConvNorm2D's padding has always been symmetric, so a
 * format-1 checkpoint of a ConvNorm network still loads.
 */
export function checkReadable(state: Pick<CheckpointState, 'version' | 'config'>, where: string): void {
  if (state.version >= 2) return;
  const old = state.config.model.weights.find(w => OLD_GRID_CLASSES.includes(w.name.split('/')[0]));
  if (old !== undefined) {
    throw new TrainError('OLD_GRID',
      `the checkpoint in ${where} (format ${state.version}) was trained when the bn, sn, oni and none ` +
      `convolutions used tfjs's 'same' padding (its ${old.name}), which at stride 2 samples one pixel off ` +
      "PyTorch's symmetric grid that they use now; its weights would be read into different convolutions. " +
      'Train the run again (overwrite it)');
  }
}

/**
 * Throws when `current` would not continue the run `saved` describes: another
 * architecture (ARCHITECTURE_MISMATCH) or any other setting that changes the
 * results (CONFIG_MISMATCH, listing every difference).
 */
export function checkSameRun(saved: RunConfig, current: RunConfig, where: string): void {
  checkArchitecture(saved.model, current.model, where);
  const differences: string[] = [];
  for (const key of Object.keys(CONFIG_LABELS) as (keyof RunConfig)[]) {
    const a = saved[key] ?? null;
    const b = current[key] ?? null;
    if (canonicalJson(a) !== canonicalJson(b)) differences.push(`${CONFIG_LABELS[key]}: ${short(a)} in the checkpoint, ${short(b)} now`);
  }
  if (differences.length > 0) {
    throw new TrainError('CONFIG_MISMATCH',
      `cannot resume the run in ${where}, its settings differ:\n  ${differences.join('\n  ')}\n` +
      'resume with the same settings (only the number of epochs may change), or start a new run');
  }
}

export function byteSize(entries: WeightEntry[]): number {
  return entries.reduce((sum, e) => sum + 4 * e.shape.reduce((a, b) => a * b, 1), 0);
}

/** The state of the checkpoint in `dir` when it is complete, else null (never throws for a damaged one). */
async function readComplete(dir: string): Promise<CheckpointState | null> {
  try {
    const state = JSON.parse(await readFile(join(dir, STATE_JSON), 'utf8')) as CheckpointState;
    if (state?.format !== FORMAT || !(state.version <= VERSION) || !Number.isInteger(state.epoch)) return null;
    if (await fileSize(join(dir, WEIGHTS_BIN)) !== byteSize(state.config.model.weights)) return null;
    if (await fileSize(join(dir, OPTIMIZER_BIN)) !== byteSize(state.optimizer.buffers)) return null;
    if (state.extra !== undefined && await fileSize(join(dir, EXTRA_BIN)) !== byteSize(state.extra)) return null;
    if (await fileSize(join(dir, MODEL_JSON)) === null) return null;
    return state;
  } catch {
    // Unreadable, cut short, or not a checkpoint.
    return null;
  }
}

const byEpoch = (state: CheckpointState) => state.epoch;

function locate(runDir: string) {
  return locateCheckpoint(runDir, readComplete, byEpoch);
}

/**
 * The latest complete checkpoint of a run (read-only: nothing is moved), or
 * null when the run has none. Use it to find the config (`state.config.model.spec`
 * says how to rebuild the model) before `loadCheckpointWeights`.
 */
export async function readCheckpoint(runDir: string): Promise<(CheckpointState & {dir: string}) | null> {
  const found = await locate(runDir);
  return found === null ? null : {...found.state, dir: found.dir};
}

/**
 * Makes `<runDir>/checkpoint/` the latest complete checkpoint and deletes the
 * leftovers of an interrupted save. Returns its state, or null when there is none.
 */
export function recoverCheckpoint(runDir: string): Promise<CheckpointState | null> {
  return recoverDirs(runDir, readComplete, byEpoch);
}

/** The tensors' values, one after the other, as a checkpoint's .bin file holds them. */
export async function tensorFile(tensors: tf.Tensor[]): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for (const t of tensors) {
    const values = await t.data() as Float32Array | Int32Array;
    chunks.push(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return Buffer.concat(chunks);
}

/**
 * Writes the checkpoint after `epoch` completed epochs atomically (see the
 * module comment). `buffers` are the momentum buffers in trainable-weight
 * order; `extra` any further state a resume needs, by name.
 */
export async function saveCheckpoint(runDir: string, model: tfl.LayersModel, buffers: tf.Tensor[],
                                     info: {epoch: number; epochs: number; config: RunConfig},
                                     extra: {name: string; tensor: tf.Tensor}[] = []): Promise<void> {
  const trainable = model.trainableWeights;
  if (buffers.length !== trainable.length) throw new Error(`${buffers.length} momentum buffers for ${trainable.length} trainable weights`);
  const described = describeWeights(model);
  const position = new Map(model.weights.map((w, i) => [w, i]));
  const bufferEntries = trainable.map(w => described[position.get(w)!]);
  const extraEntries: WeightEntry[] = extra.map(e => ({name: e.name, shape: [...e.tensor.shape], dtype: dtypeOf(e.tensor.dtype)}));
  const state: CheckpointState = {
    format: FORMAT, version: VERSION, epoch: info.epoch, epochs: info.epochs, config: info.config,
    optimizer: {kind: 'sgd-momentum', buffers: bufferEntries}, ...(extra.length > 0 ? {extra: extraEntries} : {}),
    backend: tf.getBackend(), savedAt: new Date().toISOString(),
  };
  await commitCheckpoint(runDir, async dir => {
    await model.save(fileSystem(dir));
    await writeFile(join(dir, OPTIMIZER_BIN), await tensorFile(buffers));
    if (extra.length > 0) await writeFile(join(dir, EXTRA_BIN), await tensorFile(extra.map(e => e.tensor)));
  }, {name: STATE_JSON, text: `${JSON.stringify(state, null, 1)}\n`});
}

export function decodeTensors(bytes: Uint8Array, entries: WeightEntry[], what: string): tf.Tensor[] {
  // Copy into an aligned buffer: a file's bytes may start at any offset.
  const aligned = new Uint8Array(bytes.byteLength);
  aligned.set(bytes);
  const tensors: tf.Tensor[] = [];
  let offset = 0;
  for (const e of entries) {
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (offset + 4 * size > aligned.byteLength) throw new TrainError('BAD_CHECKPOINT', `${what} is shorter than its manifest`);
    const values = e.dtype === 'int32'
      ? new Int32Array(aligned.buffer, offset, size) : new Float32Array(aligned.buffer, offset, size);
    tensors.push(tf.tensor(values.slice(), e.shape, e.dtype));
    offset += 4 * size;
  }
  return tensors;
}

export interface LoadedCheckpoint {
  state: CheckpointState;
  /** The momentum buffers (the caller owns them), in trainable-weight order. */
  buffers: tf.Tensor[];
  /** The extra state saved with the checkpoint, in its order (the caller owns them); with withOptimizer only. */
  extra: tf.Tensor[];
}

/**
 * Loads the run's latest checkpoint into `model` (all weights, the running
 * statistics included) after checking that it is this architecture: by the
 * list of weights and shapes, and by `modelSpec` when both it and the
 * checkpoint have one. Throws NO_CHECKPOINT when there is none. Returns the
 * state; `withOptimizer` also returns the momentum buffers and the extra state.
 */
export async function loadCheckpoint(model: tfl.LayersModel, runDir: string,
                                     options: {modelSpec?: Record<string, unknown>; withOptimizer?: boolean} = {}): Promise<LoadedCheckpoint> {
  const found = await locate(runDir);
  if (found === null) throw new TrainError('NO_CHECKPOINT', `there is no complete checkpoint in ${runDir}`);
  const {dir, state} = found;
  checkReadable(state, runDir);
  checkArchitecture(state.config.model, {name: model.name, spec: options.modelSpec ?? null, weights: describeWeights(model)}, runDir);
  // The weights are read from weights.bin by name; a model.json pointing elsewhere is refused all the same.
  await readModelJson(join(dir, MODEL_JSON));
  const weights = decodeTensors(await readFile(join(dir, WEIGHTS_BIN)), state.config.model.weights, join(dir, WEIGHTS_BIN));
  try {
    model.setWeights(weights);
  } finally {
    tf.dispose(weights);
  }
  const buffers = options.withOptimizer ? decodeTensors(await readFile(join(dir, OPTIMIZER_BIN)), state.optimizer.buffers, join(dir, OPTIMIZER_BIN)) : [];
  const extra = options.withOptimizer && state.extra !== undefined
    ? decodeTensors(await readFile(join(dir, EXTRA_BIN)), state.extra, join(dir, EXTRA_BIN)) : [];
  return {state, buffers, extra};
}
