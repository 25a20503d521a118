/**
 * Backend selection in Node. tfjs-node is used when the user has installed it
 * (it is never a dependency: its install downloads libtensorflow); otherwise
 * wasm (XNNPACK, fast forward convolutions), multi-threaded, with the engine's
 * training kernels, its SIMD module and the module's helper threads; and cpu
 * (pure JS) last. A page uses engine/backend.ts instead.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers them all.
import '@tensorflow/tfjs-layers';

import os from 'node:os';
import v8 from 'node:v8';

import {installEngine} from '../engine/install.js';
import {relaxedSimdValidates, setFusedMultiplyAdd} from '../engine/simd.js';
import {startSimdHelpers} from './simd_helpers.js';
import {startWasm} from './wasm_threads.js';

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

async function loadNodeBackend(): Promise<boolean> {
  // A variable specifier keeps TypeScript and bundlers from requiring the optional package.
  const name = '@tensorflow/tfjs-node';
  try {
    await import(name);
    return tf.findBackendFactory('tensorflow') !== null;
  } catch {
    return false;
  }
}

export interface UseBackendOptions {
  /**
   * Threads of the wasm backend (it picks its count once, when it first
   * starts). Default: the CONVNORM_WASM_THREADS environment variable, else the
   * number of CPU cores, at most 4. 1 runs the single-threaded build.
   */
  wasmThreads?: number;
  /**
   * Whether the SIMD module's matrix products use fused multiply-adds (relaxed
   * SIMD; about twice the multiply-add throughput, and one rounding per term
   * instead of two). Node 20 has relaxed SIMD behind a V8 flag, which is then
   * set for the process: it only lets WebAssembly modules use the extra
   * instructions. Default: true, unless the CONVNORM_FMA environment variable
   * is 0. Chosen once, before the first SIMD kernel runs.
   */
  fusedMultiplyAdd?: boolean;
}

let wasmThreads: number | undefined;

/** Threads the wasm backend runs (undefined until it has started). */
export function wasmThreadCount(): number | undefined {
  return wasmThreads;
}

/** Lets this process's WebAssembly use relaxed SIMD when the engine has it behind a flag (Node 20). */
function allowRelaxedSimd(): void {
  if (relaxedSimdValidates()) return;
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
}

function defaultWasmThreads(): number {
  const fromEnv = Number(process.env.CONVNORM_WASM_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv >= 1) return fromEnv;
  return Math.max(1, Math.min(4, os.cpus().length));
}

/**
 * Switches tfjs to the named backend, or to the fastest available, and returns
 * its name. Throws, naming the backends tried, when none can start.
 */
export async function useBackend(name?: BackendName, options: UseBackendOptions = {}): Promise<BackendName> {
  if (name !== undefined && !BACKENDS.includes(name)) {
    throw new Error(`unknown backend '${name}'; choose one of ${BACKENDS.join(', ')}`);
  }
  installEngine();
  const candidates = name === undefined ? [...BACKENDS] : [name];
  const failed: string[] = [];
  for (const candidate of candidates) {
    if (candidate === 'tensorflow' && !(await loadNodeBackend())) {
      failed.push('tensorflow (@tensorflow/tfjs-node is not installed)');
      continue;
    }
    if (candidate === 'wasm') {
      const fma = options.fusedMultiplyAdd ?? process.env.CONVNORM_FMA !== '0';
      if (fma) allowRelaxedSimd();
      setFusedMultiplyAdd(fma);
      if (wasmThreads === undefined) {
        try {
          wasmThreads = await startWasm(options.wasmThreads ?? defaultWasmThreads());
        } catch {
          failed.push('wasm');
          continue;
        }
      }
    }
    if (await tf.setBackend(candidate)) {
      await tf.ready();
      // The SIMD module's batched products share their entries with one helper per extra thread.
      if (candidate === 'wasm') await startSimdHelpers(tf.backend(), (wasmThreads ?? 1) - 1);
      return candidate;
    }
    failed.push(candidate);
  }
  throw new Error(`no tfjs backend could start: tried ${failed.join('; ')}`);
}
