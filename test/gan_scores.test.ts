/**
 * The Fréchet distance and the Inception Score on cases with known answers,
 * and the distance's trace term against an independent route (the
 * eigenvalues of the non-symmetric S1 S2, by ml-matrix's general
 * decomposition). Tolerances: float64 on matrices of at most 6 x 6, 1e-9
 * relative to the scale of the terms.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {EigenvalueDecomposition, Matrix} from 'ml-matrix';

import {FeatureStatistics, featureStatistics, frechetDistance, inceptionScore} from '../src/gan/scores.js';
import {rng} from './helpers/random.js';

function statistics(mean: number[], covariance: number[][]): FeatureStatistics {
  return {mean: Float64Array.from(mean), covariance: Float64Array.from(covariance.flat()), d: mean.length, n: 2};
}

const diagonal = (values: number[]) => values.map((v, i) => values.map((_, j) => (i === j ? v : 0)));

/** A random PSD matrix A A^T + 0.1 I. */
function randomCovariance(d: number, next: () => number): number[][] {
  const a = Array.from({length: d}, () => Array.from({length: d}, () => next() - 0.5));
  return a.map((row, i) => a.map((other, j) => row.reduce((s, x, k) => s + x * other[k], 0) + (i === j ? 0.1 : 0)));
}

function close(actual: number, expected: number, scale: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, scale), `${what}: ${actual} vs ${expected}`);
}

describe('Fréchet distance', () => {
  it('feature statistics are the mean and the n - 1 covariance', () => {
    const s = featureStatistics({values: [1, 2, 3, 4, 5, 0], n: 3, d: 2});
    assert.deepEqual(Array.from(s.mean), [3, 2]);
    assert.deepEqual(Array.from(s.covariance), [4, -2, -2, 4]);
  });

  it('known cases: identical sets, unit means apart, diagonal covariances, one dimension', () => {
    const next = rng(3);
    const values = Float64Array.from({length: 40 * 5}, () => next() * 3 - 1);
    const s = featureStatistics({values, n: 40, d: 5});
    close(frechetDistance(s, s), 0, 10, 'identical sets');
    for (const d of [1, 3, 6]) {
      const identity = diagonal(Array(d).fill(1));
      close(frechetDistance(statistics(Array(d).fill(0), identity), statistics(Array(d).fill(1), identity)), d, d,
            `means 0 and 1, identity covariance, d = ${d}`);
    }
    const [a, b] = [[0.5, 2, 3.5, 0.01], [1.5, 0.25, 3.5, 4]];
    const expected = a.reduce((sum, x, i) => sum + (Math.sqrt(x) - Math.sqrt(b[i])) ** 2, 0) + 0.09;
    close(frechetDistance(statistics([0, 0, 0, 0.3], diagonal(a)), statistics([0, 0, 0, 0], diagonal(b))), expected, 10,
          'diagonal covariances');
    close(frechetDistance(statistics([1.5], [[4]]), statistics([-0.5], [[0.25]])), 2 ** 2 + (2 - 0.5) ** 2, 10, '1-d');
  });

  it('the trace term equals sum sqrt(eig(S1 S2)) for covariances that do not commute', () => {
    const next = rng(8);
    for (const d of [2, 4, 6]) {
      const [c1, c2] = [randomCovariance(d, next), randomCovariance(d, next)];
      const m1 = Array.from({length: d}, () => next());
      const m2 = Array.from({length: d}, () => next());
      const eig = new EigenvalueDecomposition(new Matrix(c1).mmul(new Matrix(c2)));
      assert.ok(eig.imaginaryEigenvalues.every(x => Math.abs(x) < 1e-9), 'S1 S2 has real eigenvalues');
      const traceRoot = eig.realEigenvalues.reduce((s, l) => s + Math.sqrt(l), 0);
      const trace = (c: number[][]) => c.reduce((s, row, i) => s + row[i], 0);
      const expected = m1.reduce((s, x, i) => s + (x - m2[i]) ** 2, 0) + trace(c1) + trace(c2) - 2 * traceRoot;
      close(frechetDistance(statistics(m1, c1), statistics(m2, c2)), expected, trace(c1) + trace(c2), `d = ${d}`);
    }
  });

  it('a permutation of the samples changes nothing; bad input is refused', () => {
    const next = rng(5);
    const [n, d] = [30, 4];
    const values = Float64Array.from({length: n * d}, () => next());
    const other = featureStatistics({values: Float64Array.from({length: n * d}, () => next() * 2), n, d});
    const order = Array.from({length: n}, (_, i) => i).sort(() => next() - 0.5);
    const permuted = Float64Array.from({length: n * d}, (_, i) => values[order[Math.floor(i / d)] * d + i % d]);
    close(frechetDistance(featureStatistics({values: permuted, n, d}), other),
          frechetDistance(featureStatistics({values, n, d}), other), 10, 'permuted');
    assert.throws(() => featureStatistics({values: [1, NaN, 2, 3], n: 2, d: 2}), /value NaN at sample 0/);
    assert.throws(() => featureStatistics({values: [1, 2], n: 1, d: 2}), /at least 2 samples/);
    assert.throws(() => frechetDistance(other, statistics([0], [[1]])), /features of 4 and 1 dimensions/);
  });
});

describe('Inception Score', () => {
  /** n rows of K logits: one-hot at `hot(i)` when given, else the same row everywhere. */
  const oneHot = (n: number, k: number, hot: (i: number) => number) =>
    ({values: Float64Array.from({length: n * k}, (_, i) => (i % k === hot(Math.floor(i / k)) ? 60 : 0)), n, d: k});

  it('K evenly spread one-hot predictions score K, identical rows 1', () => {
    for (const k of [2, 5, 10]) {
      close(inceptionScore(oneHot(10 * k, k, i => i % k), 10).mean, k, k, `${k} classes`);
      close(inceptionScore(oneHot(10 * k, k, i => i % k), 10).std, 0, k, `${k} classes, std`);
    }
    const next = rng(2);
    const row = Array.from({length: 7}, () => next() * 4);
    close(inceptionScore({values: Float64Array.from({length: 70}, (_, i) => row[i % 7]), n: 10, d: 7}, 2).mean, 1, 1,
          'identical rows');
  });

  it('splits are consecutive samples; one split is invariant to a permutation', () => {
    // First half all class 0, second half all class 1: two splits see one class each (score 1), one split sees 2.
    const halves = oneHot(20, 2, i => (i < 10 ? 0 : 1));
    assert.deepEqual(inceptionScore(halves, 2).splits.map(x => Math.round(x * 1e9) / 1e9), [1, 1]);
    close(inceptionScore(halves, 1).mean, 2, 2, 'one split');
    const next = rng(9);
    const [n, k] = [25, 6];
    const values = Float64Array.from({length: n * k}, () => next() * 5);
    const order = Array.from({length: n}, (_, i) => i).sort(() => next() - 0.5);
    const permuted = Float64Array.from({length: n * k}, (_, i) => values[order[Math.floor(i / k)] * k + i % k]);
    close(inceptionScore({values: permuted, n, d: k}, 1).mean, inceptionScore({values, n, d: k}, 1).mean, 10, 'permuted');
    assert.throws(() => inceptionScore({values, n, d: k}, 26), /splits must be an integer from 1 to the 25 samples/);
  });
});
