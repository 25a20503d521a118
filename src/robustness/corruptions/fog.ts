/**
 * fog of Hendrycks & Dietterich (2019), with the CIFAR-10 parameters of
 * make_cifar_c.py (github.com/hendrycks/robustness,
 * ImageNet-C/create_c/make_cifar_c.py): a diamond-square plasma fractal,
 * scaled by c and added to every channel, then the image rescaled by
 * max / (max + c) (max over all its values) and clipped.
 *
 * The fractal follows the construction's `plasma_fractal` (itself after
 * FLHerne/mapgen's diamondsquare.py): a periodic map, corner 0, each step
 * filling square centres then diamond centres with the mean of their four
 * neighbours plus wibble x U(-wibble, wibble) (the construction's noise is
 * wibble^2 in scale, kept), wibble starting at 100 and divided by the
 * severity's decay after every step, then normalized to [0, 1]. The uniforms
 * come from the image's `Rng` in row-major order of each filled grid, not from
 * numpy. The map is 32 x 32 for CIFAR (make_cifar_c.py's mapsize); other
 * images use the smallest power of two covering both sides and its top-left
 * H x W corner. Grey images get the same fog on their one channel.
 */
import type {Rng} from '../../data/random.js';
import {ImageShape, unitToByte} from './image.js';

/** fog: [c, wibbledecay] (make_cifar_c.py). */
export const FOG_PARAMETERS: ReadonlyArray<readonly [number, number]> = Object.freeze([
  [0.2, 3], [0.5, 3], [0.75, 2.5], [1, 2], [1.5, 1.75],
] as const);

/** plasma_fractal's starting wibble. */
const INITIAL_WIBBLE = 100;

/**
 * A size x size plasma fractal in [0, 1] (row-major float64); size must be a
 * power of two.
 */
export function plasmaFractal(size: number, wibbleDecay: number, rng: Rng): Float64Array {
  if (!Number.isInteger(size) || size < 1 || (size & (size - 1)) !== 0) {
    throw new Error(`plasmaFractal: size must be a power of two, got ${size}`);
  }
  const map = new Float64Array(size * size);
  const at = (y: number, x: number): number => map[y * size + x];
  let step = size;
  let wibble = INITIAL_WIBBLE;
  const wibbled = (sum: number): number => sum / 4 + wibble * (-wibble + 2 * wibble * rng.next());
  while (step >= 2) {
    const half = step / 2;
    const n = size / step;
    // Square centres: the four corners of each step x step square (periodic).
    const centres = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const i1 = ((i + 1) % n) * step;
        const j1 = ((j + 1) % n) * step;
        const colSum = at(i * step, j * step) + at(i1, j * step);
        const colSumRight = at(i * step, j1) + at(i1, j1);
        centres[i * n + j] = colSum + colSumRight;
      }
    }
    for (let k = 0; k < n * n; k++) map[(Math.floor(k / n) * step + half) * size + (k % n) * step + half] = wibbled(centres[k]);
    // Diamond centres on the square rows (0, half + j step): centres above and below, corners left and right.
    const top = new Float64Array(n * n);
    const left = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const dr = at(i * step + half, j * step + half);
        const ul = at(i * step, j * step);
        top[i * n + j] = (dr + at(((i - 1 + n) % n) * step + half, j * step + half)) + (ul + at(i * step, ((j + 1) % n) * step));
        left[i * n + j] = (dr + at(i * step + half, ((j - 1 + n) % n) * step + half)) + (ul + at(((i + 1) % n) * step, j * step));
      }
    }
    for (let k = 0; k < n * n; k++) map[Math.floor(k / n) * step * size + (k % n) * step + half] = wibbled(top[k]);
    for (let k = 0; k < n * n; k++) map[(Math.floor(k / n) * step + half) * size + (k % n) * step] = wibbled(left[k]);
    step = half;
    wibble /= wibbleDecay;
  }
  let min = Infinity;
  for (const v of map) min = Math.min(min, v);
  let max = -Infinity;
  for (let k = 0; k < map.length; k++) {
    map[k] -= min;
    max = Math.max(max, map[k]);
  }
  for (let k = 0; k < map.length; k++) map[k] /= max;
  return map;
}

/** Fog: clip((x + c plasma) max / (max + c), 0, 1). */
export function fog(src: Uint8Array, dst: Uint8Array, shape: ImageShape, severity: number, rng: Rng): void {
  const [h, w, channels] = shape;
  const [c, decay] = FOG_PARAMETERS[severity - 1];
  let size = 1;
  while (size < Math.max(h, w)) size *= 2;
  const plasma = plasmaFractal(size, decay, rng);
  let maxVal = 0;
  for (let k = 0; k < src.length; k++) maxVal = Math.max(maxVal, src[k] / 255);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const f = c * plasma[y * size + x];
      for (let ch = 0; ch < channels; ch++) {
        const k = (y * w + x) * channels + ch;
        dst[k] = unitToByte((src[k] / 255 + f) * maxVal / (maxVal + c));
      }
    }
  }
}
