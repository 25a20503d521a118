/**
 * The two scores GAN papers report, defined as pytorch-fid and
 * torch-fidelity define them, on whatever features and class probabilities
 * the caller's network gives: Inception-v3's 2048-d pool features and logits
 * make them FID and IS; a classifier trained here makes them "FD (features of
 * <run>)" and "IS (<run>)", which are not comparable with published numbers.
 * All arithmetic is float64.
 */
import {EigenvalueDecomposition, Matrix} from 'ml-matrix';

/** Rows of a sample matrix: n samples of d values each, row-major. */
export interface Samples {
  values: ArrayLike<number>;
  n: number;
  d: number;
}

/** Mean and covariance of a set of feature vectors. */
export interface FeatureStatistics {
  mean: Float64Array;
  /** d x d, row-major; the unbiased (n - 1) estimate, as numpy.cov. */
  covariance: Float64Array;
  d: number;
  n: number;
}

function checkSamples({values, n, d}: Samples, what: string, minimum: number): void {
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < minimum || d < 1) {
    throw new Error(`${what}: needs at least ${minimum} samples of at least one value, got ${n} x ${d}`);
  }
  if (values.length !== n * d) throw new Error(`${what}: ${values.length} values for ${n} x ${d}`);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new Error(`${what}: value ${values[i]} at sample ${Math.floor(i / d)}`);
  }
}

/** The mean and covariance pytorch-fid takes of its activations (np.mean, np.cov rowvar=False). */
export function featureStatistics(samples: Samples): FeatureStatistics {
  checkSamples(samples, 'feature statistics', 2);
  const {values, n, d} = samples;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += values[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const covariance = new Float64Array(d * d);
  const centred = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) centred[j] = values[i * d + j] - mean[j];
    for (let a = 0; a < d; a++) {
      const ca = centred[a];
      for (let b = a; b < d; b++) covariance[a * d + b] += ca * centred[b];
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      covariance[a * d + b] /= n - 1;
      covariance[b * d + a] = covariance[a * d + b];
    }
  }
  return {mean, covariance, d, n};
}

/** Eigenvalues and eigenvectors of a symmetric matrix (ml-matrix's symmetric decomposition). */
function symmetricEigen(values: Float64Array, d: number): {lambda: number[]; vectors: Matrix} {
  const m = new Matrix(d, d);
  for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) m.set(a, b, values[a * d + b]);
  const eig = new EigenvalueDecomposition(m, {assumeSymmetric: true});
  return {lambda: eig.realEigenvalues, vectors: eig.eigenvectorMatrix};
}

/**
 * The Fréchet distance between two Gaussians,
 * |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), with the trace term
 * from symmetric eigendecompositions: R = S1^(1/2) (eigenvalues clamped at 0,
 * covariances being PSD up to rounding), then tr((S1 S2)^(1/2)) = the sum of
 * the square roots of the eigenvalues of the PSD matrix R S2 R, which has the
 * eigenvalues of S1 S2. pytorch-fid takes scipy's general sqrtm of S1 S2
 * instead; the two agree wherever sqrtm is accurate, and this route has no
 * imaginary parts to discard.
 */
export function frechetDistance(a: FeatureStatistics, b: FeatureStatistics): number {
  if (a.d !== b.d) throw new Error(`Fréchet distance: features of ${a.d} and ${b.d} dimensions`);
  const d = a.d;
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (a.mean[j] - b.mean[j]) ** 2;
  let traces = 0;
  for (let j = 0; j < d; j++) traces += a.covariance[j * d + j] + b.covariance[j * d + j];
  const {lambda, vectors} = symmetricEigen(a.covariance, d);
  // R = Q diag(sqrt(max(l, 0))) Q^T
  const scaled = vectors.clone();
  for (let k = 0; k < d; k++) {
    const s = Math.sqrt(Math.max(lambda[k], 0));
    for (let r = 0; r < d; r++) scaled.set(r, k, scaled.get(r, k) * s);
  }
  const root = scaled.mmul(vectors.transpose());
  const s2 = new Matrix(d, d);
  for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) s2.set(r, c, b.covariance[r * d + c]);
  const product = root.mmul(s2).mmul(root);
  const symmetric = new Float64Array(d * d);
  for (let r = 0; r < d; r++) {
    for (let c = 0; c < d; c++) symmetric[r * d + c] = 0.5 * (product.get(r, c) + product.get(c, r));
  }
  const traceRoot = symmetricEigen(symmetric, d).lambda.reduce((sum, l) => sum + Math.sqrt(Math.max(l, 0)), 0);
  return meanTerm + traces - 2 * traceRoot;
}

export interface InceptionScore {
  /** Mean over the splits of exp(E_x KL(p(y|x) || p(y))). */
  mean: number;
  /** Their standard deviation (population, as torch-fidelity's np.std). */
  std: number;
  /** Each split's score. */
  splits: number[];
}

/**
 * The Inception Score of class logits (n samples x K classes): softmax in
 * float64, then per split of consecutive samples (split i: samples
 * floor(i n / s) to floor((i + 1) n / s), as torch-fidelity cuts them)
 * exp(mean_x sum_y p(y|x) (log p(y|x) - log p(y))) with p(y) the split's mean
 * prediction. torch-fidelity first shuffles the samples with NumPy's seed
 * 2020; here they are taken in the order given (shuffle before calling for
 * that), which changes only which samples share a split.
 */
export function inceptionScore(logits: Samples, splits = 10): InceptionScore {
  checkSamples(logits, 'inception score', 1);
  const {values, n, d: k} = logits;
  if (!Number.isInteger(splits) || splits < 1 || splits > n) {
    throw new Error(`inception score: splits must be an integer from 1 to the ${n} samples, got ${splits}`);
  }
  const logP = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, values[i * k + c]);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(values[i * k + c] - max);
    const logSum = max + Math.log(sum);
    for (let c = 0; c < k; c++) logP[i * k + c] = values[i * k + c] - logSum;
  }
  const scores: number[] = [];
  for (let s = 0; s < splits; s++) {
    const [from, to] = [Math.floor(s * n / splits), Math.floor((s + 1) * n / splits)];
    const q = new Float64Array(k);
    for (let i = from; i < to; i++) for (let c = 0; c < k; c++) q[c] += Math.exp(logP[i * k + c]);
    for (let c = 0; c < k; c++) q[c] /= to - from;
    let kl = 0;
    for (let i = from; i < to; i++) {
      for (let c = 0; c < k; c++) {
        const p = Math.exp(logP[i * k + c]);
        // p log p -> 0 as p -> 0.
        if (p > 0) kl += p * (logP[i * k + c] - Math.log(q[c]));
      }
    }
    scores.push(Math.exp(kl / (to - from)));
  }
  const mean = scores.reduce((a, b) => a + b, 0) / splits;
  const std = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / splits);
  return {mean, std, splits: scores};
}
