import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers them all.
import '@tensorflow/tfjs-layers';

import {useBackend} from '../../src/node/backend.js';

/** The backends every numerical test runs on. */
export const TEST_BACKENDS = ['cpu', 'wasm'] as const;

/**
 * Switches backend the way users do (useBackend: production mode, and wasm gets
 * its training kernels). tfjs's IS_TEST mode is left off: its kernel leak check
 * flags every custom gradient that saves an intermediate, tfjs's own
 * softmaxCrossEntropy included; the tests count tensors themselves.
 */
export async function useTestBackend(name: 'cpu' | 'wasm'): Promise<void> {
  await useBackend(name);
}
