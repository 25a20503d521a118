/**
 * Pillow's `Image.resize(size, Image.BOX)` for 8-bit images (Pillow 9.4,
 * libImaging/Resample.c), which make_cifar_c.py's pixelate calls twice. It is
 * reproduced exactly, arithmetic included: per output pixel the box filter's
 * coefficients are computed in float64 over the input pixels whose centres the
 * output pixel's footprint covers (support 0.5 x the scale when shrinking, 0.5
 * when enlarging), normalized to sum 1, and converted to 22-bit fixed point
 * (rounded half away from zero); each pass sums byte x coefficient in 32-bit
 * integers from 2^21 (the rounding offset), shifts right by 22 and clamps to
 * [0, 255]. Horizontal pass first, to bytes, then vertical, each only when
 * that axis changes size, as Pillow does.
 */

/** Fraction bits of Pillow's 8-bit resampling coefficients (32 - 8 - 2). */
const PRECISION_BITS = 22;

/** Per output index: first input index, number of inputs, fixed-point weights (ksize per output). */
interface BoxCoefficients {
  start: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  ksize: number;
}

/** Pillow's precompute_coeffs for the box filter, then normalize_coeffs_8bpc. */
function boxCoefficients(inSize: number, outSize: number): BoxCoefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 0.5 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    k.fill(0);
    for (let x = 0; x < xmax; x++) {
      const t = (x + xmin - center + 0.5) * ss;
      const w = t > -0.5 && t <= 0.5 ? 1 : 0;
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) if (ww !== 0) k[x] /= ww;
    for (let x = 0; x < ksize; x++) {
      const scaled = k[x] * (1 << PRECISION_BITS);
      weights[xx * ksize + x] = k[x] < 0 ? Math.trunc(-0.5 + scaled) : Math.trunc(0.5 + scaled);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return {start, count, weights, ksize};
}

/** Pillow's clip8: the fixed-point sum shifted to a byte and clamped. */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** One pass: resizes the width (horizontal) or the height of an HWC byte image to outW or outH. */
function resamplePass(
  src: Uint8Array, srcShape: [number, number, number], outH: number, outW: number, horizontal: boolean,
): Uint8Array {
  const [h, w, c] = srcShape;
  const dst = new Uint8Array(outH * outW * c);
  const coeff = horizontal ? boxCoefficients(w, outW) : boxCoefficients(h, outH);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = horizontal ? x : y;
      const first = coeff.start[o];
      const n = coeff.count[o];
      const kBase = o * coeff.ksize;
      for (let ch = 0; ch < c; ch++) {
        let sum = 1 << (PRECISION_BITS - 1);
        for (let i = 0; i < n; i++) {
          const s = horizontal ? src[(y * w + first + i) * c + ch] : src[((first + i) * w + x) * c + ch];
          sum = (sum + s * coeff.weights[kBase + i]) | 0;
        }
        dst[(y * outW + x) * c + ch] = clip8(sum);
      }
    }
  }
  return dst;
}

/** Resizes one HWC byte image to outH x outW with Pillow's BOX filter. */
export function boxResize(src: Uint8Array, shape: readonly [number, number, number], outH: number, outW: number): Uint8Array {
  const [h, w, c] = shape;
  let img = src;
  let cur: [number, number, number] = [h, w, c];
  if (outW !== w) {
    img = resamplePass(img, cur, h, outW, true);
    cur = [h, outW, c];
  }
  if (outH !== h) img = resamplePass(img, cur, outH, outW, false);
  return img === src ? src.slice() : img;
}
