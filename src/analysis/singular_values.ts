/**
 * Singular values of multi-channel convolutions with circular boundary
 * (Sedghi, Gupta & Long, ICLR 2019): on an n_h x n_w grid, the layer's
 * singular values are the union over frequencies f of the singular values of
 * the C_out x C_in complex matrix P(f) = FFT2(kernel zero-padded to the grid)(f).
 * Plain float64 JavaScript: this is analysis, run on weights read back from
 * whatever backend trained them. The exact computations, strided ones
 * included, live in ./circular_spectrum.ts, the per-channel isometry measure
 * in ./channel_response.ts; this module keeps the frequency matrices and the
 * reader of ConvNorm's V.
 */
import {circularSpectrum} from './circular_spectrum.js';
import {hermitianEigenvalues} from './hermitian_eigenvalues.js';

/** A conv kernel in tfjs layout [kh, kw, C_in, C_out], read back from a tensor. */
export interface KernelValues {
  data: ArrayLike<number>;
  shape: readonly [number, number, number, number];
}

/** Per-output-channel scaling of row k of P(f) at frequency (u, v), e.g. ConvNorm's V read by spectrumRowScale. */
export type RowScale = (k: number, u: number, v: number) => number;

/** Row-major complex matrix. */
interface ComplexMatrix {
  re: Float64Array;
  im: Float64Array;
  rows: number;
  cols: number;
}

/**
 * P(f) for f = (u, v) on an nh x nw grid, as a C_out x C_in matrix, with each
 * row k optionally scaled (ConvNorm's effective kernel v_k * a_kj has
 * FFT V_k(f) FFT(a_kj)(f)).
 */
export function frequencyMatrix(kernel: KernelValues, grid: readonly [number, number], u: number, v: number,
                                rowScale?: RowScale): ComplexMatrix {
  const [kh, kw, cin, cout] = kernel.shape;
  const [nh, nw] = grid;
  const re = new Float64Array(cout * cin);
  const im = new Float64Array(cout * cin);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const t = 2 * Math.PI * (((a * u) % nh) / nh + ((b * v) % nw) / nw);
      const c = Math.cos(t);
      const s = Math.sin(t);
      const base = (a * kw + b) * cin * cout;
      for (let j = 0; j < cin; j++) {
        for (let k = 0; k < cout; k++) {
          const w = kernel.data[base + j * cout + k];
          re[k * cin + j] += w * c;
          im[k * cin + j] -= w * s;
        }
      }
    }
  }
  if (rowScale !== undefined) {
    for (let k = 0; k < cout; k++) {
      const scale = rowScale(k, u, v);
      for (let j = 0; j < cin; j++) {
        re[k * cin + j] *= scale;
        im[k * cin + j] *= scale;
      }
    }
  }
  return {re, im, rows: cout, cols: cin};
}

/**
 * Eigenvalues of a real symmetric n x n matrix (float64), ascending: Householder
 * tridiagonalization and implicit QL (hermitianEigenvalues). Only the lower
 * triangle is read; `a` is overwritten.
 */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  return hermitianEigenvalues(a, undefined, n);
}

/**
 * All singular values of the circular convolution on the grid, ascending:
 * C_in per frequency (nh * nw * C_in in all; zeros included where
 * C_in > C_out). Exact: the per-frequency Gram matrices' eigenvalues
 * (circularSpectrum); `rowScale` enters through its absolute value.
 */
export function convSingularValues(kernel: KernelValues, grid: readonly [number, number],
                                   rowScale?: RowScale): Float64Array {
  const [, , cin, cout] = kernel.shape;
  const {values} = circularSpectrum(kernel, grid, {gainBeforeStride: rowScale, values: true});
  const zeros = Math.max(0, cin - cout) * grid[0] * grid[1];
  const out = new Float64Array(values!.length + zeros);
  out.set(values!, zeros);
  return out.sort();
}

function norm2(re: Float64Array, im: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < re.length; i++) sum += re[i] * re[i] + im[i] * im[i];
  return Math.sqrt(sum);
}

/** Largest singular value of P(f) by power iteration on P^H P. */
function largestSingularValue(p: ComplexMatrix, iterations: number): number {
  const {rows, cols} = p;
  let xr = new Float64Array(cols).fill(1);
  let xi = new Float64Array(cols).map((_, i) => (i % 2 === 0 ? 0.5 : -0.5));
  const yr = new Float64Array(rows);
  const yi = new Float64Array(rows);
  let sigma = 0;
  for (let it = 0; it < iterations; it++) {
    const norm = norm2(xr, xi);
    if (norm === 0) return 0;
    xr = xr.map(z => z / norm);
    xi = xi.map(z => z / norm);
    for (let r = 0; r < rows; r++) {
      let sr = 0;
      let si = 0;
      for (let c = 0; c < cols; c++) {
        const ar = p.re[r * cols + c];
        const ai = p.im[r * cols + c];
        sr += ar * xr[c] - ai * xi[c];
        si += ar * xi[c] + ai * xr[c];
      }
      yr[r] = sr;
      yi[r] = si;
    }
    sigma = norm2(yr, yi);
    // x <- P^H y
    const nr = new Float64Array(cols);
    const ni = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const ar = p.re[r * cols + c];
        const ai = p.im[r * cols + c];
        nr[c] += ar * yr[r] + ai * yi[r];
        ni[c] += ar * yi[r] - ai * yr[r];
      }
    }
    xr = nr;
    xi = ni;
  }
  return sigma;
}

/**
 * Spectral norm (largest singular value) of the circular convolution on the
 * grid, exact (circularSpectrum). With `iterations`, instead a power iteration
 * of that many steps on each frequency's matrix: a lower bound, cheaper for
 * wide layers where a quick look is enough. Frequencies f and -f have
 * conjugate matrices and equal singular values, so only half the grid is visited.
 */
export function convSpectralNorm(kernel: KernelValues, grid: readonly [number, number],
                                 rowScale?: RowScale, iterations?: number): number {
  if (iterations === undefined) return circularSpectrum(kernel, grid, {gainBeforeStride: rowScale}).norm;
  let best = 0;
  for (let u = 0; u < grid[0]; u++) {
    for (let v = 0; v <= Math.floor(grid[1] / 2); v++) {
      best = Math.max(best, largestSingularValue(frequencyMatrix(kernel, grid, u, v, rowScale), iterations));
    }
  }
  return best;
}

/** RowScale reading ConvNorm's V ([C_out, Mh, floor(Mw/2)+1], or [C_out] for 1x1) with Hermitian symmetry. */
export function spectrumRowScale(spectrum: ArrayLike<number>, grid: readonly [number, number],
                                 pointwise: boolean): RowScale {
  const [nh, nw] = grid;
  const fw = Math.floor(nw / 2) + 1;
  if (pointwise) return k => spectrum[k];
  return (k, u, v) => {
    // V(-f) = V(f): the half spectrum stores v <= nw/2.
    const [uu, vv] = v < fw ? [u, v] : [(nh - u) % nh, nw - v];
    return spectrum[(k * nh + uu) * fw + vv];
  };
}
