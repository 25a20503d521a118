/**
 * The Fourier ConvNorm's transforms between maps and spectra as two wasm
 * kernels (common/kernel_names.ts: IMAGE_TO_SPECTRUM, SPECTRUM_TO_IMAGE):
 * the SIMD module transforms one image at a time along both axes, its
 * intermediate in cache, reading the map in NHWC where the tf-op form
 * (convnorm/fourier.ts) transposes it and streams the whole batch through
 * memory at each stage. Without the module the same maths runs as tf ops.
 */
import * as tf from '@tensorflow/tfjs-core';

import {IMAGE_TO_SPECTRUM, SPECTRUM_TO_IMAGE} from '../common/kernel_names.js';
import {SimdKernels, simdKernels} from './simd.js';
import type {WasmBackend} from './wasm_kernels.js';

type Info = tf.TensorInfo;
type Inputs = tf.NamedTensorInfoMap;

function float32(inputs: Info[], kernel: string): void {
  for (const i of inputs) {
    if (i.dtype !== 'float32') throw new Error(`${kernel} takes float32 tensors, got ${i.dtype}`);
  }
}

function tensor(info: Info): tf.Tensor {
  return info instanceof tf.Tensor ? info : tf.engine().makeTensorFromTensorInfo(info);
}

/** Floats of scratch per share: the image's intermediate, then the products' packing scratch (k: their longest). */
function scratchFloats(simd: SimdKernels, intermediate: number, k: number): number {
  return intermediate + simd.exports.gemm_pack_floats(0x7fffffff, k);
}

function heapOffset(wasm: WasmBackend, t: Info): number {
  return wasm.dataIdMap.get(t.dataId).memoryOffset;
}

function imageToSpectrum({inputs, backend}: {inputs: Inputs; backend: tf.KernelBackend}): Info {
  const {x, byH, byW} = inputs as {x: Info; byH: Info; byW: Info};
  float32([x, byH, byW], IMAGE_TO_SPECTRUM);
  const [n, h, w, c] = x.shape;
  const [mh, rows] = [byH.shape[0] / 2, byW.shape[0]];
  if (byH.shape[1] !== h || byW.shape[1] !== 2 * w) {
    throw new Error(`${IMAGE_TO_SPECTRUM}: matrices [${byH.shape}], [${byW.shape}] do not fit the map [${x.shape}]`);
  }
  const simd = simdKernels(backend);
  if (simd === undefined) {
    return tf.tidy(() => {
      const alongH = tf.matMul(tensor(byH), tf.reshape(tensor(x), [n, h, w * c]));
      const alongW = tf.matMul(tensor(byW), tf.reshape(alongH, [n * mh, 2 * w, c]));
      return tf.transpose(tf.reshape(alongW, [n, mh, rows, c]), [2, 1, 0, 3]);
    });
  }
  const wasm = backend as unknown as WasmBackend;
  const out = wasm.makeOutput([rows, mh, n, c], 'float32');
  simd.parallel('image_to_spectrum',
                [heapOffset(wasm, x), heapOffset(wasm, byH), heapOffset(wasm, byW), heapOffset(wasm, out), n, h, w, c,
                 mh, rows],
                n, n * 2 * mh * w * c, 4 * scratchFloats(simd, 2 * mh * w * c, Math.max(h, 2 * w)));
  return out;
}

function spectrumToImage({inputs, backend}: {inputs: Inputs; backend: tf.KernelBackend}): Info {
  const {z, byW, byH} = inputs as {z: Info; byW: Info; byH: Info};
  float32([z, byW, byH], SPECTRUM_TO_IMAGE);
  const [rows, mh, n, c] = z.shape;
  const [h, w] = [byH.shape[0], byW.shape[0] / 2];
  if (byH.shape[1] !== 2 * mh || byW.shape[1] !== rows) {
    throw new Error(`${SPECTRUM_TO_IMAGE}: matrices [${byW.shape}], [${byH.shape}] do not fit the spectrum [${z.shape}]`);
  }
  const simd = simdKernels(backend);
  if (simd === undefined) {
    return tf.tidy(() => {
      const perImage = tf.reshape(tf.transpose(tensor(z), [2, 1, 0, 3]), [n * mh, rows, c]);
      const alongW = tf.reshape(tf.matMul(tensor(byW), perImage), [n, 2 * mh, w * c]);
      return tf.reshape(tf.matMul(tensor(byH), alongW), [n, h, w, c]);
    });
  }
  const wasm = backend as unknown as WasmBackend;
  const out = wasm.makeOutput([n, h, w, c], 'float32');
  simd.parallel('spectrum_to_image',
                [heapOffset(wasm, z), heapOffset(wasm, byW), heapOffset(wasm, byH), heapOffset(wasm, out), n, h, w, c,
                 mh, rows],
                n, n * 2 * mh * w * c, 4 * scratchFloats(simd, 2 * mh * w * c, Math.max(rows, 2 * mh)));
  return out;
}

/** Registers both kernels on wasm (where tfjs-backend-wasm is loaded). Idempotent. */
export function registerFourierKernels(): void {
  for (const [kernelName, kernelFunc] of [[IMAGE_TO_SPECTRUM, imageToSpectrum],
                                          [SPECTRUM_TO_IMAGE, spectrumToImage]] as const) {
    if (tf.getKernel(kernelName, 'wasm') !== undefined) continue;
    tf.registerKernel({kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc});
  }
}
