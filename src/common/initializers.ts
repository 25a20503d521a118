import * as tfl from '@tensorflow/tfjs-layers';

/**
 * PyTorch's default Conv2d/Linear weight initialization (kaiming-uniform with
 * a = sqrt(5)): uniform with bound gain / sqrt(fan_in). The reference's layers
 * use it, so ours default to it.
 */
export function torchDefaultInit(seed?: number, gain = 1) {
  return tfl.initializers.varianceScaling({scale: gain ** 2 / 3, mode: 'fanIn', distribution: 'uniform', seed});
}
