/**
 * The WebAssembly SIMD kernels of simd/kernels.c, instantiated on the wasm
 * backend's own memory (the module imports it), so they read and write
 * tensors in place. Kernels that find no module (another backend, a memory
 * the module cannot import, a browser that refuses synchronous compiles, or
 * `setSimdKernels(false)`) run their JS loops, or XNNPACK for the batched
 * products, instead.
 */
import * as tf from '@tensorflow/tfjs-core';

import {PLAIN_MEMORY_FMA_MODULE, PLAIN_MEMORY_MODULE, SHARED_MEMORY_FMA_MODULE, SHARED_MEMORY_MODULE} from
  './simd/kernels_wasm.js';

/** Kernels of the module whose work helper threads can share, by index (the helpers' protocol uses it). */
export const HELPER_FUNCTIONS = ['gemm_batch', 'gemm_rows', 'gemm_columns', 'normalize', 'gradient_input',
                                 'depthwise_filter', 'transpose_planes', 'elementwise', 'conv_filter_gradient',
                                 'conv_forward', 'image_to_spectrum', 'spectrum_to_image', 'max_pool_gradient',
                                 'spectral_product', 'spectral_tap_gradient', 'place_phase',
                                 'preconditioning_spectrum', 'image_to_spectrum_few_channels',
                                 'spectrum_to_image_few_channels'] as const;
export type HelperFunction = (typeof HELPER_FUNCTIONS)[number];

/**
 * Threads that take shares of a kernel's work on the same memory (in Node,
 * node/simd_helpers.ts; a page has none, and each kernel runs on its thread).
 */
export interface WorkSharing {
  /** Helper threads, beside the calling one. */
  readonly count: number;
  /**
   * Runs `fn(...argsOf(part), first, last)` over items [0, items): the helpers
   * take shares (parts 1, 2, ...), the calling thread its own (part 0) through
   * `here`; returns once all are done.
   */
  split(fn: HelperFunction, argsOf: (part: number) => number[], items: number,
        here: (first: number, last: number) => void): void;
}

/** The exports of kernels.c; every pointer is a byte offset into the backend's memory. */
export interface SimdExports {
  moments(x: number, rows: number, c: number, pivot: number, sums: number, squares: number): void;
  normalize(x: number, y: number, c: number, centre: number, scale: number, shift: number, first: number,
            last: number): void;
  gradient_sums(dy: number, x: number, rows: number, c: number, centre: number, sumDy: number,
                sumDyXc: number): void;
  gradient_input(dy: number, x: number, dx: number, c: number, a: number, slope: number, centre: number,
                 offset: number, first: number, last: number): void;
  sum_rows(x: number, rows: number, c: number, sums: number): void;
  depthwise_filter(x: number, dy: number, h: number, w: number, c: number, kh: number, kw: number, sh: number,
                   sw: number, ho: number, wo: number, top: number, left: number, partial: number, first: number,
                   last: number): void;
  conv_filter_gradient(x: number, dy: number, dw: number, n: number, h: number, w: number, ci: number, ho: number,
                       wo: number, co: number, kh: number, kw: number, sh: number, sw: number, top: number,
                       left: number, chunk: number, first: number, last: number): void;
  conv_forward(x: number, f: number, y: number, h: number, w: number, ci: number, ho: number, wo: number, co: number,
               kh: number, kw: number, sh: number, sw: number, positions: number, first: number, last: number): void;
  transpose_planes(x: number, out: number, rows: number, cols: number, inStride: number, outStride: number,
                   inOuter: number, outOuter: number, inner: number, inInner: number, outInner: number,
                   first: number, last: number): void;
  gemm_batch(a: number, b: number, c: number, m: number, k: number, n: number, strideA: number, strideB: number,
             transposeA: number, pack: number, first: number, last: number): void;
  elementwise(op: number, a: number, b: number, out: number, first: number, last: number): void;
  gemm_pack_floats(m: number, k: number): number;
  spectral_product(x: number, taps: number, cos: number, sin: number, v: number, z: number, freqs: number, n: number,
                   rows: number, cols: number, ntaps: number, sign: number, scaleInput: number, scratch: number,
                   first: number, last: number): void;
  spectral_tap_gradient(x: number, d: number, cos: number, sin: number, v: number, out: number, freqs: number,
                        n: number, rows: number, cols: number, ntaps: number, block: number, scratch: number,
                        first: number, last: number): void;
  max_pool_gradient(x: number, dy: number, dx: number, h: number, w: number, c: number, ho: number, wo: number,
                    kh: number, kw: number, sh: number, sw: number, top: number, left: number, scratch: number,
                    first: number, last: number): void;
  preconditioning_spectrum(taps: number, cos: number, sin: number, v: number, rows: number, cols: number,
                           ntaps: number, epsilonBits: number, power: number, first: number, last: number): void;
  place_phase(phase: number, dx: number, h: number, w: number, c: number, u: number, v: number, rh: number,
              rw: number, sh: number, sw: number, first: number, last: number): void;
  image_to_spectrum(x: number, byH: number, byW: number, out: number, n: number, h: number, w: number, c: number,
                    mh: number, rows: number, scratch: number, first: number, last: number): void;
  image_to_spectrum_few_channels(x: number, byH: number, byW: number, out: number, n: number, h: number, w: number,
                                 c: number, mh: number, rows: number, scratch: number, first: number, last: number): void;
  spectrum_to_image_few_channels(z: number, byW: number, byH: number, out: number, n: number, h: number, w: number,
                                 c: number, mh: number, rows: number, scratch: number, first: number, last: number): void;
  spectrum_to_image(z: number, byW: number, byH: number, out: number, n: number, h: number, w: number, c: number,
                    mh: number, rows: number, scratch: number, first: number, last: number): void;
  gemm_rows(a: number, b: number, c: number, m: number, k: number, n: number, transposeA: number, pack: number,
            first: number, last: number): void;
  gemm_columns(a: number, b: number, c: number, m: number, k: number, n: number, transposeA: number, pack: number,
               first: number, last: number): void;
}

