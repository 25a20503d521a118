/**
 * Dense references for the circular-convolution tests: random kernels at
 * PyTorch's initialization scale, and the explicit float64 matrix of a
 * multi-channel circular convolution.
 */
import {Matrix} from 'ml-matrix';

import type {KernelValues} from '../../src/analysis/singular_values.js';
import {uniformValues} from './random.js';

export type Shape4 = [number, number, number, number];

/** A [kh, kw, C_in, C_out] kernel, uniform in +-1/sqrt(fan in), seeded. */
export function randomKernel(shape: Shape4, seed: number): KernelValues {
  const fanIn = shape[0] * shape[1] * shape[2];
  return {data: uniformValues(shape.reduce((a, b) => a * b), seed, 1 / Math.sqrt(fanIn)), shape};
}

/** Index of (channel, p0, p1) on an nh x nw grid. */
export function at(c: number, p0: number, p1: number, nh: number, nw: number): number {
  return (c * nh + p0) * nw + p1;
}

/** y_k[p] = sum_{j,a,b} w[a, b, j, k] x_j[p + (a, b) mod n]: (C_out n) x (C_in n). */
export function circularConvMatrix(kernel: KernelValues, [nh, nw]: [number, number]): Matrix {
  const [kh, kw, cin, cout] = kernel.shape;
  const m = Matrix.zeros(cout * nh * nw, cin * nh * nw);
  for (let k = 0; k < cout; k++) {
    for (let p0 = 0; p0 < nh; p0++) {
      for (let p1 = 0; p1 < nw; p1++) {
        for (let j = 0; j < cin; j++) {
          for (let a = 0; a < kh; a++) {
            for (let b = 0; b < kw; b++) {
              const row = at(k, p0, p1, nh, nw);
              const col = at(j, (p0 + a) % nh, (p1 + b) % nw, nh, nw);
              m.set(row, col, m.get(row, col) + kernel.data[((a * kw + b) * cin + j) * cout + k]);
            }
          }
        }
      }
    }
  }
  return m;
}
