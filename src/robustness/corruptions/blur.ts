/**
 * gaussian_blur and defocus_blur of Hendrycks & Dietterich (2019), with the
 * CIFAR-10 parameters of make_cifar_c.py (github.com/hendrycks/robustness,
 * ImageNet-C/create_c/make_cifar_c.py), computed as the libraries it calls
 * compute them, channel by channel (so 1-channel images blur the same way):
 *
 * - gaussian_blur is skimage 0.19's `gaussian(x, sigma, multichannel=True)`,
 *   that is scipy.ndimage.gaussian_filter on each channel: a 1-D pass along
 *   the rows then one along the columns, mode 'nearest', kernel radius
 *   int(4 sigma + 0.5), float64, with scipy's kernel normalization and its
 *   summation order for symmetric kernels.
 * - defocus_blur convolves with the construction's antialiased disk: an
 *   aliased disk on the taps -8..8, normalized in float32, then smoothed by
 *   cv2.GaussianBlur (3x3, sigma = alias_blur, BORDER_REFLECT_101; OpenCV's
 *   kernel formula and float32 row-then-column passes, which the fixture
 *   reproduces bit for bit), then cv2.filter2D per channel (BORDER_REFLECT_101,
 *   anchor at the centre). OpenCV computes that 17x17 filter through a DFT;
 *   here it is a direct float64 sum, equal to within rounding (~1e-16).
 */
import type {Rng} from '../../data/random.js';
import {clampIndex, ImageShape, reflect101, unitToByte} from './image.js';

/** gaussian_blur: sigma of the Gaussian in pixels (make_cifar_c.py). */
export const GAUSSIAN_BLUR_SIGMAS: readonly number[] = Object.freeze([0.4, 0.6, 0.7, 0.8, 1]);

/** defocus_blur: [disk radius, alias_blur (sigma of the 3x3 smoothing)] (make_cifar_c.py). */
export const DEFOCUS_BLUR_PARAMETERS: ReadonlyArray<readonly [number, number]> = Object.freeze([
  [0.3, 0.4], [0.4, 0.5], [0.5, 0.6], [1, 0.2], [1.5, 0.1],
] as const);

/** skimage's and scipy's default truncation of the Gaussian, in sigmas. */
const GAUSSIAN_TRUNCATE = 4.0;

/** Half-width of make_cifar_c.py's disk grid for radii up to 8 (every CIFAR severity). */
const DISK_HALF_WIDTH = 8;

/**
 * numpy's sum of a float64 vector (np.add.reduce): plain accumulation below 8
 * values, else eight interleaved partial sums combined pairwise, recursing in
 * halves above 128 values. Reproduced because the Gaussian kernel is divided
 * by this sum and its last bit decides some truncations.
 */
export function numpySum(a: ArrayLike<number>, start = 0, n = a.length): number {
  if (n < 8) {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[start + i];
    return s;
  }
  if (n <= 128) {
    const r = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let j = 0; j < 8; j++) r[j] = a[start + j];
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    let s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) s += a[start + i];
    return s;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return numpySum(a, start, half) + numpySum(a, start + half, n - half);
}

