/**
 * The GAN training loop: SNGAN's step (n_dis hinge-loss discriminator
 * updates, one generator update, Adam) for a number of generator steps,
 * with metrics as JSON lines, sample grids from a fixed noise batch, scores
 * on a feature network, and atomic checkpoints from which a run resumes
 * bitwise exactly.
 *
 * Every random draw derives from the seed and the step, so a step depends
 * only on the weights and optimizer state at its start: discriminator update
 * k of step s takes real batch r = s n_dis + k of the stream of shuffled
 * passes over the data (pass p = floor(r / B) shuffled by
 * `Rng.derive(seed, 1, p)`, B full batches per pass, the incomplete one
 * dropped), and noise `Rng.derive(seed, 2, s, k)` (k = n_dis: the
 * generator's). The sample grid's noise is `Rng.derive(seed, 3)`; scores
 * draw their noise from `Rng.derive(seed, 4)` and their subset of real
 * images from `Rng.derive(seed, 6)` (SCORE_SEEDS), so that `gan-eval` of a
 * checkpoint repeats the run's own scores.
 */
import {appendFile, mkdir} from 'node:fs/promises';
import {join} from 'node:path';

import cliProgress from 'cli-progress';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import {datasetSize, ImageDataset} from '../data/dataset.js';
import {Rng} from '../data/random.js';
import {gaussianNoise, GanScores, realBatch, realStatistics, scoreGenerator} from '../gan/evaluate.js';
import type {FeatureNetwork} from '../gan/features.js';
import type {FeatureStatistics} from '../gan/scores.js';
import {GanStep} from '../gan/step.js';
import {writeAtomic} from '../io/file_system.js';
import {imageGridPng} from '../io/png.js';
import {describeDataset, describeWeights, TrainError} from './checkpoint.js';
import {
  checkSameGanRun, GanRunConfig, loadGanCheckpoint, recoverGanCheckpoint, saveGanCheckpoint,
} from './gan_checkpoint.js';
import {METRICS_FILE, prepareRunDir, progressOutput, recoverMetrics} from './run_dir.js';
import type {ProgressMode} from './trainer.js';

export const SAMPLES_DIR = 'samples';
export const SCORES_FILE = 'scores.json';

/** One line of a GAN run's metrics.jsonl. */
export interface GanRecord {
  /** Generator steps completed. */
  step: number;
  /** The learning rate of this step. */
  lr: number;
  /** Mean discriminator loss (over every D update since the previous record). */
  dLoss: number;
  /** Mean generator loss since the previous record. */
  gLoss: number;
  /** Generator steps the means cover. */
  steps: number;
  /** Wall time of those steps (not checkpoints, samples or scores), seconds. */
  seconds: number;
  /** Seconds per generator step (with its n_dis discriminator steps). */
  secondsPerStep: number;
  /** The scores at this step, when computed, under their labels. */
  scores?: GanScores;
}

/** The scoring set-up: a feature network and the real images' statistics on it. */
export interface GanScorer {
  network: FeatureNetwork;
  real: FeatureStatistics;
  /** Generated images per score. */
  samples: number;
  /** What the statistics are of, for scores.json, e.g. '2000 training images of mnist-embedded'. */
  realDescription: string;
}

/** The seeds of a run's scores: the generator's noise and the subset of real images. */
export function scoreSeeds(seed: number): {noise: number; real: number} {
  return {noise: Rng.derive(seed, 4).getState(), real: Rng.derive(seed, 6).getState()};
}

/** A scorer on `network`: the statistics of `samples` training images (all of them when fewer), the run's subset. */
export async function ganScorer(network: FeatureNetwork, data: ImageDataset,
                                options: {samples: number; batchSize: number; seed: number}): Promise<GanScorer> {
  const count = Math.min(options.samples, datasetSize(data));
  const real = await realStatistics(network, data, {count, batchSize: options.batchSize, seed: scoreSeeds(options.seed).real});
  return {network, real, samples: options.samples, realDescription: `${count} training images of ${data.name}`};
}

/** Scores of `generator` as `scores.json` (and gan-eval's file) store them. */
export async function scoreDocument(generator: tfl.LayersModel, scorer: GanScorer,
                                    options: {step: number; batchSize: number; seed: number}): Promise<{
    step: number; scores: GanScores; samples: number; real: string; note: string}> {
  const scores = await scoreGenerator(generator, scorer.network, scorer.real,
                                      {samples: scorer.samples, batchSize: options.batchSize, seed: scoreSeeds(options.seed).noise});
  return {step: options.step, scores, samples: scorer.samples, real: scorer.realDescription,
          note: 'scores under their feature network\'s labels: FID and IS only when that network is Inception-v3'};
}

