/**
 * Helper threads for the SIMD module: Node workers that instantiate the same
 * module on the same shared memory and take a share of a kernel's work (the
 * entries of a batch of products), woken and awaited through Atomics on a
 * small control block. tfjs's own thread pool is busy only inside its
 * kernels, so the helpers and it take turns on the cores. Without shared
 * memory (single-threaded wasm) there are no helpers and the kernels run on
 * the calling thread.
 */
import {Worker} from 'node:worker_threads';

import type * as tf from '@tensorflow/tfjs-core';

import {HELPER_FUNCTIONS, HelperFunction, simdKernels, WorkSharing} from '../engine/simd.js';

/** Per helper: sequence number, done (= sequence, or its negative on failure), function, arity, arguments. */
const SLOTS = 24;
const [SEQUENCE, DONE, FUNCTION, ARITY, ARGUMENTS] = [0, 1, 2, 3, 4];

const WORKER_SOURCE = `
const {workerData} = require('node:worker_threads');
const {module, memory, control, base, names} = workerData;
const instance = new WebAssembly.Instance(module, {env: {memory}});
const functions = names.map(name => instance.exports[name]);
const slots = new Int32Array(control);
let seen = 0;
for (;;) {
  Atomics.wait(slots, base + ${SEQUENCE}, seen);
  const sequence = Atomics.load(slots, base + ${SEQUENCE});
  if (sequence === seen) continue;
  seen = sequence;
  let status = sequence;
  try {
    const args = Array.from(slots.subarray(base + ${ARGUMENTS}, base + ${ARGUMENTS} + slots[base + ${ARITY}]));
    functions[slots[base + ${FUNCTION}]](...args);
  } catch (e) {
    status = -sequence;
  }
  Atomics.store(slots, base + ${DONE}, status);
  Atomics.notify(slots, base + ${DONE});
}
`;

export class SimdHelpers implements WorkSharing {
  private sequence = 0;

  private constructor(private readonly slots: Int32Array, readonly count: number) {}

  /**
   * Starts `count` helpers on `memory` (shared) running `module`; resolves
   * once each has instantiated it.
   */
  static async start(module: WebAssembly.Module, memory: WebAssembly.Memory, count: number): Promise<SimdHelpers> {
    const control = new SharedArrayBuffer(4 * SLOTS * count);
    await Promise.all(Array.from({length: count}, (_, i) => new Promise<void>((resolve, reject) => {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true, workerData: {module, memory, control, base: i * SLOTS, names: HELPER_FUNCTIONS}});
      worker.once('online', () => {
        // Blocked in Atomics.wait between jobs from now on: it must not keep the process alive.
        worker.unref();
        resolve();
      });
      worker.once('error', reject);
    })));
    return new SimdHelpers(new Int32Array(control), count);
  }

  /**
   * Runs `fn(...argsOf(part), first, last)` over [0, items), split into equal
   * ranges between `here` (the calling thread's share, the first, part 0) and
   * the helpers (parts 1, 2, ...).
   */
  split(fn: HelperFunction, argsOf: (part: number) => number[], items: number,
        here: (first: number, last: number) => void): void {
    const parts = this.count + 1;
    const bounds = Array.from({length: parts + 1}, (_, p) => Math.round((items * p) / parts));
    const jobs = Array.from({length: this.count}, (_, h) => [...argsOf(h + 1), bounds[h + 1], bounds[h + 2]]);
    if (jobs.some(full => full.length > SLOTS - ARGUMENTS)) throw new Error(`${fn}: too many arguments for a helper`);
    const sequence = ++this.sequence;
    for (let h = 0; h < this.count; h++) {
      const base = h * SLOTS;
      const full = jobs[h];
      this.slots[base + FUNCTION] = HELPER_FUNCTIONS.indexOf(fn);
      this.slots[base + ARITY] = full.length;
      this.slots.set(full, base + ARGUMENTS);
      Atomics.store(this.slots, base + SEQUENCE, sequence);
      Atomics.notify(this.slots, base + SEQUENCE);
    }
    let failure: unknown;
    try {
      here(bounds[0], bounds[1]);
    } catch (e) {
      failure = e;
    }
    // Every helper finishes this job before anything is thrown: the next job rewrites their slots.
    let helperFailed = false;
    for (let h = 0; h < this.count; h++) {
      const at = h * SLOTS + DONE;
      for (;;) {
        const done = Atomics.load(this.slots, at);
        if (done === sequence || done === -sequence) {
          helperFailed ||= done === -sequence;
          break;
        }
        Atomics.wait(this.slots, at, done, 1000);
      }
    }
    if (failure !== undefined) throw failure;
    if (helperFailed) throw new Error(`a SIMD helper thread failed in ${fn}`);
  }
}

/**
 * Starts `count` helper threads for the SIMD kernels on `backend` (the wasm
 * backend on a shared memory; otherwise there is nothing to share and this
 * does nothing). Idempotent. Returns the number of helpers running.
 */
export async function startSimdHelpers(backend: tf.KernelBackend, count: number): Promise<number> {
  const kernels = simdKernels(backend);
  if (kernels === undefined || count < 1) return 0;
  if (kernels.helpers === undefined) {
    const shared = typeof SharedArrayBuffer === 'function' && kernels.memory.buffer instanceof SharedArrayBuffer;
    if (!shared) return 0;
    kernels.helpers = await SimdHelpers.start(kernels.compiled, kernels.memory, count);
  }
  return kernels.helpers.count;
}
