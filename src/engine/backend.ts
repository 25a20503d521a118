/**
 * useBackend for a page (or any JS runtime without Node's threads): picks the
 * fastest tfjs backend the app has loaded (webgpu, webgl, wasm, cpu) or the
 * one named, and installs what the engine can install there. The backends
 * themselves come from the app's imports (`@tensorflow/tfjs` brings webgl and
 * cpu; `@tensorflow/tfjs-backend-webgpu` and `@tensorflow/tfjs-backend-wasm`
 * are packages of their own), so this module loads none of them.
 *
 * On wasm the engine installs its training kernels and the SIMD module,
 * compiled asynchronously as a page's main thread requires. tfjs-backend-wasm
 * runs its own threads where the page is cross-origin isolated; the SIMD
 * module's helper threads are Node workers (node/simd_helpers.ts), so in a
 * page its kernels run on the calling thread. The Node entry (`convnorm/node`)
 * exports a useBackend of its own with tfjs-node and threads.
 */
import * as tf from '@tensorflow/tfjs-core';

import {installEngine} from './install.js';
import {prepareSimdKernels, wasmMemoryShared} from './simd.js';

/** The backends a page can use, fastest first. */
export const BROWSER_BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BrowserBackendName = (typeof BROWSER_BACKENDS)[number];

/** What useBackend set up, for an app to show. */
export interface EngineInfo {
  /** The tfjs backend running. */
  backend: string;
  /** On wasm: whether the SIMD module runs, and why not when it does not. */
  simdModule?: {running: boolean; reason?: string};
  /**
   * On wasm: whether tfjs-backend-wasm runs its threaded build (on shared
   * memory), which a page gets when it is cross-origin isolated, and why not.
   */
  wasmThreads?: {running: boolean; reason?: string};
}

let info: EngineInfo | undefined;

/** What the last useBackend call set up (undefined before one). */
export function engineInfo(): EngineInfo | undefined {
  return info;
}

const MISSING: Record<BrowserBackendName, string> = {
  webgpu: "import '@tensorflow/tfjs-backend-webgpu' (and serve the page from https or localhost)",
  webgl: "import '@tensorflow/tfjs' or '@tensorflow/tfjs-backend-webgl'",
  wasm: "import '@tensorflow/tfjs-backend-wasm' and call its setWasmPaths with where its .wasm files are served",
  cpu: "import '@tensorflow/tfjs' or '@tensorflow/tfjs-backend-cpu'",
};

/**
 * Switches tfjs to the named backend, or to the fastest one loaded that
 * starts, installs the engine's kernels, and returns the backend's name.
 * Throws, saying for each backend tried why it could not start, when none can.
 */
export async function useBackend(name?: BrowserBackendName): Promise<BrowserBackendName> {
  if (name !== undefined && !BROWSER_BACKENDS.includes(name)) {
    throw new Error(`unknown backend '${name}'; choose one of ${BROWSER_BACKENDS.join(', ')}`);
  }
  const candidates = name === undefined ? [...BROWSER_BACKENDS] : [name];
  const failed: string[] = [];
  for (const candidate of candidates) {
    if (tf.findBackendFactory(candidate) === null) {
      failed.push(`${candidate} (not loaded: ${MISSING[candidate]})`);
      continue;
    }
    let started = false;
    try {
      started = await tf.setBackend(candidate);
    } catch (e) {
      failed.push(`${candidate} (${(e as Error).message})`);
      continue;
    }
    if (!started) {
      failed.push(`${candidate} (it did not start here)`);
      continue;
    }
    await tf.ready();
    installEngine();
    info = {backend: candidate};
    if (candidate === 'wasm') {
      const reason = await prepareSimdKernels(tf.backend());
      info.simdModule = reason === null ? {running: true} : {running: false, reason};
      const isolated = (globalThis as {crossOriginIsolated?: boolean}).crossOriginIsolated === true;
      info.wasmThreads = wasmMemoryShared(tf.backend()) === true ? {running: true} : {running: false, reason: isolated
        ? 'this engine lacks WebAssembly threads' : 'the page is not cross-origin isolated (it needs COOP: same-origin and COEP: require-corp)'};
    }
    return candidate;
  }
  throw new Error(`no tfjs backend could start: tried ${failed.join('; ')}`);
}
