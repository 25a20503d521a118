/**
 * The OCNN orthogonality penalty (Wang, Chen, Chakraborthy & Yu, CVPR 2020),
 * the loss-term baseline ConvNorm is compared with, as the authors' code
 * computes it (samaonline/Orthogonal-Convolutional-Neural-Networks,
 * imagenet/utils.py, copied by the ConvNorm code into utils/util.py):
 *
 * - deconv_orth_dist(K, stride, padding): the kernel as a batch of C_out images
 *   of C_in channels, convolved (cross-correlation) with itself at the layer's
 *   stride, minus the identity at the centre tap (index floor(size/2) of the
 *   output), Frobenius norm (not squared). Padding floor(k/2) per side (the
 *   authors' fixed 1 for their 3x3 kernels).
 * - orth_dist(M): for 1x1 kernels, M = [C_out, C_in]: ||G - I||_F with G the
 *   smaller Gram matrix (M M^T when C_out < C_in, else M^T M).
 *
 * Note the authors' stride-2 target: with 3x3 kernels, padding 1 and stride 2
 * the self-convolution is 2x2, sampled at shifts -1 and +1, and the "centre"
 * index 1 is shift (+1, +1). That is what they (and this) penalize.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {fail} from '../common/arguments.js';
import {PlainConv2D} from '../layers/plain_conv.js';

/**
 * sqrt(s) whose gradient at s = 0 is 0 rather than NaN (PyTorch's norm does
 * the same): the penalty of an exactly orthogonal kernel must not poison the
 * step. s here is always a sum of squares, whose own gradient is 0 there.
 */
const safeSqrt = tf.customGrad((...args) => {
  const [s] = args as tf.Tensor[];
  const root = tf.sqrt(s);
  (args[1] as tf.GradSaveFunc)([root]);
  return {
    value: root,
    // tfjs runs a custom gradient outside any tidy.
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => [tf.div(tf.mul(dy, 0.5), tf.maximum(saved[0], 1e-30))]),
  };
}) as (s: tf.Tensor) => tf.Scalar;

function sumOfSquares(x: tf.Tensor): tf.Scalar {
  return tf.sum(tf.square(x));
}

/** The authors' orth_dist for a [kh, kw, C_in, C_out] kernel (meant for 1x1): ||G - I||_F, G the smaller Gram matrix. */
export function orthDist(kernel: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => {
    const cout = kernel.shape[3];
    const fanIn = kernel.size / cout;
    // [F, C_out] = M^T; the column order of M does not change either Gram matrix's distance to I.
    const mt = tf.reshape(kernel, [fanIn, cout]);
    const gram = cout < fanIn ? tf.matMul(mt, mt, true, false) : tf.matMul(mt, mt, false, true);
    return safeSqrt(sumOfSquares(tf.sub(gram, tf.eye(Math.min(cout, fanIn)))));
  });
}

/**
 * The authors' deconv_orth_dist for a [kh, kw, C_in, C_out] kernel:
 * ||conv(K, K, stride, padding) - I_centre||_F. Default padding floor(k/2) per axis.
 *
 * Computed shift by shift rather than as the convolution: the output at
 * shift d = (y s_h - p_h, x s_w - p_w) is the [C_out, C_out] product
 * P_d = A_d^T B_d of the kernel taps that overlap at that shift, and P_-d =
 * P_d^T, so each pair of opposite shifts costs one product. For 3x3 kernels
 * that is 29 (stride 1) or 8 (stride 2) tap products per channel pair
 * against the convolution's 81 or 36, and the gradient is matrix products
 * too (the conv's input gradient is slow on wasm). Same value as the
 * convolution up to rounding.
 */
