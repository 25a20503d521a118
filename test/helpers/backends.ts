import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers them all.
import '@tensorflow/tfjs-layers';

// Silences the cpu backend's "install tfjs-node" banner in test output.
tf.env().set('IS_TEST', true);

/** The backends every numerical test runs on. */
export const TEST_BACKENDS = ['cpu', 'wasm'] as const;

export async function useTestBackend(name: string): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to start`);
  await tf.ready();
}
