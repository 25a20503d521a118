/**
 * Eigenvalues of a complex Hermitian matrix, float64, without eigenvectors:
 * Householder reduction to tridiagonal form (Golub & Van Loan, Matrix
 * Computations, 4th ed., sec. 8.3.1, with Hermitian reflectors
 * I - 2 u u^H / u^H u), the complex off-diagonal turned real by a diagonal
 * unitary similarity (only its moduli matter), then the implicit QL
 * iteration with Wilkinson shifts on the real symmetric tridiagonal matrix
 * (EISPACK's tql1, as in JAMA's tql2 without the vectors).
 *
 * This is what the per-frequency singular values of a convolution need: the
 * Gram matrix of a C_out x C_in complex transfer matrix is Hermitian, and the
 * reduction costs (2/3) n^3 complex multiply-adds, half of what the real
 * embedding [[Re, -Im], [Im, Re]] of size 2n costs in real ones (and the
 * embedding's eigenvalues come in pairs). Backward stable: each eigenvalue is
 * exact for a matrix within a few n * 2^-52 * ||A|| of the input.
 */

/**
 * Eigenvalues, ascending, of the n x n Hermitian matrix re + i im (row-major).
 * Only the lower triangle (i >= j) is read; both arrays are overwritten.
 * `im` undefined means a real symmetric matrix.
 */
export function hermitianEigenvalues(re: Float64Array, im: Float64Array | undefined, n: number): Float64Array {
  if (re.length < n * n || (im !== undefined && im.length < n * n)) {
    throw new Error(`hermitianEigenvalues: arrays of ${re.length} entries cannot hold a ${n} x ${n} matrix`);
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      if (!Number.isFinite(re[i * n + j]) || (im !== undefined && !Number.isFinite(im[i * n + j]))) {
        throw new Error(`hermitianEigenvalues: entry (${i}, ${j}) is not finite`);
      }
    }
  }
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (im === undefined) tridiagonalizeReal(re, n, d, e);
  else tridiagonalizeHermitian(re, im, n, d, e);
  tridiagonalEigenvalues(d, e);
  return d.sort();
}

/**
 * Householder reduction of the lower triangle of a Hermitian matrix: d gets the
 * diagonal, e[k] the modulus of the (k+1, k) entry of the tridiagonal result.
 */
function tridiagonalizeHermitian(ar: Float64Array, ai: Float64Array, n: number, d: Float64Array,
                                 e: Float64Array): void {
  const ur = new Float64Array(n);
  const ui = new Float64Array(n);
  const pr = new Float64Array(n);
  const pi = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const s = k + 1;
    // x = A[s:n, k]; the reflector maps it to a multiple of e_1.
    let rest = 0;
    for (let i = s + 1; i < n; i++) rest += ar[i * n + k] ** 2 + ai[i * n + k] ** 2;
    const xr = ar[s * n + k];
    const xi = ai[s * n + k];
    const xAbs = Math.sqrt(xr * xr + xi * xi);
    if (rest === 0) {
      e[k] = xAbs;
      continue;
    }
    const norm = Math.sqrt(xAbs * xAbs + rest);
    e[k] = norm;
    // u = x + phase(x_0) ||x|| e_1 (no cancellation), u^H u = 2 ||x|| (||x|| + |x_0|).
    const [cr, ci] = xAbs === 0 ? [1, 0] : [xr / xAbs, xi / xAbs];
    for (let i = s; i < n; i++) {
      ur[i] = ar[i * n + k];
      ui[i] = ai[i * n + k];
    }
    ur[s] += cr * norm;
    ui[s] += ci * norm;
    const h = 1 / (norm * (norm + xAbs));
    // p = h A u over the trailing block, reading its lower triangle once:
    // entry (i, j), j < i, contributes A_ij u_j to p_i and conj(A_ij) u_i to p_j.
    // Rows go two at a time, so that each u_j and p_j loaded serves both.
    pr.fill(0, s);
    pi.fill(0, s);
    let i = s;
    for (; i + 1 < n; i += 2) {
      const row0 = i * n;
      const row1 = row0 + n;
      const u0r = ur[i], u0i = ui[i], u1r = ur[i + 1], u1i = ui[i + 1];
      let s0r = 0, s0i = 0, s1r = 0, s1i = 0;
      for (let j = s; j < i; j++) {
        const a0 = ar[row0 + j], b0 = ai[row0 + j];
        const a1 = ar[row1 + j], b1 = ai[row1 + j];
        const vr = ur[j], vi = ui[j];
        s0r += a0 * vr - b0 * vi;
        s0i += a0 * vi + b0 * vr;
        s1r += a1 * vr - b1 * vi;
        s1i += a1 * vi + b1 * vr;
        pr[j] += a0 * u0r + b0 * u0i + a1 * u1r + b1 * u1i;
        pi[j] += a0 * u0i - b0 * u0r + a1 * u1i - b1 * u1r;
      }
      // Entry (i + 1, i), then the real diagonal.
      const a = ar[row1 + i], b = ai[row1 + i];
      s1r += a * u0r - b * u0i;
      s1i += a * u0i + b * u0r;
      s0r += a * u1r + b * u1i;
      s0i += a * u1i - b * u1r;
      pr[i] += s0r + ar[row0 + i] * u0r;
      pi[i] += s0i + ar[row0 + i] * u0i;
      pr[i + 1] += s1r + ar[row1 + i + 1] * u1r;
      pi[i + 1] += s1i + ar[row1 + i + 1] * u1i;
    }
    if (i < n) {
      const row = i * n;
      const uir = ur[i], uii = ui[i];
      let sr = 0, si = 0;
      for (let j = s; j < i; j++) {
        const a = ar[row + j], b = ai[row + j];
        const vr = ur[j], vi = ui[j];
        sr += a * vr - b * vi;
        si += a * vi + b * vr;
        pr[j] += a * uir + b * uii;
        pi[j] += a * uii - b * uir;
      }
      pr[i] += sr + ar[row + i] * uir;
      pi[i] += si + ar[row + i] * uii;
    }
    let uHp = 0;
    for (let r = s; r < n; r++) {
      pr[r] *= h;
      pi[r] *= h;
      uHp += ur[r] * pr[r] + ui[r] * pi[r];
    }
    // q = p - (h/2)(u^H p) u; A <- A - u q^H - q u^H (= H A H with H = I - h u u^H).
    const kk = 0.5 * h * uHp;
    for (let r = s; r < n; r++) {
      pr[r] -= kk * ur[r];
      pi[r] -= kk * ui[r];
    }
    i = s;
    for (; i + 1 < n; i += 2) {
      const row0 = i * n;
      const row1 = row0 + n;
      const u0r = ur[i], u0i = ui[i], q0r = pr[i], q0i = pi[i];
      const u1r = ur[i + 1], u1i = ui[i + 1], q1r = pr[i + 1], q1i = pi[i + 1];
      for (let j = s; j <= i; j++) {
        const qjr = pr[j], qji = pi[j], ujr = ur[j], uji = ui[j];
        ar[row0 + j] -= u0r * qjr + u0i * qji + q0r * ujr + q0i * uji;
        ai[row0 + j] -= u0i * qjr - u0r * qji + q0i * ujr - q0r * uji;
        ar[row1 + j] -= u1r * qjr + u1i * qji + q1r * ujr + q1i * uji;
        ai[row1 + j] -= u1i * qjr - u1r * qji + q1i * ujr - q1r * uji;
      }
      ar[row1 + i + 1] -= 2 * (u1r * q1r + u1i * q1i);
    }
    if (i < n) {
      const row = i * n;
      const uir = ur[i], uii = ui[i], qir = pr[i], qii = pi[i];
      for (let j = s; j <= i; j++) {
        const qjr = pr[j], qji = pi[j], ujr = ur[j], uji = ui[j];
        ar[row + j] -= uir * qjr + uii * qji + qir * ujr + qii * uji;
        ai[row + j] -= uii * qjr - uir * qji + qii * ujr - qir * uji;
      }
    }
  }
  if (n >= 2) e[n - 2] = Math.hypot(ar[(n - 1) * n + n - 2], ai[(n - 1) * n + n - 2]);
  for (let i = 0; i < n; i++) d[i] = ar[i * n + i];
  e[n - 1] = 0;
}

