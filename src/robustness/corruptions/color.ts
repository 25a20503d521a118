/**
 * brightness and saturate of Hendrycks & Dietterich (2019), with the CIFAR-10
 * parameters of make_cifar_c.py (github.com/hendrycks/robustness,
 * ImageNet-C/create_c/make_cifar_c.py): the image goes to HSV with skimage
 * 0.19's rgb2hsv, V is shifted (brightness) or S scaled and shifted
 * (saturate), clipped to [0, 1], and back with hsv2rgb, all in float64 with
 * skimage's formulas and tie rules.
 *
 * Grey (1-channel) images: an RGB pixel (v, v, v) has S = 0 and V = v, and
 * the HSV round trip of brightness returns (v + c, v + c, v + c) clipped, so
 * brightness on grey is clip(v + c, 0, 1). saturate has no meaning there
 * (there is no hue to saturate; its shifted severities would paint grey red),
 * so it is defined for 3-channel images only.
 */
import type {Rng} from '../../data/random.js';
import {ImageShape, unitToByte} from './image.js';

/** brightness: added to V (make_cifar_c.py). */
export const BRIGHTNESS_SHIFTS: readonly number[] = Object.freeze([0.05, 0.1, 0.15, 0.2, 0.3]);

/** saturate: [scale, shift] of S, S' = S scale + shift (make_cifar_c.py). */
export const SATURATE_PARAMETERS: ReadonlyArray<readonly [number, number]> = Object.freeze([
  [0.3, 0], [0.1, 0], [1.5, 0], [2, 0.1], [2.5, 0.2],
] as const);

/** numpy's float remainder (np.remainder / Python %): the sign of the divisor, +0 for exact multiples. */
function remainder(a: number, b: number): number {
  let m = a % b;
  if (m !== 0) {
    if ((b < 0) !== (m < 0)) m += b;
  } else {
    m = 0;
  }
  return m;
}

/**
 * skimage 0.19 rgb2hsv of one pixel in [0, 1], written to hsv[0..2]. Where
 * several channels equal the maximum, blue's hue formula wins over green's and
 * green's over red's (skimage assigns them in that order); grey pixels get
 * H = S = 0.
 */
export function rgbToHsv(r: number, g: number, b: number, hsv: Float64Array): void {
  const v = Math.max(r, g, b);
  const delta = v - Math.min(r, g, b);
  let h = 0;
  if (r === v) h = (g - b) / delta;
  if (g === v) h = 2 + (b - r) / delta;
  if (b === v) h = 4 + (r - g) / delta;
  h = delta === 0 ? 0 : remainder(h / 6, 1);
  hsv[0] = h;
  hsv[1] = delta === 0 ? 0 : delta / v;
  hsv[2] = v;
}

/** skimage 0.19 hsv2rgb of one pixel, written to rgb[0..2]. */
export function hsvToRgb(h: number, s: number, v: number, rgb: Float64Array): void {
  const hi = Math.floor(h * 6);
  const f = h * 6 - hi;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  // skimage casts hi to uint8 before taking it modulo 6; hi is in [0, 6] here.
  switch (hi % 6) {
    case 0: rgb[0] = v; rgb[1] = t; rgb[2] = p; break;
    case 1: rgb[0] = q; rgb[1] = v; rgb[2] = p; break;
    case 2: rgb[0] = p; rgb[1] = v; rgb[2] = t; break;
    case 3: rgb[0] = p; rgb[1] = q; rgb[2] = v; break;
    case 4: rgb[0] = t; rgb[1] = p; rgb[2] = v; break;
    default: rgb[0] = v; rgb[1] = p; rgb[2] = q; break;
  }
}

const clip01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

/** Applies `edit` to the HSV form of each pixel of a 3-channel image. */
function mapHsv(src: Uint8Array, dst: Uint8Array, edit: (hsv: Float64Array) => void): void {
  const hsv = new Float64Array(3);
  const rgb = new Float64Array(3);
  for (let k = 0; k < src.length; k += 3) {
    rgbToHsv(src[k] / 255, src[k + 1] / 255, src[k + 2] / 255, hsv);
    edit(hsv);
    hsvToRgb(hsv[0], hsv[1], hsv[2], rgb);
    dst[k] = unitToByte(rgb[0]);
    dst[k + 1] = unitToByte(rgb[1]);
    dst[k + 2] = unitToByte(rgb[2]);
  }
}

/** Brightness: V + c in HSV (3 channels), v + c on grey. */
export function brightness(src: Uint8Array, dst: Uint8Array, shape: ImageShape, severity: number, _rng: Rng): void {
  const c = BRIGHTNESS_SHIFTS[severity - 1];
  if (shape[2] === 1) {
    for (let k = 0; k < src.length; k++) dst[k] = unitToByte(clip01(src[k] / 255 + c));
    return;
  }
  mapHsv(src, dst, (hsv) => { hsv[2] = clip01(hsv[2] + c); });
}

/** Saturate: S scale + shift in HSV; 3-channel images only. */
export function saturate(src: Uint8Array, dst: Uint8Array, shape: ImageShape, severity: number, _rng: Rng): void {
  if (shape[2] !== 3) throw new Error(`saturate needs 3-channel (RGB) images, got ${shape[2]} channel(s)`);
  const [scale, shift] = SATURATE_PARAMETERS[severity - 1];
  mapHsv(src, dst, (hsv) => { hsv[1] = clip01(hsv[1] * scale + shift); });
}
