/**
 * Layer-wise spectra of a trained network, as the ConvNorm paper (Liu et al.,
 * NeurIPS 2021) reports them, and the product bound on its Lipschitz constant.
 *
 * A conv unit is a convolution (PlainConv2D, SpectralNormConv2D, OniConv2D,
 * tfjs Conv2D, or ConvNorm2D with its affine filter and BatchNorm) together
 * with the BatchNorm2D it feeds directly, if any, all in inference mode
 * (running statistics, ConvNorm's running V). For each unit:
 *
 * - exact values with circular boundary (Sedghi, Gupta & Long, ICLR 2019) on
 *   ConvNorm's Fourier grid (H + kh - 1) x (W + kw - 1). On that grid
 *   ConvNorm's preconditioning is circular by construction (V lives there),
 *   and a zero-padded convolution (padding <= k - 1) is a submatrix of the
 *   circular one: the input sits in the grid with kh - 1 zeros around it and
 *   every wrapped-around tap reads a zero;
 * - the strided operator, exact by the polyphase construction (Senderovich,
 *   Bulatova, Obukhov & Rakhuba, NeurIPS 2022) when the grid is a multiple of
 *   the stride (./circular_spectrum.ts);
 * - a power iteration on the unit itself, zero padding and stride as they
 *   run (./power_iteration.ts).
 *
 * ConvNorm's affine depthwise filter runs after the stride, on the output
 * grid. Subsampling by s and then filtering with A equals filtering the full
 * grid with A's taps spaced s apart and then subsampling, so in the
 * unstrided `folded` value the filter's transfer function is A(s f), and
 * `folded` bounds `strided` from above.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {convNormGeometry, resolvePadding} from '../convnorm/geometry.js';
import {ConvNorm2D} from '../convnorm/layer.js';
import {BatchNorm2D, BN_EPSILON} from '../layers/batch_norm.js';
import {NormalizedConv2D} from '../layers/normalized_conv.js';
import {OniConv2D} from '../layers/oni.js';
import {SpectralNormConv2D} from '../layers/spectral_norm.js';
import type {NormKind} from '../models/blocks.js';
import {CircularConv} from './circular_spectrum.js';
import {lipschitzBound, UnitBound} from './lipschitz.js';
import {powerIterationNorm} from './power_iteration.js';
import {KernelValues, RowScale, spectrumRowScale} from './singular_values.js';

export interface LayerSpectralNorm {
  /** The conv layer's name. */
  layer: string;
  /** Largest singular value of the unit's linear map (UnitSpectrum.folded). */
  spectralNorm: number;
}

/** One conv unit's spectra; all norms are l2 operator norms (largest singular values). */
export interface UnitSpectrum {
  /** The conv layer's name (as in model.layers). */
  name: string;
  /**
   * The tfjs name (originalName) of the unit's raw kernel weight, under which
   * model.save, and so the checkpoint's model.json, stores it, e.g.
   * `conv_norm2d_ConvNorm2D3/kernel`. For SN and ONI it is the raw,
   * un-normalized parameter.
   */
  kernel: string;
  /** The unit's normalization, as the models name it (bn, convnorm, convnorm-nobn, none, sn, oni). */
  norm: NormKind;
  /** Input height and width. */
  inputSize: [number, number];
  /** [s_h, s_w]. */
  stride: [number, number];
  /** The circular grid of `conv`, `folded` and `strided`: [H + kh - 1, W + kw - 1]. */
  grid: [number, number];
  /** The raw kernel alone, circular on the grid, unstrided. */
  conv: number;
  /**
   * The whole linear map of the unit, circular on the grid, unstrided: the
   * convolution with the kernel it uses (SN's and ONI's normalized kernel);
   * ConvNorm's preconditioning by the running V, its affine filter dilated by
   * the stride and its BatchNorm's gamma / sqrt(running variance + eps); a
   * following BatchNorm2D's gamma / sqrt(running variance + eps). Biases and
   * means shift the output and leave the norm alone.
   */
  folded: number;
  /**
   * The same map with the stride, exact (polyphase) with circular boundary;
   * null for unstrided units (it would equal `folded`) and where the grid is
   * not a multiple of the stride.
   */
  strided: number | null;
  /**
   * Power iteration on the unit as it runs (zero padding, stride), on
   * x -> unit(x) - unit(0) in inference mode: a lower bound of that operator's
   * norm, converging to it; null when no iterations were asked for.
   */
  powerIteration: number | null;
  /**
   * An upper bound of the norm of the unit as it runs (zero padding, stride),
   * the factor `lipschitzBound` uses. Without ConvNorm's affine filter the
   * zero-padded strided unit is a submatrix of the circular one, so this is
   * `strided` where known, else `folded`. The affine filter is zero-padded on
   * the output grid after the crop, which breaks that embedding (the
   * cropped-off samples of the circular output are not zeros), so for ConvNorm
   * with it this is the product of the filter's norm, max_k max_f
   * |bn_k A_k(f)| over the (H_o + kh - 1) x (W_o + kw - 1) grid (on which the
   * zero-padded filter is a submatrix of the circular one), and the norm of
   * the preconditioned strided convolution (circular, exact; unstrided where
   * the grid is not a multiple of the stride).
   */
  bound: number;
  /** With `values`: every singular value of `folded`, descending (min(C_in, C_out) per grid frequency). */
  values?: number[];
}

