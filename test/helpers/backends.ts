import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers them all.
import '@tensorflow/tfjs-layers';

import {useBackend} from '../../src/node/backend.js';

/** The backends every numerical test runs on. */
export const TEST_BACKENDS = ['cpu', 'wasm'] as const;

/**
 * Threads of the wasm backend in a test process that does not ask for more:
 * npm test runs two files side by side on the cores, and two wasm thread
 * pools per core wait on each other's barriers (a 500-step GAN soak took 3x
 * as long). The suites whose subject is the engine (kernels, reference
 * fixtures, models) ask for THREADED to cover the threaded build and the
 * SIMD helpers.
 */
export const THREADED = 2;

/**
 * Switches backend the way users do (useBackend: production mode, and wasm gets
 * its training kernels). tfjs's IS_TEST mode is left off: its kernel leak check
 * flags every custom gradient that saves an intermediate, tfjs's own
 * softmaxCrossEntropy included; the tests count tensors themselves. The wasm
 * thread count is fixed by the process's first start of wasm.
 */
export async function useTestBackend(name: 'cpu' | 'wasm', options: {wasmThreads?: number} = {}): Promise<void> {
  await useBackend(name, {wasmThreads: options.wasmThreads ?? 1});
}
