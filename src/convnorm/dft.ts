/**
 * Discrete Fourier transforms as matrix products.
 *
 * tfjs's own FFT kernels exist on cpu and webgl only, and the cpu one is slow;
 * a DFT written as a product with cos/sin matrices runs on every backend
 * (wasm included), is differentiable through matMul, and for the small sizes
 * of a conv feature map (M <= ~70) is as fast as an FFT would be. Matrices are
 * computed in float64 and cached as Float32Arrays (not tensors), so a cache
 * never holds memory on a backend or outlives a backend switch.
 */

export interface DftMatrix {
  /** Row-major [rows, cols] values. */
  readonly cos: Float32Array;
  readonly sin: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

const cache = new Map<string, DftMatrix>();

function build(key: string, rows: number, cols: number,
               entry: (r: number, c: number) => [number, number]): DftMatrix {
  let m = cache.get(key);
  if (m === undefined) {
    const cos = new Float32Array(rows * cols);
    const sin = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        [cos[r * cols + c], sin[r * cols + c]] = entry(r, c);
      }
    }
    m = {cos, sin, rows, cols};
    cache.set(key, m);
  }
  return m;
}

/** Angle 2*pi*(a*b mod n)/n, reduced in integers so large products keep full accuracy. */
function angle(a: number, b: number, n: number): number {
  return (2 * Math.PI * ((a * b) % n)) / n;
}