/** scipy's normalized 1-D Gaussian on the taps -radius..radius, radius = int(4 sigma + 0.5). */
export function gaussianKernel1d(sigma: number): Float64Array {
  const radius = Math.trunc(GAUSSIAN_TRUNCATE * sigma + 0.5);
  const k = new Float64Array(2 * radius + 1);
  const scale = -0.5 / (sigma * sigma);
  for (let i = 0; i < k.length; i++) {
    const x = i - radius;
    k[i] = Math.exp(scale * (x * x));
  }
  const sum = numpySum(k);
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

/**
 * scipy.ndimage.correlate1d with a symmetric kernel along one axis of a
 * float64 plane (mode 'nearest'), in scipy's order: centre tap first, then the
 * outermost pair of taps inwards, each pair summed before it is weighted.
 */
function correlateSymmetric(src: Float64Array, dst: Float64Array, h: number, w: number, k: Float64Array, alongRows: boolean): void {
  const r = (k.length - 1) / 2;
  const len = alongRows ? h : w;
  const lines = alongRows ? w : h;
  const line = new Float64Array(len + 2 * r);
  for (let l = 0; l < lines; l++) {
    const at = (i: number): number => (alongRows ? i * w + l : l * w + i);
    for (let i = -r; i < len + r; i++) line[i + r] = src[at(clampIndex(i, len))];
    for (let i = 0; i < len; i++) {
      const c = i + r;
      let s = line[c] * k[r];
      for (let j = r; j >= 1; j--) s += (line[c - j] + line[c + j]) * k[r - j];
      dst[at(i)] = s;
    }
  }
}

/** Gaussian blur of each channel with sigma GAUSSIAN_BLUR_SIGMAS[severity - 1]. */
export function gaussianBlur(src: Uint8Array, dst: Uint8Array, shape: ImageShape, severity: number, _rng: Rng): void {
  const [h, w, channels] = shape;
  const k = gaussianKernel1d(GAUSSIAN_BLUR_SIGMAS[severity - 1]);
  const plane = new Float64Array(h * w);
  const pass = new Float64Array(h * w);
  for (let ch = 0; ch < channels; ch++) {
    for (let p = 0; p < h * w; p++) plane[p] = src[p * channels + ch] / 255;
    correlateSymmetric(plane, pass, h, w, k, true);
    correlateSymmetric(pass, plane, h, w, k, false);
    for (let p = 0; p < h * w; p++) dst[p * channels + ch] = unitToByte(plane[p]);
  }
}

/**
 * cv2.GaussianBlur's 3-tap kernel for sigma > 0, as float32 [side, centre]:
 * OpenCV 4 computes it in (software) double as exp(-0.5 / sigma^2) and 1,
 * normalized by their sum, and rounds to float32 for a float32 image.
 */
function gaussian3(sigma: number): [number, number] {
  const scale = -0.125 / (sigma * sigma);
  const side = Math.exp(4 * scale);
  const inv = 1 / (side * 2 + 1);
  return [Math.fround(side * inv), Math.fround(inv)];
}

/**
 * make_cifar_c.py's `disk(radius, alias_blur)` for radius <= 8: the 17x17
 * float32 kernel, row-major. The aliased disk (x^2 + y^2 <= r^2) is divided by
 * its count in float32, then cv2.GaussianBlur smooths it with the 3-tap kernel
 * along rows, then along columns, in float32 (centre * k1 + (left + right) * k0,
 * OpenCV's order), reflecting without repeating the edge.
 */
export function diskKernel(radius: number, aliasBlur: number): Float32Array {
  if (!(radius <= DISK_HALF_WIDTH)) throw new Error(`diskKernel: radius ${radius} > ${DISK_HALF_WIDTH} is not supported`);
  const n = 2 * DISK_HALF_WIDTH + 1;
  const disk = new Float32Array(n * n);
  let count = 0;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const dy = y - DISK_HALF_WIDTH;
      const dx = x - DISK_HALF_WIDTH;
      if (dx * dx + dy * dy <= radius * radius) {
        disk[y * n + x] = 1;
        count++;
      }
    }
  }
  const inv = Math.fround(1 / count);
  for (let i = 0; i < disk.length; i++) disk[i] = disk[i] === 0 ? 0 : inv;
  const [side, centre] = gaussian3(aliasBlur);
  const f = Math.fround;
  const rows = new Float32Array(n * n);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const l = disk[y * n + reflect101(x - 1, n)];
      const r = disk[y * n + reflect101(x + 1, n)];
      rows[y * n + x] = f(f(disk[y * n + x] * centre) + f(f(l + r) * side));
    }
  }
  const out = new Float32Array(n * n);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const u = rows[reflect101(y - 1, n) * n + x];
      const d = rows[reflect101(y + 1, n) * n + x];
      out[y * n + x] = f(f(rows[y * n + x] * centre) + f(f(u + d) * side));
    }
  }
  return out;
}

/** Defocus blur: each channel correlated with diskKernel(DEFOCUS_BLUR_PARAMETERS[severity - 1]). */
export function defocusBlur(src: Uint8Array, dst: Uint8Array, shape: ImageShape, severity: number, _rng: Rng): void {
  const [h, w, channels] = shape;
  const [radius, aliasBlur] = DEFOCUS_BLUR_PARAMETERS[severity - 1];
  const kernel = diskKernel(radius, aliasBlur);
  const n = 2 * DISK_HALF_WIDTH + 1;
  // Most of the 17x17 taps are exactly zero; adding their zero products changes no sum.
  const taps: {dy: number; dx: number; k: number}[] = [];
  for (let i = 0; i < n * n; i++) {
    if (kernel[i] !== 0) taps.push({dy: Math.floor(i / n) - DISK_HALF_WIDTH, dx: (i % n) - DISK_HALF_WIDTH, k: kernel[i]});
  }
  for (let ch = 0; ch < channels; ch++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (const t of taps) s += t.k * (src[(reflect101(y + t.dy, h) * w + reflect101(x + t.dx, w)) * channels + ch] / 255);
        dst[(y * w + x) * channels + ch] = unitToByte(s);
      }
    }
  }
}
