/**
 * The engine's fingerprint: a SHA-256 of the small CNN's weights and logits
 * after a few SGD steps on wasm at one thread, the set-up the study grids
 * train with, per norm. A ConvNorm run of 15 epochs is chaotic under a change
 * of summation order (one in the transform kernels moved cifar-noise's runs
 * by up to 3 points), so any change to the engine's arithmetic makes the
 * committed study records stale; the fingerprint is how a test notices.
 *
 *   node --import tsx test/helpers/engine_fingerprint.ts          prints the fingerprints
 *   node --import tsx test/helpers/engine_fingerprint.ts --write  writes them into the fixture
 */
import {createHash} from 'node:crypto';
import {readFileSync, renameSync, writeFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';

import * as tf from '@tensorflow/tfjs-core';

import {simdKernels} from '../../src/engine/simd.js';
import type {NormKind} from '../../src/models/blocks.js';
import {buildModel} from '../../src/models/build.js';
import {TrainStep} from '../../src/training/step.js';
import {useTestBackend} from './backends.js';
import {runIfScript} from './child_process.js';
import {rng} from './random.js';

export const FINGERPRINT_FILE = fileURLToPath(new URL('../fixtures/engine-fingerprint.json', import.meta.url));

/** The norms the study grids train (OCNN is BN plus a penalty of tfjs ops). */
export const FINGERPRINT_NORMS: NormKind[] = ['bn', 'convnorm', 'sn', 'oni'];

export interface EngineFingerprint {
  /** Whether the SIMD module's products were fused multiply-adds (relaxed SIMD), which changes every product's rounding. */
  fusedMultiplyAdd: boolean;
  /** Hex SHA-256 per norm. */
  norms: Record<string, string>;
}

export interface FingerprintFile extends EngineFingerprint {
  /** Why the file exists and what to do when the test fails. */
  about: string;
  /** The committed records (folders under the repository) whose runs this engine trained. */
  records: Record<string, string>;
}

/**
 * Three steps of a batch of 128 CIFAR-shaped random images (the studies'
 * batch size, so that the kernels take the same blocking), then the
 * inference-mode logits, which read the running statistics (BN's, ConvNorm's
 * running V).
 */
function fingerprintOf(norm: NormKind): string {
  const model = buildModel({architecture: 'small-cnn', norm, numClasses: 10, inputShape: [32, 32, 3], seed: 3});
  const step = new TrainStep(model, {learningRate: 0.02, momentum: 0.9, weightDecay: 1e-4});
  const next = rng(11);
  const batch = 128;
  const x = tf.tensor4d(Float32Array.from({length: batch * 32 * 32 * 3}, () => 4 * next() - 2), [batch, 32, 32, 3]);
  const labels = tf.tensor1d(Int32Array.from({length: batch}, () => Math.floor(10 * next())), 'int32');
  try {
    for (let s = 0; s < 3; s++) step.step(x, labels);
    const hash = createHash('sha256');
    for (const w of model.weights) hash.update(new Uint8Array((w.read().dataSync() as Float32Array).buffer));
    const logits = tf.tidy(() => model.predict(x) as tf.Tensor);
    hash.update(new Uint8Array((logits.dataSync() as Float32Array).buffer));
    logits.dispose();
    return hash.digest('hex');
  } finally {
    tf.dispose([x, labels]);
    step.dispose();
    model.dispose();
  }
}

/** The fingerprints of this process's wasm engine (started at one thread by useTestBackend). */
export async function engineFingerprint(): Promise<EngineFingerprint> {
  await useTestBackend('wasm');
  const kernels = simdKernels(tf.backend());
  if (kernels === undefined) throw new Error('the engine\'s SIMD module did not start on wasm');
  const norms: Record<string, string> = {};
  for (const norm of FINGERPRINT_NORMS) norms[norm] = fingerprintOf(norm);
  return {fusedMultiplyAdd: kernels.fusedMultiplyAdd, norms};
}

export function readFingerprintFile(): FingerprintFile {
  return JSON.parse(readFileSync(FINGERPRINT_FILE, 'utf8')) as FingerprintFile;
}

runIfScript(import.meta.url, async () => {
  const current = await engineFingerprint();
  if (!process.argv.includes('--write')) {
    console.log(JSON.stringify(current, null, 2));
    return;
  }
  const file = {...readFingerprintFile(), ...current};
  writeFileSync(FINGERPRINT_FILE + '.tmp', JSON.stringify(file, null, 2) + '\n');
  renameSync(FINGERPRINT_FILE + '.tmp', FINGERPRINT_FILE);
  console.log(`wrote ${FINGERPRINT_FILE}`);
});
