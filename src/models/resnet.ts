import * as tfl from '@tensorflow/tfjs-layers';

import {fail} from '../common/arguments.js';
import {checkNorm, convUnit, linear, NormKind, relu, SeedSequence} from './blocks.js';

/** Kuang Liu's CIFAR ResNets (the reference code's): BasicBlocks per stage at 64, 128, 256 and 512 channels. */
const WIDE_BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]} as const;
const WIDE_PLANES = [64, 128, 256, 512];
/** He et al.'s CIFAR ResNets (Sec. 4.2): depth 6n + 2, n BasicBlocks per stage at 16, 32 and 64 channels. */
const THIN_DEPTHS = [20, 32, 44, 56, 110] as const;
const THIN_PLANES = [16, 32, 64];

export const RESNET_DEPTHS = [18, 34, ...THIN_DEPTHS] as const;
export type ResNetDepth = (typeof RESNET_DEPTHS)[number];

export interface ResNetArgs {
  /**
   * 18 or 34: the reference code's CIFAR ResNets (64-512 channels); 20, 32,
   * 44, 56 or 110: He et al.'s CIFAR family (16-64 channels).
   */
  depth: ResNetDepth;
  norm: NormKind;
  numClasses?: number;
  /** [H, W, C]; default CIFAR's [32, 32, 3]. */
  inputShape?: [number, number, number];
  seed?: number;
}

/** Blocks per stage and the stages' widths for a depth. */
function stagesOf(depth: number): {blocks: number[]; planes: number[]} {
  if (depth === 18 || depth === 34) return {blocks: [...WIDE_BLOCKS[depth]], planes: WIDE_PLANES};
  if ((THIN_DEPTHS as readonly number[]).includes(depth)) {
    return {blocks: THIN_PLANES.map(() => (depth - 2) / 6), planes: THIN_PLANES};
  }
  return fail(`ResNet depth must be one of ${RESNET_DEPTHS.join(', ')}, got ${depth}`);
}

/**
 * A CIFAR ResNet: 3x3 stem at the first stage's width with no max-pool,
 * stages of BasicBlocks (the first block of every stage after the first at
 * stride 2), a 1x1 conv + norm shortcut where the shape changes (He et al.'s
 * option B), global average pooling, linear. Depth 18 and 34 are the layout
 * of the reference code (Kuang Liu's); 20 to 110 He et al.'s three stages.
 */
export function resnet(args: ResNetArgs): tfl.LayersModel {
  const norm = checkNorm(args.norm);
  const {blocks, planes: widths} = stagesOf(args.depth);
  const seeds = new SeedSequence(args.seed ?? 0);
  const input = tfl.input({shape: args.inputShape ?? [32, 32, 3]});
  let inPlanes = widths[0];
  let x = relu(convUnit(input, {filters: inPlanes, kernelSize: 3, norm, seeds}));
  widths.forEach((planes, stage) => {
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
