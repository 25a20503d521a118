/**
 * The product bound on a network's Lipschitz constant in the l2 norm
 * (Szegedy et al., ICLR 2014; the layer-wise analysis the ConvNorm paper,
 * Liu et al., NeurIPS 2021, motivates its normalization with): composed along
 * the model graph, each layer's output gets a bound on the Lipschitz constant
 * of the map from the model's input to it,
 *
 * - conv units: their own bound (layer_spectra.ts) times their input's;
 * - ReLU, linear, tanh, softmax activations, flatten, reshape, dropout: 1;
 *   sigmoid 1/4; leaky ReLU max(1, |alpha|);
 * - max pooling: sqrt(c), c = ceil(k_h/s_h) ceil(k_w/s_w) the most windows one
 *   input lies in (1 for non-overlapping windows), since |max_i a_i - max_i b_i|
 *   <= max_i |a_i - b_i|;
 * - average pooling: sqrt(c / (k_h k_w)) ('valid'), from ||A||_2^2 <= ||A||_1 ||A||_inf;
 *   sqrt(c) under 'same', whose border windows average fewer inputs;
 * - global average pooling over H x W: 1 / sqrt(H W), the exact norm of the
 *   averaging map (not the looser 1); global max pooling 1;
 * - a residual add: the sum of its inputs' bounds;
 * - dense layers: the exact spectral norm of the kernel (ml-matrix's SVD),
 *   times their activation's constant; bias terms change no Lipschitz constant;
 * - a BatchNorm2D that is not folded into a conv unit: max_k |gamma_k| / sqrt(var_k + eps).
 *
 * The result bounds ||F(x) - F(y)|| / ||x - y|| for the model's own input,
 * i.e. for inputs as the model receives them (CIFAR images after the mean/std
 * normalization); in raw pixel units it is larger by 1 / min(std).
 */
import * as tfl from '@tensorflow/tfjs-layers';
import {Matrix, SingularValueDecomposition} from 'ml-matrix';

import {BatchNorm2D, BN_EPSILON} from '../layers/batch_norm.js';

/** A conv unit as the composition sees it: the layers it spans and the bound of the map it applies. */
export interface UnitBound {
  /** The unit's first layer (the convolution). */
  first: tfl.layers.Layer;
  /** Its last layer: the convolution itself, or the BatchNorm2D folded into it. */
  last: tfl.layers.Layer;
  /** Upper bound of the unit's l2 operator norm. */
  bound: number;
}

/** Lipschitz constant of an activation by its tfjs name. */
function activationConstant(name: unknown, layer: string): number {
  const constants: Record<string, number> = {
    linear: 1, relu: 1, relu6: 1, elu: 1, tanh: 1, softmax: 1, softplus: 1, softsign: 1,
    sigmoid: 0.25, hardSigmoid: 0.2,
  };
  const c = typeof name === 'string' ? constants[name] : undefined;
  if (c === undefined) throw new Error(`lipschitzBound: no Lipschitz constant known for activation ${JSON.stringify(name)} of ${layer}`);
  return c;
}

function pair(value: unknown): [number, number] {
  const v = value as number | number[];
  return Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];
}

/** Spectral norm of a dense kernel [in, out]. */
export function denseSpectralNorm(kernel: ArrayLike<number>, rows: number, cols: number): number {
  const m = Matrix.from1DArray(rows, cols, Array.from(kernel));
  const svd = new SingularValueDecomposition(m, {computeLeftSingularVectors: false,
                                                 computeRightSingularVectors: false, autoTranspose: true});
  return svd.diagonal[0] ?? 0;
}

function weightValues(layer: tfl.layers.Layer, name: string): Float32Array | undefined {
  const w = layer.weights.find(v => v.originalName.endsWith(`/${name}`));
  return w === undefined ? undefined : w.read().dataSync() as Float32Array;
}

/** The layers feeding `layer` (its single call site). */
function inputsOf(layer: tfl.layers.Layer): tfl.layers.Layer[] {
  if (layer.inboundNodes.length !== 1) {
    throw new Error(`lipschitzBound: layer ${layer.name} is called ${layer.inboundNodes.length} times; shared layers are not supported`);
  }
  return layer.inboundNodes[0].inboundLayers;
}

