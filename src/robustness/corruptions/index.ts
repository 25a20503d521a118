/**
 * The common corruptions of Hendrycks & Dietterich, "Benchmarking Neural
 * Network Robustness to Common Corruptions and Perturbations" (ICLR 2019),
 * generated on the fly from any test set, as the CIFAR-10-C construction
 * (github.com/hendrycks/robustness, ImageNet-C/create_c/make_cifar_c.py)
 * generates them, with its CIFAR-10 parameters and its names. 13 of its 19 are
 * here; glass_blur, motion_blur, snow, frost, spatter and elastic_transform are
 * not (motion blur and snow call ImageMagick, frost overlays photographs).
 *
 * The deterministic ones (blurs, contrast, brightness, saturate, pixelate)
 * reproduce the Python libraries' arithmetic and match a reference run of them
 * (test/fixtures/corruptions-reference.json); jpeg_compression uses jpeg-js,
 * not libjpeg; the random ones (noise, fog) draw from the package's seeded
 * `Rng`, one derived stream per image, so a seed fixes the corrupted set.
 */
import {ImageDataset} from '../../data/dataset.js';
import {Rng} from '../../data/random.js';
import {defocusBlur, gaussianBlur} from './blur.js';
import {brightness, saturate} from './color.js';
import {contrast, jpegCompression, jpegCompressionImages, pixelate} from './digital.js';
import {fog} from './fog.js';
import {CorruptImage} from './image.js';
import {gaussianNoise, impulseNoise, shotNoise, speckleNoise} from './noise.js';
import {zoomBlur} from './zoom_blur.js';

export type {CorruptImage, ImageShape} from './image.js';

/** The corruptions, in CIFAR-10-C's file names, in the paper's order (noise, blur, weather, digital, extra). */
export const CORRUPTION_NAMES = Object.freeze([
  'gaussian_noise', 'shot_noise', 'impulse_noise',
  'defocus_blur', 'zoom_blur',
  'fog', 'brightness',
  'contrast', 'pixelate', 'jpeg_compression',
  'speckle_noise', 'gaussian_blur', 'saturate',
] as const);

export type CorruptionName = typeof CORRUPTION_NAMES[number];

/** The severities every corruption has. */
export const SEVERITIES: readonly number[] = Object.freeze([1, 2, 3, 4, 5]);

const IMPLEMENTATIONS: Record<CorruptionName, CorruptImage> = {
  gaussian_noise: gaussianNoise,
  shot_noise: shotNoise,
  impulse_noise: impulseNoise,
  speckle_noise: speckleNoise,
  gaussian_blur: gaussianBlur,
  defocus_blur: defocusBlur,
  zoom_blur: zoomBlur,
  contrast,
  brightness,
  saturate,
  pixelate,
  jpeg_compression: jpegCompression,
  fog,
};

/** The corruptions that draw random numbers; the others ignore the seed. */
export const RANDOM_CORRUPTIONS: ReadonlySet<CorruptionName> = new Set<CorruptionName>([
  'gaussian_noise', 'shot_noise', 'impulse_noise', 'speckle_noise', 'fog',
]);

/** Why a corruption does not apply to images with the given channel count, or null when it does. */
export function inapplicableReason(name: CorruptionName, channels: number): string | null {
  if (channels !== 1 && channels !== 3) return `images must have 1 or 3 channels, got ${channels}`;
  if (name === 'saturate' && channels === 1) {
    return 'saturate scales HSV saturation, which grey (1-channel) images do not have';
  }
  return null;
}

/**
 * The corruptions defined for images with `channels` channels: all 13 for RGB;
 * for grey (1-channel) images all but saturate. Noise, blur, contrast,
 * pixelate, JPEG, zoom and fog act on each channel; brightness on grey is
 * clip(v + c), what the HSV round trip gives an RGB grey.
 */
export function corruptionsFor(channels: number): CorruptionName[] {
  return CORRUPTION_NAMES.filter((n) => inapplicableReason(n, channels) === null);
}

/** Whether `name` is one of CORRUPTION_NAMES. */
export function isCorruptionName(name: string): name is CorruptionName {
  return (CORRUPTION_NAMES as readonly string[]).includes(name);
}