/** Number of non-redundant frequencies of a real signal of length n. */
export function halfSpectrumSize(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * Forward DFT along one axis: [freqs, n] with cos(2 pi f x / n) and sin(...),
 * so that X(f) = cos·x - i sin·x. `half` keeps the floor(n/2)+1 frequencies of
 * a real signal (rfft), otherwise all n.
 */
export function forwardDft(n: number, half: boolean): DftMatrix {
  const freqs = half ? halfSpectrumSize(n) : n;
  return build(`f${n}/${half}`, freqs, n, (f, x) => {
    const t = angle(f, x, n);
    return [Math.cos(t), Math.sin(t)];
  });
}

/**
 * Inverse DFT along one axis evaluated only at the positions `at` (a crop and
 * stride folded into the transform): [at.length, n] with cos/n and sin/n, so
 * that x(p) = cos·Re - sin·Im + i (sin·Re + cos·Im).
 */
export function inverseDft(n: number, at: readonly number[]): DftMatrix {
  return build(`i${n}/${at.join(',')}`, at.length, n, (r, f) => {
    const t = angle(at[r], f, n);
    return [Math.cos(t) / n, Math.sin(t) / n];
  });
}

/**
 * Inverse real DFT (irfft of a Hermitian half spectrum of a length-n signal)
 * evaluated at the positions `at`: [at.length, floor(n/2)+1]. Each non-edge
 * frequency stands for itself and its mirror image, hence the weight 2; the
 * imaginary parts of the DC and Nyquist bins drop out because sin is 0 there,
 * as in every irfft.
 */
export function inverseRealDft(n: number, at: readonly number[]): DftMatrix {
  const freqs = halfSpectrumSize(n);
  return build(`ir${n}/${at.join(',')}`, at.length, freqs, (r, f) => {
    const weight = f === 0 || 2 * f === n ? 1 : 2;
    const t = angle(at[r], f, n);
    return [(weight * Math.cos(t)) / n, (weight * Math.sin(t)) / n];
  });
}

/** Positions start, start + step, ... (count of them). */
export function arange(start: number, count: number, step: number): number[] {
  return Array.from({length: count}, (_, i) => start + i * step);
}

/*
 * Stacked real forms of complex DFT matrices, for transforms done as one real
 * matrix product on data whose real and imaginary parts are stacked along the
 * transformed axis ([re; im], each `len` rows).
 */

/** Real data to its spectrum, [2 freqs, len] = [cos; -sin]: X(f) = sum_x x e^{-2 pi i f x / n}. */
export function forwardRealStacked(n: number, len: number, freqs: number): RealMatrix {
  return buildReal(`frs${n}/${len}/${freqs}`, 2 * freqs, len, (r, x) => {
    const t = angle(r % freqs, x, n);
    return r < freqs ? Math.cos(t) : -Math.sin(t);
  });
}

/** Complex data [re; im] to its spectrum [Re; Im]: [[C, S], [-S, C]], [2 freqs, 2 len]. */
export function forwardComplexBlock(n: number, len: number, freqs: number): RealMatrix {
  return buildReal(`fcb${n}/${len}/${freqs}`, 2 * freqs, 2 * len, (r, c) => {
    const t = angle(r % freqs, c % len, n);
    const [top, left] = [r < freqs, c < len];
    if (top === left) return Math.cos(t);
    return top ? Math.sin(t) : -Math.sin(t);
  });
}

/**
 * Inverse DFT of a Hermitian half spectrum [Re; Im] (floor(n/2)+1 bins each)
 * at the positions `at`, kept complex for a transform along another axis:
 * [[Ec, -Es], [Es, Ec]] / n with the irfft weights (2 for bins with a mirror
 * image), [2 at.length, 2 half].
 */
export function inverseHalfComplexBlock(n: number, at: readonly number[]): RealMatrix {
  const half = halfSpectrumSize(n);
  const p = at.length;
  return buildReal(`ihb${n}/${at.join(',')}`, 2 * p, 2 * half, (r, c) => {
    const f = c % half;
    const weight = f === 0 || 2 * f === n ? 1 : 2;
    const t = angle(at[r % p], f, n);
    const [top, left] = [r < p, c < half];
    if (top === left) return (weight * Math.cos(t)) / n;
    return ((top ? -1 : 1) * weight * Math.sin(t)) / n;
  });
}

/** Real part of the inverse DFT of [Re; Im] (n bins each) at the positions `at`: [C, -S] / n, [at.length, 2n]. */
export function inverseRealPart(n: number, at: readonly number[]): RealMatrix {
  return buildReal(`irp${n}/${at.join(',')}`, at.length, 2 * n, (r, c) => {
    const t = angle(at[r], c % n, n);
    return (c < n ? Math.cos(t) : -Math.sin(t)) / n;
  });
}

/** A real matrix, row-major. */
export interface RealMatrix {
  readonly values: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

const realCache = new Map<string, RealMatrix>();

function buildReal(key: string, rows: number, cols: number, entry: (r: number, c: number) => number): RealMatrix {
  let m = realCache.get(key);
  if (m === undefined) {
    const values = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) values[r * cols + c] = entry(r, c);
    }
    m = {values, rows, cols};
    realCache.set(key, m);
  }
  return m;
}

/**
 * Tap-to-frequency basis of a kh x kw kernel on an Mh x Mw grid, [F, kh*kw]
 * with F = Fw * Mh frequencies ordered (fw, fh) and taps (a, b) row-major:
 * FFT2(kernel zero-padded to the grid)(f) = sum over taps of w * (cos - i sin).
 * Evaluating the 9 taps of a 3x3 kernel directly replaces an FFT of a mostly
 * zero Mh x Mw array per (output, input) channel pair.
 */
export function tapBasis(kh: number, kw: number, mh: number, mw: number): {cos: RealMatrix; sin: RealMatrix} {
  const fw = halfSpectrumSize(mw);
  const taps = kh * kw;
  const phase = (r: number, c: number) => {
    const [v, u] = [Math.floor(r / mh), r % mh];
    const [a, b] = [Math.floor(c / kw), c % kw];
    // Whole turns removed in integers keep the angle accurate for any size.
    return 2 * Math.PI * (((a * u) % mh) / mh + ((b * v) % mw) / mw);
  };
  return {
    cos: buildReal(`tc${kh}/${kw}/${mh}/${mw}`, fw * mh, taps, (r, c) => Math.cos(phase(r, c))),
    sin: buildReal(`ts${kh}/${kw}/${mh}/${mw}`, fw * mh, taps, (r, c) => Math.sin(phase(r, c))),
  };
}
