import * as tfl from '@tensorflow/tfjs-layers';

import {checkNorm, convUnit, linear, NormKind, relu, SeedSequence} from './blocks.js';

export interface ResNetArgs {
  /** 18 or 34. */
  depth: 18 | 34;
  norm: NormKind;
  numClasses?: number;
  /** [H, W, C]; default CIFAR's [32, 32, 3]. */
  inputShape?: [number, number, number];
  seed?: number;
}

const BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]};

/**
 * The CIFAR ResNet of the reference code (Kuang Liu's layout): 3x3 stem with
 * no max-pool, four stages of BasicBlocks (64, 128, 256, 512 channels), a 1x1
 * conv + norm shortcut where the shape changes, global average pooling, linear.
 */
export function resnet(args: ResNetArgs): tfl.LayersModel {
  const norm = checkNorm(args.norm);
  const blocks = BLOCKS[args.depth];
  if (blocks === undefined) throw new Error(`ResNet depth must be 18 or 34, got ${args.depth}`);
  const seeds = new SeedSequence(args.seed ?? 0);
  const input = tfl.input({shape: args.inputShape ?? [32, 32, 3]});
  let x = relu(convUnit(input, {filters: 64, kernelSize: 3, norm, seeds}));
  let inPlanes = 64;
  [64, 128, 256, 512].forEach((planes, stage) => {
    for (let b = 0; b < blocks[stage]; b++) {
      const strides = stage > 0 && b === 0 ? 2 : 1;
      let out = relu(convUnit(x, {filters: planes, kernelSize: 3, strides, norm, seeds}));
      out = convUnit(out, {filters: planes, kernelSize: 3, norm, seeds});
      const shortcut = strides !== 1 || inPlanes !== planes
        ? convUnit(x, {filters: planes, kernelSize: 1, strides, norm, seeds}) : x;
      x = relu(tfl.layers.add().apply([out, shortcut]) as tfl.SymbolicTensor);
      inPlanes = planes;
    }
  });
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  return tfl.model({inputs: input, outputs: linear(pooled, args.numClasses ?? 10, seeds),
                    name: `resnet${args.depth}_${norm}`});
}
