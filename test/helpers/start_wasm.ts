/**
 * Child process for the engine tests: starts the wasm backend (optionally in
 * a crippled environment) and prints what it got and a conv checksum.
 */
if (process.env.REMOVE_GLOBAL) delete (globalThis as Record<string, unknown>)[process.env.REMOVE_GLOBAL];
if (process.env.NO_SHARED_MEMORY) {
  // As on a platform without shared wasm memory: the threaded build cannot instantiate.
  const Memory = WebAssembly.Memory;
  (WebAssembly as {Memory: unknown}).Memory = function (descriptor: WebAssembly.MemoryDescriptor) {
    if (descriptor.shared) throw new Error('shared wasm memory is not available');
    return new Memory(descriptor);
  };
}
const tf = await import('@tensorflow/tfjs-core');
const {useBackend, wasmThreadCount} = await import('../../src/engine/backend.js');
const backend = await useBackend('wasm');
const x = tf.randomNormal([2, 9, 9, 4], 0, 1, 'float32', 1) as import('@tensorflow/tfjs-core').Tensor4D;
const k = tf.randomNormal([3, 3, 4, 5], 0, 1, 'float32', 2) as import('@tensorflow/tfjs-core').Tensor4D;
const sum = tf.sum(tf.conv2d(x, k, 1, 'same')).dataSync()[0];
console.log(JSON.stringify({backend, threads: wasmThreadCount(), sum}));
