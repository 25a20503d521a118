/**
 * The Fourier ConvNorm's steps as wasm kernels (common/kernel_names.ts). The
 * transforms between maps and spectra (IMAGE_TO_SPECTRUM, SPECTRUM_TO_IMAGE):
 * the SIMD module transforms one image at a time along both axes, its
 * intermediate in cache, reading the map in NHWC where the tf-op form
 * (convnorm/fourier.ts) transposes it and streams the whole batch through
 * memory at each stage; with 8 channels or more, the width goes first on the
 * map side, which needs only the real map's half spectrum along the width.
 * The per-frequency product and its taps' gradient (SPECTRAL_PRODUCT,
 * SPECTRAL_TAP_GRADIENT): one frequency at a time, the kernel spectrum made
 * from the taps in cache, the Gauss sums and the V scaling in cache too.
 * Without the module the same maths runs as tf ops.
 */
import * as tf from '@tensorflow/tfjs-core';

import {IMAGE_TO_SPECTRUM, PRECONDITIONING_SPECTRUM, SPECTRAL_PRODUCT, SPECTRAL_TAP_GRADIENT, SPECTRUM_TO_IMAGE} from
  '../common/kernel_names.js';
import {spectrumFromTaps} from '../convnorm/spectrum.js';
import {checkFloat32} from './batch_norm_kernels.js';
import {SimdKernels, simdKernels} from './simd.js';
import {heapOffset, tensorOf as tensor, type WasmBackend} from './wasm_kernels.js';

type Info = tf.TensorInfo;
type Inputs = tf.NamedTensorInfoMap;

/** Floats of scratch per share: the kernel's own, then the products' packing scratch (k: their longest). */
function scratchFloats(simd: SimdKernels, own: number, k: number): number {
  return own + simd.exports.gemm_pack_floats(0x7fffffff, k);
}

/**
 * Channels from which the transforms take the axis order that needs fewer
 * multiply-adds (the width first on the map side, where the real map's half
 * spectrum along the width is shorter than its full one along the height):
 * its products are as many columns wide as the map has channels, and below
 * one 8-column SIMD strip they ran slower than the other order's (a 32x32 map
 * of 4 channels, forward and backward: 1.19x the time; 8 channels: 0.94x).
 */
const WIDTH_FIRST_CHANNELS = 8;

type TransformKernel = 'image_to_spectrum' | 'spectrum_to_image' | 'image_to_spectrum_few_channels' |
  'spectrum_to_image_few_channels';

/**
 * Each transform kernel's scratch (kernels.c): its own floats, before its
 * products' packing scratch, and those products' longest inner dimension.
 */
const TRANSFORM_SCRATCH: Record<TransformKernel, (d: {h: number; w: number; c: number; mh: number; rows: number}) =>
  [number, number]> = {
  image_to_spectrum: ({h, w, c, mh, rows}) => [rows * w + 4 * mh * h + rows * h * c, Math.max(w, 2 * h)],
  spectrum_to_image: ({h, w, c, mh, rows}) => [4 * h * mh + w * rows + 2 * mh * c + rows * h * c,
                                               Math.max(2 * mh, rows)],
  image_to_spectrum_few_channels: ({h, w, c, mh}) => [2 * mh * w * c, Math.max(h, 2 * w)],
  spectrum_to_image_few_channels: ({w, c, mh, rows}) => [2 * mh * w * c, Math.max(rows, 2 * mh)],
};

/** One of the module's transforms on `operands` (the data, then its two matrices), image by image, shared with the helpers. */
function transform(simd: SimdKernels, backend: tf.KernelBackend, fn: 'image_to_spectrum' | 'spectrum_to_image',
                   operands: Info[], outShape: number[], [n, h, w, c, mh, rows]: number[]): Info {
  const wasm = backend as unknown as WasmBackend;
  const out = wasm.makeOutput(outShape, 'float32');
  const kernel: TransformKernel = c < WIDTH_FIRST_CHANNELS ? `${fn}_few_channels` : fn;
  const [own, k] = TRANSFORM_SCRATCH[kernel]({h, w, c, mh, rows});
  simd.parallel(kernel, [...operands.map(t => heapOffset(wasm, t)), heapOffset(wasm, out), n, h, w, c, mh, rows],
                n, n * 2 * mh * w * c, 4 * scratchFloats(simd, own, k));
  return out;
}