/** The parts of the Emscripten module behind tfjs-backend-wasm 4.22 (pinned) used here. */
interface EmscriptenModule {
  wasmMemory?: WebAssembly.Memory;
  asm?: Record<string, unknown>;
  _malloc(bytes: number): number;
  _free(pointer: number): void;
}

type Floats = Float32Array | Float64Array | Int32Array | Uint8Array;

export class SimdKernels {
  /** Threads that share batched work, once started (in Node: node/simd_helpers.ts). */
  helpers: WorkSharing | undefined;

  /**
   * @param fusedMultiplyAdd whether the products use relaxed SIMD's fused
   *     multiply-add (the engine validated it, and it was not turned off)
   */
  constructor(readonly exports: SimdExports, readonly compiled: WebAssembly.Module,
              readonly memory: WebAssembly.Memory, private readonly module: EmscriptenModule,
              readonly fusedMultiplyAdd: boolean) {}

  /**
   * Runs kernel `fn(...args, first, last)` over items [0, items): shared with
   * the helper threads when there are any and the job is worth waking them
   * (`elements`, the floats it touches, at least 64K); on this thread otherwise.
   * Every shared kernel writes disjoint outputs per item, so the split does not
   * change results. For kernels that take scratch, `scratchBytes` gives each
   * share that much memory of its own, its pointer passed after `args` (0 when
   * `scratchBytes` is 0).
   */
  parallel(fn: HelperFunction, args: number[], items: number, elements: number, scratchBytes?: number): void {
    const kernel = this.exports[fn] as (...a: number[]) => void;
    const shared = this.helpers !== undefined && items >= 2 && elements >= 65536;
    const parts = shared ? this.helpers!.count + 1 : 1;
    const bytes = align8(scratchBytes ?? 0);
    // Unsigned: malloc's i32 result reads as negative above 2 GB.
    const scratch = bytes > 0 ? this.module._malloc(parts * bytes) >>> 0 : 0;
    if (bytes > 0 && scratch === 0) throw new Error(`the wasm heap could not allocate ${parts * bytes} bytes of scratch`);
    try {
      const argsOf = (part: number) => (scratchBytes === undefined ? args : [...args, scratch + part * bytes]);
      const here = (first: number, last: number) => kernel(...argsOf(0), first, last);
      if (shared) this.helpers!.split(fn, argsOf, items, here);
      else here(0, items);
    } finally {
      if (scratch !== 0) this.module._free(scratch);
    }
  }

  /**
   * Runs `body` with a pointer for each array: arrays on the backend's heap
   * (tensor views) pass as they are; others (per-channel parameters and
   * sums) are copied into scratch memory for the call and back after it.
   */
  withPointers(arrays: Floats[], body: (pointers: number[]) => void): void {
    // Offsets first: an allocation may grow the memory, and a grown plain memory detaches old views.
    const onHeap = arrays.map(a => a.buffer === this.memory.buffer);
    const pointers = arrays.map((a, i) => (onHeap[i] ? a.byteOffset : 0));
    const bytes = arrays.reduce((total, a, i) => total + (onHeap[i] ? 0 : align8(a.byteLength)), 0);
    // Unsigned: malloc's i32 result reads as negative above 2 GB.
    const scratch = bytes > 0 ? this.module._malloc(bytes) >>> 0 : 0;
    if (bytes > 0 && scratch === 0) throw new Error(`the wasm heap could not allocate ${bytes} bytes of scratch`);
    try {
      let next = scratch;
      arrays.forEach((a, i) => {
        if (onHeap[i]) return;
        pointers[i] = next;
        new Uint8Array(this.memory.buffer, next, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
        next += align8(a.byteLength);
      });
      body(pointers);
      arrays.forEach((a, i) => {
        if (!onHeap[i]) new Uint8Array(a.buffer, a.byteOffset, a.byteLength).set(new Uint8Array(this.memory.buffer, pointers[i], a.byteLength));
      });
    } finally {
      if (scratch !== 0) this.module._free(scratch);
    }
  }
}

function align8(bytes: number): number {
  return Math.ceil(bytes / 8) * 8;
}

let enabled = true;
let fusedMultiplyAdd = true;
const instances = new WeakMap<WebAssembly.Memory, SimdKernels | null>();

/** Turns the SIMD kernels off (their JS loops run instead) or back on; for tests and A/B timing. */
export function setSimdKernels(on: boolean): void {
  enabled = on;
}

/**
 * Whether the products may use fused multiply-adds where the engine has
 * relaxed SIMD. Read when the module is first instantiated on a memory, so set
 * it before the backend's first SIMD kernel runs.
 */
export function setFusedMultiplyAdd(on: boolean): void {
  fusedMultiplyAdd = on;
}

/** Whether this engine accepts the relaxed SIMD module (Node 20 only behind a V8 flag; Chrome from 114). */
export function relaxedSimdValidates(): boolean {
  return WebAssembly.validate(decodeModule(PLAIN_MEMORY_FMA_MODULE));
}

/** By its tag rather than instanceof: the memory may come from another realm (or a wrapped constructor). */
function isMemory(value: unknown): value is WebAssembly.Memory {
  return Object.prototype.toString.call(value) === '[object WebAssembly.Memory]';
}

function backendMemory(module: EmscriptenModule): WebAssembly.Memory | undefined {
  if (isMemory(module.wasmMemory)) return module.wasmMemory;
  return Object.values(module.asm ?? {}).find(isMemory);
}

/** A module's bytes from the base64 that the build embeds. */
export function decodeModule(base64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(base64), ch => ch.charCodeAt(0));
}

