import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers them all.
import '@tensorflow/tfjs-layers';

import {useBackend} from '../../src/engine/backend.js';

// Silences the cpu backend's "install tfjs-node" banner in test output.
tf.env().set('IS_TEST', true);

/** The backends every numerical test runs on. */
export const TEST_BACKENDS = ['cpu', 'wasm'] as const;

/** Switches backend the way users do (useBackend), so wasm has its training kernels. */
export async function useTestBackend(name: 'cpu' | 'wasm'): Promise<void> {
  await useBackend(name);
  // useBackend turns on production mode; tests keep tfjs's debug checks off but its warnings quiet.
  tf.env().set('IS_TEST', true);
}
