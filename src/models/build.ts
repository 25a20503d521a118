/**
 * Models by name, from a JSON spec: what the CLI builds and what a checkpoint
 * records, so `convnorm eval` can rebuild the model it was trained with.
 */
import * as tfl from '@tensorflow/tfjs-layers';

import {fail} from '../common/arguments.js';
import {checkNorm, NormKind} from './blocks.js';
import {resnet, ResNetDepth} from './resnet.js';
import {smallCnn} from './small_cnn.js';

export const ARCHITECTURES = ['small-cnn', 'resnet18', 'resnet34', 'resnet20', 'resnet32', 'resnet44', 'resnet56',
                              'resnet110'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export interface ModelSpec {
  /**
   * small-cnn (the reference's), resnet18 or resnet34 (the reference's CIFAR
   * ResNets), resnet20 to resnet110 (He et al.'s CIFAR family).
   */
  architecture: Architecture;
  norm: NormKind;
  numClasses: number;
  /** [H, W, C] of one input image. */
  inputShape: [number, number, number];
  /** Seed of the weight initializers. */
  seed: number;
}

export function checkArchitecture(name: string): Architecture {
  if (!(ARCHITECTURES as readonly string[]).includes(name)) {
    fail(`unknown model '${name}'; choose one of ${ARCHITECTURES.join(', ')}`);
  }
  return name as Architecture;
}

export function buildModel(spec: ModelSpec): tfl.LayersModel {
  const architecture = checkArchitecture(spec.architecture);
  const common = {norm: checkNorm(spec.norm), numClasses: spec.numClasses, inputShape: spec.inputShape,
                  seed: spec.seed};
  if (architecture === 'small-cnn') return smallCnn(common);
  return resnet({...common, depth: Number(architecture.slice('resnet'.length)) as ResNetDepth});
}
