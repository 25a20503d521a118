/**
 * Training kernels for the wasm backend: the SIMD module's (simd.ts) where it
 * loads, and otherwise compositions of kernels the backend runs fast
 * (XNNPACK's Conv2D, DepthwiseConv2dNative, transposes, slices).
 *
 * tfjs-backend-wasm 4.22 ships no Conv2DBackpropFilter and no depthwise
 * gradients, and its Conv2DBackpropInput is a scalar loop (~1 GFLOP/s against
 * ~40 for Conv2D). Every kernel here runs ordinary tf ops inside tidy: a
 * kernel's inner ops are not recorded on the gradient tape, and a returned
 * Tensor is adopted by the engine as the kernel's output.
 */
import * as tf from '@tensorflow/tfjs-core';

import {SimdKernels, simdKernels} from './simd.js';

type Info = tf.TensorInfo;
type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];

/** The attributes of tfjs's conv gradient kernels (each has the shape of the tensor it produces). */
interface ConvGradAttrs {
  strides: number | [number, number];
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
  dataFormat?: string;
  inputShape: Shape4;
  filterShape: Shape4;
}

/** The attributes, refusing channels-first data: these kernels index NHWC (as tfjs-wasm's own convolutions do). */
function convGradAttrs(attrs: tf.NamedAttrMap | undefined): ConvGradAttrs {
  const a = attrs as unknown as ConvGradAttrs;
  if (a.dataFormat !== undefined && a.dataFormat !== 'NHWC') {
    throw new Error(`convolution gradients on wasm take NHWC data, not ${a.dataFormat}`);
  }
  return a;
}

/** Kernel inputs are usually the op's Tensors already; bare TensorInfos are wrapped (and freed by the tidy). */
export function tensorOf(info: Info): tf.Tensor {
  return info instanceof tf.Tensor ? info : tf.engine().makeTensorFromTensorInfo(info);
}

function input4d(inputs: tf.NamedTensorInfoMap, name: string): tf.Tensor4D {
  const info = inputs[name];
  if (info === undefined) throw new Error(`kernel input '${name}' is missing`);
  return tensorOf(info) as tf.Tensor4D;
}

/** Pads (or, for negative amounts, crops) the two spatial axes of an NHWC tensor. */
function padSpatial(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  const crop = [Math.max(0, -top), Math.max(0, -bottom), Math.max(0, -left), Math.max(0, -right)];
  if (crop.some(v => v > 0)) {
    const [n, h, w, c] = x.shape;
    x = tf.slice(x, [0, crop[0], crop[2], 0], [n, h - crop[0] - crop[1], w - crop[2] - crop[3], c]);
  }
  const pads = [Math.max(0, top), Math.max(0, bottom), Math.max(0, left), Math.max(0, right)];
  if (pads.every(v => v === 0)) return x;
  return tf.pad(x, [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]]);
}

/**
 * Taps of one output phase of a strided conv's input gradient, along one axis:
 * input rows i = s u + r receive dy[u + offset + t] times flipped tap
 * first + t s, t < count (count 0: the phase receives nothing).
 */
function phaseTaps(r: number, pad: number, stride: number, k: number): {first: number; count: number; offset: number} {
  const a0 = (r + pad) % stride;
  const count = a0 < k ? Math.ceil((k - a0) / stride) : 0;
  return {first: k - 1 - a0 - (count - 1) * stride, count, offset: (r + pad - a0) / stride - count + 1};
}

/**
 * The input gradient of a convolution: the stride-1 correlation of the
 * padded dy with the spatially flipped kernel, which is a forward Conv2D (or
 * depthwise conv) and so as fast as one. At stride s > 1 each of the s x s
 * phases of dx (rows s u + r) is its own stride-1 correlation with every
 * s-th tap, interleaved afterwards: correlating the zero-dilated dy with the
 * whole kernel would cost s^2 times the arithmetic. The SIMD module places
 * the phases in dx in one pass (a phase no tap reaches as zeros, without a
 * tensor of them); without it they are stacked and cropped, in four.
 */
function inputGradient(dy: tf.Tensor4D, flippedFilter: Filter, inputShape: number[],
                       info: tf.backend_util.Conv2DInfo, depthwise: boolean, backend: tf.KernelBackend): tf.Tensor4D {
  const {strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, padInfo} = info;
  const [n, h, w] = inputShape;
  // Channels of the correlation's output: the input's (times the multiplier, depthwise).
  const c = depthwise ? flippedFilter.shape[2] * flippedFilter.shape[3] : flippedFilter.shape[3];
  const correlate = (x: tf.Tensor4D, f: tf.Tensor4D, pad: 'valid' | tf.backend_util.ExplicitPadding = 'valid') =>
    depthwise ? tf.depthwiseConv2d(x, f, 1, pad) : tf.conv2d(x, f, 1, pad);
  /** Rows and columns of dx in phase (rh, rw). */
  const sizeOf = (rh: number, rw: number) => [Math.ceil((h - rh) / sh), Math.ceil((w - rw) / sw)];
  /** Phase (rh, rw): [n, ...sizeOf(rh, rw), c], or null where no tap reaches it. */
  const phaseOf = (rh: number, rw: number): tf.Tensor4D | null => {
    const [th, tw] = [phaseTaps(rh, padInfo.top, sh, kh), phaseTaps(rw, padInfo.left, sw, kw)];
    const [uCount, vCount] = sizeOf(rh, rw);
    if (th.count === 0 || tw.count === 0 || uCount === 0 || vCount === 0) return null;
    const taps = everyNthTap(flippedFilter, th.first, tw.first, sh, sw);
    const pads = [-th.offset, uCount + th.offset + th.count - 1 - dy.shape[1],
                  -tw.offset, vCount + tw.offset + tw.count - 1 - dy.shape[2]] as const;
    // Padding only (no crop) goes to the convolution itself, which pads as it reads (XNNPACK's,
    // for depthwise and few channels) or in one pass of its own: a separate PadV2 is a pass more.
    return pads.every(v => v >= 0)
      ? correlate(dy, taps, [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]])
      : correlate(padSpatial(dy, ...pads), taps);
  };
  if (sh === 1 && sw === 1) return phaseOf(0, 0) ?? tf.zeros([n, h, w, c]);
  const simd = simdKernels(backend);
  if (simd !== undefined) {
    const wasm = backend as unknown as WasmBackend;
    const dx = wasm.makeOutput([n, h, w, c], 'float32');
    for (let rh = 0; rh < sh; rh++) {
      for (let rw = 0; rw < sw; rw++) {
        const phase = phaseOf(rh, rw);
        const [u, v] = sizeOf(rh, rw);
        simd.parallel('place_phase', [phase === null ? 0 : heapOffset(wasm, phase), heapOffset(wasm, dx), h, w, c, u,
                                      v, rh, rw, sh, sw], n, n * u * v * c);
      }
    }
    return tensorOf(dx) as tf.Tensor4D;
  }
  const rowsPerPhase = Math.ceil(h / sh);
  const colsPerPhase = Math.ceil(w / sw);
  const rows = Array.from({length: sh}, (_, rh) => Array.from({length: sw}, (_, rw) => {
    const [u, v] = sizeOf(rh, rw);
    return padSpatial(phaseOf(rh, rw) ?? tf.zeros([n, u, v, c]), 0, rowsPerPhase - u, 0, colsPerPhase - v);
  }));
  const interleaved = tf.stack(rows.map(phases => tf.stack(phases, 3)), 2);
  return tf.slice(tf.reshape(interleaved, [n, rowsPerPhase * sh, colsPerPhase * sw, c]), 0, [n, h, w, c]) as
    tf.Tensor4D;
}

