/**
 * Exact singular values of a multi-channel convolution with circular
 * boundary, unstrided or strided, with per-channel gains that vary with
 * frequency (ConvNorm's spectrum V, an affine depthwise filter, BatchNorm's
 * scale). Plain float64 JavaScript on weights read back from tensors.
 *
 * Unstrided (Sedghi, Gupta & Long, ICLR 2019): on an n_h x n_w grid the 2-D
 * DFT block-diagonalizes the operator; its singular values are the union over
 * the n_h n_w frequencies f = (u, v) of those of the C_out x C_in transfer
 * matrix P(f)[k, j] = sum_{a,b} W[a, b, j, k] e^{-2 pi i (a u / n_h + b v / n_w)}.
 *
 * Strided (the polyphase construction; Senderovich, Bulatova, Obukhov &
 * Rakhuba, NeurIPS 2022): keeping every s-th sample of an n-periodic signal
 * folds its spectrum onto the (n / s) grid, y^(f') = s^(-1/2) sum_j y^(f' + j n/s)
 * under unitary DFTs (s = s_h s_w aliases in 2-D). The strided operator then
 * maps the s aliased input frequencies of f' to f', through the
 * C_out x (C_in s) matrix s^(-1/2) [P(f' + j n/s)]_j, and its singular values
 * are the union of those matrices' over the (n_h/s_h) x (n_w/s_w) output grid.
 * Where the sampling starts (the crop offset) multiplies each block by a
 * phase, a unitary that changes no singular value.
 *
 * Gains: a real gain g_k(f) of output channel k multiplies row k of the
 * transfer matrix. Before the stride it is indexed by the grid's frequencies
 * (one per alias); after the stride by the output grid's. A complex per-row
 * factor (a depthwise filter's transfer function) enters through its
 * modulus alone, since its phase is a diagonal unitary on the left.
 *
 * Route: the singular values are the square roots of the eigenvalues of the
 * smaller Gram matrix, M M^H (C_out x C_out) or M^H M (C_in s square),
 * found by hermitianEigenvalues. M M^H needs no transfer matrix at all: P(f) P(f)^H
 * is a trigonometric polynomial in f whose coefficients (one C_out x C_out
 * matrix per tap offset) are computed once per kernel and reused at every
 * frequency, alias and gain. Frequencies f and -f have conjugate matrices
 * (the gains are even in f for real filters), so half of each grid is visited.
 * Through the Gram matrix, singular values far below the largest are accurate
 * to about 1e-8 of the largest (sqrt of float64 resolution), the largest ones
 * to float64 resolution.
 */
import {hermitianEigenvalues} from './hermitian_eigenvalues.js';
import type {KernelValues, RowScale} from './singular_values.js';

export interface CircularSpectrumOptions {
  /** [s_h, s_w]; each must divide the grid's size along its axis. Default [1, 1]. */
  strides?: readonly [number, number];
  /**
   * Gain of output channel k at frequency (u, v) of the n_h x n_w grid,
   * applied before the stride (ConvNorm's V). Only its absolute value matters.
   */
  gainBeforeStride?: RowScale;
  /**
   * Gain of output channel k at frequency (u, v) of the (n_h/s_h) x (n_w/s_w)
   * output grid, applied after the stride (the modulus of an affine filter's
   * transfer function, BatchNorm's scale).
   */
  gainAfterStride?: RowScale;
  /** Also return every singular value. Default false. */
  values?: boolean;
}

export interface CircularSpectrum {
  /** The largest singular value (the spectral norm). */
  norm: number;
  /**
   * With `values`: every singular value, descending: min(C_out, C_in s_h s_w)
   * per frequency of the output grid, so values[0] === norm.
   */
  values?: Float64Array;
}

/** Representatives of the pairs {f, -f} of an n_h x n_w grid: [u, v, 1 or 2 (how many frequencies it stands for)]. */
export function halfGrid(nh: number, nw: number): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (let u = 0; u < nh; u++) {
    for (let v = 0; v < nw; v++) {
      const mirror = ((nh - u) % nh) * nw + (nw - v) % nw;
      const self = u * nw + v;
      if (self <= mirror) out.push([u, v, self === mirror ? 1 : 2]);
    }
  }
  return out;
}

/** Index of (k, l), l <= k, in a packed lower triangle. */
function packed(k: number, l: number): number {
  return (k * (k + 1)) / 2 + l;
}

