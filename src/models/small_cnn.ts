import * as tfl from '@tensorflow/tfjs-layers';

import {checkNorm, convUnit, linear, NormKind, relu, SeedSequence} from './blocks.js';

export interface SmallCnnArgs {
  norm: NormKind;
  numClasses?: number;
  /** [H, W, C]; default CIFAR's [32, 32, 3]. */
  inputShape?: [number, number, number];
  seed?: number;
}

/**
 * The reference's small CNN: 3x3 convs of widths 8, 8, max-pool, 16, 16,
 * max-pool, 32, 32, max-pool, each conv followed by the norm and ReLU, then a
 * linear layer (512 -> classes for 32x32 input).
 */
export function smallCnn(args: SmallCnnArgs): tfl.LayersModel {
  const norm = checkNorm(args.norm);
  const seeds = new SeedSequence(args.seed ?? 0);
  const input = tfl.input({shape: args.inputShape ?? [32, 32, 3]});
  let x: tfl.SymbolicTensor = input;
  for (const width of [8, 8, 'M', 16, 16, 'M', 32, 32, 'M'] as const) {
    x = width === 'M'
      ? tfl.layers.maxPooling2d({poolSize: 2, strides: 2}).apply(x) as tfl.SymbolicTensor
      : relu(convUnit(x, {filters: width, kernelSize: 3, useBias: true, norm, seeds}));
  }
  const flat = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  return tfl.model({inputs: input, outputs: linear(flat, args.numClasses ?? 10, seeds), name: `small_cnn_${norm}`});
}