/** A filter's values in JS, [kh, kw, A, B] row-major. */
interface Filter {
  values: Float32Array;
  shape: Shape4;
}

/**
 * The filter rotated by 180 degrees, [kh, kw, A, B] -> [kh, kw, B, A] when
 * `swapChannels`: one pass in JS. The wasm backend's Reverse and Transpose of
 * the same took ~0.9 s of a 2.2 s ResNet-18 step.
 */
function flipFilter(filter: tf.Tensor4D, swapChannels: boolean): Filter {
  const [kh, kw, a, b] = filter.shape;
  const source = filter.dataSync() as Float32Array;
  const flipped = new Float32Array(source.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      const from = ((kh - 1 - y) * kw + (kw - 1 - x)) * a * b;
      const to = (y * kw + x) * a * b;
      if (!swapChannels) {
        flipped.set(source.subarray(from, from + a * b), to);
        continue;
      }
      for (let i = 0; i < a; i++) {
        for (let o = 0; o < b; o++) flipped[to + o * a + i] = source[from + i * b + o];
      }
    }
  }
  return {values: flipped, shape: swapChannels ? [kh, kw, b, a] : [kh, kw, a, b]};
}

/**
 * Taps (first + sh i, firstW + sw j) of a filter, as a tensor: each tap's
 * channel block is contiguous, so this is a few copies in JS. tfjs-wasm's
 * StridedSlice of the same took ~35 ms per call on 512-channel filters
 * (0.5 s of a ResNet-18 step).
 */
function everyNthTap({values, shape: [kh, kw, a, b]}: Filter, first: number, firstW: number, sh: number,
                     sw: number): tf.Tensor4D {
  const rows = Math.ceil((kh - first) / sh);
  const cols = Math.ceil((kw - firstW) / sw);
  const block = a * b;
  const out = new Float32Array(rows * cols * block);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const from = ((first + i * sh) * kw + firstW + j * sw) * block;
      out.set(values.subarray(from, from + block), (i * cols + j) * block);
    }
  }
  return tf.tensor4d(out, [rows, cols, a, b]);
}

function conv2DBackpropInput({inputs, attrs, backend}: {inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap;
                                                         backend: tf.KernelBackend}): Info {
  const {strides, pad, dimRoundingMode, inputShape} = convGradAttrs(attrs);
  return tf.tidy(() => {
    const dy = input4d(inputs, 'dy');
    const filter = input4d(inputs, 'filter');
    const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, strides, 1, pad, dimRoundingMode);
    const flipped = flipFilter(filter, true);
    return inputGradient(dy, flipped, inputShape, info, false, backend);
  });
}

/**
 * Output rows per chunk of the SIMD filter gradient: about 16K floats of dy
 * (which stay in cache while every tap and channel block sweeps them), but at
 * least 128 output positions, so that each sweep is long against loading and
 * storing its sums. Chunks from 2K to 64K floats measured within noise.
 */
function filterGradientChunk(wo: number, co: number): number {
  return Math.max(Math.ceil(128 / wo), Math.floor(16384 / (wo * co)));
}

/**
 * The filter gradient: the SIMD module's kernel, reading x and dy in place
 * (ResNet-18's layers at batch 128: 1.4 s against 2.7 s for the XNNPACK
 * composition below), or that composition without the module.
 */
function conv2DBackpropFilter({inputs, attrs, backend}: {inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap;
                                                         backend: tf.KernelBackend}): Info {
  const {strides, pad, dimRoundingMode, filterShape} = convGradAttrs(attrs);
  const simd = simdKernels(backend);
  const [xInfo, dyInfo] = [inputs.x!, inputs.dy!];
  if (simd !== undefined && xInfo.dtype === 'float32' && dyInfo.dtype === 'float32') {
    const wasm = backend as unknown as WasmBackend;
    const [n, h, w, ci] = xInfo.shape;
    const {strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo, padInfo: {top, left}} =
      tf.backend_util.computeConv2DInfo(xInfo.shape as Shape4, filterShape, strides, 1, pad, dimRoundingMode);
    const [kh, kw, , co] = filterShape;
    const out = wasm.makeOutput(filterShape, 'float32');
    simd.parallel('conv_filter_gradient',
                  [heapOffset(wasm, xInfo), heapOffset(wasm, dyInfo), heapOffset(wasm, out), n, h, w, ci, ho, wo, co,
                   kh, kw, sh, sw, top, left, filterGradientChunk(wo, co)],
                  kh * kw * Math.ceil(ci / 4), n * ho * wo * co * kh * kw);
    return out;
  }
  return tf.tidy(() => {
    const x = input4d(inputs, 'x');
    const dy = input4d(inputs, 'dy');
    const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode);
    const {padInfo, strideHeight, strideWidth} = info;
    const [kh, kw, ci, co] = filterShape;
    // dW[a, b, i, o] = sum_{n,p,q} xpad[n, p*sh + a, q*sw + b, i] dy[n, p, q, o]: a Conv2D with the
    // batch as channels (x -> [Ci, H, W, N], dy -> [Ho, Wo, N, Co] as filter) and the stride as dilation.
    const xp = padSpatial(x, padInfo.top, padInfo.bottom, padInfo.left, padInfo.right);
    const out = tf.conv2d(tf.transpose(xp, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1, 'valid', 'NHWC',
                          [strideHeight, strideWidth]);
    return tf.transpose(tf.slice(out, 0, [ci, kh, kw, co]), [1, 2, 0, 3]);
  });
}