function imageToSpectrum({inputs, backend}: {inputs: Inputs; backend: tf.KernelBackend}): Info {
  const {x, byH, byW} = inputs as {x: Info; byH: Info; byW: Info};
  checkFloat32([x, byH, byW], IMAGE_TO_SPECTRUM);
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
  return transform(simd, backend, 'image_to_spectrum', [x, byH, byW], [rows, mh, n, c], [n, h, w, c, mh, rows]);
}

function spectrumToImage({inputs, backend}: {inputs: Inputs; backend: tf.KernelBackend}): Info {
  const {z, byW, byH} = inputs as {z: Info; byW: Info; byH: Info};
  checkFloat32([z, byW, byH], SPECTRUM_TO_IMAGE);
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
  return transform(simd, backend, 'spectrum_to_image', [z, byW, byH], [n, h, w, c], [n, h, w, c, mh, rows]);
}

/** The complex parts of a stacked [2, ...] tensor. */
function parts(t: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const [re, im] = tf.unstack(t);
  return [re, im];
}

function spectralProduct({inputs, attrs, backend}: {inputs: Inputs; attrs?: tf.NamedAttrMap;
                                                    backend: tf.KernelBackend}): Info {
  const {x, taps, cos, sin, v} = inputs as {x: Info; taps: Info; cos: Info; sin: Info; v: Info};
  const {conjugate, scaleInput} = attrs as unknown as {conjugate: boolean; scaleInput: boolean};
  checkFloat32([x, taps, cos, sin, v], SPECTRAL_PRODUCT);
  const [, freqs, n, rows] = x.shape;
  const [ntaps, size] = taps.shape;
  const cols = size / rows;
  if (!Number.isInteger(cols) || cos.shape[0] !== freqs || cos.shape[1] !== ntaps ||
      v.shape[1] !== (scaleInput ? rows : cols)) {
    throw new Error(`${SPECTRAL_PRODUCT}: taps [${taps.shape}], basis [${cos.shape}], v [${v.shape}] do not fit ` +
                    `the spectrum [${x.shape}]`);
  }
  const simd = simdKernels(backend);
  if (simd === undefined) {
    return tf.tidy(() => {
      // The four-product complex multiplication, V as a diagonal on the side it scales.
      const kre = tf.reshape(tf.matMul(tensor(cos), tensor(taps)), [freqs, rows, cols]);
      const kim = tf.mul(tf.reshape(tf.matMul(tensor(sin), tensor(taps)), [freqs, rows, cols]), conjugate ? -1 : 1);
      let [xr, xi] = parts(tensor(x));
      const scale = tf.reshape(tensor(v), [freqs, 1, -1]);
      if (scaleInput) [xr, xi] = [tf.mul(xr, scale), tf.mul(xi, scale)];
      const z = tf.stack([tf.sub(tf.matMul(xr, kre), tf.matMul(xi, kim)), tf.add(tf.matMul(xr, kim), tf.matMul(xi, kre))]);
      return scaleInput ? z : tf.mul(z, scale);
    });
  }
  const wasm = backend as unknown as WasmBackend;
  const out = wasm.makeOutput([2, freqs, n, cols], 'float32');
  const scratch = 3 * rows * cols + n * rows + n * cols + 2 * n * rows;
  simd.parallel('spectral_product',
                [heapOffset(wasm, x), heapOffset(wasm, taps), heapOffset(wasm, cos), heapOffset(wasm, sin),
                 heapOffset(wasm, v), heapOffset(wasm, out), freqs, n, rows, cols, ntaps, conjugate ? -1 : 1,
                 scaleInput ? 1 : 0],
                freqs, freqs * (3 * rows * cols + 2 * n * (rows + cols)),
                4 * scratchFloats(simd, scratch, Math.max(rows, cols)));
  return out;
}