/**
 * The lower triangle, packed, of X X^H for the complex rows x cols matrix
 * xr + i xi (row-major): G[a, b] = sum_c X[a, c] conj(X[b, c]). Rows are taken
 * two by two against two, so that each value loaded feeds two products.
 */
function packedRowGram(xr: Float64Array, xi: Float64Array, rows: number, cols: number,
                       gr: Float64Array, gi: Float64Array): void {
  for (let a = 0; a < rows; a += 2) {
    const a1 = Math.min(a + 1, rows - 1);
    const ra0 = a * cols;
    const ra1 = a1 * cols;
    for (let b = 0; b <= a; b += 2) {
      const b1 = Math.min(b + 1, rows - 1);
      const rb0 = b * cols;
      const rb1 = b1 * cols;
      let r00 = 0, i00 = 0, r01 = 0, i01 = 0, r10 = 0, i10 = 0, r11 = 0, i11 = 0;
      for (let c = 0; c < cols; c++) {
        const p0r = xr[ra0 + c], p0i = xi[ra0 + c];
        const p1r = xr[ra1 + c], p1i = xi[ra1 + c];
        const q0r = xr[rb0 + c], q0i = xi[rb0 + c];
        const q1r = xr[rb1 + c], q1i = xi[rb1 + c];
        r00 += p0r * q0r + p0i * q0i;
        i00 += p0i * q0r - p0r * q0i;
        r01 += p0r * q1r + p0i * q1i;
        i01 += p0i * q1r - p0r * q1i;
        r10 += p1r * q0r + p1i * q0i;
        i10 += p1i * q0r - p1r * q0i;
        r11 += p1r * q1r + p1i * q1i;
        i11 += p1i * q1r - p1r * q1i;
      }
      // Duplicated edge rows (a1 = a or b1 = b) rewrite entries with equal values; (b + 1, a) is above the diagonal when b = a.
      gr[packed(a, b)] = r00;
      gi[packed(a, b)] = i00;
      if (b1 <= a) {
        gr[packed(a, b1)] = r01;
        gi[packed(a, b1)] = i01;
      }
      gr[packed(a1, b)] = r10;
      gi[packed(a1, b)] = i10;
      if (b1 <= a1) {
        gr[packed(a1, b1)] = r11;
        gi[packed(a1, b1)] = i11;
      }
    }
  }
}

/**
 * A conv kernel prepared for repeated circular spectra: its taps in float64
 * and, built on first use, the coefficients of P(f) P(f)^H.
 */
export class CircularConv {
  readonly kh: number;
  readonly kw: number;
  readonly inChannels: number;
  readonly outChannels: number;
  /** taps[(a * kw + b) * C_in * C_out + j * C_out + k], tfjs order. */
  private readonly taps: Float64Array;
  /**
   * P(f) P(f)^H = sum_d (cos(theta_d(f)) sym[d] - i sin(theta_d(f)) anti[d]),
   * theta_d(f) = 2 pi (d_a u / n_h + d_b v / n_w), over the tap offsets d in
   * one half plane (d = 0 first, with anti[0] unused): for d != 0,
   * sym = Q_d + Q_d^T and anti = Q_d - Q_d^T, Q_d = sum_{t - t' = d} W_t^T W_t';
   * sym[0] = Q_0. Packed lower triangles.
   */
  private rowGramTerms?: {offsets: Array<[number, number]>; sym: Float64Array[]; anti: Float64Array[]};

  constructor(kernel: KernelValues) {
    const [kh, kw, cin, cout] = kernel.shape;
    if (kernel.data.length !== kh * kw * cin * cout) {
      throw new Error(`kernel data has ${kernel.data.length} values, shape [${kernel.shape}] needs ${kh * kw * cin * cout}`);
    }
    this.kh = kh;
    this.kw = kw;
    this.inChannels = cin;
    this.outChannels = cout;
    this.taps = Float64Array.from(kernel.data);
  }