/** The factor a non-unit layer multiplies its input's bound by (Add excepted). */
function layerConstant(layer: tfl.layers.Layer): number {
  const cls = layer.getClassName();
  const config = layer.getConfig();
  switch (cls) {
    case 'ReLU': case 'Flatten': case 'Reshape': case 'Dropout': case 'SpatialDropout1D': case 'Permute':
    case 'GlobalMaxPooling2D':
      return 1;
    case 'LeakyReLU':
      return Math.max(1, Math.abs(Number(config.alpha ?? 0.3)));
    case 'Activation':
      return activationConstant(config.activation, layer.name);
    case 'MaxPooling2D': case 'AveragePooling2D': {
      const [kh, kw] = pair(config.poolSize);
      const [sh, sw] = pair(config.strides ?? config.poolSize);
      const windows = Math.ceil(kh / sh) * Math.ceil(kw / sw);
      if (cls === 'MaxPooling2D' || config.padding === 'same') return Math.sqrt(windows);
      return Math.sqrt(windows / (kh * kw));
    }
    case 'GlobalAveragePooling2D': {
      const shape = (layer.input as tfl.SymbolicTensor).shape;
      const [h, w] = config.dataFormat === 'channelsFirst' ? [shape[2], shape[3]] : [shape[1], shape[2]];
      if (h == null || w == null) throw new Error(`lipschitzBound: ${layer.name} needs a known input height and width`);
      return 1 / Math.sqrt(h * w);
    }
    case 'Dense': {
      const kernel = layer.weights.find(v => v.originalName.endsWith('/kernel'))!;
      const [rows, cols] = kernel.shape as number[];
      return denseSpectralNorm(kernel.read().dataSync(), rows, cols) * activationConstant(config.activation, layer.name);
    }
    case BatchNorm2D.className: {
      const variance = weightValues(layer, 'moving_variance')!;
      const gamma = weightValues(layer, 'gamma');
      return Math.max(...Array.from(variance, (v, k) => Math.abs(gamma?.[k] ?? 1) / Math.sqrt(v + BN_EPSILON)));
    }
    default:
      throw new Error(`lipschitzBound: no l2 Lipschitz constant known for layer ${layer.name} (${cls})`);
  }
}

/**
 * The product bound of a single-input, single-output model, given the bound
 * of every conv unit. Layers are visited in model.layers order, which tfjs
 * keeps topological.
 */
export function lipschitzBound(model: tfl.LayersModel, units: readonly UnitBound[]): number {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new Error(`lipschitzBound: the model must have one input and one output, it has ${model.inputs.length} and ${model.outputs.length}`);
  }
  const byLast = new Map(units.map(u => [u.last, u]));
  const inside = new Set(units.filter(u => u.first !== u.last).map(u => u.first));
  const bound = new Map<tfl.layers.Layer, number>();
  const of = (layer: tfl.layers.Layer) => {
    const b = bound.get(layer);
    if (b === undefined) throw new Error(`lipschitzBound: ${layer.name} is used before its bound is known`);
    return b;
  };
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') {
      bound.set(layer, 1);
      continue;
    }
    // A conv whose output only feeds the BatchNorm folded into its unit: the unit's last layer carries the bound.
    if (inside.has(layer)) continue;
    const unit = byLast.get(layer);
    if (unit !== undefined) {
      const [input] = inputsOf(unit.first);
      bound.set(layer, unit.bound * of(input));
      continue;
    }
    const inputs = inputsOf(layer);
    if (layer.getClassName() === 'Add') {
      bound.set(layer, inputs.reduce((sum, l) => sum + of(l), 0));
      continue;
    }
    if (inputs.length !== 1) {
      throw new Error(`lipschitzBound: no l2 Lipschitz constant known for layer ${layer.name} (${layer.getClassName()}) with ${inputs.length} inputs`);
    }
    bound.set(layer, layerConstant(layer) * of(inputs[0]));
  }
  return of(model.outputLayers[0]);
}
