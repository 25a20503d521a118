/**
 * The page the Chromium tests open (bundled by test/browser.test.ts with
 * esbuild): the package's built main entry as a web app gets it, every tfjs
 * backend a page can have, and `runReference(backend)`, which runs the
 * reference-fixture checks there and reports what it found.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import {getThreadsCount, setThreadsCount, setWasmPaths} from '@tensorflow/tfjs-backend-wasm';

import * as convnorm from '../../dist/index.js';
import type {ReferenceFixtures} from '../helpers/fixtures.js';
import {checkLayer, checkOp, Comparisons, ConvNormExports, Tolerances} from '../helpers/reference_checks.js';

/** The built entry has the source's shapes; its declarations are separate ones to TypeScript. */
const cn = convnorm as unknown as ConvNormExports;

setWasmPaths('/wasm/');
if ((globalThis as {crossOriginIsolated?: boolean}).crossOriginIsolated) setThreadsCount(navigator.hardwareConcurrency);

export interface ReferenceRun {
  backend: string;
  failures: string[];
  /** The largest relative error of the checks held to the value tolerance. */
  worst: number;
  info: convnorm.EngineInfo | undefined;
  /** tfjs-backend-wasm's threads, on wasm. */
  threads?: number;
  /** Tensors alive before and after the checks. */
  tensors: [number, number];
}

/** Runs the checks on `backend` with each of `methods` (the layer's 'auto' runs 'fourier' for all but 1x1 kernels). */
async function runReference(backend: convnorm.BrowserBackendName, tolerances: Tolerances,
                            methods: ('spatial' | 'fourier')[]): Promise<ReferenceRun> {
  const name = await convnorm.useBackend(backend);
  const ref = await (await fetch('/fixtures/convnorm-reference.json')).json() as ReferenceFixtures;
  const out = new Comparisons(tolerances.value);
  const before = tf.memory().numTensors;
  for (const method of methods) {
    await checkOp(cn, ref, method, out);
    await checkLayer(cn, ref, method, tolerances, out);
  }
  return {backend: name, failures: out.failures, worst: out.worst, info: convnorm.engineInfo(),
          threads: name === 'wasm' ? getThreadsCount() : undefined, tensors: [before, tf.memory().numTensors]};
}

(globalThis as unknown as {runReference: typeof runReference}).runReference = runReference;