/** The same reduction for a real symmetric matrix (a quarter of the arithmetic). */
function tridiagonalizeReal(a: Float64Array, n: number, d: Float64Array, e: Float64Array): void {
  const u = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const s = k + 1;
    let rest = 0;
    for (let i = s + 1; i < n; i++) rest += a[i * n + k] ** 2;
    const x0 = a[s * n + k];
    if (rest === 0) {
      e[k] = Math.abs(x0);
      continue;
    }
    const norm = Math.sqrt(x0 * x0 + rest);
    e[k] = norm;
    for (let i = s; i < n; i++) u[i] = a[i * n + k];
    u[s] += x0 < 0 ? -norm : norm;
    const h = 1 / (norm * (norm + Math.abs(x0)));
    p.fill(0, s);
    for (let i = s; i < n; i++) {
      const row = i * n;
      const ui = u[i];
      let sum = 0;
      for (let j = s; j < i; j++) {
        const v = a[row + j];
        sum += v * u[j];
        p[j] += v * ui;
      }
      p[i] += sum + a[row + i] * ui;
    }
    let uTp = 0;
    for (let i = s; i < n; i++) {
      p[i] *= h;
      uTp += u[i] * p[i];
    }
    const kk = 0.5 * h * uTp;
    for (let i = s; i < n; i++) p[i] -= kk * u[i];
    for (let i = s; i < n; i++) {
      const row = i * n;
      const ui = u[i];
      const qi = p[i];
      for (let j = s; j <= i; j++) a[row + j] -= ui * p[j] + qi * u[j];
    }
  }
  if (n >= 2) e[n - 2] = Math.abs(a[(n - 1) * n + n - 2]);
  for (let i = 0; i < n; i++) d[i] = a[i * n + i];
  e[n - 1] = 0;
}

/**
 * Eigenvalues of the symmetric tridiagonal matrix with diagonal d and
 * off-diagonal e (e[i] couples i and i+1, e[n-1] unused), into d (unsorted).
 * Implicit QL with Wilkinson shifts; e is overwritten.
 */
function tridiagonalEigenvalues(d: Float64Array, e: Float64Array): void {
  const n = d.length;
  const eps = 2 ** -52;
  let f = 0;
  let tst1 = 0;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      for (let iter = 0; ; iter++) {
        if (iter > 60) throw new Error('hermitianEigenvalues: the QL iteration did not converge');
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.sqrt(p * p + 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.sqrt(p * p + e[i] * e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
        }
        p = -s * s2 * c3 * el1 * e[l] / dl1;
        e[l] = s * p;
        d[l] = c * p;
        if (!(Math.abs(e[l]) > eps * tst1)) break;
      }
    }
    d[l] += f;
    e[l] = 0;
  }
}