/** Throws unless `name` is a known corruption. */
export function checkCorruptionName(name: string): CorruptionName {
  if (!isCorruptionName(name)) {
    throw new Error(`unknown corruption '${name}'; known corruptions: ${CORRUPTION_NAMES.join(', ')}`);
  }
  return name;
}

/** Throws unless `severity` is an integer in 1-5. */
export function checkSeverity(severity: number): number {
  if (!Number.isInteger(severity) || severity < 1 || severity > 5) {
    throw new Error(`corruption severity must be an integer in 1-5, got ${severity}`);
  }
  return severity;
}

/** 32-bit FNV-1a of a string, so a name can seed a derived stream. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * The seed of one (corruption, severity) derived from a run's seed with
 * Rng.derive, so each corruption's draws depend on neither the others nor the
 * order they run in. evaluateCorruptions passes this to corrupt().
 */
export function corruptionSeed(seed: number, name: CorruptionName, severity: number): number {
  return Rng.derive(seed, hashName(name), severity).getState();
}

/** Pixels and the shape of one image; an ImageDataset is one. */
export interface ImageBatch {
  /** Image-major NHWC bytes, as ImageDataset.pixels. */
  pixels: Uint8Array;
  /** [H, W, C] of one image. */
  shape: readonly [number, number, number];
}

/**
 * Corrupts every image of `images` with corruption `name` at `severity`
 * (1-5): a new pixel array of the same size. Image i draws from
 * Rng.derive(seed, i), so an image's corruption depends only on the seed and
 * its index. Arguments are checked before any work: the name, the severity,
 * the seed, the shape (positive integers, 1 or 3 channels, and channels the
 * corruption applies to, see corruptionsFor) and that the pixel count is a
 * whole number of images.
 */
export function corrupt(images: ImageBatch, name: string, severity: number, seed: number): Uint8Array {
  const corruption = checkCorruptionName(name);
  checkSeverity(severity);
  if (!Number.isFinite(seed)) throw new Error(`corruption seed must be a finite number, got ${seed}`);
  const shape = images.shape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`image shape must be [H, W, C] of positive integers, got [${shape}]`);
  }
  const [h, w, c] = shape;
  const reason = inapplicableReason(corruption, c);
  if (reason !== null) throw new Error(`${corruption}: ${reason}`);
  const imageSize = h * w * c;
  const pixels = images.pixels;
  if (!(pixels instanceof Uint8Array)) throw new Error('corrupt: pixels must be a Uint8Array');
  if (pixels.length % imageSize !== 0) {
    throw new Error(`corrupt: ${pixels.length} pixel bytes is not a whole number of ${h}x${w}x${c} images ` +
      `(${imageSize} bytes each)`);
  }
  const fn = IMPLEMENTATIONS[corruption];
  const out = new Uint8Array(pixels.length);
  const count = pixels.length / imageSize;
  if (corruption === 'jpeg_compression') {
    // Many images per encoder call; the same bytes as one by one (see jpegCompressionImages).
    jpegCompressionImages(pixels, out, shape, count, severity);
    return out;
  }
  for (let i = 0; i < count; i++) {
    const from = i * imageSize;
    fn(pixels.subarray(from, from + imageSize), out.subarray(from, from + imageSize), shape, severity, Rng.derive(seed, i));
  }
  return out;
}

/**
 * A copy of `ds` with every image corrupted (see corrupt), named
 * `<name>/<corruption>-<severity>`; the labels array is shared, not copied.
 * Throws when the pixel count is not labels x H x W x C.
 */
export function corruptDataset(ds: ImageDataset, name: string, severity: number, seed: number): ImageDataset {
  const [h, w, c] = ds.shape;
  if (ds.pixels.length !== ds.labels.length * h * w * c) {
    throw new Error(`corruptDataset: dataset '${ds.name}' has ${ds.pixels.length} pixel bytes, expected ` +
      `${ds.labels.length} images x ${h}x${w}x${c} = ${ds.labels.length * h * w * c}`);
  }
  const pixels = corrupt(ds, name, severity, seed);
  return {...ds, name: `${ds.name}/${name}-${severity}`, pixels, shape: [h, w, c]};
}
