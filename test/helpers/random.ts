import * as tf from '@tensorflow/tfjs-core';

/** mulberry32: a small seeded PRNG, so every test input is reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform in [-scale, scale). */
export function uniformValues(n: number, seed: number, scale = 1): Float32Array {
  const next = rng(seed);
  return Float32Array.from({length: n}, () => (2 * next() - 1) * scale);
}

export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf.tensor(uniformValues(shape.reduce((a, b) => a * b, 1), seed, scale), shape);
}