export function deconvOrthDist(kernel: tf.Tensor4D, strides: number | [number, number] = 1,
                               padding?: [number, number]): tf.Scalar {
  const [kh, kw, cin, cout] = kernel.shape;
  const [ph, pw] = padding ?? [Math.floor(kh / 2), Math.floor(kw / 2)];
  const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
  if (![ph, pw, sh, sw].every(Number.isInteger) || ph < 0 || pw < 0 || sh < 1 || sw < 1) {
    fail(`OCNN: strides must be positive and padding non-negative integers, got strides [${sh}, ${sw}], ` +
         `padding [${ph}, ${pw}]`);
  }
  // PyTorch's conv2d(K, K, stride, padding) output is oh x ow; output (y, x) is the shift (y sh - ph, x sw - pw).
  const shiftsY = Array.from({length: Math.floor(2 * ph / sh) + 1}, (_, y) => y * sh - ph);
  const shiftsX = Array.from({length: Math.floor(2 * pw / sw) + 1}, (_, x) => x * sw - pw);
  // The target identity sits at output index floor(size / 2) of each axis.
  const target = [shiftsY[Math.floor(shiftsY.length / 2)], shiftsX[Math.floor(shiftsX.length / 2)]];
  const isTarget = (dy: number, dx: number) => dy === target[0] && dx === target[1];
  const sampled = new Set(shiftsY.flatMap(dy => shiftsX.map(dx => `${dy},${dx}`)));
  return tf.tidy(() => {
    const eye = tf.eye(cout);
    const terms: tf.Scalar[] = [];
    let constant = 0;
    const done = new Set<string>();
    for (const dy of shiftsY) {
      for (const dx of shiftsX) {
        if (done.has(`${dy},${dx}`)) continue;
        done.add(`${dy},${dx}`);
        const paired = (dy !== 0 || dx !== 0) && sampled.has(`${-dy},${-dx}`);
        if (paired) done.add(`${-dy},${-dx}`);
        const targets = paired ? [isTarget(dy, dx), isTarget(-dy, -dx)] : [isTarget(dy, dx)];
        const [nh, nw] = [kh - Math.abs(dy), kw - Math.abs(dx)];
        if (nh <= 0 || nw <= 0) {
          // No taps overlap: the output there is 0, and only a target contributes (||I||^2).
          constant += targets.filter(t => t).length * cout;
          continue;
        }
        // P[a, b] = sum over overlapping taps (i, j) and c of K[i + dy, j + dx, c, a] K[i, j, c, b].
        const a = tf.reshape(tf.slice(kernel, [Math.max(dy, 0), Math.max(dx, 0), 0, 0], [nh, nw, cin, cout]),
                             [nh * nw * cin, cout]);
        const b = tf.reshape(tf.slice(kernel, [Math.max(-dy, 0), Math.max(-dx, 0), 0, 0], [nh, nw, cin, cout]),
                             [nh * nw * cin, cout]);
        const p = tf.matMul(a, b, true, false);
        // P_-d = P_d^T and the targets are symmetric: ||P_-d - T||_F = ||P_d - T||_F.
        for (const t of targets) terms.push(sumOfSquares(t ? tf.sub(p, eye) : p));
      }
    }
    return safeSqrt(tf.add(terms.length > 0 ? tf.addN(terms) : tf.scalar(0), constant));
  });
}

/** A kernel the penalty covers: the tensor (read at each call, so gradients reach the variable) and its stride. */
export interface OcnnKernel {
  kernel: tf.Tensor4D | tfl.LayerVariable;
  strides?: number | [number, number];
  /** The layer it belongs to (informational). */
  name?: string;
}

/**
 * Which plain convolutions of a model the penalty covers:
 * - 'all': every plain convolution.
 * - 'reference': the ones the OCNN and ConvNorm code regularize in ResNet-18:
 *   the 1x1 projection shortcuts and the first conv of every residual block,
 *   found by structure (a conv whose input also feeds another layer is a
 *   block's first conv); no stem, no second convs. A model with no such
 *   structure (the small CNN) gets its 1x1 convs only.
 */
export type OcnnSelection = 'all' | 'reference';

/** A convolution whose kernel is used as it is: this package's PlainConv2D, or tfjs's own Conv2D. */
function isPlainConv(layer: tfl.layers.Layer): boolean {
  return layer instanceof PlainConv2D || layer.getClassName() === 'Conv2D';
}

