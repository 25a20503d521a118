/**
 * What every corruption shares: the per-image signature, and make_cifar_c.py's
 * last step, `np.uint8(np.clip(x, 0, 1) * 255)`, which truncates (it does not
 * round) the float result to a byte.
 */
import type {Rng} from '../../data/random.js';

/** [height, width, channels] of one image, as ImageDataset.shape. */
export type ImageShape = readonly [number, number, number];

/**
 * One image's corruption: reads `src` (one image, HWC bytes), writes `dst`
 * (the same size). `severity` is 1-5 and already validated; `rng` is the
 * image's own stream (deterministic corruptions ignore it).
 */
export type CorruptImage = (src: Uint8Array, dst: Uint8Array, shape: ImageShape, severity: number, rng: Rng) => void;

/**
 * `np.uint8(np.clip(x, 0, 1) * 255)` for one float64 value: truncated toward
 * zero, so 0.99999 * 255 gives 254. NaN, which np.uint8 leaves undefined,
 * gives 0.
 */
export function unitToByte(x: number): number {
  const v = (x < 0 ? 0 : x > 1 ? 1 : x) * 255;
  return v === v ? Math.trunc(v) : 0;
}

/** The same for a float32 pipeline: the clipped value times 255 is rounded to float32 before truncation. */
export function unitToByteFloat32(x: number): number {
  const v = Math.fround((x < 0 ? 0 : x > 1 ? 1 : x) * 255);
  return v === v ? Math.trunc(v) : 0;
}

/**
 * Index i of a length-n axis under reflection without repeating the edge
 * (OpenCV's BORDER_REFLECT_101, scipy's 'mirror'): -1 -> 1, n -> n - 2.
 */
export function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n - 2;
  let j = i % period;
  if (j < 0) j += period;
  return j < n ? j : period - j;
}

/** Index i clamped to [0, n - 1] (scipy's 'nearest' mode). */
export function clampIndex(i: number, n: number): number {
  return i < 0 ? 0 : i >= n ? n - 1 : i;
}