export interface GanTrainOptions {
  generator: tfl.LayersModel;
  discriminator: tfl.LayersModel;
  /** How each network was built (JSON), stored in checkpoints so that `gan-eval` can rebuild them. */
  generatorSpec?: Record<string, unknown>;
  discriminatorSpec?: Record<string, unknown>;
  /** The real images; their labels are not used. */
  data: ImageDataset;
  /** Generator steps in all (on resume: may be more than before, unless lrDecay is 'linear'). */
  steps: number;
  /** Default 64. */
  batchSize?: number;
  /** Discriminator updates per generator update. Default 5. */
  nDis?: number;
  /** Default 2e-4. */
  lr?: number;
  /** Default [0, 0.9]. */
  betas?: [number, number];
  /** 'linear': lr (1 - s / steps) at step s, as Mimicry's; default 'none'. */
  lrDecay?: 'none' | 'linear';
  seed: number;
  runDir: string;
  resume?: boolean;
  overwrite?: boolean;
  /** Files written into a fresh run directory (name -> text). */
  runFiles?: Record<string, string>;
  /** A metrics line every this many steps (default 10); also at every checkpoint, score and the last step. */
  logEvery?: number;
  /** A checkpoint every this many steps (default 100) and at the last step. */
  checkpointEvery?: number;
  /** A sample grid (samples/step-NNNNNN.png) every this many steps and at the last; 0 = only at the last. Default 0. */
  sampleEvery?: number;
  /** Images in the sample grid. Default 64. */
  sampleCount?: number;
  /** Scores every this many steps and at the last (0 = only at the last), when a scorer is given. */
  scoreEvery?: number;
  scorer?: GanScorer;
  /** Called after each step (and its checkpoint, samples and scores); awaited. */
  onStep?: (step: number, record: {dLoss: number; gLoss: number}) => void | Promise<void>;
  /** Where progress goes. Default process.stderr; null = silent. */
  log?: NodeJS.WritableStream | null;
  progress?: ProgressMode;
}

export interface GanTrainResult {
  runDir: string;
  steps: number;
  resumedFrom: number;
  history: GanRecord[];
  /** The last step's scores, when a scorer was given. */
  scores?: GanScores;
}

function fail(message: string): never {
  throw new TrainError('BAD_OPTIONS', message);
}

function nonNegativeInteger(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0) fail(`${what} must be an integer >= 0, got ${value}`);
}

/** The learning rate of step s (0-based). */
export function ganLearningRate(lr: number, decay: 'none' | 'linear', s: number, steps: number): number {
  return decay === 'linear' ? lr * (1 - s / steps) : lr;
}

/** Real-batch indices of update k of step s (see the module comment). */
export class RealStream {
  private readonly perPass: number;
  private pass = -1;
  private order: Int32Array = new Int32Array(0);

  constructor(private readonly count: number, private readonly batchSize: number, private readonly seed: number,
              private readonly nDis: number) {
    this.perPass = Math.floor(count / batchSize);
  }

  indices(s: number, k: number): Int32Array {
    const r = s * this.nDis + k;
    const pass = Math.floor(r / this.perPass);
    if (pass !== this.pass) {
      this.pass = pass;
      this.order = Rng.derive(this.seed, 1, pass).permutation(this.count);
    }
    const at = (r % this.perPass) * this.batchSize;
    return this.order.subarray(at, at + this.batchSize);
  }
}

/** A GAN record as a log line. */
export function formatGanRecord(r: GanRecord, steps: number): string {
  const scores = r.scores === undefined ? ''
    : ' | ' + Object.entries(r.scores).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ');
  return `step ${r.step}/${steps} lr ${r.lr.toPrecision(3)} | D loss ${r.dLoss.toFixed(4)} G loss ${r.gLoss.toFixed(4)} | ` +
    `${(1 / r.secondsPerStep).toFixed(2)} steps/s${scores}`;
}

/**
 * Trains the generator and discriminator in place for `steps` generator
 * steps, writing `<runDir>/metrics.jsonl` (GanRecord lines), `checkpoint/`,
 * `samples/` and, with a scorer, `scores.json`. The run directory follows
 * `convnorm train`'s rules (fresh, `resume`, `overwrite`). Throws TrainError
 * for bad options, mismatched resumes and a loss that turns NaN (DIVERGED,
 * keeping the last checkpoint).
 */
