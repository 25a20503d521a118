/**
 * GAN run checkpoints: both networks, both Adam states and the step, written
 * and swapped in atomically as training checkpoints are
 * (../io/checkpoint_dirs.ts). Layout of `<runDir>/checkpoint/`:
 *
 * - `generator/`, `discriminator/`: `model.json` + `weights.bin` each, as
 *   `model.save(fileSystem(dir))` writes them (every weight, the running
 *   state included: BatchNorm statistics, SN's power-iteration vectors,
 *   ConvNorm's running V), so `tfl.loadLayersModel` reads either;
 * - `adam.bin`: the generator's Adam moments m then v, then the
 *   discriminator's, float32, in trainable-weight order;
 * - `state.json`, written last: the step, the run configuration, the Adam
 *   step counts and the manifests.
 *
 * The random stream's position is the step: every draw of a GAN run (real
 * batches, noise) derives from the seed and the step (see gan_trainer.ts).
 */
import {readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';

import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import {canonicalJson} from '../common/canonical_json.js';
import {commitCheckpoint, fileSize, locateCheckpoint, recoverCheckpoint} from '../io/checkpoint_dirs.js';
import {fileSystem, readModelJson} from '../io/file_system.js';
import type {GanStep} from '../gan/step.js';
import {
  byteSize, checkArchitecture, DatasetInfo, decodeTensors, describeWeights, RunConfig, tensorFile,
  TrainError, WeightEntry,
} from './checkpoint.js';

const FORMAT = 'convnorm-gan-checkpoint';
const VERSION = 1;
const STATE_JSON = 'state.json';
const ADAM_BIN = 'adam.bin';
const NETWORKS = ['generator', 'discriminator'] as const;

/** Everything that determines a GAN run's weights, compared on resume. */
export interface GanRunConfig {
  generator: RunConfig['model'];
  discriminator: RunConfig['model'];
  data: DatasetInfo;
  batchSize: number;
  nDis: number;
  lr: number;
  betas: [number, number];
  /** 'linear': lr (1 - step / steps), Mimicry's linear decay; then `steps` is part of the run. */
  lrDecay: 'none' | 'linear';
  /** The run's length, when the schedule depends on it (linear decay), else null. */
  decaySteps: number | null;
  seed: number;
}

export interface GanCheckpointState {
  format: typeof FORMAT;
  version: number;
  /** Generator steps completed (each after nDis discriminator steps). */
  step: number;
  /** The steps the run was asked for when this was written. */
  steps: number;
  config: GanRunConfig;
  adam: {generator: {steps: number; moments: WeightEntry[]}; discriminator: {steps: number; moments: WeightEntry[]}};
  /** Where the random streams stand: every draw derives from the seed and the step. */
  rng: {seed: number; step: number};
  backend: string;
  savedAt: string;
}

const byStep = (state: GanCheckpointState) => state.step;

async function readComplete(dir: string): Promise<GanCheckpointState | null> {
  try {
    const state = JSON.parse(await readFile(join(dir, STATE_JSON), 'utf8')) as GanCheckpointState;
    if (state?.format !== FORMAT || !(state.version <= VERSION) || !Number.isInteger(state.step)) return null;
    for (const net of NETWORKS) {
      if (await fileSize(join(dir, net, 'weights.bin')) !== byteSize(state.config[net].weights)) return null;
      if (await fileSize(join(dir, net, 'model.json')) === null) return null;
    }
    const adam = byteSize([...state.adam.generator.moments, ...state.adam.discriminator.moments]);
    if (await fileSize(join(dir, ADAM_BIN)) !== adam) return null;
    return state;
  } catch {
    return null;
  }
}

/** The latest complete GAN checkpoint of a run (read-only), or null. */
export async function readGanCheckpoint(runDir: string): Promise<(GanCheckpointState & {dir: string}) | null> {
  const found = await locateCheckpoint(runDir, readComplete, byStep);
  return found === null ? null : {...found.state, dir: found.dir};
}

/** Makes checkpoint/ the latest complete GAN checkpoint, deleting leftovers; its state, or null. */
export function recoverGanCheckpoint(runDir: string): Promise<GanCheckpointState | null> {
  return recoverCheckpoint(runDir, readComplete, byStep);
}

/** The moments' manifest: each trainable weight's entry, twice (m, then v). */
function momentEntries(model: tfl.LayersModel): WeightEntry[] {
  const described = describeWeights(model);
  const position = new Map(model.weights.map((w, i) => [w, i]));
  const entries = model.trainableWeights.map(w => described[position.get(w)!]);
  return [...entries, ...entries];
}

export async function saveGanCheckpoint(runDir: string, g: tfl.LayersModel, d: tfl.LayersModel, step: GanStep,
                                        info: {step: number; steps: number; config: GanRunConfig}): Promise<void> {
  const state: GanCheckpointState = {
    format: FORMAT, version: VERSION, step: info.step, steps: info.steps, config: info.config,
    adam: {generator: {steps: step.gOptimizer.steps, moments: momentEntries(g)},
           discriminator: {steps: step.dOptimizer.steps, moments: momentEntries(d)}},
    rng: {seed: info.config.seed, step: info.step},
    backend: tf.getBackend(), savedAt: new Date().toISOString(),
  };
  await commitCheckpoint(runDir, async dir => {
    await g.save(fileSystem(join(dir, 'generator')));
    await d.save(fileSystem(join(dir, 'discriminator')));
    await writeFile(join(dir, ADAM_BIN), await tensorFile([...step.gOptimizer.state(), ...step.dOptimizer.state()]));
  }, {name: STATE_JSON, text: `${JSON.stringify(state, null, 1)}\n`});
}

/** Throws CONFIG_MISMATCH (or ARCHITECTURE_MISMATCH) when `current` would not continue the run `saved` describes. */
export function checkSameGanRun(saved: GanRunConfig, current: GanRunConfig, where: string): void {
  checkArchitecture(saved.generator, current.generator, where);
  checkArchitecture(saved.discriminator, current.discriminator, where);
  const differences: string[] = [];
  for (const key of Object.keys(saved) as (keyof GanRunConfig)[]) {
    if (key === 'generator' || key === 'discriminator') continue;
    const [a, b] = [canonicalJson(saved[key] ?? null), canonicalJson(current[key] ?? null)];
    if (a !== b) differences.push(`${key}: ${a} in the checkpoint, ${b} now`);
  }
  if (differences.length > 0) {
    throw new TrainError('CONFIG_MISMATCH',
      `cannot resume the GAN run in ${where}, its settings differ:\n  ${differences.join('\n  ')}\n` +
      'resume with the same settings (only the number of steps may change, and not with linear decay), or start a new run');
  }
}

async function loadNetwork(model: tfl.LayersModel, dir: string, entries: WeightEntry[]): Promise<void> {
  const weights = decodeTensors(await readFile(join(dir, 'weights.bin')), entries, join(dir, 'weights.bin'));
  try {
    model.setWeights(weights);
  } finally {
    tf.dispose(weights);
  }
}

/**
 * Loads the latest GAN checkpoint of `runDir` into the networks (after
 * checking that they are the checkpoint's architectures) and, when `step` is
 * given, both Adam states. Returns the checkpoint's state.
 */
export async function loadGanCheckpoint(runDir: string, g: tfl.LayersModel, d: tfl.LayersModel,
                                        options: {generatorSpec?: Record<string, unknown>;
                                                  discriminatorSpec?: Record<string, unknown>; step?: GanStep} = {}):
    Promise<GanCheckpointState> {
  const found = await locateCheckpoint(runDir, readComplete, byStep);
  if (found === null) throw new TrainError('NO_CHECKPOINT', `there is no complete GAN checkpoint in ${runDir}`);
  const {dir, state} = found;
  checkArchitecture(state.config.generator, {name: g.name, spec: options.generatorSpec ?? null, weights: describeWeights(g)}, runDir);
  checkArchitecture(state.config.discriminator, {name: d.name, spec: options.discriminatorSpec ?? null,
                                                 weights: describeWeights(d)}, runDir);
  // The weights are read from weights.bin by name; a model.json pointing elsewhere is refused all the same.
  for (const net of NETWORKS) await readModelJson(join(dir, net, 'model.json'));
  await loadNetwork(g, join(dir, 'generator'), state.config.generator.weights);
  await loadNetwork(d, join(dir, 'discriminator'), state.config.discriminator.weights);
  if (options.step !== undefined) {
    const {generator: ga, discriminator: da} = state.adam;
    const moments = decodeTensors(await readFile(join(dir, ADAM_BIN)), [...ga.moments, ...da.moments], join(dir, ADAM_BIN));
    try {
      options.step.gOptimizer.setState(moments.slice(0, ga.moments.length), ga.steps);
      options.step.dOptimizer.setState(moments.slice(ga.moments.length), da.steps);
    } finally {
      tf.dispose(moments);
    }
  }
  return state;
}