export interface UnitSpectraOptions {
  /** Also return every singular value of each unit's `folded` map. Default false. */
  values?: boolean;
  /** Power iteration steps per unit; 0 skips the power iteration. Default 30. */
  powerIterations?: number;
  /** Seed of the power iterations' start vectors (each unit adds its index). Default 0. */
  seed?: number;
  /** Called after each unit with the units done, the number of units and the unit's name. */
  onUnit?: (done: number, total: number, name: string) => void;
}

export interface ModelSpectra {
  /** One entry per conv unit, in model.layers order (stem, blocks, shortcuts as the model lists them). */
  units: UnitSpectrum[];
  /**
   * The product bound on the model's l2 Lipschitz constant, for its own
   * (normalized) input, composed along the graph from each unit's `bound`
   * (see ./lipschitz.ts for every other layer).
   */
  lipschitzBound: number;
  /**
   * The same composition with each unit's circular value (`strided` where
   * known, else `folded`) in place of `bound`: the product of the values the
   * paper's analysis reports. It equals lipschitzBound for models without
   * ConvNorm's affine filter; with it, it is smaller and not a guaranteed bound
   * of the zero-padded network (see UnitSpectrum.bound).
   */
  circularBound: number;
}

/** A conv unit of the model: the convolution and the BatchNorm2D it feeds, if any. */
interface ConvUnit {
  conv: tfl.layers.Layer;
  batchNorm?: BatchNorm2D;
}

function weight(layer: tfl.layers.Layer, name: string): tfl.LayerVariable | undefined {
  return layer.weights.find(v => v.originalName.endsWith(`/${name}`));
}

function values(layer: tfl.layers.Layer, name: string): Float32Array | undefined {
  return weight(layer, name)?.read().dataSync() as Float32Array | undefined;
}

/** |gamma_k| / sqrt(running variance_k + eps), or undefined when the layer has no BatchNorm. */
function batchNormScale(layer: tfl.layers.Layer): Float64Array | undefined {
  const variance = values(layer, 'moving_variance');
  if (variance === undefined) return undefined;
  const gamma = values(layer, 'gamma');
  return Float64Array.from(variance, (v, k) => Math.abs(gamma?.[k] ?? 1) / Math.sqrt(v + BN_EPSILON));
}

/**
 * |A_k(f)| of each channel's depthwise filter [kh, kw, C, 1] on an nh x nw
 * grid, with the taps spaced `dilation` apart: A(dilation * f).
 */
function filterGain(filter: Float32Array, kernelSize: readonly [number, number], channels: number,
                    grid: readonly [number, number], dilation: readonly [number, number]): RowScale {
  const [kh, kw] = kernelSize;
  const [nh, nw] = grid;
  const table = new Float64Array(channels * nh * nw);
  for (let u = 0; u < nh; u++) {
    for (let v = 0; v < nw; v++) {
      for (let k = 0; k < channels; k++) {
        let re = 0;
        let im = 0;
        for (let a = 0; a < kh; a++) {
          for (let b = 0; b < kw; b++) {
            const t = 2 * Math.PI * (((a * dilation[0] * u) % nh) / nh + ((b * dilation[1] * v) % nw) / nw);
            const w = filter[(a * kw + b) * channels + k];
            re += w * Math.cos(t);
            im -= w * Math.sin(t);
          }
        }
        table[(k * nh + u) * nw + v] = Math.hypot(re, im);
      }
    }
  }
  return (k, u, v) => table[(k * nh + u) * nw + v];
}