export async function trainGan(options: GanTrainOptions): Promise<GanTrainResult> {
  const o = options;
  const {generator: g, discriminator: d, data, steps, seed} = o;
  const batchSize = o.batchSize ?? 64;
  const nDis = o.nDis ?? 5;
  const lr = o.lr ?? 2e-4;
  const betas = o.betas ?? [0, 0.9];
  const lrDecay = o.lrDecay ?? 'none';
  const logEvery = o.logEvery ?? 10;
  const checkpointEvery = o.checkpointEvery ?? 100;
  const sampleEvery = o.sampleEvery ?? 0;
  const sampleCount = o.sampleCount ?? 64;
  const scoreEvery = o.scoreEvery ?? 0;
  if (!Number.isInteger(steps) || steps < 1) fail(`steps must be an integer >= 1, got ${steps}`);
  if (!Number.isInteger(batchSize) || batchSize < 2) fail(`batchSize must be an integer >= 2, got ${batchSize}`);
  if (!Number.isInteger(nDis) || nDis < 1) fail(`nDis must be an integer >= 1, got ${nDis}`);
  if (!Number.isFinite(lr) || lr < 0) fail(`lr must be a finite number >= 0, got ${lr}`);
  if (!betas.every(b => b >= 0 && b < 1)) fail(`betas must be in [0, 1), got [${betas}]`);
  if (lrDecay !== 'none' && lrDecay !== 'linear') fail(`lrDecay must be 'none' or 'linear', got '${lrDecay}'`);
  if (!Number.isInteger(seed)) fail(`seed must be an integer, got ${seed}`);
  for (const [v, what] of [[logEvery, 'logEvery'], [checkpointEvery, 'checkpointEvery']] as const) {
    if (!Number.isInteger(v) || v < 1) fail(`${what} must be an integer >= 1, got ${v}`);
  }
  nonNegativeInteger(sampleEvery, 'sampleEvery');
  nonNegativeInteger(scoreEvery, 'scoreEvery');
  if (!Number.isInteger(sampleCount) || sampleCount < 1) fail(`sampleCount must be an integer >= 1, got ${sampleCount}`);
  if (o.resume && o.overwrite) fail('resume and overwrite exclude each other');
  if (typeof o.runDir !== 'string' || o.runDir === '') fail('runDir must name a directory');
  const imageShape = g.outputs[0].shape.slice(1) as number[];
  const dInput = d.inputs[0].shape.slice(1) as number[];
  if (!imageShape.every((x, i) => x === data.shape[i]) || !dInput.every((x, i) => x === data.shape[i])) {
    fail(`the generator makes [${imageShape}] images and the discriminator takes [${dInput}], the data '${data.name}' ` +
         `has [${data.shape}]`);
  }
  const count = datasetSize(data);
  if (count < batchSize) fail(`the data '${data.name}' has ${count} images, fewer than a batch of ${batchSize}`);
  if (o.scorer !== undefined) {
    const net = o.scorer.network.imageShape;
    if (!net.every((x, i) => x === data.shape[i])) fail(`the feature network takes [${net}] images, the data [${data.shape}]`);
    if (!Number.isInteger(o.scorer.samples) || o.scorer.samples < 2) fail(`scoring needs at least 2 samples, got ${o.scorer.samples}`);
  }
  const zDim = g.inputs[0].shape[1] as number;

  const config: GanRunConfig = {
    generator: {name: g.name, spec: o.generatorSpec ?? null, weights: describeWeights(g)},
    discriminator: {name: d.name, spec: o.discriminatorSpec ?? null, weights: describeWeights(d)},
    data: describeDataset(data), batchSize, nDis, lr, betas, lrDecay, decaySteps: lrDecay === 'linear' ? steps : null, seed,
  };
  const done = await prepareRunDir(o, async () => {
    const state = await recoverGanCheckpoint(o.runDir);
    if (state === null) return null;
    checkSameGanRun(state.config, config, o.runDir);
    return state.step;
  }, 'checkpoint');
  const history = done > 0 ? await recoverMetrics<GanRecord>(o.runDir, 'step', done) : [];
  const {stream, mode} = progressOutput(o.log, o.progress);
  const say = (text: string) => { if (mode !== 'none') stream!.write(`${text}\n`); };

  let stepLr = lr;
  const step = new GanStep({generator: g, discriminator: d, learningRate: () => stepLr, betas, nDis});
  const real = new RealStream(count, batchSize, seed, nDis);
  const sampleNoise = gaussianNoise(Rng.derive(seed, 3), sampleCount, zDim);
  let bar: cliProgress.SingleBar | undefined;
  let scores: GanScores | undefined;
  try {
    if (done > 0) {
      const state = await loadGanCheckpoint(o.runDir, g, d, {generatorSpec: o.generatorSpec,
                                                             discriminatorSpec: o.discriminatorSpec, step});
      if (state.backend !== tf.getBackend()) {
        say(`warning: the checkpoint was trained on the ${state.backend} backend, this is ${tf.getBackend()}: ` +
            'the continued run is not bitwise the uninterrupted one');
      }
    }
    say(`${done > 0 ? `resuming ${o.runDir} after step ${done}` : `GAN run ${o.runDir}`}: ${g.name} / ${d.name} on ` +
        `'${data.name}' (${count} images), ${steps} steps of ${nDis} D + 1 G update at batch ${batchSize}, ` +
        `Adam lr ${lr} betas (${betas})${lrDecay === 'linear' ? ' linear decay' : ''}, seed ${seed}`);
    if (mode === 'bar' && done < steps) {
      bar = new cliProgress.SingleBar({
        stream: stream as NodeJS.WriteStream,
        format: 'GAN [{bar}] {value}/{total} | D {d} G {g} | {speed} steps/s | ETA {eta_formatted}',
        barsize: 24, clearOnComplete: true, hideCursor: false, etaBuffer: 50, fps: 5,
      }, cliProgress.Presets.legacy);
      bar.start(steps, done, {d: '-', g: '-', speed: '-'});
    }
    const writeSamples = async (at: number) => {
      const images = tf.tidy(() => g.predict(sampleNoise) as tf.Tensor4D);
      try {
        const png = imageGridPng(await images.data(), sampleCount, data.shape);
        await mkdir(join(o.runDir, SAMPLES_DIR), {recursive: true});
        await writeAtomic(join(o.runDir, SAMPLES_DIR, `step-${String(at).padStart(6, '0')}.png`), png);
      } finally {
        images.dispose();
      }
    };
    let window = {d: 0, g: 0, steps: 0, seconds: 0};
    let lastLine = performance.now();
    const loopStarted = performance.now();
    for (let s = done; s < steps; s++) {
      stepLr = ganLearningRate(lr, lrDecay, s, steps);
      const started = performance.now();
      const result = await step.step(k => realBatch(data, real.indices(s, k)),
                                     k => gaussianNoise(Rng.derive(seed, 2, s, k), batchSize, zDim));
      if (!Number.isFinite(result.dLoss) || !Number.isFinite(result.gLoss)) {
        throw new TrainError('DIVERGED', `the losses are D ${result.dLoss}, G ${result.gLoss} at step ${s + 1} ` +
          '; the last checkpoint is kept');
      }
      window = {d: window.d + result.dLoss, g: window.g + result.gLoss, steps: window.steps + 1,
                seconds: window.seconds + (performance.now() - started) / 1000};
      const at = s + 1;
      const last = at === steps;
      const checkpoint = last || at % checkpointEvery === 0;
      const score = o.scorer !== undefined && (last || (scoreEvery > 0 && at % scoreEvery === 0));
      if (last || (sampleEvery > 0 && at % sampleEvery === 0)) await writeSamples(at);
      const scored = score ? await scoreDocument(g, o.scorer!, {step: at, batchSize, seed}) : undefined;
      const stepScores = scored?.scores;
      if (stepScores !== undefined) scores = stepScores;
      if (checkpoint || score || at % logEvery === 0) {
        const record: GanRecord = {
          step: at, lr: stepLr, dLoss: window.d / window.steps, gLoss: window.g / window.steps, steps: window.steps,
          seconds: window.seconds, secondsPerStep: window.seconds / window.steps,
          ...(stepScores === undefined ? {} : {scores: stepScores}),
        };
        // Metrics first: a line whose checkpoint never landed is dropped on resume and written again.
        await appendFile(join(o.runDir, METRICS_FILE), `${JSON.stringify(record)}\n`);
        history.push(record);
        window = {d: 0, g: 0, steps: 0, seconds: 0};
        if (mode === 'lines' && (performance.now() - lastLine > 10_000 || score || last)) {
          lastLine = performance.now();
          say(formatGanRecord(record, steps));
        }
      }
      if (checkpoint) await saveGanCheckpoint(o.runDir, g, d, step, {step: at, steps, config});
      if (scored !== undefined && last) await writeAtomic(join(o.runDir, SCORES_FILE), `${JSON.stringify(scored, null, 1)}\n`);
      bar?.update(at, {d: result.dLoss.toFixed(3), g: result.gLoss.toFixed(3),
                       speed: ((at - done) / ((performance.now() - loopStarted) / 1000)).toFixed(2)});
      await o.onStep?.(at, result);
    }
  } finally {
    bar?.stop();
    step.dispose();
    sampleNoise.dispose();
  }
  return {runDir: o.runDir, steps: Math.max(done, steps), resumedFrom: done, history, scores};
}