function checkNoDilation(dilations: number | [number, number] | undefined, kernel: string): void {
  if (dilations !== undefined && !tf.backend_util.tupleValuesAreOne(dilations)) {
    throw new Error(`${kernel} with dilations > 1 is not supported on wasm (tfjs's gradients do not use it)`);
  }
}

function depthwiseBackpropInput({inputs, attrs, backend}: {inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap;
                                                            backend: tf.KernelBackend}): Info {
  const {strides, dilations, pad, dimRoundingMode, inputShape} = convGradAttrs(attrs);
  checkNoDilation(dilations, 'DepthwiseConv2dNativeBackpropInput');
  return tf.tidy(() => {
    const dy = input4d(inputs, 'dy');
    const filter = input4d(inputs, 'filter');
    const [kh, kw, c, m] = filter.shape;
    const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, strides, 1, pad, dimRoundingMode, true);
    // Each of the C*M output channels comes from one input channel: correlate each with its own
    // flipped filter, then add the M channels that share an input.
    const flipped = flipFilter(filter, false);
    const perOutput = inputGradient(dy, {values: flipped.values, shape: [kh, kw, c * m, 1]}, inputShape, info, true,
                                    backend);
    if (m === 1) return perOutput;
    const [n, h, w] = inputShape;
    return tf.sum(tf.reshape(perOutput, [n, h, w, c, m]), 4);
  });
}

/** The range [lo, hi) of output positions whose tap `t` falls inside the input (0 <= o*s + t - pad < size). */
function validOutputs(t: number, pad: number, stride: number, size: number, outSize: number): [number, number] {
  return [Math.max(0, Math.ceil((pad - t) / stride)), Math.min(outSize, Math.floor((size - 1 + pad - t) / stride) + 1)];
}

/**
 * dW[a, b, c, m] = sum over (n, p, q) of x[n, p*sh + a - top, q*sw + b - left, c] dy[n, p, q, c*M + m],
 * as JS loops over the wasm heap: per image (which then stays in cache), per
 * tap and output channel, each output row's terms summed in float32 (Math.fround: the SIMD twin's order and rounding), the rows in
 * float64, the images' sums added in order.
 */
function depthwiseFilterSums(x: Float32Array, dy: Float32Array, [n, h, w, c]: number[], m: number,
                             info: tf.backend_util.Conv2DInfo): Float64Array {
  const {filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo,
         padInfo: {top, left}} = info;
  const cm = c * m;
  const fround = Math.fround;
  const sums = new Float64Array(kh * kw * cm);
  const xStep = sw * c;
  for (let b = 0; b < n; b++) {
    for (let ta = 0; ta < kh; ta++) {
      const [pLo, pHi] = validOutputs(ta, top, sh, h, ho);
      for (let tb = 0; tb < kw; tb++) {
        const [qLo, qHi] = validOutputs(tb, left, sw, w, wo);
        const sBase = (ta * kw + tb) * cm;
        for (let o = 0; o < cm; o++) {
          // Input channel of output channel o: o / M.
          const xc = (o / m) | 0;
          let sum = 0;
          for (let p = pLo; p < pHi; p++) {
            let xi = ((b * h + p * sh + ta - top) * w + qLo * sw + tb - left) * c + xc;
            let di = ((b * ho + p) * wo + qLo) * cm + o;
            let row = 0;
            for (let q = qLo; q < qHi; q++, xi += xStep, di += cm) row = fround(row + fround(x[xi] * dy[di]));
            sum += row;
          }
          sums[sBase + o] += sum;
        }
      }
    }
  }
  return sums;
}

/**
 * depthwiseFilterSums for channel multiplier 1 as WebAssembly SIMD, in the
 * same order and precision, its images shared with the helper threads (each
 * image's sums apart, added here in order).
 */
function depthwiseFilterSumsSimd(simd: SimdKernels, x: Float32Array, dy: Float32Array, [n, h, w, c]: number[],
                                 info: tf.backend_util.Conv2DInfo): Float64Array {
  const {filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo,
         padInfo: {top, left}} = info;
  const taps = kh * kw * c;
  const partial = new Float64Array(n * taps);
  simd.withPointers([x, dy, partial], ([px, pd, pp]) =>
    simd.parallel('depthwise_filter', [px, pd, h, w, c, kh, kw, sh, sw, ho, wo, top, left, pp], n, x.length));
  const sums = new Float64Array(taps);
  for (let b = 0; b < n; b++) {
    for (let t = 0; t < taps; t++) sums[t] += partial[b * taps + t];
  }
  return sums;
}