/**
 * The even part (V(f) + V(-f)) / 2 of a stored spectrum. The running V keeps
 * both f and -f on the columns v = 0 (and v = M_w / 2) of its half spectrum,
 * equal only up to float32 rounding; the layer's real-valued inverse
 * transform applies their mean, so that is the operator analysed.
 */
function evenSpectrum(scale: RowScale, [nh, nw]: [number, number]): RowScale {
  return (k, u, v) => 0.5 * (scale(k, u, v) + scale(k, (nh - u) % nh, (nw - v) % nw));
}

/** The BatchNorm2D a layer feeds into directly and alone, if any. */
function followingBatchNorm(layer: tfl.layers.Layer): BatchNorm2D | undefined {
  const next = layer.outboundNodes.map(n => n.outboundLayer);
  return next.length === 1 && next[0] instanceof BatchNorm2D ? next[0] : undefined;
}

function isConv(layer: tfl.layers.Layer): boolean {
  return layer instanceof ConvNorm2D || layer instanceof NormalizedConv2D || layer.getClassName() === 'Conv2D';
}

/** The model's conv units, in model.layers order. */
function convUnits(model: tfl.LayersModel): ConvUnit[] {
  return model.layers.filter(isConv).map(conv => ({
    conv, batchNorm: conv instanceof ConvNorm2D ? undefined : followingBatchNorm(conv),
  }));
}

function unitNorm(unit: ConvUnit): NormKind {
  const {conv} = unit;
  if (conv instanceof ConvNorm2D) return conv.batchNorm ? 'convnorm' : 'convnorm-nobn';
  if (conv instanceof SpectralNormConv2D) return 'sn';
  if (conv instanceof OniConv2D) return 'oni';
  return unit.batchNorm === undefined ? 'none' : 'bn';
}

function strides(conv: tfl.layers.Layer): [number, number] {
  if (conv instanceof ConvNorm2D || conv instanceof NormalizedConv2D) return [...conv.strides];
  // tfjs Conv2D: only the configurations whose operator is a plain zero-padded convolution.
  const config = conv.getConfig();
  const dilation = [config.dilationRate ?? 1].flat() as number[];
  if (dilation.some(d => d !== 1) || (config.dataFormat ?? 'channelsLast') !== 'channelsLast' ||
      (config.activation ?? 'linear') !== 'linear') {
    throw new Error(`layer spectra: ${conv.name} (Conv2D) needs dilation 1, channelsLast and a linear activation`);
  }
  const s = [config.strides ?? 1].flat() as number[];
  return [s[0], s[1] ?? s[0]];
}

/** A conv's input height and width, its input channels, and ConvNorm's Fourier grid (H + kh - 1) x (W + kw - 1). */
function convGeometry(conv: tfl.layers.Layer): {inputSize: [number, number]; cin: number; grid: [number, number]} {
  const input = (conv.input as tfl.SymbolicTensor).shape;
  const [h, w, cin] = [input[1], input[2], input[3]];
  if (h == null || w == null || cin == null) {
    throw new Error(`layer spectra: ${conv.name} needs a known input height, width and channel count, got [${input}]`);
  }
  const [kh, kw] = weight(conv, 'kernel')!.shape as number[];
  return {inputSize: [h, w], cin, grid: [h + kh - 1, w + kw - 1]};
}

function kernelValues(tensor: tf.Tensor): KernelValues {
  return {data: tensor.dataSync() as Float32Array, shape: tensor.shape as unknown as KernelValues['shape']};
}