  /**
   * The transfer matrix at (u, v) of the grid, transposed: rows j (C_in), columns
   * k (C_out), with column k times `scale[k]` (the gains and the stride's factor).
   */
  private transferTransposed(u: number, v: number, grid: readonly [number, number], scale: Float64Array,
                             outRe: Float64Array, outIm: Float64Array, rowOffset: number): void {
    const {kh, kw, inChannels: cin, outChannels: cout} = this;
    const [nh, nw] = grid;
    const start = rowOffset * cout;
    outRe.fill(0, start, start + cin * cout);
    outIm.fill(0, start, start + cin * cout);
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        // Reduced before dividing so that the angle stays exact for large grids.
        const t = 2 * Math.PI * (((a * u) % nh) / nh + ((b * v) % nw) / nw);
        const c = Math.cos(t);
        const s = -Math.sin(t);
        const base = (a * kw + b) * cin * cout;
        for (let j = 0; j < cin; j++) {
          const row = start + j * cout;
          const src = base + j * cout;
          for (let k = 0; k < cout; k++) {
            const w = this.taps[src + k];
            outRe[row + k] += w * c;
            outIm[row + k] += w * s;
          }
        }
      }
    }
    for (let j = 0; j < cin; j++) {
      const row = start + j * cout;
      for (let k = 0; k < cout; k++) {
        outRe[row + k] *= scale[k];
        outIm[row + k] *= scale[k];
      }
    }
  }

  /**
   * The coefficients of P(f) P(f)^H, from its values on the (2kh-1) x (2kw-1)
   * grid: a trigonometric polynomial with offsets |d_a| < kh, |d_b| < kw is
   * fixed by its samples there, Q_d = N^-1 sum_f G(f) e^{2 pi i d.f / N}. Cost
   * about (2kh-1)(2kw-1) C_out^2 C_in multiply-adds, once per kernel.
   */
  private terms(): NonNullable<CircularConv['rowGramTerms']> {
    if (this.rowGramTerms !== undefined) return this.rowGramTerms;
    const {kh, kw, inChannels: cin, outChannels: cout} = this;
    const [sh, sw] = [2 * kh - 1, 2 * kw - 1];
    const size = (cout * (cout + 1)) / 2;
    const offsets: Array<[number, number]> = [];
    for (let da = 0; da < kh; da++) {
      for (let db = da === 0 ? 0 : -(kw - 1); db < kw; db++) offsets.push([da, db]);
    }
    const sym = offsets.map(() => new Float64Array(size));
    const anti = offsets.map(() => new Float64Array(size));
    const pr = new Float64Array(cin * cout);
    const pi = new Float64Array(cin * cout);
    const xr = new Float64Array(cout * cin);
    const xi = new Float64Array(cout * cin);
    const gr = new Float64Array(size);
    const gi = new Float64Array(size);
    const ones = new Float64Array(cout).fill(1);
    const count = sh * sw;
    for (const [u, v, mult] of halfGrid(sh, sw)) {
      this.transferTransposed(u, v, [sh, sw], ones, pr, pi, 0);
      // P itself (C_out x C_in, row-major) for the row Gram.
      for (let j = 0; j < cin; j++) {
        for (let k = 0; k < cout; k++) {
          xr[k * cin + j] = pr[j * cout + k];
          xi[k * cin + j] = pi[j * cout + k];
        }
      }
      packedRowGram(xr, xi, cout, cin, gr, gi);
      offsets.forEach(([da, db], d) => {
        // f and -f contribute equal terms: G(-f) = conj(G(f)) and the phase flips too.
        const phi = 2 * Math.PI * (((da * u) % sh) / sh + ((((db * v) % sw) + sw) % sw) / sw);
        const c = (mult * Math.cos(phi)) / count;
        const s = (mult * Math.sin(phi)) / count;
        const sd = sym[d];
        const ad = anti[d];
        if (d === 0) {
          for (let i = 0; i < size; i++) sd[i] += c * gr[i];
        } else {
          // sym = Q_d + Q_d^T: twice the real part; anti = Q_d - Q_d^T: from the imaginary part.
          for (let i = 0; i < size; i++) {
            sd[i] += 2 * c * gr[i];
            ad[i] -= 2 * s * gi[i];
          }
        }
      });
    }
    this.rowGramTerms = {offsets, sym, anti};
    return this.rowGramTerms;
  }

  /** P(f) P(f)^H at (u, v) of the grid, packed lower triangle, added with row/column weights w_k w_l. */
  private addRowGram(u: number, v: number, grid: readonly [number, number], weight: Float64Array,
                     accRe: Float64Array, accIm: Float64Array, tmpRe: Float64Array, tmpIm: Float64Array): void {
    const {offsets, sym, anti} = this.terms();
    const [nh, nw] = grid;
    tmpRe.set(sym[0]);
    tmpIm.fill(0);
    for (let d = 1; d < offsets.length; d++) {
      const [da, db] = offsets[d];
      const t = 2 * Math.PI * (((da * u) % nh) / nh + ((((db * v) % nw) + nw) % nw) / nw);
      const c = Math.cos(t);
      const s = -Math.sin(t);
      const sd = sym[d];
      const ad = anti[d];
      for (let i = 0; i < tmpRe.length; i++) {
        tmpRe[i] += c * sd[i];
        tmpIm[i] += s * ad[i];
      }
    }
    const cout = this.outChannels;
    for (let k = 0; k < cout; k++) {
      const row = packed(k, 0);
      const wk = weight[k];
      for (let l = 0; l <= k; l++) {
        const w = wk * weight[l];
        accRe[row + l] += w * tmpRe[row + l];
        accIm[row + l] += w * tmpIm[row + l];
      }
    }
  }

  /** Singular values of the (strided) circular convolution on the grid; see CircularSpectrumOptions. */
  spectrum(grid: readonly [number, number], options: CircularSpectrumOptions = {}): CircularSpectrum {
    const [nh, nw] = grid;
    const [sh, sw] = options.strides ?? [1, 1];
    if (![nh, nw, sh, sw].every(x => Number.isInteger(x) && x >= 1)) {
      throw new Error(`grid [${grid}] and strides [${sh}, ${sw}] must be positive integers`);
    }
    if (nh % sh !== 0 || nw % sw !== 0) {
      throw new Error(`the grid [${grid}] is not a multiple of the strides [${sh}, ${sw}]`);
    }
    const {inChannels: cin, outChannels: cout} = this;
    const [gh, gw] = [nh / sh, nw / sw];
    const aliases = sh * sw;
    const cols = cin * aliases;
    const before = options.gainBeforeStride;
    const after = options.gainAfterStride;
    // Unitary DFTs: subsampling by s scales the folded spectrum by s^(-1/2).
    const strideScale = 1 / Math.sqrt(aliases);
    const byRows = cout <= cols;
    const n = Math.min(cout, cols);
    const size = (n * (n + 1)) / 2;
    const accRe = new Float64Array(size);
    const accIm = new Float64Array(size);
    const tmpRe = new Float64Array(size);
    const tmpIm = new Float64Array(size);
    const full = {re: new Float64Array(n * n), im: new Float64Array(n * n)};
    const weight = new Float64Array(cout);
    const mr = byRows ? undefined : new Float64Array(cols * cout);
    const mi = byRows ? undefined : new Float64Array(cols * cout);
    const values: number[] | undefined = options.values ? [] : undefined;
    let norm = 0;
    for (const [u0, v0, mult] of halfGrid(gh, gw)) {
      accRe.fill(0);
      accIm.fill(0);
      for (let jh = 0; jh < sh; jh++) {
        for (let jw = 0; jw < sw; jw++) {
          const [u, v] = [u0 + jh * gh, v0 + jw * gw];
          for (let k = 0; k < cout; k++) {
            weight[k] = strideScale * Math.abs((before?.(k, u, v) ?? 1) * (after?.(k, u0, v0) ?? 1));
          }
          if (byRows) {
            this.addRowGram(u, v, grid, weight, accRe, accIm, tmpRe, tmpIm);
          } else {
            // Rows (alias, j) of M^T: M^H M = conj(M^T (M^T)^H), with the same eigenvalues.
            this.transferTransposed(u, v, grid, weight, mr!, mi!, (jh * sw + jw) * cin);
          }
        }
      }
      if (!byRows) packedRowGram(mr!, mi!, cols, cout, accRe, accIm);
      for (let a = 0; a < n; a++) {
        for (let b = 0; b <= a; b++) {
          full.re[a * n + b] = accRe[packed(a, b)];
          full.im[a * n + b] = accIm[packed(a, b)];
        }
      }
      const eig = hermitianEigenvalues(full.re, full.im, n);
      norm = Math.max(norm, Math.sqrt(Math.max(0, eig[n - 1])));
      if (values !== undefined) {
        for (let r = 0; r < mult; r++) for (const e of eig) values.push(Math.sqrt(Math.max(0, e)));
      }
    }
    return values === undefined ? {norm} : {norm, values: Float64Array.from(values).sort().reverse()};
  }
}

/** One-off form of CircularConv.spectrum. */
export function circularSpectrum(kernel: KernelValues, grid: readonly [number, number],
                                 options: CircularSpectrumOptions = {}): CircularSpectrum {
  return new CircularConv(kernel).spectrum(grid, options);
}