function depthwiseBackpropFilter({inputs, attrs, backend}: {inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap;
                                                            backend: tf.KernelBackend}): Info {
  const {strides, dilations, pad, dimRoundingMode, filterShape} = convGradAttrs(attrs);
  checkNoDilation(dilations, 'DepthwiseConv2dNativeBackpropFilter');
  const wasm = backend as unknown as WasmBackend;
  const xInfo = inputs.x!;
  const dyInfo = inputs.dy!;
  const info = tf.backend_util.computeConv2DInfo(xInfo.shape as Shape4, filterShape, strides, 1, pad,
                                                 dimRoundingMode, true);
  const out = wasm.makeOutput(filterShape, 'float32');
  // Views after makeOutput: an allocation can grow (and so detach) the heap.
  const [x, dy] = [wasm.typedArrayFromHeap(xInfo) as Float32Array, wasm.typedArrayFromHeap(dyInfo) as Float32Array];
  const simd = simdKernels(backend);
  const sums = simd !== undefined && filterShape[3] === 1
    ? depthwiseFilterSumsSimd(simd, x, dy, xInfo.shape, info)
    : depthwiseFilterSums(x, dy, xInfo.shape, filterShape[3], info);
  (wasm.typedArrayFromHeap(out) as Float32Array).set(sums);
  return out;
}

/**
 * Sums over a run of adjacent axes that leaves the last axis (BatchNorm's
 * statistics and gradients reduce NHWC tensors over N, H, W; ConvNorm's V sums
 * [F, C_in, C_out] over C_in) as one pass of row additions in float64 per
 * index of the axes before the run. tfjs's wasm Sum first transposes the
 * reduced axes to the end: 15 ms for a 32 x 32 x 32 x 64 tensor, 37 ms for V's
 * [24, 512, 512]. Other reductions go to tfjs's kernel.
 */
function makeSum(original: tf.KernelFunc): tf.KernelFunc {
  return (args => {
    const x = args.inputs.x as Info;
    const {axis, keepDims} = args.attrs as unknown as {axis: number | number[]; keepDims: boolean};
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    const adjacent = axes.length > 0 && axes.every((a, i) => a === axes[0] + i) &&
      axes[axes.length - 1] < x.shape.length - 1;
    if (x.dtype !== 'float32' || !adjacent) return original(args);
    const wasm = args.backend as unknown as WasmBackend;
    const outer = tf.util.sizeFromShape(x.shape.slice(0, axes[0]));
    const rows = tf.util.sizeFromShape(axes.map(a => x.shape[a]));
    const cols = tf.util.sizeFromShape(x.shape.slice(axes[axes.length - 1] + 1));
    const shape = keepDims ? x.shape.map((d, a) => (axes.includes(a) ? 1 : d)) : x.shape.filter((_, a) => !axes.includes(a));
    const out = wasm.makeOutput(shape, 'float32');
    const data = wasm.typedArrayFromHeap(x) as Float32Array;
    const sums = new Float64Array(outer * cols);
    const simd = simdKernels(args.backend as tf.KernelBackend);
    if (simd !== undefined) {
      simd.withPointers([data, sums], ([px, ps]) => {
        for (let o = 0; o < outer; o++) simd.exports.sum_rows(px + 4 * o * rows * cols, rows, cols, ps + 8 * o * cols);
      });
    } else {
      for (let o = 0; o < outer; o++) {
        for (let r = 0; r < rows; r++) {
          const base = (o * rows + r) * cols;
          for (let k = 0; k < cols; k++) sums[o * cols + k] += data[base + k];
        }
      }
    }
    (wasm.typedArrayFromHeap(out) as Float32Array).set(sums);
    return out;
  }) as tf.KernelFunc;
}

const ELEMENTWISE_OPS = {Add: 0, Sub: 1, Multiply: 2} as const;

/**
 * Add, Sub and Multiply of two float32 tensors of one shape (the Fourier
 * ConvNorm's Gauss combinations, gradient sums, optimizer updates) on the
 * SIMD module, shared with its helper threads; tfjs's run on one thread.
 * Broadcasting and other dtypes go to tfjs's kernel.
 */
function makeElementwise(original: tf.KernelFunc, op: number): tf.KernelFunc {
  return (args => {
    const {a, b} = args.inputs as {a: Info; b: Info};
    const simd = simdKernels(args.backend as tf.KernelBackend);
    if (simd === undefined || a.dtype !== 'float32' || b.dtype !== 'float32' || !tf.util.arraysEqual(a.shape, b.shape)) {
      return original(args);
    }
    const wasm = args.backend as unknown as WasmBackend;
    const out = wasm.makeOutput(a.shape, 'float32');
    const size = tf.util.sizeFromShape(a.shape);
    if (size === 0) return out;
    const views = [a, b, out].map(t => wasm.typedArrayFromHeap(t) as Float32Array);
    simd.withPointers(views, ([pa, pb, po]) => simd.parallel('elementwise', [op, pa, pb, po], size, size));
    return out;
  }) as tf.KernelFunc;
}

/** The parts of tfjs-backend-wasm's BackendWasm these kernels use (public methods of its class). */
export interface WasmBackend {
  incRef(dataId: tf.DataId): void;
  /** With `memoryOffset`, registers memory allocated elsewhere (here: a view into another tensor). */
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): Info;
  typedArrayFromHeap(info: Info): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: tf.DataId): boolean;
  /** Internals of tfjs-backend-wasm 4.22 (pinned), used by `heapOffset` and `xnnpackProducts`. */
  dataIdMap: {get(dataId: tf.DataId): {id: number; memoryOffset: number}; delete(dataId: tf.DataId): boolean};
  wasm: {cwrap(name: string, result: null, args: string[]): (...args: unknown[]) => void;
         tfjs: {disposeData(id: number): void}};
}

/**
 * tfjs's wasm Slice reads its input through readSync, which copies the whole
 * input out of the wasm heap on every call: taking 600 slices of a 5 MB tensor
 * copies 3 GB. This one copies only the slice, from a view of the heap.
 */