/** The kernel the conv applies in inference: SN's and ONI's normalized one, else the raw weight. */
function effectiveKernel(conv: tfl.layers.Layer): KernelValues {
  if (conv instanceof NormalizedConv2D) {
    const k = conv.effectiveKernel();
    const kernel = kernelValues(k);
    k.dispose();
    return kernel;
  }
  return kernelValues(weight(conv, 'kernel')!.read());
}

interface UnitGains {
  /** Before the stride, on the grid: ConvNorm's V. */
  before?: RowScale;
  /** After the stride, on the output grid: the affine filter and the BatchNorm scale. */
  after?: RowScale;
  /** For `folded`: everything on the grid, the affine filter dilated by the stride. */
  folded?: RowScale;
  /** ConvNorm with its affine filter: the zero-padded filter's norm with the BatchNorm scale, max_k max_f |bn_k A_k(f)|. */
  filterNorm?: number;
}

function product(...scales: Array<RowScale | undefined>): RowScale | undefined {
  const present = scales.filter((s): s is RowScale => s !== undefined);
  if (present.length === 0) return undefined;
  return (k, u, v) => present.reduce((p, s) => p * s(k, u, v), 1);
}

function unitGains(unit: ConvUnit, inputSize: [number, number], grid: [number, number],
                   stride: [number, number]): UnitGains {
  const {conv} = unit;
  if (!(conv instanceof ConvNorm2D)) {
    const bn = unit.batchNorm === undefined ? undefined : batchNormScale(unit.batchNorm);
    const scale: RowScale | undefined = bn === undefined ? undefined : k => bn[k];
    return {after: scale, folded: scale};
  }
  const [kh, kw] = conv.kernelSize;
  const cout = conv.filters;
  const v = evenSpectrum(spectrumRowScale(values(conv, 'running_v')!, grid, kh === 1 && kw === 1), grid);
  const bnValues = batchNormScale(conv);
  const bn: RowScale | undefined = bnValues === undefined ? undefined : k => bnValues[k];
  const affine = values(conv, 'affine_kernel');
  if (affine === undefined) return {before: v, after: bn, folded: product(v, bn)};
  const output: [number, number] = [grid[0] / stride[0], grid[1] / stride[1]];
  const dilated = filterGain(affine, [kh, kw], cout, grid, stride);
  // The zero-padded filter's own norm, on the grid where it is a submatrix of the circular one.
  const outputSize = convNormGeometry(inputSize, conv.kernelSize, conv.strides,
                                      resolvePadding(conv.padding, conv.kernelSize)).outputSize;
  const padGrid: [number, number] = [outputSize[0] + kh - 1, outputSize[1] + kw - 1];
  const padGain = filterGain(affine, [kh, kw], cout, padGrid, [1, 1]);
  let filterNorm = 0;
  for (let k = 0; k < cout; k++) {
    for (let u = 0; u < padGrid[0]; u++) {
      for (let w = 0; w < padGrid[1]; w++) filterNorm = Math.max(filterNorm, padGain(k, u, w) * (bnValues?.[k] ?? 1));
    }
  }
  const divisible = Number.isInteger(output[0]) && Number.isInteger(output[1]);
  return {
    before: v,
    after: divisible ? product(filterGain(affine, [kh, kw], cout, output, [1, 1]), bn) : undefined,
    folded: product(v, dilated, bn),
    filterNorm,
  };
}

/** The unit as a function of its input, in inference mode. */
function unitFunction(unit: ConvUnit): (x: tf.Tensor) => tf.Tensor {
  return x => {
    const y = unit.conv.apply(x) as tf.Tensor;
    return unit.batchNorm === undefined ? y : unit.batchNorm.apply(y) as tf.Tensor;
  };
}

