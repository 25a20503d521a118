/**
 * The digital corruptions contrast, pixelate and jpeg_compression of
 * Hendrycks & Dietterich (2019), with the CIFAR-10 parameters of
 * make_cifar_c.py (github.com/hendrycks/robustness,
 * ImageNet-C/create_c/make_cifar_c.py). All three act on each channel alone,
 * so 1-channel images work unchanged, except JPEG (see jpegCompressionImages).
 */
import {decode as decodeJpeg, encode as encodeJpeg} from 'jpeg-js';

import type {Rng} from '../../data/random.js';
import {boxResize} from './box_resize.js';
import {ImageShape, unitToByte} from './image.js';

/** contrast: factor by which each channel's deviation from its image mean is scaled (make_cifar_c.py). */
export const CONTRAST_FACTORS: readonly number[] = Object.freeze([0.75, 0.5, 0.4, 0.3, 0.15]);

/** pixelate: side of the intermediate image as a fraction of the original, int(32 c) for CIFAR (make_cifar_c.py). */
export const PIXELATE_FACTORS: readonly number[] = Object.freeze([0.95, 0.9, 0.85, 0.75, 0.65]);

/** jpeg_compression: the encoder's quality, 1-100 (make_cifar_c.py). */
export const JPEG_QUALITIES: readonly number[] = Object.freeze([80, 65, 58, 50, 40]);

/**
 * (x - mean) c + mean per channel, mean over the image's pixels in float64,
 * summed in pixel order as numpy's np.mean(x, axis=(0, 1)) sums it.
 */
export function contrast(src: Uint8Array, dst: Uint8Array, shape: ImageShape, severity: number, _rng: Rng): void {
  const c = CONTRAST_FACTORS[severity - 1];
  const [h, w, channels] = shape;
  const means = new Float64Array(channels);
  for (let p = 0; p < h * w; p++) for (let ch = 0; ch < channels; ch++) means[ch] += src[p * channels + ch] / 255;
  for (let ch = 0; ch < channels; ch++) means[ch] /= h * w;
  for (let k = 0; k < src.length; k++) {
    const m = means[k % channels];
    dst[k] = unitToByte((src[k] / 255 - m) * c + m);
  }
}

/**
 * Pillow BOX resize down to int(W c) x int(H c), then back to W x H
 * (box_resize.ts: Pillow's arithmetic exactly, so the reference fixture
 * matches bit for bit).
 */
export function pixelate(src: Uint8Array, dst: Uint8Array, shape: ImageShape, severity: number, _rng: Rng): void {
  const c = PIXELATE_FACTORS[severity - 1];
  const [h, w, channels] = shape;
  const smallH = Math.max(1, Math.trunc(h * c));
  const smallW = Math.max(1, Math.trunc(w * c));
  const small = boxResize(src, shape, smallH, smallW);
  dst.set(boxResize(small, [smallH, smallW, channels], h, w));
}

/** Images per JPEG mosaic: bounds the mosaic's memory (64 CIFAR images are a 32 x 2048 picture). */
const JPEG_MOSAIC_IMAGES = 64;

/**
 * Baseline JPEG encode at JPEG_QUALITIES[severity - 1], then decode, with the
 * `jpeg-js` package (0.4.4). It is not Pillow's encoder (libjpeg) bit for
 * bit: jpeg-js keeps full-resolution chroma (4:4:4; Pillow subsamples to
 * 4:2:0 by default) and has its own DCT and rounding, with the IJG scaling of
 * the quality; the test measures the difference from Pillow's output. A
 * 1-channel image is encoded as the RGB image (v, v, v) and the decoded
 * channels, equal up to the colour transform's rounding, are averaged and
 * rounded back to one.
 *
 * `src` and `dst` may hold several images stacked (NHWC), `count` of them,
 * coded as one tall picture: with 4:4:4 every 8x8 block is transformed and
 * quantized on its own, so each image decodes to exactly the bytes it would
 * alone, and jpeg-js's per-call set-up (its Huffman and colour tables, most of
 * the time for a 32x32 image) is paid once per mosaic. A size that is not a
 * multiple of 8 is padded to one by repeating the last row and column, as
 * jpeg-js pads a partial block itself, and cropped after decoding.
 */
export function jpegCompressionImages(src: Uint8Array, dst: Uint8Array, shape: ImageShape, count: number, severity: number): void {
  const [h, w, channels] = shape;
  const [ph, pw] = [Math.ceil(h / 8) * 8, Math.ceil(w / 8) * 8];
  const imageSize = h * w * channels;
  for (let first = 0; first < count; first += JPEG_MOSAIC_IMAGES) {
    const n = Math.min(JPEG_MOSAIC_IMAGES, count - first);
    const rgba = new Uint8Array(n * ph * pw * 4);
    for (let i = 0; i < n; i++) {
      const base = (first + i) * imageSize;
      for (let y = 0; y < ph; y++) {
        const sy = Math.min(y, h - 1);
        for (let x = 0; x < pw; x++) {
          const sp = base + (sy * w + Math.min(x, w - 1)) * channels;
          const d = ((i * ph + y) * pw + x) * 4;
          for (let ch = 0; ch < 3; ch++) rgba[d + ch] = src[sp + (channels === 1 ? 0 : ch)];
          rgba[d + 3] = 255;
        }
      }
    }
    const rgb = jpegRoundTrip(rgba, n * ph, pw, JPEG_QUALITIES[severity - 1]);
    for (let i = 0; i < n; i++) {
      const base = (first + i) * imageSize;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const s3 = ((i * ph + y) * pw + x) * 3;
          const d = base + (y * w + x) * channels;
          if (channels === 3) {
            dst[d] = rgb[s3];
            dst[d + 1] = rgb[s3 + 1];
            dst[d + 2] = rgb[s3 + 2];
          } else {
            dst[d] = Math.round((rgb[s3] + rgb[s3 + 1] + rgb[s3 + 2]) / 3);
          }
        }
      }
    }
  }
}

/**
 * jpeg-js's encoder returns `Buffer.from(bytes)` wherever a CommonJS `module`
 * is defined, as it is inside a bundle for a page, where Buffer is not: there
 * a Uint8Array stands in for that one call.
 */
function encodeWithoutBuffer(rgba: Uint8Array, width: number, height: number, quality: number): {data: Uint8Array} {
  const scope = globalThis as {Buffer?: unknown};
  const shim = scope.Buffer === undefined;
  if (shim) scope.Buffer = {from: (bytes: ArrayLike<number>) => Uint8Array.from(bytes)};
  try {
    return encodeJpeg({data: rgba, width, height}, quality);
  } finally {
    if (shim) delete scope.Buffer;
  }
}

/** An RGBA picture of `height` x `width` through jpeg-js and back: its decoded RGB bytes. */
function jpegRoundTrip(rgba: Uint8Array, height: number, width: number, quality: number): Uint8Array {
  const encoded = encodeWithoutBuffer(rgba, width, height, quality);
  const decoded = decodeJpeg(encoded.data, {useTArray: true, formatAsRGBA: false});
  if (decoded.width !== width || decoded.height !== height) {
    throw new Error(`jpeg_compression: decoded ${decoded.width}x${decoded.height}, expected ${width}x${height}`);
  }
  return decoded.data;
}

/** jpeg_compression of one image (see jpegCompressionImages). */
export function jpegCompression(src: Uint8Array, dst: Uint8Array, shape: ImageShape, severity: number, _rng: Rng): void {
  jpegCompressionImages(src, dst, shape, 1, severity);
}