/** The wasm backend's Emscripten module and memory, when `backend` is the wasm backend. */
function wasmOf(backend: tf.KernelBackend): {module: EmscriptenModule; memory: WebAssembly.Memory} | undefined {
  if (!('typedArrayFromHeap' in backend)) return undefined;
  const module = (backend as unknown as {wasm: EmscriptenModule}).wasm;
  const memory = backendMemory(module);
  return memory === undefined ? undefined : {module, memory};
}

/** Whether `backend` is the wasm backend on shared memory (its threaded build), or undefined when it is not wasm. */
export function wasmMemoryShared(backend: tf.KernelBackend): boolean | undefined {
  const wasm = wasmOf(backend);
  return wasm === undefined ? undefined
    : typeof SharedArrayBuffer === 'function' && wasm.memory.buffer instanceof SharedArrayBuffer;
}

/** The module variant a memory takes: shared or plain, with fused multiply-adds where they validate. */
function variant(memory: WebAssembly.Memory): {source: string; fma: boolean} {
  const shared = typeof SharedArrayBuffer === 'function' && memory.buffer instanceof SharedArrayBuffer;
  const fma = fusedMultiplyAdd && relaxedSimdValidates();
  return {source: shared ? (fma ? SHARED_MEMORY_FMA_MODULE : SHARED_MEMORY_MODULE) :
                           (fma ? PLAIN_MEMORY_FMA_MODULE : PLAIN_MEMORY_MODULE), fma};
}

/**
 * The kernels on `backend`'s memory, when it is the wasm backend and the
 * module can run there. The first call on a memory compiles and instantiates
 * the module synchronously, which browsers refuse on a page's main thread for
 * a module this size: there `prepareSimdKernels` does it first.
 */
export function simdKernels(backend: tf.KernelBackend): SimdKernels | undefined {
  const wasm = enabled ? wasmOf(backend) : undefined;
  if (wasm === undefined) return undefined;
  let kernels = instances.get(wasm.memory);
  if (kernels === undefined) {
    const {source, fma} = variant(wasm.memory);
    try {
      const compiled = new WebAssembly.Module(decodeModule(source));
      const instance = new WebAssembly.Instance(compiled, {env: {memory: wasm.memory}});
      kernels = new SimdKernels(instance.exports as unknown as SimdExports, compiled, wasm.memory, wasm.module, fma);
    } catch {
      kernels = null;
    }
    instances.set(wasm.memory, kernels);
  }
  return kernels ?? undefined;
}

/**
 * Compiles and instantiates the module for `backend` asynchronously (what a
 * browser's main thread allows), so that simdKernels finds it ready. Returns
 * why it cannot run there, or null when it runs.
 */
export async function prepareSimdKernels(backend: tf.KernelBackend): Promise<string | null> {
  if (!enabled) return 'turned off (setSimdKernels(false))';
  const wasm = wasmOf(backend);
  if (wasm === undefined) return 'the backend is not tfjs-backend-wasm, or its memory cannot be found';
  const known = instances.get(wasm.memory);
  if (known !== undefined) return known === null ? 'this engine refused the module' : null;
  const {source, fma} = variant(wasm.memory);
  try {
    const compiled = await WebAssembly.compile(decodeModule(source));
    const instance = await WebAssembly.instantiate(compiled, {env: {memory: wasm.memory}});
    instances.set(wasm.memory, new SimdKernels(instance.exports as unknown as SimdExports, compiled, wasm.memory,
                                               wasm.module, fma));
    return null;
  } catch (e) {
    instances.set(wasm.memory, null);
    return `this engine refused the module (${(e as Error).message})`;
  }
}
