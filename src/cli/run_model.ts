/**
 * A run directory opened for the commands that read one (eval, attack,
 * spectrum): its latest checkpoint's model rebuilt and loaded, and the
 * dataset and normalization it was trained with (from experiment.json, or
 * named by the caller for runs made through the library).
 */
import {readFileSync} from 'node:fs';
import {join} from 'node:path';

import * as tfl from '@tensorflow/tfjs-layers';

import type {Normalization} from '../data/batches.js';
import {DATASET_NAMES, DatasetName} from '../data/load.js';
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
