import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers them all.
import '@tensorflow/tfjs-layers';

import {useBackend} from '../../src/node/backend.js';

/** The backends every numerical test runs on. */
export const TEST_BACKENDS = ['cpu', 'wasm'] as const;

/**
 * Threads the wasm backend starts with in this test process: one, unless the
 * suite calls useThreadedWasm. npm test runs two files side by side on the
 * cores, and two wasm thread pools per core wait on each other's barriers (a
 * 500-step GAN soak took 3x as long). The suites whose subject is the engine
 * (kernels, reference fixtures, models) run threaded, to cover the threaded
 * build and the SIMD helpers.
 */
let wasmThreads = 1;

/** Starts wasm, when this process first starts it, with two threads. Call it before the first useTestBackend. */
export function useThreadedWasm(): void {
  wasmThreads = 2;
}

/**
 * Switches backend the way users do (useBackend: production mode, and wasm gets
 * its training kernels). tfjs's IS_TEST mode is left off: its kernel leak check
 * flags every custom gradient that saves an intermediate, tfjs's own
 * softmaxCrossEntropy included; the tests count tensors themselves.
 */
export async function useTestBackend(name: 'cpu' | 'wasm'): Promise<void> {
  await useBackend(name, {wasmThreads});
}
