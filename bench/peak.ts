/**
 * What WebAssembly SIMD can do on this machine, for the bench: the multiply-add
 * throughput of one thread (bench/peak.c), and the convolution arithmetic of a
 * ResNet-18 training step, which together bound the images/s any wasm engine
 * could reach here.
 */
import * as tfl from '@tensorflow/tfjs-layers';

import {decodeModule, relaxedSimdValidates} from '../src/engine/simd.js';
import {PEAK_FMA_MODULE, PEAK_MODULE} from './peak_wasm.js';

/** GFLOP/s of one thread running `module`'s 12 multiply-add chains: the best of 5 runs after warm-up. */
function throughput(module: string): number {
  const memory = new WebAssembly.Memory({initial: 16});
  const {peak} = new WebAssembly.Instance(new WebAssembly.Module(decodeModule(module)), {env: {memory}}).exports as
    {peak(n: number, seed: number): number};
  const steps = 2e7;
  // Enough calls for V8 to tier the function up from its baseline compiler.
  for (let i = 0; i < 20; i++) peak(1e5, i);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    peak(steps, i);
    best = Math.min(best, performance.now() - t0);
  }
  return 12 * 4 * 2 * steps / best / 1e6;
}

export interface SimdPeak {
  /** Separate f32x4 multiplies and adds, GFLOP/s on one thread. */
  multiplyAdd: number;
  /** Relaxed SIMD's fused multiply-add, GFLOP/s on one thread (absent where the engine lacks it). */
  fusedMultiplyAdd?: number;
}

/** Call after useBackend, which lets Node 20 compile relaxed SIMD. */
export function simdPeak(): SimdPeak {
  return {multiplyAdd: throughput(PEAK_MODULE),
          fusedMultiplyAdd: relaxedSimdValidates() ? throughput(PEAK_FMA_MODULE) : undefined};
}

/**
 * Floating-point operations of a model's PlainConv2D layers in one training step,
 * per image: the forward pass, the filter gradient and (past the first layer,
 * whose input needs none) the input gradient, 2 per multiply-add each.
 */
export function convolutionFlopsPerImage(model: tfl.LayersModel): number {
  let flops = 0;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'PlainConv2D') continue;
    const [kh, kw, ci, co] = layer.getWeights()[0].shape;
    const [, ho, wo] = layer.outputShape as number[];
    const macs = ho * wo * kh * kw * ci * co;
    const first = (layer.inboundNodes[0]?.inboundLayers ?? []).every(l => l.getClassName() === 'InputLayer');
    flops += 2 * macs * (first ? 2 : 3);
  }
  return flops;
}
