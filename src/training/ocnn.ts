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

import {fail} from '../convnorm/geometry.js';

/**
 * ||x||_F with PyTorch's gradient at x = 0 (zero, where sqrt's would be NaN):
 * an exactly orthogonal kernel must not poison the step.
 */
const frobeniusNorm = tf.customGrad((...args) => {
  const [x] = args as tf.Tensor[];
  const norm = tf.sqrt(tf.sum(tf.square(x)));
  (args[1] as tf.GradSaveFunc)([x, norm]);
  return {
    value: norm,
    // tfjs runs a custom gradient outside any tidy.
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
      const [x, norm] = saved;
      return [tf.mul(dy, tf.div(x, tf.maximum(norm, 1e-30)))];
    }),
  };
}) as (x: tf.Tensor) => tf.Scalar;

/** The authors' orth_dist for a [kh, kw, C_in, C_out] kernel (meant for 1x1): ||G - I||_F, G the smaller Gram matrix. */
export function orthDist(kernel: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => {
    const cout = kernel.shape[3];
    const fanIn = kernel.size / cout;
    // [F, C_out] = M^T; the column order of M does not change either Gram matrix's distance to I.
    const mt = tf.reshape(kernel, [fanIn, cout]);
    const gram = cout < fanIn ? tf.matMul(mt, mt, true, false) : tf.matMul(mt, mt, false, true);
    return frobeniusNorm(tf.sub(gram, tf.eye(Math.min(cout, fanIn))));
  });
}

/**
 * The authors' deconv_orth_dist for a [kh, kw, C_in, C_out] kernel:
 * ||conv(K, K, stride, padding) - I_centre||_F. Default padding floor(k/2) per axis.
 */
export function deconvOrthDist(kernel: tf.Tensor4D, strides: number | [number, number] = 1,
                               padding?: [number, number]): tf.Scalar {
  const [kh, kw, , cout] = kernel.shape;
  const [ph, pw] = padding ?? [Math.floor(kh / 2), Math.floor(kw / 2)];
  const s: [number, number] = typeof strides === 'number' ? [strides, strides] : strides;
  const oh = Math.floor((kh + 2 * ph - kh) / s[0]) + 1;
  const ow = Math.floor((kw + 2 * pw - kw) / s[1]) + 1;
  return tf.tidy(() => {
    // PyTorch: conv2d(input = K [C_out, C_in, kh, kw], weight = K) -> [C_out, C_out, oh, ow].
    // Here: images [C_out, kh, kw, C_in], filter K itself -> [C_out, oh, ow, C_out].
    const images = tf.pad(tf.transpose(kernel, [3, 0, 1, 2]), [[0, 0], [ph, ph], [pw, pw], [0, 0]]) as tf.Tensor4D;
    const out = tf.conv2d(images, kernel, s, 'valid');
    // Identity between the two channel axes at the centre tap (floor(oh/2), floor(ow/2)).
    const centre = new Float32Array(cout * oh * ow * cout);
    const [ch, cw] = [Math.floor(oh / 2), Math.floor(ow / 2)];
    for (let a = 0; a < cout; a++) centre[((a * oh + ch) * ow + cw) * cout + a] = 1;
    return frobeniusNorm(tf.sub(out, tf.tensor4d(centre, [cout, oh, ow, cout])));
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
 * - 'all': every Conv2D layer.
 * - 'reference': the ones the OCNN and ConvNorm code regularize in ResNet-18:
 *   the 1x1 projection shortcuts and the first conv of every residual block,
 *   found by structure (a conv whose input also feeds another layer is a
 *   block's first conv); no stem, no second convs. A model with no such
 *   structure (the small CNN) gets its 1x1 convs only.
 */
export type OcnnSelection = 'all' | 'reference';

/** The plain Conv2D kernels of a model (layers of class Conv2D; SN, ONI and ConvNorm layers are not plain). */
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
    if (layer.getClassName() !== 'Conv2D') continue;
    const kernel = layer.weights.find(w => w.originalName.split('/').pop() === 'kernel');
    if (kernel === undefined) fail(`Conv2D layer ${layer.name} has no kernel weight`);
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
  const kernels = source instanceof tfl.LayersModel ? ocnnKernels(source, options.selection) : source;
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
      cache.set(model, kernels);
    }
    return ocnnPenalty(kernels, options);
  };
}
