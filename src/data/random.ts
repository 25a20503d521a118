/**
 * The seeded random stream every random choice in the pipeline draws from
 * (shuffles, augmentation, label noise, splits), so the same seed gives the
 * same run. mulberry32: tiny state, so a stream can be saved in a checkpoint.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`seed must be a finite number, got ${seed}`);
    this.state = Math.trunc(seed) >>> 0;
  }

  /** A stream for one purpose (e.g. one epoch's augmentation), independent of this one's position. */
  static derive(seed: number, ...path: number[]): Rng {
    let h = Math.trunc(seed) >>> 0;
    for (const p of path) h = Math.imul(h ^ (Math.trunc(p) >>> 0), 0x9e3779b1) + 0x7f4a7c15 >>> 0;
    return new Rng(h);
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /**
   * A standard normal draw (Box-Muller on two uniforms; the second value of
   * the pair is discarded, so each call costs two draws and the stream's
   * position stays a single number).
   */
  normal(): number {
    // 1 - u lies in (0, 1]: its logarithm is finite.
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const order = Int32Array.from({length: n}, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = order[i]; order[i] = order[j]; order[j] = t;
    }
    return order;
  }

  /** The stream's position, to save in a checkpoint. */
  getState(): number {
    return this.state;
  }

  setState(state: number): void {
    this.state = state >>> 0;
  }
}
