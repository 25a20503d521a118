/**
 * The multi-threaded wasm backend in Node. tfjs-backend-wasm 4.22 ships a
 * threaded build but never starts it in Node: its feature flag says no, it
 * hands Emscripten's pthread pool a blob: URL for the worker script and a Blob
 * for the main script (Node's worker_threads take neither), and the C++ side
 * caps the pool at half the logical cores. These shims, all undone if start-up
 * fails, work against that exact version (pinned in package.json):
 * - `globalThis.Worker` (which Emscripten uses to spawn pthreads) starts
 *   workers from tfjs's embedded worker source and sends them the path of the
 *   threaded module instead of a Blob; workers stay unref'd so that they do
 *   not keep the process alive;
 * - `os.cpus()` reports twice the requested thread count while the module
 *   initializes, so the cap lets the pool have that many threads.
 */
import {createRequire} from 'node:module';
import os from 'node:os';
import {Worker as NodeWorker, WorkerOptions} from 'node:worker_threads';

import * as tf from '@tensorflow/tfjs-core';
import {getThreadsCount, setThreadsCount} from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);
const WASM_OUT = '@tensorflow/tfjs-backend-wasm/wasm-out/';

function installWorkerShim(): () => void {
  const {wasmWorkerContents} = require(`${WASM_OUT}tfjs-backend-wasm-threaded-simd.worker.js`) as
    {wasmWorkerContents: string};
  const mainScript = require.resolve(`${WASM_OUT}tfjs-backend-wasm-threaded-simd.js`);
  // tfjs escapes the newlines the same way before making its Blob.
  const source = wasmWorkerContents.replace(/\n/g, '\\n');
  class PthreadWorker extends NodeWorker {
    constructor(path: string | URL, options?: WorkerOptions) {
      if (typeof path === 'string' && path.startsWith('blob:')) {
        super(source, {...options, eval: true});
      } else {
        super(path, options);
      }
      this.unref();
    }
    // Emscripten refs a worker while its thread runs, and XNNPACK's pool threads run for the
    // life of the module: the process would never exit. All wasm work is synchronous on the
    // main thread, so an idle event loop means the pool has nothing left to do.
    override ref(): void {}
    override postMessage(message: unknown, transfer?: readonly Transferable[]): void {
      const m = message as {cmd?: string; urlOrBlob?: unknown};
      const rewritten = m?.cmd === 'load' && typeof m.urlOrBlob !== 'string' ? {...m, urlOrBlob: mainScript} : message;
      super.postMessage(rewritten, transfer as never);
    }
  }
  const previous = Object.getOwnPropertyDescriptor(globalThis, 'Worker');
  // Emscripten assigns Node's Worker to the global at start-up; the setter keeps ours in place.
  Object.defineProperty(globalThis, 'Worker', {configurable: true, get: () => PthreadWorker, set: () => {}});
  return () => {
    if (previous === undefined) delete (globalThis as {Worker?: unknown}).Worker;
    else Object.defineProperty(globalThis, 'Worker', previous);
  };
}

/**
 * Starts tfjs's wasm backend with `threads` threads (1: the single-threaded
 * build). Falls back to one thread when the threaded build cannot start
 * (no SharedArrayBuffer, worker_threads unavailable, ...). Returns the number
 * of threads the backend runs.
 */
export async function startWasm(threads: number): Promise<number> {
  if (threads > 1 && typeof SharedArrayBuffer === 'function') {
    const removeShim = installWorkerShim();
    const cpus = os.cpus;
    os.cpus = () => Array.from({length: 2 * threads}, () => cpus()[0]);
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    setThreadsCount(threads);
    let started = false;
    try {
      started = await tf.setBackend('wasm');
    } catch {
      started = false;
    } finally {
      os.cpus = cpus;
    }
    if (started) return getThreadsCount();
    removeShim();
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to start');
  return 1;
}
