/**
 * The conv + normalization unit every model here is built from, with the
 * normalization pluggable as in the reference code (conv_layer / norm_layer).
 */
import * as tfl from '@tensorflow/tfjs-layers';

import {convNorm2d} from '../convnorm/layer.js';
import {fail} from '../common/arguments.js';
import {BatchNorm2D} from '../layers/batch_norm.js';
import {torchDefaultInit} from '../common/initializers.js';
import {OniConv2D} from '../layers/oni.js';
import {PlainConv2D} from '../layers/plain_conv.js';
import {SpectralNormConv2D} from '../layers/spectral_norm.js';

/**
 * - bn: conv, then BatchNorm (PyTorch semantics)
 * - convnorm: ConvNorm2D with its BatchNorm (the paper's ConvNorm+BN)
 * - convnorm-nobn: ConvNorm2D without BatchNorm
 * - none: conv alone
 * - sn: spectrally normalized conv (PyTorch's spectral_norm), then BatchNorm
 * - oni: ONI-orthogonalized conv (the reference's ONI_Conv2d settings), then BatchNorm
 *
 * In the reference the conv type (conv, prec_conv, sn_conv, oni_conv) and the
 * norm layer are chosen separately; its robustness runs, where SN and ONI are
 * compared, keep the norm at BatchNorm, so sn and oni here are conv + BN.
 */
export const NORMS = ['bn', 'convnorm', 'convnorm-nobn', 'none', 'sn', 'oni'] as const;
export type NormKind = (typeof NORMS)[number];

export function checkNorm(norm: string): NormKind {
  if (!(NORMS as readonly string[]).includes(norm)) {
    fail(`unknown norm '${norm}'; choose one of ${NORMS.join(', ')}`);
  }
  return norm as NormKind;
}

/** Seeds for a model's layers, one fresh seed per call, derived from the model's seed. */
export class SeedSequence {
  private next: number;
  constructor(seed: number) {
    this.next = seed * 1000;
  }
  take(): number {
    return this.next++;
  }
}

export interface ConvUnitArgs {
  filters: number;
  kernelSize: number;
  strides?: number;
  /** Bias on the plain conv (the reference's small CNN has one; its ResNet does not). */
  useBias?: boolean;
  norm: NormKind;
  seeds: SeedSequence;
}

/**
 * conv(k x k, stride, padding (k-1)/2 on every side, PyTorch's grid) followed
 * by the chosen normalization.
 */
export function convUnit(x: tfl.SymbolicTensor, args: ConvUnitArgs): tfl.SymbolicTensor {
  const {filters, kernelSize, norm, seeds} = args;
  const strides = args.strides ?? 1;
  const padding = (kernelSize - 1) / 2;
  if (norm === 'convnorm' || norm === 'convnorm-nobn') {
    return convNorm2d({filters, kernelSize, strides, padding, batchNorm: norm === 'convnorm',
                       seed: seeds.take()}).apply(x) as tfl.SymbolicTensor;
  }
  const common = {filters, kernelSize, strides, padding, seed: seeds.take()};
  const conv = norm === 'sn'
    // The reference's sn_conv2d wrapper defaults to bias=False and its models never pass one.
    ? new SpectralNormConv2D({...common, useBias: false})
    : norm === 'oni'
      // The reference's ONI_Conv2d defaults: T = 3, one norm group, learned scale from 1.414.
      ? new OniConv2D({...common, useBias: args.useBias ?? false, iterations: 3, normGroups: 1, learnableScale: true})
      : new PlainConv2D({...common, useBias: args.useBias ?? false});
  const y = conv.apply(x) as tfl.SymbolicTensor;
  return norm === 'none' ? y : new BatchNorm2D().apply(y) as tfl.SymbolicTensor;
}

export function relu(x: tfl.SymbolicTensor): tfl.SymbolicTensor {
  return tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
}

/** nn.Linear with PyTorch's default initialization. */
export function linear(x: tfl.SymbolicTensor, units: number, seeds: SeedSequence): tfl.SymbolicTensor {
  const fanIn = x.shape[x.shape.length - 1]!;
  const bound = 1 / Math.sqrt(fanIn);
  return tfl.layers.dense({
    units, kernelInitializer: torchDefaultInit(seeds.take()),
    biasInitializer: tfl.initializers.randomUniform({minval: -bound, maxval: bound, seed: seeds.take()}),
  }).apply(x) as tfl.SymbolicTensor;
}