function unitSpectrum(unit: ConvUnit, index: number, options: UnitSpectraOptions & {foldedOnly?: boolean}): UnitSpectrum {
  const {conv} = unit;
  const raw = weight(conv, 'kernel')!;
  const {inputSize, grid, cin} = convGeometry(conv);
  const stride = strides(conv);
  const gains = unitGains(unit, inputSize, grid, stride);
  const effective = new CircularConv(effectiveKernel(conv));
  const folded = effective.spectrum(grid, {gainBeforeStride: gains.folded, values: options.values});
  const result: UnitSpectrum = {
    name: conv.name, kernel: raw.originalName, norm: unitNorm(unit), inputSize, stride, grid,
    conv: NaN, folded: folded.norm, strided: null, powerIteration: null, bound: NaN,
  };
  if (options.foldedOnly) return result;
  // SN and ONI normalize the kernel they convolve with; every other unit's raw kernel is that kernel.
  const rawConv = conv instanceof SpectralNormConv2D || conv instanceof OniConv2D
    ? new CircularConv(kernelValues(raw.read())) : effective;
  result.conv = rawConv.spectrum(grid).norm;
  const strided = stride[0] * stride[1] > 1;
  const divisible = grid[0] % stride[0] === 0 && grid[1] % stride[1] === 0;
  if (strided && divisible) {
    result.strided = effective.spectrum(grid, {strides: stride, gainBeforeStride: gains.before,
                                               gainAfterStride: gains.after}).norm;
  }
  if (gains.filterNorm === undefined) {
    result.bound = result.strided ?? result.folded;
  } else {
    const preconditioned = strided && divisible
      ? effective.spectrum(grid, {strides: stride, gainBeforeStride: gains.before}).norm
      : effective.spectrum(grid, {gainBeforeStride: gains.before}).norm;
    result.bound = gains.filterNorm * preconditioned;
  }
  const iterations = options.powerIterations ?? 30;
  if (iterations > 0) {
    result.powerIteration = powerIterationNorm(unitFunction(unit), [...inputSize, cin],
                                               {iterations, seed: (options.seed ?? 0) + index});
  }
  if (folded.values !== undefined) result.values = Array.from(folded.values);
  return result;
}

/** A convolution's kernel as the model holds it, with the grid ConvNorm's V lives on. */
export interface ConvKernel {
  /** The layer's name. */
  name: string;
  /** Its class name (ConvNorm2D, Conv2D, PlainConv2D, SpectralNormConv2D, OniConv2D). */
  className: string;
  /** The raw kernel [kh, kw, C_in, C_out]: before ConvNorm's preconditioning, SN's and ONI's normalization. */
  kernel: KernelValues;
  /** The layer's input height and width. */
  inputSize: [number, number];
  /** ConvNorm's Fourier grid for that input, (H + kh - 1) x (W + kw - 1). */
  grid: [number, number];
}

/** The raw kernel of every convolution of a model, in model order (read back; no tensor outlives the call). */
export function convKernels(model: tfl.LayersModel): ConvKernel[] {
  return model.layers.filter(isConv).map(conv => {
    const {inputSize, grid} = convGeometry(conv);
    return {name: conv.name, className: conv.getClassName(), kernel: kernelValues(weight(conv, 'kernel')!.read()),
            inputSize, grid};
  });
}

/**
 * Spectra of every conv unit of a model built by buildModel (or any model
 * of the same layers), in inference mode, and the product bound on its
 * Lipschitz constant. Reads the weights back (float64 arithmetic from there)
 * and creates no tensor that outlives the call.
 */
export function unitSpectra(model: tfl.LayersModel, options: UnitSpectraOptions = {}): ModelSpectra {
  const units = convUnits(model);
  const spectra: UnitSpectrum[] = [];
  units.forEach((unit, i) => {
    spectra.push(unitSpectrum(unit, i, options));
    options.onUnit?.(i + 1, units.length, unit.conv.name);
  });
  const compose = (bound: (s: UnitSpectrum) => number) => lipschitzBound(model, units.map((unit, i): UnitBound => ({
    first: unit.conv, last: unit.batchNorm ?? unit.conv, bound: bound(spectra[i]),
  })));
  return {units: spectra, lipschitzBound: compose(s => s.bound), circularBound: compose(s => s.strided ?? s.folded)};
}

/**
 * One entry per conv unit (plain, SN, ONI or ConvNorm, with a following
 * BatchNorm folded in), in model order: the `folded` norm of unitSpectra.
 * The second argument is ignored; the values are exact.
 */
export function layerSpectralNorms(model: tfl.LayersModel, _iterations?: number): LayerSpectralNorm[] {
  return convUnits(model).map((unit, i) => {
    const s = unitSpectrum(unit, i, {foldedOnly: true});
    return {layer: s.name, spectralNorm: s.folded};
  });
}
