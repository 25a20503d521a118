/**
 * Child process for the engine tests: starts the wasm backend (optionally in
 * a crippled environment) and prints what it got, a conv checksum, a
 * transpose by the SIMD module next to the same transpose indexed by hand, and
 * a product whose value tells a fused multiply-add from a multiply and an add.
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
type Tensor = import('@tensorflow/tfjs-core').Tensor;
const {useBackend, wasmThreadCount} = await import('../../src/node/backend.js');
const {simdKernels} = await import('../../src/engine/simd.js');
const backend = await useBackend('wasm');
const x = tf.randomNormal([2, 9, 9, 4], 0, 1, 'float32', 1) as import('@tensorflow/tfjs-core').Tensor4D;
// 64 input channels: the SIMD module's convolution (shared with the helpers where there are any).
// Not before the high-heap check, whose allocations must not reuse the blocks this one frees.
const convolutionSum = () => {
  const wide = tf.randomNormal([2, 9, 9, 64], 0, 1, 'float32', 1) as import('@tensorflow/tfjs-core').Tensor4D;
  const k = tf.randomNormal([3, 3, 64, 5], 0, 1, 'float32', 2) as import('@tensorflow/tfjs-core').Tensor4D;
  return tf.sum(tf.abs(tf.conv2d(wide, k, 1, 'same'))).dataSync()[0];
};
const sum = process.env.HIGH_HEAP ? undefined : convolutionSum();
const values = x.dataSync();
const transposed = Array.from(tf.transpose(x, [3, 1, 2, 0]).dataSync());
const byHand: number[] = [];
for (let c = 0; c < 4; c++) for (let h = 0; h < 9; h++) for (let w = 0; w < 9; w++) for (let n = 0; n < 2; n++) {
  byHand.push(values[((n * 9 + h) * 9 + w) * 4 + c]);
}
// Row . column = -(1 + 2^-11) + (1 + 2^-12)^2, summed in that order: the exact square is
// 1 + 2^-11 + 2^-24, which a separate multiply rounds to 1 + 2^-11 (the sum is then 0) and a fused
// multiply-add keeps (2^-24). 64 rows, so that the SIMD module's product runs it.
const rows = tf.tile(tf.tensor2d([[1, 1 + 2 ** -12]]), [64, 1]);
const columns = tf.tile(tf.tensor2d([[-(1 + 2 ** -11)], [1 + 2 ** -12]]), [1, 8]);
const product = tf.matMul(rows, columns).dataSync();
const result: Record<string, unknown> = {backend, threads: wasmThreadCount(), sum,
                                        fusedMultiplyAdd: simdKernels(tf.backend())?.fusedMultiplyAdd,
                                        productValues: [...new Set(product)],
                                        simd: simdKernels(tf.backend()) !== undefined,
                                        helpers: simdKernels(tf.backend())?.helpers?.count ?? 0,
                                        transposeMatches: transposed.every((v, i) => v === byHand[i])};
if (process.env.HIGH_HEAP) {
  // Tensors and scratch above 2 GB, where wasm's i32 pointers read as negative numbers in JS.
  const {setSimdKernels} = await import('../../src/engine/simd.js');
  const ballast = tf.zeros([Math.ceil(2.2e9 / 4)]);
  const y = tf.add(tf.mul(tf.randomNormal([64, 16, 16, 17], 0, 1, 'float32', 3), 2), 3);
  const run = () => {
    const outputs = tf.tidy(() => {
      const [out, mean, variance] = tf.engine().runKernel('ConvNormBatchNormForward', {x: y, gamma: tf.ones([17]),
                                                           beta: tf.zeros([17])}, {epsilon: 1e-3}) as Tensor[];
      return [out, mean, variance, tf.transpose(y, [3, 2, 1, 0]), tf.sum(y, [0, 1, 2])];
    });
    const values = outputs.map(t => Array.from(t.dataSync()));
    tf.dispose(outputs);
    return values;
  };
  const module = (tf.backend() as unknown as {wasm: {_malloc(n: number): number; _free(p: number): void}}).wasm;
  const probe = module._malloc(64) >>> 0;
  module._free(probe);
  const offsets = tf.backend() as unknown as {dataIdMap: {get(id: object): {memoryOffset: number}}};
  result.aboveTwoGigabytes = probe > 2 ** 31 && offsets.dataIdMap.get(y.dataId).memoryOffset > 2 ** 31;
  const simd = run();
  setSimdKernels(false);
  const js = run();
  result.highHeapMatches = JSON.stringify(simd) === JSON.stringify(js);
  ballast.dispose();
}
console.log(JSON.stringify(result));
