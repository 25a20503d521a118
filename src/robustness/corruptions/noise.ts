/**
 * The four noise corruptions of Hendrycks & Dietterich (2019), with the
 * CIFAR-10 parameters of make_cifar_c.py (github.com/hendrycks/robustness,
 * ImageNet-C/create_c/make_cifar_c.py). Pixels are taken to [0, 1] as
 * `p / 255`, noised, clipped and truncated back to bytes; each value (every
 * channel of every pixel) gets its own draw, so 1-channel images work as they
 * are. Draws come from the image's `Rng` in pixel-major order (for each pixel,
 * each channel), not from numpy.
 */
import type {Rng} from '../../data/random.js';
import {ImageShape, unitToByte} from './image.js';
import {NormalSampler, poisson} from './samplers.js';

/** gaussian_noise: standard deviation of the added noise, in units of p / 255 (make_cifar_c.py). */
export const GAUSSIAN_NOISE_SCALES: readonly number[] = Object.freeze([0.04, 0.06, 0.08, 0.09, 0.10]);

/** shot_noise: photons per unit intensity; the value becomes Poisson(x c) / c (make_cifar_c.py). */
export const SHOT_NOISE_RATES: readonly number[] = Object.freeze([500, 250, 100, 75, 50]);

/** impulse_noise: fraction of values replaced by salt (1) or pepper (0) (make_cifar_c.py's `amount`). */
export const IMPULSE_NOISE_AMOUNTS: readonly number[] = Object.freeze([0.01, 0.02, 0.03, 0.05, 0.07]);

/** speckle_noise: standard deviation of the multiplicative noise, x + x n (make_cifar_c.py). */
export const SPECKLE_NOISE_SCALES: readonly number[] = Object.freeze([0.06, 0.1, 0.12, 0.16, 0.2]);

/** Probability that an impulse is salt rather than pepper (skimage random_noise's default salt_vs_pepper). */
const SALT_VS_PEPPER = 0.5;

/** clip(x + N(0, c^2), 0, 1). */
export function gaussianNoise(src: Uint8Array, dst: Uint8Array, _shape: ImageShape, severity: number, rng: Rng): void {
  const c = GAUSSIAN_NOISE_SCALES[severity - 1];
  const normal = new NormalSampler(rng);
  for (let k = 0; k < src.length; k++) dst[k] = unitToByte(src[k] / 255 + normal.next() * c);
}

/** clip(Poisson(x c) / c, 0, 1), Poisson drawn exactly at every mean (see samplers.poisson). */
export function shotNoise(src: Uint8Array, dst: Uint8Array, _shape: ImageShape, severity: number, rng: Rng): void {
  const c = SHOT_NOISE_RATES[severity - 1];
  for (let k = 0; k < src.length; k++) dst[k] = unitToByte(poisson(rng, (src[k] / 255) * c) / c);
}

/**
 * skimage 0.19's random_noise(mode='s&p', amount): every value is flipped
 * independently with probability `amount` (a uniform u <= amount), and a
 * flipped value becomes 1 when a second uniform is <= 0.5, else 0. As there,
 * all flip draws of the image come first, then all salt draws.
 */
export function impulseNoise(src: Uint8Array, dst: Uint8Array, _shape: ImageShape, severity: number, rng: Rng): void {
  const amount = IMPULSE_NOISE_AMOUNTS[severity - 1];
  const n = src.length;
  const flipped = new Uint8Array(n);
  for (let k = 0; k < n; k++) flipped[k] = rng.next() <= amount ? 1 : 0;
  for (let k = 0; k < n; k++) {
    const salt = rng.next() <= SALT_VS_PEPPER;
    dst[k] = unitToByte(flipped[k] ? (salt ? 1 : 0) : src[k] / 255);
  }
}

/** clip(x + x N(0, c^2), 0, 1): noise proportional to the value. */
export function speckleNoise(src: Uint8Array, dst: Uint8Array, _shape: ImageShape, severity: number, rng: Rng): void {
  const c = SPECKLE_NOISE_SCALES[severity - 1];
  const normal = new NormalSampler(rng);
  for (let k = 0; k < src.length; k++) {
    const x = src[k] / 255;
    dst[k] = unitToByte(x + x * (normal.next() * c));
  }
}
