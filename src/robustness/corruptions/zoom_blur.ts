/**
 * zoom_blur of Hendrycks & Dietterich (2019) with the CIFAR-10 parameters of
 * make_cifar_c.py (github.com/hendrycks/robustness,
 * ImageNet-C/create_c/make_cifar_c.py): the mean of the image and of its
 * centre crops zoomed back to full size by a list of factors, in float32 as
 * there (the image is cast to float32 first).
 *
 * Each zoom is make_cifar_c.py's `clipped_zoom`: the centre crop of
 * ceil(h / z) pixels, scipy.ndimage.zoom(crop, (z, z, 1), order=1) with scipy
 * 1.10's mapping (grid_mode False: output index o reads input coordinate
 * o * (in - 1) / (out - 1), output size round(in * z), Python's round half to
 * even; mode 'constant', so a coordinate that rounding puts past in - 1 reads
 * 0), then the centre h pixels. Linear interpolation sums the four
 * neighbours in float64 and stores float32, as scipy does. Channels are
 * independent, so 1-channel images work unchanged; non-square images are
 * cropped and zoomed per axis (make_cifar_c.py assumes square ones).
 */
import type {Rng} from '../../data/random.js';
import {ImageShape, unitToByteFloat32} from './image.js';

/** zoom_blur: the stop of np.arange(1, stop, 0.01), the zoom factors (make_cifar_c.py). */
export const ZOOM_BLUR_STOPS: readonly number[] = Object.freeze([1.06, 1.11, 1.16, 1.21, 1.26]);

const ZOOM_STEP = 0.01;

/**
 * np.arange(start, stop, step) in float64 as numpy 1.24 computes it: length
 * ceil((stop - start) / step), values start + i * ((start + step) - start).
 * So np.arange(1, 1.06, 0.01) has 7 values (1 ... 1.06, since
 * 0.06 / 0.01 = 6.000000000000005), np.arange(1, 1.16, 0.01) 16 (1 ... 1.15).
 */
export function numpyArange(start: number, stop: number, step: number): number[] {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const delta = (start + step) - start;
  return Array.from({length: n}, (_, i) => (i === 0 ? start : start + i * delta));
}

/** The zoom factors of one severity: 7, 12, 16, 21, 26 of them for severities 1-5. */
export function zoomFactors(severity: number): number[] {
  return numpyArange(1, ZOOM_BLUR_STOPS[severity - 1], ZOOM_STEP);
}

/** Python's round(): to nearest, ties to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Per output index: the lower input index, its weight, the upper index's weight, or null for cval 0. */
interface AxisTaps {
  lo: Int32Array;
  hi: Int32Array;
  w0: Float64Array;
  w1: Float64Array;
  zero: Uint8Array;
}

/**
 * scipy.ndimage.zoom's order-1 taps along one axis for an output of `outLen`
 * from an input of `inLen`, the first `offset` outputs skipped (the trim).
 */
function axisTaps(inLen: number, zoomedLen: number, offset: number, outLen: number): AxisTaps {
  const scale = zoomedLen > 1 ? (inLen - 1) / (zoomedLen - 1) : 1;
  const t: AxisTaps = {
    lo: new Int32Array(outLen), hi: new Int32Array(outLen),
    w0: new Float64Array(outLen), w1: new Float64Array(outLen), zero: new Uint8Array(outLen),
  };
  for (let o = 0; o < outLen; o++) {
    const cc = (o + offset) * scale;
    if (cc > inLen - 1) {
      t.zero[o] = 1;
      continue;
    }
    const start = Math.floor(cc);
    const frac = cc - start;
    t.lo[o] = start;
    // Past the last sample scipy mirrors the neighbour; its weight is then 0.
    t.hi[o] = start + 1 < inLen ? start + 1 : Math.max(0, 2 * inLen - 2 - (start + 1));
    t.w0[o] = 1 - frac;
    t.w1[o] = 1 - t.w0[o];
  }
  return t;
}

/**
 * clipped_zoom of a float32 HWC image, added (in float32) into `acc`: crop,
 * zoom by `factor`, trim to h x w.
 */
function addClippedZoom(x: Float32Array, acc: Float32Array, shape: ImageShape, factor: number): void {
  const [h, w, c] = shape;
  const cropH = Math.ceil(h / factor);
  const cropW = Math.ceil(w / factor);
  const top = Math.floor((h - cropH) / 2);
  const left = Math.floor((w - cropW) / 2);
  const zoomedH = roundHalfEven(cropH * factor);
  const zoomedW = roundHalfEven(cropW * factor);
  const trimTop = Math.floor((zoomedH - h) / 2);
  const trimLeft = Math.floor((zoomedW - w) / 2);
  // The slice keeps at most h (w) rows (columns) of what the zoom produced.
  const outH = Math.min(h, zoomedH - trimTop);
  const outW = Math.min(w, zoomedW - trimLeft);
  const rows = axisTaps(cropH, zoomedH, trimTop, outH);
  const cols = axisTaps(cropW, zoomedW, trimLeft, outW);
  const at = (y: number, xx: number, ch: number): number => x[((top + y) * w + left + xx) * c + ch];
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      const d = (oy * w + ox) * c;
      if (rows.zero[oy] || cols.zero[ox]) continue; // adds cval 0
      const y0 = rows.lo[oy], y1 = rows.hi[oy], wy0 = rows.w0[oy], wy1 = rows.w1[oy];
      const x0 = cols.lo[ox], x1 = cols.hi[ox], wx0 = cols.w0[ox], wx1 = cols.w1[ox];
      for (let ch = 0; ch < c; ch++) {
        const t = at(y0, x0, ch) * wy0 * wx0 + at(y0, x1, ch) * wy0 * wx1
          + at(y1, x0, ch) * wy1 * wx0 + at(y1, x1, ch) * wy1 * wx1;
        acc[d + ch] = Math.fround(acc[d + ch] + Math.fround(t));
      }
    }
  }
}

/** Zoom blur: (x + sum of the clipped zooms) / (factors + 1), in float32. */
export function zoomBlur(src: Uint8Array, dst: Uint8Array, shape: ImageShape, severity: number, _rng: Rng): void {
  const factors = zoomFactors(severity);
  const x = new Float32Array(src.length);
  for (let k = 0; k < src.length; k++) x[k] = src[k] / 255;
  const acc = new Float32Array(src.length);
  for (const z of factors) addClippedZoom(x, acc, shape, z);
  const n = factors.length + 1;
  for (let k = 0; k < src.length; k++) dst[k] = unitToByteFloat32(Math.fround(Math.fround(x[k] + acc[k]) / n));
}
