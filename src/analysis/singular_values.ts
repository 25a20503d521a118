/**
 * Singular values of multi-channel convolutions with circular boundary
 * (Sedghi, Gupta & Long, ICLR 2019): on an n_h x n_w grid, the layer's
 * singular values are the union over frequencies f of the singular values of
 * the C_out x C_in complex matrix P(f) = FFT2(kernel zero-padded to the grid)(f).
 * Plain float64 JavaScript: this is analysis, run on weights read back from
 * whatever backend trained them.
 */

/** A conv kernel in tfjs layout [kh, kw, C_in, C_out], read back from a tensor. */
export interface KernelValues {
  data: ArrayLike<number>;
  shape: readonly [number, number, number, number];
}

/** Per-output-channel scaling of P(f): V of ConvNorm, [C_out][nh * fw] in the layout convNormSpectrum returns. */
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

/** Gram matrix P^H P (cols x cols, Hermitian) embedded as the real symmetric [[Re, -Im], [Im, Re]]. */
function realGram(p: ComplexMatrix): {a: Float64Array; n: number} {
  const m = p.cols;
  const n = 2 * m;
  const a = new Float64Array(n * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      let gr = 0;
      let gi = 0;
      for (let r = 0; r < p.rows; r++) {
        // conj(P[r, i]) * P[r, j]
        const ar = p.re[r * m + i];
        const ai = p.im[r * m + i];
        const br = p.re[r * m + j];
        const bi = p.im[r * m + j];
        gr += ar * br + ai * bi;
        gi += ar * bi - ai * br;
      }
      a[i * n + j] = gr;
      a[(i + m) * n + j + m] = gr;
      a[i * n + j + m] = -gi;
      a[(i + m) * n + j] = gi;
    }
  }
  return {a, n};
}

/** Eigenvalues of a real symmetric n x n matrix (cyclic Jacobi, float64), ascending. `a` is overwritten. */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += a[i * n + i] ** 2;
      for (let j = i + 1; j < n; j++) off += a[i * n + j] ** 2;
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  return Float64Array.from({length: n}, (_, i) => a[i * n + i]).sort();
}

/**
 * All singular values of the circular convolution on the grid, ascending:
 * C_in per frequency (nh * nw * C_in in all). Exact (Jacobi); meant for small
 * layers and tests. For the largest alone use `convSpectralNorm`.
 */
export function convSingularValues(kernel: KernelValues, grid: readonly [number, number],
                                   rowScale?: RowScale): Float64Array {
  const out: number[] = [];
  for (let u = 0; u < grid[0]; u++) {
    for (let v = 0; v < grid[1]; v++) {
      const {a, n} = realGram(frequencyMatrix(kernel, grid, u, v, rowScale));
      // The real embedding repeats every eigenvalue of the Hermitian Gram matrix twice.
      const eig = symmetricEigenvalues(a, n);
      for (let i = 0; i < n; i += 2) out.push(Math.sqrt(Math.max(0, (eig[i] + eig[i + 1]) / 2)));
    }
  }
  return Float64Array.from(out).sort();
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
 * grid. Frequencies f and -f have conjugate matrices and equal singular
 * values, so only half the grid is visited.
 */
export function convSpectralNorm(kernel: KernelValues, grid: readonly [number, number],
                                 rowScale?: RowScale, iterations = 50): number {
  let best = 0;
  for (let u = 0; u < grid[0]; u++) {
    for (let v = 0; v <= Math.floor(grid[1] / 2); v++) {
      best = Math.max(best, largestSingularValue(frequencyMatrix(kernel, grid, u, v, rowScale), iterations));
    }
  }
  return best;
}

/**
 * Per output channel k and frequency f, the gain g_k(f) = sum_j |scale_k(f) FFT(a_kj)(f)|^2.
 * Channel k alone is a 1 x C_in matrix per frequency, so sqrt(max_f g_k(f)) is
 * its spectral norm, and g_k = 1 everywhere is ConvNorm's channel-wise isometry.
 */
export function channelGains(kernel: KernelValues, grid: readonly [number, number],
                             rowScale?: RowScale): {isometryError: number; maxChannelNorm: number} {
  let isometryError = 0;
  let maxGain = 0;
  for (let u = 0; u < grid[0]; u++) {
    for (let v = 0; v <= Math.floor(grid[1] / 2); v++) {
      const p = frequencyMatrix(kernel, grid, u, v, rowScale);
      for (let k = 0; k < p.rows; k++) {
        let gain = 0;
        for (let j = 0; j < p.cols; j++) gain += p.re[k * p.cols + j] ** 2 + p.im[k * p.cols + j] ** 2;
        isometryError = Math.max(isometryError, Math.abs(gain - 1));
        maxGain = Math.max(maxGain, gain);
      }
    }
  }
  return {isometryError, maxChannelNorm: Math.sqrt(maxGain)};
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