/** The plain convolution kernels of a model (PlainConv2D or tfjs Conv2D; SN, ONI and ConvNorm layers are not plain). */
export function ocnnKernels(model: tfl.LayersModel, selection: OcnnSelection = 'all'): OcnnKernel[] {
  if (selection !== 'all' && selection !== 'reference') {
    fail(`OCNN selection must be 'all' or 'reference', got ${JSON.stringify(selection)}`);
  }
  // How many layers of the model consume each symbolic tensor.
  const consumers = new Map<number, number>();
  for (const layer of model.layers) {
    // An InputLayer's node lists the model input as its own input; it consumes nothing.
    if (layer.getClassName() === 'InputLayer') continue;
    for (const node of layer.inboundNodes) {
      for (const t of node.inputTensors) consumers.set(t.id, (consumers.get(t.id) ?? 0) + 1);
    }
  }
  const kernels: OcnnKernel[] = [];
  for (const layer of model.layers) {
    if (!isPlainConv(layer)) continue;
    const kernel = layer.weights.find(w => w.originalName.split('/').pop() === 'kernel');
    if (kernel === undefined) fail(`convolution ${layer.name} has no kernel weight`);
    const [kh, kw] = kernel.shape;
    if (selection === 'reference') {
      const pointwise = kh === 1 && kw === 1;
      const input = layer.inboundNodes[0]?.inputTensors[0];
      const blockEntry = input !== undefined && (consumers.get(input.id) ?? 0) > 1;
      if (!pointwise && !blockEntry) continue;
    }
    const strides = (layer.getConfig().strides ?? 1) as number | [number, number];
    kernels.push({kernel, strides, name: layer.name});
  }
  return kernels;
}

export interface OcnnOptions {
  /** Weight of the penalty in the loss (the ConvNorm code's lamb_ocnn, 0.001 in its robustness config). */
  lambda: number;
  /** When a model is given: which of its convs. Default 'all'. */
  selection?: OcnnSelection;
}

/**
 * lambda * (sum over the kernels of orth_dist for 1x1 kernels and
 * deconv_orth_dist(stride) for the others). Pass a model (its plain Conv2D
 * kernels, see ocnnKernels) or the kernels themselves. Call it inside the
 * function tf.variableGrads differentiates so the gradient reaches the kernels.
 */
export function ocnnPenalty(source: tfl.LayersModel | readonly OcnnKernel[], options: OcnnOptions): tf.Scalar {
  const {lambda} = options;
  if (!(lambda >= 0 && Number.isFinite(lambda))) fail(`OCNN lambda must be a finite number >= 0, got ${lambda}`);
  let kernels = source as readonly OcnnKernel[];
  if (source instanceof tfl.LayersModel) {
    kernels = ocnnKernels(source, options.selection);
    if (kernels.length === 0) fail(`OCNN: model ${source.name} has no plain convolutions to regularize`);
  }
  return tf.tidy(() => {
    let total: tf.Scalar = tf.scalar(0);
    for (const {kernel, strides} of kernels) {
      const k = (kernel instanceof tfl.LayerVariable ? kernel.read() : kernel) as tf.Tensor4D;
      if (k.rank !== 4) fail(`OCNN needs [kh, kw, C_in, C_out] kernels, got [${k.shape}]`);
      const pointwise = k.shape[0] === 1 && k.shape[1] === 1;
      total = tf.add(total, pointwise ? orthDist(k) : deconvOrthDist(k, strides ?? 1));
    }
    return tf.mul(lambda, total);
  });
}

/**
 * The penalty as a trainer's `extraLoss: (model) => tf.Scalar` hook; the
 * kernel list is found once per model.
 */
export function ocnnLoss(options: OcnnOptions): (model: tfl.LayersModel) => tf.Scalar {
  const cache = new WeakMap<tfl.LayersModel, OcnnKernel[]>();
  return (model: tfl.LayersModel) => {
    let kernels = cache.get(model);
    if (kernels === undefined) {
      kernels = ocnnKernels(model, options.selection);
      if (kernels.length === 0) fail(`OCNN: model ${model.name} has no plain convolutions to regularize`);
      cache.set(model, kernels);
    }
    return ocnnPenalty(kernels, options);
  };
}