function spectralTapGradient({inputs, backend}: {inputs: Inputs; backend: tf.KernelBackend}): Info {
  const {x, dy, cos, sin, v} = inputs as {x: Info; dy: Info; cos: Info; sin: Info; v: Info};
  checkFloat32([x, dy, cos, sin, v], SPECTRAL_TAP_GRADIENT);
  const [, freqs, n, rows] = x.shape;
  const cols = dy.shape[3];
  const ntaps = cos.shape[1];
  if (dy.shape[1] !== freqs || dy.shape[2] !== n || cos.shape[0] !== freqs || v.shape[1] !== cols) {
    throw new Error(`${SPECTRAL_TAP_GRADIENT}: dy [${dy.shape}], basis [${cos.shape}], v [${v.shape}] do not fit ` +
                    `the spectrum [${x.shape}]`);
  }
  const simd = simdKernels(backend);
  if (simd === undefined) {
    return tf.tidy(() => {
      const [xr, xi] = parts(tensor(x));
      const scale = tf.reshape(tensor(v), [freqs, 1, cols]);
      const [dr, di] = parts(tf.mul(tensor(dy), scale));
      // X^H D = (xr^T dr + xi^T di) + i (xr^T di - xi^T dr).
      const gre = tf.add(tf.matMul(xr, dr, true), tf.matMul(xi, di, true));
      const gim = tf.sub(tf.matMul(xr, di, true), tf.matMul(xi, dr, true));
      const flat = (g: tf.Tensor) => tf.reshape(g, [freqs, rows * cols]);
      return tf.add(tf.matMul(tensor(cos), flat(gre), true), tf.matMul(tensor(sin), flat(gim), true));
    });
  }
  const wasm = backend as unknown as WasmBackend;
  const out = wasm.makeOutput([ntaps, rows * cols], 'float32');
  // Input channels per share's item: blocks of up to 32 (the products' packed rows), at least two
  // items where there are 8 channels or more, so that both threads take part.
  const block = Math.max(4, Math.min(32, 4 * Math.ceil(rows / 8)));
  const scratch = n * rows + 3 * n * cols + 3 * block * cols;
  simd.parallel('spectral_tap_gradient',
                [heapOffset(wasm, x), heapOffset(wasm, dy), heapOffset(wasm, cos), heapOffset(wasm, sin),
                 heapOffset(wasm, v), heapOffset(wasm, out), freqs, n, rows, cols, ntaps, block],
                Math.ceil(rows / block), freqs * n * (rows + cols) * 3, 4 * scratchFloats(simd, scratch, n));
  return out;
}

function preconditioningSpectrum({inputs, attrs, backend}: {inputs: Inputs; attrs?: tf.NamedAttrMap;
                                                            backend: tf.KernelBackend}): Info {
  const {taps, cos, sin} = inputs as {taps: Info; cos: Info; sin: Info};
  const {epsilon, cout} = attrs as unknown as {epsilon: number; cout: number};
  checkFloat32([taps, cos, sin], PRECONDITIONING_SPECTRUM);
  const [ntaps, size] = taps.shape;
  const [freqs, cin] = [cos.shape[0], size / cout];
  if (!Number.isInteger(cin) || cos.shape[1] !== ntaps || sin.shape[0] !== freqs || sin.shape[1] !== ntaps) {
    throw new Error(`${PRECONDITIONING_SPECTRUM}: basis [${cos.shape}], [${sin.shape}] do not fit taps [${taps.shape}] ` +
                    `of ${cout} output channels`);
  }
  const simd = simdKernels(backend);
  if (simd === undefined) {
    return tf.tidy(() => spectrumFromTaps(tensor(taps), tensor(cos), tensor(sin), cout, epsilon));
  }
  const wasm = backend as unknown as WasmBackend;
  const out = wasm.makeOutput([freqs, cout], 'float32');
  const epsilonBits = new Int32Array(new Float32Array([epsilon]).buffer)[0];
  simd.parallel('preconditioning_spectrum',
                [heapOffset(wasm, taps), heapOffset(wasm, cos), heapOffset(wasm, sin), heapOffset(wasm, out), cin, cout,
                 ntaps, epsilonBits],
                freqs, freqs * ntaps * size, 4 * cout);
  return out;
}

/** Registers the kernels on wasm (where tfjs-backend-wasm is loaded). Idempotent. */
export function registerFourierKernels(): void {
  for (const [kernelName, kernelFunc] of [[IMAGE_TO_SPECTRUM, imageToSpectrum],
                                          [SPECTRUM_TO_IMAGE, spectrumToImage],
                                          [SPECTRAL_PRODUCT, spectralProduct],
                                          [SPECTRAL_TAP_GRADIENT, spectralTapGradient],
                                          [PRECONDITIONING_SPECTRUM, preconditioningSpectrum]] as const) {
    if (tf.getKernel(kernelName, 'wasm') !== undefined) continue;
    tf.registerKernel({kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc});
  }
}
