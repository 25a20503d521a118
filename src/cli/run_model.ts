/**
 * A run directory opened for the commands that read one (eval, attack,
 * spectrum): its latest checkpoint's model rebuilt and loaded, and the
 * dataset and normalization it was trained with (from experiment.json, or
 * named by the caller for runs made through the library); and the start and
 * end those commands share (results stored with the run, a --json copy).
 */
import {readFileSync} from 'node:fs';
import {join} from 'node:path';

import * as tfl from '@tensorflow/tfjs-layers';

import type {Normalization} from '../data/batches.js';
import type {ImageDataset} from '../data/dataset.js';
import {DATASET_NAMES, DatasetName, loadDataset} from '../data/load.js';
import {checkParentDirectory, writeAtomic} from '../io/file_system.js';
import {readResults, ResultEntry, storeResults} from '../io/results.js';
import {buildModel, ModelSpec} from '../models/build.js';
import {NormKind} from '../models/blocks.js';
import {CheckpointState, loadCheckpoint, readCheckpoint} from '../training/checkpoint.js';
import {datasetNormalization, ExperimentConfig} from './experiment.js';

export interface OpenRunOptions {
  /** The dataset to evaluate on; default the run's (experiment.json). */
  dataset?: string;
  /** Its folder; default the run's. */
  dataRoot?: string;
  /** Expected architecture: refused when the checkpoint holds another. */
  model?: string;
  /** Expected normalization: refused when the checkpoint holds another. */
  norm?: NormKind;
}

export interface OpenedRun {
  runDir: string;
  /** The checkpoint's state (epoch, configuration). */
  state: CheckpointState & {dir: string};
  spec: ModelSpec;
  /** The experiment's settings, when the run was made by `convnorm train` (experiment.json). */
  experiment?: Partial<ExperimentConfig>;
  /** The dataset the caller or the run names, if any. */
  dataset?: DatasetName;
  dataRoot?: string;
  /** The inputs' normalization for that dataset. */
  normalization?: Normalization;
  /** The model with the checkpoint's weights; the caller disposes it. */
  model: tfl.LayersModel;
}

/**
 * Reads the run's latest complete checkpoint and loads it into a freshly
 * built model. Throws, naming the problem, when the directory holds no
 * complete checkpoint, does not say how its model was built, or holds
 * another architecture or norm than the one asked for.
 */
export async function openRun(runDir: string, options: OpenRunOptions = {}): Promise<OpenedRun> {
  const state = await readCheckpoint(runDir);
  if (state === null) throw new Error(`${runDir} holds no complete checkpoint (train a run there first)`);
  const spec = state.config.model.spec as unknown as ModelSpec | null;
  if (spec === null) throw new Error(`the checkpoint in ${runDir} does not say how its model was built`);
  let experiment: Partial<ExperimentConfig> | undefined;
  try {
    experiment = JSON.parse(readFileSync(join(runDir, 'experiment.json'), 'utf8'));
  } catch {
    // A run made through the library rather than the CLI: the dataset must be named.
  }
  const wanted = {...spec, architecture: options.model ?? spec.architecture, norm: options.norm ?? spec.norm} as ModelSpec;
  const name = options.dataset ?? experiment?.dataset;
  if (name !== undefined && !(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new Error(`unknown dataset '${name}'; known: ${DATASET_NAMES.join(', ')}`);
  }
  const dataset = name as DatasetName | undefined;
  const model = buildModel(wanted);
  try {
    await loadCheckpoint(model, runDir, {modelSpec: wanted as unknown as Record<string, unknown>});
  } catch (e) {
    model.dispose();
    throw e;
  }
  return {
    runDir, state, spec: wanted, experiment, dataset, dataRoot: options.dataRoot ?? experiment?.dataRoot,
    normalization: dataset === undefined ? undefined : datasetNormalization(dataset), model,
  };
}

export interface RunCommandOptions extends Pick<OpenRunOptions, 'dataset' | 'dataRoot'> {
  /** The results file in the run directory, e.g. 'attacks.json', and its kind, e.g. 'attacks'. */
  store: {file: string; kind: string};
  /** Where a copy of the call's results goes, if anywhere. */
  json?: string;
  /** Load the run's test set. */
  testSet: boolean;
}

export interface RunCommand {
  run: OpenedRun;
  /** The backend's description. */
  engine: string;
  /** The run's test set, when asked for. */
  test?: ImageDataset;
  /** Adds the call's entries to the run's results file, writes the --json copy, and says where both went. */
  finish<S, R>(entries: ResultEntry<S, R>[], document: unknown): Promise<string>;
}

/**
 * The start of a command that measures a run: the results file it will add
 * to and the --json folder are checked before `startEngine` runs and before
 * any work, so bad input writes nothing; then the run is opened (the caller
 * disposes run.model) and its test set loaded.
 */
export async function startRunCommand(runDir: string, o: RunCommandOptions,
                                      startEngine: () => Promise<string>): Promise<RunCommand> {
  const storePath = join(runDir, o.store.file);
  await readResults(storePath, o.store.kind);
  if (o.json !== undefined) await checkParentDirectory(o.json);
  const engine = await startEngine();
  const run = await openRun(runDir, {dataset: o.dataset, dataRoot: o.dataRoot});
  let test: ImageDataset | undefined;
  try {
    if (o.testSet) {
      if (run.dataset === undefined) throw new Error(`no experiment.json in ${runDir}: name the dataset with --dataset`);
      test = loadDataset(run.dataset, {split: 'test', root: run.dataRoot});
    }
  } catch (e) {
    run.model.dispose();
    throw e;
  }
  const finish = async <S, R>(entries: ResultEntry<S, R>[], document: unknown) => {
    await storeResults(storePath, o.store.kind, entries);
    if (o.json !== undefined) await writeAtomic(o.json, `${JSON.stringify(document, null, 1)}\n`);
    return `Stored in ${storePath}${o.json === undefined ? '' : ` and ${o.json}`}.`;
  };
  return {run, engine, test, finish};
}
