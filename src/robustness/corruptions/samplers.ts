/**
 * Normal and Poisson variates drawn from the package's seeded `Rng`, for the
 * noise corruptions and fog. numpy draws these in make_cifar_c.py; here every
 * draw comes from one `Rng` stream, so the same seed gives the same corrupted
 * images (but not numpy's images for numpy's seed).
 */
import type {Rng} from '../../data/random.js';

/**
 * Standard normal variates by the Box-Muller transform, both of each pair
 * used. `Rng.next()` has 32 bits of resolution, so |z| stays below
 * sqrt(2 ln 2^32) = 6.66: a tail probability of 3e-11 is cut off, far below
 * what a pixel's 8 bits can show.
 */
export class NormalSampler {
  private spare = 0;
  private hasSpare = false;

  constructor(private readonly rng: Rng) {}

  /** One draw from N(0, 1). */
  next(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    // 1 - next() lies in (0, 1], so the logarithm is finite.
    const r = Math.sqrt(-2 * Math.log(1 - this.rng.next()));
    const theta = 2 * Math.PI * this.rng.next();
    this.spare = r * Math.sin(theta);
    this.hasSpare = true;
    return r * Math.cos(theta);
  }
}

/** log(k!) for k < LOG_FACTORIAL_TABLE.length, summed once. */
const LOG_FACTORIAL_TABLE: Float64Array = (() => {
  const t = new Float64Array(256);
  for (let k = 2; k < t.length; k++) t[k] = t[k - 1] + Math.log(k);
  return t;
})();

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * log(k!) for an integer k >= 0: a table below 256, above it Stirling's series
 * for log Gamma(k + 1) to the x^-7 term, whose truncation error there is below
 * 1e-19 relative.
 */
export function logFactorial(k: number): number {
  if (k < LOG_FACTORIAL_TABLE.length) return LOG_FACTORIAL_TABLE[k];
  const x = k + 1;
  const r = 1 / x;
  const r2 = r * r;
  const series = r * (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 / 1680)));
  return (x - 0.5) * Math.log(x) - x + HALF_LOG_2PI + series;
}

/** Below this mean Poisson draws use inversion, at or above it PTRS. */
const PTRS_THRESHOLD = 10;

/**
 * One draw from Poisson(lambda), lambda >= 0, exact (no normal approximation).
 * lambda < 10: inversion by sequential search from P(0) = exp(-lambda), one
 * uniform per draw. lambda >= 10: Hormann's transformed rejection with squeeze,
 * PTRS (W. Hormann, "The transformed rejection method for generating Poisson
 * random variables", Insurance: Mathematics and Economics 12, 1993), which
 * accepts about 90 % of its candidate pairs at any lambda; it is also what
 * numpy uses above 10.
 */
export function poisson(rng: Rng, lambda: number): number {
  if (!(lambda >= 0) || !Number.isFinite(lambda)) throw new Error(`poisson: lambda must be finite and >= 0, got ${lambda}`);
  if (lambda === 0) return 0;
  if (lambda < PTRS_THRESHOLD) {
    const u = rng.next();
    let p = Math.exp(-lambda);
    let cdf = p;
    let k = 0;
    // The cdf reaches 1 - 1e-16 long before k = 200 for lambda < 10; the bound guards rounding.
    while (u > cdf && k < 200) {
      k++;
      p *= lambda / k;
      cdf += p;
    }
    return k;
  }
  const sqrtLam = Math.sqrt(lambda);
  const logLam = Math.log(lambda);
  const b = 0.931 + 2.53 * sqrtLam;
  const a = -0.059 + 0.02483 * b;
  const invAlpha = 1.1239 + 1.1328 / (b - 3.4);
  const vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const u = rng.next() - 0.5;
    const v = rng.next();
    const us = 0.5 - Math.abs(u);
    const k = Math.floor((2 * a / us + b) * u + lambda + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (Math.log(v) + Math.log(invAlpha) - Math.log(a / (us * us) + b) <= -lambda + k * logLam - logFactorial(k)) return k;
  }
}
