/**
 * `convnorm isometry`: ConvNorm2D layers on random weights next to the plain
 * convolution with the same kernel, for the CIFAR ResNet-18 layer shapes: how
 * far each output channel is from an isometry, and spectral norms (Sedghi et
 * al.'s per-frequency singular values, circular boundary on the
 * (H+k-1) x (W+k-1) grid the layer preconditions on).
 */
import * as tf from '@tensorflow/tfjs-core';

import {channelGains} from '../analysis/channel_response.js';
import {convSpectralNorm, KernelValues, RowScale, spectrumRowScale} from '../analysis/singular_values.js';
import {convNorm2d} from '../convnorm/layer.js';
import {torchDefaultInit} from '../common/initializers.js';
import {formatTable} from '../report/table.js';

export interface IsometryLayer {
  name: string;
  inChannels: number;
  filters: number;
  size: number;
  strides: number;
}

/** CIFAR ResNet-18's distinct 3x3 conv shapes. */
export const RESNET18_LAYERS: IsometryLayer[] = [
  {name: 'stem 3->64', inChannels: 3, filters: 64, size: 32, strides: 1},
  {name: 'block 64->64', inChannels: 64, filters: 64, size: 32, strides: 1},
  {name: 'down 64->128 s2', inChannels: 64, filters: 128, size: 32, strides: 2},
  {name: 'block 128->128', inChannels: 128, filters: 128, size: 16, strides: 1},
  {name: 'block 256->256', inChannels: 256, filters: 256, size: 8, strides: 1},
  {name: 'block 512->512', inChannels: 512, filters: 512, size: 4, strides: 1},
];

/** Operator metrics of one convolution, plain or preconditioned. */
export interface OperatorMetrics {
  /** max_k,f |sum_j |FFT(filter_kj)(f)|^2 - 1|: 0 when every channel is an isometry. */
  isometryError: number;
  /** Largest spectral norm of a single output channel's operator. */
  maxChannelNorm: number;
  /** Spectral norm of the whole layer (all channels). */
  spectralNorm: number;
}

export interface IsometryRow {
  layer: string;
  conv: OperatorMetrics;
  convNorm: OperatorMetrics;
}

function metrics(kernel: KernelValues, grid: [number, number], scale?: RowScale): OperatorMetrics {
  return {...channelGains(kernel, grid, scale), spectralNorm: convSpectralNorm(kernel, grid, scale, 30)};
}

/**
 * Builds the layer, runs one training step so that it computes V from its
 * weights into the running V, and analyses the kernel with and without that V.
 * `weightScale` multiplies the initial kernel (ConvNorm is invariant to it).
 */
export function runIsometryLayer(spec: IsometryLayer, seed: number, weightScale = 1): IsometryRow {
  // The reference's default initializer (bound 1/sqrt(fan_in)) times weightScale.
  const kernelInitializer = torchDefaultInit(seed, weightScale);
  const layer = convNorm2d({filters: spec.filters, kernelSize: 3, strides: spec.strides, padding: 1,
                            kernelInitializer, seed});
  const [kernel, runningV] = tf.tidy(() => {
    const x = tf.randomNormal([2, spec.size, spec.size, spec.inChannels], 0, 1, 'float32', seed);
    layer.apply(x, {training: true});
    const read = (name: string) =>
      layer.weights.find(w => w.originalName.endsWith(`/${name}`))!.read().dataSync() as Float32Array;
    return [read('kernel'), read('running_v')];
  });
  layer.dispose();
  const values: KernelValues = {data: kernel, shape: [3, 3, spec.inChannels, spec.filters]};
  const grid: [number, number] = [spec.size + 2, spec.size + 2];
  return {
    layer: spec.name,
    conv: metrics(values, grid),
    convNorm: metrics(values, grid, spectrumRowScale(runningV, grid, false)),
  };
}

const fmt = (x: number) => (x < 1e-3 ? x.toExponential(1) : x.toFixed(3));

export function formatIsometry(rows: IsometryRow[]): string {
  return formatTable(
    ['layer', 'conv: isometry err', 'channel norm', 'layer norm', 'ConvNorm: isometry err', 'channel norm',
     'layer norm'],
    rows.map(r => [r.layer, fmt(r.conv.isometryError), fmt(r.conv.maxChannelNorm), fmt(r.conv.spectralNorm),
                   fmt(r.convNorm.isometryError), fmt(r.convNorm.maxChannelNorm), fmt(r.convNorm.spectralNorm)]));
}
