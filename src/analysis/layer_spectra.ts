/**
 * Layer-wise spectral norms of a trained network, as the paper reports them:
 * for each conv unit, the largest singular value of the linear map it applies
 * in inference (conv, then ConvNorm's preconditioning and affine filter, then
 * BatchNorm's per-channel scale), by Sedghi et al.'s per-frequency SVD. The
 * boundary is taken circular on the (H + kh - 1) x (W + kw - 1) grid ConvNorm
 * preconditions on and the stride is ignored, so each value is the norm of
 * the unstrided circular operator: an upper bound of the strided one.
 */
import * as tfl from '@tensorflow/tfjs-layers';

import {ConvNorm2D} from '../convnorm/layer.js';
import {BatchNorm2D, BN_EPSILON} from '../layers/batch_norm.js';
import {NormalizedConv2D} from '../layers/normalized_conv.js';
import {convSpectralNorm, KernelValues, RowScale, spectrumRowScale} from './singular_values.js';

export interface LayerSpectralNorm {
  /** The conv layer's name. */
  layer: string;
  /** Largest singular value of the unit's linear map. */
  spectralNorm: number;
}

function weight(layer: tfl.layers.Layer, name: string): Float32Array | undefined {
  const w = layer.weights.find(v => v.originalName.endsWith(`/${name}`));
  return w === undefined ? undefined : w.read().dataSync() as Float32Array;
}

/** gamma / sqrt(running variance + eps) per channel, or undefined when there is no BatchNorm. */
function batchNormScale(layer: tfl.layers.Layer): Float32Array | undefined {
  const variance = weight(layer, 'moving_variance');
  if (variance === undefined) return undefined;
  const gamma = weight(layer, 'gamma');
  return variance.map((v, k) => (gamma?.[k] ?? 1) / Math.sqrt(v + BN_EPSILON));
}

/** |DFT| of each channel's depthwise filter on the grid: [C][u][v]. */
function depthwiseMagnitude(filter: Float32Array, kh: number, kw: number, channels: number,
                            grid: [number, number]): (k: number, u: number, v: number) => number {
  const [nh, nw] = grid;
  const cache = new Map<number, number>();
  return (k, u, v) => {
    const key = (k * nh + u) * nw + v;
    let m = cache.get(key);
    if (m === undefined) {
      let re = 0, im = 0;
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          const t = -2 * Math.PI * (a * u / nh + b * v / nw);
          const w = filter[(a * kw + b) * channels + k];
          re += w * Math.cos(t);
          im += w * Math.sin(t);
        }
      }
      m = Math.hypot(re, im);
      cache.set(key, m);
    }
    return m;
  };
}

/** The BatchNorm2D a layer feeds into directly, if any. */
function followingBatchNorm(layer: tfl.layers.Layer): tfl.layers.Layer | undefined {
  const next = layer.outboundNodes.map(n => n.outboundLayer);
  return next.length === 1 && next[0] instanceof BatchNorm2D ? next[0] : undefined;
}

function kernelValues(layer: tfl.layers.Layer): KernelValues {
  if (layer instanceof NormalizedConv2D) {
    const k = layer.effectiveKernel();
    const values = {data: k.dataSync() as Float32Array, shape: k.shape as KernelValues['shape']};
    k.dispose();
    return values;
  }
  const w = layer.weights.find(v => v.originalName.endsWith('/kernel'))!;
  return {data: w.read().dataSync() as Float32Array, shape: w.shape as unknown as KernelValues['shape']};
}

/** One entry per conv layer (plain, SN, ONI or ConvNorm), in model order. */
export function layerSpectralNorms(model: tfl.LayersModel, iterations = 30): LayerSpectralNorm[] {
  const result: LayerSpectralNorm[] = [];
  for (const layer of model.layers) {
    const isConv = layer instanceof ConvNorm2D || layer instanceof NormalizedConv2D ||
      layer.getClassName() === 'Conv2D';
    if (!isConv) continue;
    const kernel = kernelValues(layer);
    const [kh, kw, , cout] = kernel.shape;
    const input = (layer.input as tfl.SymbolicTensor).shape;
    const grid: [number, number] = [input[1]! + kh - 1, input[2]! + kw - 1];
    const scales: RowScale[] = [];
    if (layer instanceof ConvNorm2D) {
      const runningV = weight(layer, 'running_v')!;
      scales.push(spectrumRowScale(runningV, grid, kh === 1 && kw === 1));
      const affine = weight(layer, 'affine_kernel');
      if (affine !== undefined) scales.push(depthwiseMagnitude(affine, kh, kw, cout, grid));
      const bn = batchNormScale(layer);
      if (bn !== undefined) scales.push(k => Math.abs(bn[k]));
    } else {
      const bnLayer = followingBatchNorm(layer);
      const bn = bnLayer === undefined ? undefined : batchNormScale(bnLayer);
      if (bn !== undefined) scales.push(k => Math.abs(bn[k]));
    }
    const rowScale: RowScale | undefined = scales.length === 0 ? undefined
      : (k, u, v) => scales.reduce((s, f) => s * f(k, u, v), 1);
    result.push({layer: layer.name, spectralNorm: convSpectralNorm(kernel, grid, rowScale, iterations)});
  }
  return result;
}