function slice({inputs, attrs, backend}: {inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap;
                                          backend: tf.KernelBackend}): Info {
  const x = inputs.x!;
  const wasm = backend as unknown as WasmBackend;
  const {begin, size} = attrs as unknown as {begin: number | number[]; size: number | number[]};
  const [start, extent] = tf.slice_util.parseSliceParams(x as tf.TensorInfo & {rank: number} as tf.Tensor, begin, size);
  const out = wasm.makeOutput(extent, x.dtype);
  if (tf.util.sizeFromShape(extent) === 0) return out;
  // Views are taken after makeOutput: an allocation can grow (and so detach) the heap.
  const src = wasm.typedArrayFromHeap(x);
  const dst = wasm.typedArrayFromHeap(out);
  const rank = x.shape.length;
  // Trailing axes taken whole form one contiguous run with the last axis not taken whole.
  let axis = rank - 1;
  while (axis > 0 && start[axis] === 0 && extent[axis] === x.shape[axis]) axis--;
  const strides = tf.util.computeStrides(x.shape);
  const run = extent[axis] * (axis + 1 < rank ? strides[axis] : 1);
  const outer = extent.slice(0, axis);
  const count = tf.util.sizeFromShape(outer);
  const index = new Array<number>(axis).fill(0);
  for (let i = 0; i < count; i++) {
    let offset = start[axis] * (axis + 1 < rank ? strides[axis] : 1);
    for (let d = 0; d < axis; d++) offset += (start[d] + index[d]) * strides[d];
    dst.set(src.subarray(offset, offset + run), i * run);
    for (let d = axis - 1; d >= 0; d--) {
      if (++index[d] < outer[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

interface BatchEntries {
  batch: number;
  rows: number;
  inner: number;
  cols: number;
  /** Elements between consecutive entries; 0 for a broadcast operand. */
  strideA: number;
  strideB: number;
}

/** Where a tensor's data starts in the wasm heap, in bytes. */
export function heapOffset(wasm: WasmBackend, t: Info): number {
  return wasm.dataIdMap.get(t.dataId).memoryOffset;
}

/**
 * A [batchA, m, k] x B [batchB, k, n] (one of the batches may be 1,
 * broadcast): the SIMD module's product, or one XNNPACK call per entry where
 * the module cannot run.
 */
function batchedProducts(wasm: WasmBackend, a: Info, b: Info, batchA: number, batchB: number,
                         transposeA = false): Info {
  const [rows, inner] = transposeA ? a.shape.slice(-2).reverse() : a.shape.slice(-2);
  const cols = b.shape[b.shape.length - 1];
  const out = wasm.makeOutput(
    [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), rows, cols],
    'float32');
  const entries = {batch: Math.max(batchA, batchB), rows, inner, cols,
                   strideA: batchA === 1 ? 0 : rows * inner, strideB: batchB === 1 ? 0 : inner * cols};
  const simd = simdKernels(wasm as unknown as tf.KernelBackend);
  if (simd === undefined) {
    if (transposeA) throw new Error('batchedProducts: a transposed left operand needs the SIMD module');
    xnnpackProducts(wasm, a, b, out, entries);
    return out;
  }
  const operands = [heapOffset(wasm, a), heapOffset(wasm, b), heapOffset(wasm, out), rows, inner, cols];
  const work = entries.batch * rows * cols * inner;
  const flag = transposeA ? 1 : 0;
  // Each share packs panels of b into scratch of its own (none for products with few rows).
  const pack = 4 * simd.exports.gemm_pack_floats(rows, inner);
  // Threads share the entries, or one product's 8-column blocks (each share then packs only its
  // own columns), or, with few columns, its rows.
  if (entries.batch > 1) {
    simd.parallel('gemm_batch', [...operands, entries.strideA, entries.strideB, flag], entries.batch, work, pack);
  } else if (cols >= 64 || rows < 32) {
    simd.parallel('gemm_columns', [...operands, flag], Math.ceil(cols / 8), work, pack);
  } else {
    simd.parallel('gemm_rows', [...operands, flag], rows, work, pack);
  }
  return out;
}

let wasmBatchMatMul: ((...args: unknown[]) => void) | undefined;

/**
 * One XNNPACK product per entry, on views of the operands and of the output
 * (no copies): each view is registered with the backend under a fresh id
 * (the backend caches packed weights by the right operand's id) and
 * unregistered without freeing its memory, which belongs to the whole tensor.
 * Copying each entry into fresh tensors instead cost ~30 % of ConvNorm's
 * per-frequency products (612 products of 128 x 64 by 64 x 64 at batch 128).
 */
function xnnpackProducts(wasm: WasmBackend, a: Info, b: Info, out: Info, e: BatchEntries): void {
  wasmBatchMatMul ??= wasm.wasm.cwrap('BatchMatMul', null,
                                      ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number',
                                       'number']);
  const shapeBytes = (shape: number[]) => new Uint8Array(new Int32Array(shape).buffer);
  const [aShape, bShape] = [shapeBytes([1, e.rows, e.inner]), shapeBytes([1, e.inner, e.cols])];
  const [aBase, bBase, outBase] = [heapOffset(wasm, a), heapOffset(wasm, b), heapOffset(wasm, out)];
  const view = (offset: number, shape: number[]) => {
    const info = wasm.makeOutput(shape, 'float32', offset);
    return {info, id: wasm.dataIdMap.get(info.dataId).id};
  };
  const release = (v: {info: Info; id: number}) => {
    wasm.wasm.tfjs.disposeData(v.id);
    wasm.dataIdMap.delete(v.info.dataId);
  };
  // A broadcast operand keeps one view (and so its packed weights) for every entry.
  const sharedA = e.strideA === 0 ? view(aBase, [e.rows, e.inner]) : undefined;
  const sharedB = e.strideB === 0 ? view(bBase, [e.inner, e.cols]) : undefined;
  for (let t = 0; t < e.batch; t++) {
    const ai = sharedA ?? view(aBase + 4 * t * e.strideA, [e.rows, e.inner]);
    const bi = sharedB ?? view(bBase + 4 * t * e.strideB, [e.inner, e.cols]);
    const oi = view(outBase + 4 * t * e.rows * e.cols, [e.rows, e.cols]);
    wasmBatchMatMul(ai.id, aShape, 3, bi.id, bShape, 3, false, false, oi.id);
    if (sharedA === undefined) release(ai);
    if (sharedB === undefined) release(bi);
    release(oi);
  }
  for (const v of [sharedA, sharedB]) if (v !== undefined) release(v);
}

/** The permutation that exchanges a tensor's last two axes. */
function lastAxesSwapped(t: Info): number[] {
  const perm = t.shape.map((_, i) => i);
  perm.splice(-2, 2, perm.length - 1, perm.length - 2);
  return perm;
}

/**
 * tfjs's wasm BatchMatMul is fast (XNNPACK, ~15 GFLOP/s) only for a single
 * product with neither operand transposed; transposed operands (every matMul
 * gradient) and batches run a scalar loop (~1 GFLOP/s). This kernel runs the
 * SIMD module's product (reading a transposed left operand in place, and
 * transposing a right one explicitly, a memory pass), or, without the module,
 * one XNNPACK product per batch entry on explicitly transposed operands. (A
 * plain JS loop for small entries was tried: it is slower even for 480
 * products of 8 x 8 matrices, 34 vs 28 ms.)
 */
function makeBatchMatMul(single: tf.KernelFunc, transpose: tf.KernelFunc): tf.KernelFunc {
  return (args => {
    const wasm = args.backend as unknown as WasmBackend;
    let {a, b} = args.inputs as {a: Info; b: Info};
    const {transposeA, transposeB} = args.attrs as unknown as {transposeA: boolean; transposeB: boolean};
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return single(args);
    const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
    if (batchA !== batchB && batchA !== 1 && batchB !== 1) return single(args);
    const temporaries: Info[] = [];
    const swapLastAxes = (t: Info) => {
      const out = transpose({inputs: {x: t}, attrs: {perm: lastAxesSwapped(t)}, backend: args.backend}) as Info;
      temporaries.push(out);
      return out;
    };
    const rows = a.shape[a.shape.length - (transposeA ? 1 : 2)];
    const cols = b.shape[b.shape.length - (transposeB ? 2 : 1)];
    const simd = simdKernels(args.backend as tf.KernelBackend);
    let out: Info;
    if (simd === undefined && (batchA > 1 || batchB > 1) && cols >= 4 * rows) {
      // XNNPACK packs the right operand on every call and runs fastest with many rows: when the
      // right operand is much the larger, compute (B^T A^T)^T instead. (Measured on ConvNorm's
      // 512-channel products at batch 32: 63 -> 27 ms, transposes included; the Fourier
      // ConvNorm now lays its spectra out so that it never needs this.)
      const left = transposeB ? b : swapLastAxes(b);
      const right = transposeA ? a : swapLastAxes(a);
      const swapped = batchedProducts(wasm, left, right, batchB, batchA);
      out = transpose({inputs: {x: swapped}, attrs: {perm: lastAxesSwapped(swapped)}, backend: args.backend}) as Info;
      wasm.disposeData(swapped.dataId);
    } else {
      // The SIMD product reads a transposed left operand in place (4 of its values per step are
      // then adjacent); a transposed right one is transposed first, its rows being the vectors.
      if (transposeA && simd === undefined) a = swapLastAxes(a);
      if (transposeB) b = swapLastAxes(b);
      // Not XNNPACK for few rows against a long inner dimension either: it packs every fresh right
      // operand ([9 x 612] by [612 x 4096]: 22-30 ms, against 4-6 ms for the SIMD product).
      out = simd === undefined && batchA === 1 && batchB === 1
        ? single({inputs: {a, b}, attrs: {transposeA: false, transposeB: false}, backend: args.backend}) as Info
        : batchedProducts(wasm, a, b, batchA, batchB, transposeA && simd !== undefined);
    }
    for (const t of temporaries) wasm.disposeData(t.dataId);
    return out;
  }) as tf.KernelFunc;
}

/** An output that shares x's (immutable) data under another shape. */
function shareData(backend: tf.KernelBackend, x: Info, shape: number[]): Info {
  (backend as unknown as WasmBackend).incRef(x.dataId);
  return {dataId: x.dataId, shape, dtype: x.dtype};
}

/**
 * A transpose's shape and permutation with the input axes that stay adjacent
 * and in order merged: [N, C, Mh, 2, Fw] by [3, 4, 2, 0, 1] is [N C, Mh, 2 Fw]
 * by [2, 1, 0].
 */
export function collapseTranspose(shape: readonly number[], perm: readonly number[]): {shape: number[]; perm: number[]} {
  // Size-1 axes go first; then runs of input axes that are consecutive in output order become one axis.
  const kept = shape.map((_, a) => a).filter(a => shape[a] !== 1);
  const runs: number[][] = [];
  for (const axis of perm.filter(a => shape[a] !== 1).map(a => kept.indexOf(a))) {
    const last = runs.at(-1);
    if (last !== undefined && last.at(-1)! + 1 === axis) last.push(axis);
    else runs.push([axis]);
  }
  const byInputOrder = [...runs].sort((a, b) => a[0] - b[0]);
  return {
    shape: byInputOrder.map(run => run.reduce((size, a) => size * shape[kept[a]], 1)),
    perm: runs.map(run => byInputOrder.indexOf(run)),
  };
}

/**
 * A transpose whose last axis moves, as planes (the input's last axis
 * against the output's) transposed by the SIMD module. The module loops over
 * the two innermost other axes, so that planes sharing cache lines are done
 * together; any further axes (rank 5 or more after merging) loop here.
 */
function transposeByPlanes(simd: SimdKernels, wasm: WasmBackend, x: Info, {shape, perm}: {shape: number[]; perm: number[]},
                           outShape: number[]): Info {
  const out = wasm.makeOutput(outShape, x.dtype);
  const rank = shape.length;
  const inStrides = [...tf.util.computeStrides(shape), 1];
  const outStrides = [...tf.util.computeStrides(perm.map(a => shape[a])), 1];
  const outStrideOf = shape.map((_, axis) => outStrides[perm.indexOf(axis)]);
  const [along, across] = [perm[rank - 1], rank - 1];
  const others = shape.map((_, axis) => axis).filter(axis => axis !== along && axis !== across);
  // The outer of the two is the one shared between threads: a real axis whenever there is one.
  const looped = others.splice(-2);
  while (looped.length < 2) looped.push(-1);
  const [outer, inner] = looped;
  const [size, from, to] = [(axis: number) => (axis < 0 ? 1 : shape[axis]),
                            (axis: number) => (axis < 0 ? 0 : inStrides[axis]),
                            (axis: number) => (axis < 0 ? 0 : outStrideOf[axis])];
  const count = tf.util.sizeFromShape(others.map(axis => shape[axis]));
  const index = others.map(() => 0);
  simd.withPointers([wasm.typedArrayFromHeap(x), wasm.typedArrayFromHeap(out)], ([px, po]) => {
    for (let i = 0; i < count; i++) {
      let [inAt, outAt] = [0, 0];
      others.forEach((axis, d) => {
        inAt += index[d] * inStrides[axis];
        outAt += index[d] * outStrideOf[axis];
      });
      simd.parallel('transpose_planes', [px + 4 * inAt, po + 4 * outAt, shape[along], shape[across], inStrides[along],
                                         outStrideOf[across], from(outer), to(outer), size(inner), from(inner),
                                         to(inner)], size(outer), tf.util.sizeFromShape(shape) / count);
      for (let d = others.length - 1; d >= 0; d--) {
        if (++index[d] < shape[others[d]]) break;
        index[d] = 0;
      }
    }
  });
  return out;
}

/**
 * tfjs's wasm Transpose has fast loops up to rank 4 only; a rank-5 permutation
 * ran at ~190 ns per element (2 s for the Fourier ConvNorm's spectrum layout).
 * Merging the axes that move together brings most permutations to rank 4 or
 * less; those whose last axis moves then run as the SIMD module's planes, the
 * rest as tfjs's loops.
 */
function makeTranspose(original: tf.KernelFunc): tf.KernelFunc {
  return (args => {
    const x = args.inputs.x as Info;
    const {perm} = args.attrs as unknown as {perm: number[]};
    const reduced = collapseTranspose(x.shape, perm);
    const outShape = perm.map(a => x.shape[a]);
    if (reduced.perm.every((a, i) => a === i)) return shareData(args.backend as tf.KernelBackend, x, outShape);
    const simd = simdKernels(args.backend as tf.KernelBackend);
    if (simd !== undefined && (x.dtype === 'float32' || x.dtype === 'int32') && reduced.perm.at(-1) !== reduced.perm.length - 1) {
      return transposeByPlanes(simd, args.backend as unknown as WasmBackend, x, reduced, outShape);
    }
    const out = original({...args, inputs: {x: {...x, shape: reduced.shape}}, attrs: {perm: reduced.perm}}) as Info;
    return {...out, shape: outShape};
  }) as tf.KernelFunc;
}

/**
 * tfjs's wasm Identity copies its input; tensor data is immutable (variables
 * swap their data rather than write into it), so sharing it is enough, as the
 * cpu backend does. tf.clone and every tensor a custom gradient saves go
 * through here.
 */
function identity({inputs, backend}: {inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend}): Info {
  return shareData(backend, inputs.x!, inputs.x!.shape);
}

const KERNELS: Array<[string, tf.KernelFunc]> = [
  ['Identity', identity as unknown as tf.KernelFunc],
  ['Slice', slice as unknown as tf.KernelFunc],
  ['Conv2DBackpropInput', conv2DBackpropInput as unknown as tf.KernelFunc],
  ['Conv2DBackpropFilter', conv2DBackpropFilter as unknown as tf.KernelFunc],
  ['DepthwiseConv2dNativeBackpropInput', depthwiseBackpropInput as unknown as tf.KernelFunc],
  ['DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilter as unknown as tf.KernelFunc],
];

interface ConvAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat?: string;
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  activation?: string;
}

/**
 * tfjs-backend-wasm 4.22 hands 'same' padding to XNNPACK as TensorFlow SAME
 * padding, and its outputs are then wrong whenever a spatial axis needs no
 * padding at its end (the last window stops short of the input's edge) and the
 * kernel is not 1 x 1: a 1 x 2 kernel at stride 3 on height 5, a 2 x 1 kernel
 * at stride 2 on width 4. Over kernels up to 3 x 5, strides 1-3 and inputs 5 x
 * 4-9, 42 of 270 cases were wrong for dense and 42 of 270 for depthwise
 * convolutions; with the same padding given explicitly none was, so every
 * fallback gets it explicitly (the conv tests' forward checks fail without).
 */
function withExplicitPadding(args: Parameters<tf.KernelFunc>[0], depthwise: boolean): Parameters<tf.KernelFunc>[0] {
  const attrs = args.attrs as unknown as ConvAttrs;
  if (attrs.pad !== 'same') return args;
  const {x, filter} = args.inputs as Record<string, Info>;
  const {top, bottom, left, right} = tf.backend_util.computeConv2DInfo(
    x.shape as Shape4, filter.shape as Shape4, attrs.strides, attrs.dilations ?? 1, 'same', attrs.dimRoundingMode,
    depthwise).padInfo;
  const pad: tf.backend_util.ExplicitPadding = [[0, 0], [top, bottom], [left, right], [0, 0]];
  return {...args, attrs: {...args.attrs, pad} as unknown as tf.NamedAttrMap};
}

/**
 * Conv2D, and FusedConv2D without bias or activation (tfjs-layers' convolutions
 * without bias), on the SIMD module when x has at least 64 channels: x is
 * padded (one PadV2 pass) and the convolution runs as the product of the
 * implicit window matrix with the filter, its output positions shared with the
 * helpers in blocks of 64. ResNet-18's layers at batch 128:
 * 64 to 512 channels 25-51 GFLOP/s against XNNPACK's 22-39; with 3 to 32
 * channels XNNPACK is faster (the taps' channel loops are too short), and it
 * also takes other dtypes, NCHW, dilation, a bias or activation to fuse, and
 * engines without the module. Depthwise convolutions (`depthwise`) always go
 * to XNNPACK, with explicit padding.
 */
function makeConvolution(own: tf.KernelFunc, fused: boolean, depthwise = false): tf.KernelFunc {
  return (args => {
    const {x, filter, bias, preluActivationWeights} =
      args.inputs as {x: Info; filter: Info; bias?: Info; preluActivationWeights?: Info};
    const attrs = args.attrs as unknown as ConvAttrs;
    const simd = simdKernels(args.backend as tf.KernelBackend);
    const plain = !fused || (bias == null && preluActivationWeights == null && (attrs.activation ?? 'linear') === 'linear');
    if (depthwise || simd === undefined || !plain || x.shape[3] < 64 || x.dtype !== 'float32' ||
        filter.dtype !== 'float32' || (attrs.dataFormat ?? 'NHWC') !== 'NHWC' ||
        !tf.backend_util.tupleValuesAreOne(attrs.dilations ?? 1)) {
      return own(withExplicitPadding(args, depthwise));
    }
    const wasm = args.backend as unknown as WasmBackend;
    const [n, h, w, ci] = x.shape;
    const [kh, kw, , co] = filter.shape;
    const {strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo, padInfo: {top, bottom, left, right}} =
      tf.backend_util.computeConv2DInfo(x.shape as Shape4, filter.shape as Shape4, attrs.strides, 1, attrs.pad,
                                        attrs.dimRoundingMode);
    const padded = top + bottom + left + right > 0;
    const xp = padded
      ? original('PadV2').kernelFunc({inputs: {x}, backend: args.backend,
                                      attrs: {paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0}}) as Info
      : x;
    const out = wasm.makeOutput([n, ho, wo, co], 'float32');
    const positions = n * ho * wo;
    simd.parallel('conv_forward',
                  [heapOffset(wasm, xp), heapOffset(wasm, filter), heapOffset(wasm, out), h + top + bottom,
                   w + left + right, ci, ho, wo, co, kh, kw, sh, sw, positions],
                  Math.ceil(positions / 64), positions * co * kh * kw * ci);
    if (padded) wasm.disposeData(xp.dataId);
    return out;
  }) as tf.KernelFunc;
}

/**
 * MaxPoolGrad on the SIMD module, its images shared with the helper threads:
 * tfjs-wasm's took 12 ms for the small CNN's first pooling at batch 128
 * (1M inputs), a quarter of its Conv+BN training step. Dilation, other dtypes
 * and engines without the module go to tfjs's kernel.
 */
function makeMaxPoolGrad(own: tf.KernelFunc): tf.KernelFunc {
  return (args => {
    const {dy, input, output} = args.inputs as {dy: Info; input: Info; output: Info};
    const {filterSize, strides, pad, dimRoundingMode} = args.attrs as unknown as
      {filterSize: number | [number, number]; strides: number | [number, number]; pad: Pad;
       dimRoundingMode?: 'floor' | 'round' | 'ceil'};
    const simd = simdKernels(args.backend as tf.KernelBackend);
    if (simd === undefined || [dy, input, output].some(t => t.dtype !== 'float32')) return own(args);
    const info = tf.backend_util.computePool2DInfo(input.shape as Shape4, filterSize, strides, 1, pad, dimRoundingMode);
    const wasm = args.backend as unknown as WasmBackend;
    const [n, h, w, c] = input.shape;
    const out = wasm.makeOutput(input.shape, 'float32');
    if (n * h * w * c === 0) return out;
    simd.parallel('max_pool_gradient',
                  [heapOffset(wasm, input), heapOffset(wasm, dy), heapOffset(wasm, out), h, w, c, info.outHeight,
                   info.outWidth, info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth,
                   info.padInfo.top, info.padInfo.left],
                  n, n * h * w * c, 8 * c);
    return out;
  }) as tf.KernelFunc;
}

/** tfjs's own wasm kernels that ours wrap, captured before ours replace them. */
const originals = new Map<string, tf.KernelConfig>();

function original(name: string): tf.KernelConfig {
  if (!originals.has(name)) {
    const kernel = tf.getKernel(name, 'wasm');
    if (kernel === undefined) throw new Error(`the wasm backend has no ${name} kernel to build on`);
    originals.set(name, kernel);
  }
  return originals.get(name)!;
}

/** Kernels built on tfjs's own of the same name (which they fall back to). */
const WRAPPERS: Array<[string, (own: tf.KernelFunc) => tf.KernelFunc]> = [
  ['BatchMatMul', own => makeBatchMatMul(own, original('Transpose').kernelFunc)],
  ['Transpose', makeTranspose],
  ['Sum', makeSum],
  ['MaxPoolGrad', makeMaxPoolGrad],
  ['Conv2D', own => makeConvolution(own, false)],
  ['FusedConv2D', own => makeConvolution(own, true)],
  ['DepthwiseConv2dNative', own => makeConvolution(own, false, true)],
  ['FusedDepthwiseConv2D', own => makeConvolution(own, true, true)],
  ...Object.entries(ELEMENTWISE_OPS).map(([name, op]) =>
    [name, (own: tf.KernelFunc) => makeElementwise(own, op)] as [string, (own: tf.KernelFunc) => tf.KernelFunc]),
];

let wrapped: tf.KernelConfig[] | undefined;

/**
 * Registers the training kernels on the wasm backend, and faster Slice, Sum,
 * Transpose, BatchMatMul, Add, Sub, Multiply, MaxPoolGrad and the convolutions (Conv2D,
 * FusedConv2D and their depthwise twins: see withExplicitPadding) in place of
 * its own. Idempotent.
 */
export function registerWasmTrainingKernels(): void {
  // Every original is captured before any is replaced; each keeps its setupFunc.
  wrapped ??= WRAPPERS.map(([name, make]) => ({...original(name), kernelFunc: make(original(name).kernelFunc)}));
  const own: tf.KernelConfig[] = KERNELS.map(([kernelName, kernelFunc]) => ({kernelName, backendName: 'wasm', kernelFunc}));
  for (const config of [...wrapped, ...own]) {
    const existing = tf.getKernel(config.kernelName, 'wasm');
    if (existing?.kernelFunc === config.kernelFunc) continue;
    if (existing !== undefined) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
}
