/**
 * What ConvNorm does to each output channel, frequency by frequency: channel
 * k of a convolution maps the C_in input channels to one output, so at each
 * frequency f of the grid it is the 1 x C_in row P_k(f) = FFT2(a_kj)(f), and
 * its gain |P_k(f)| = sqrt(sum_j |FFT2(a_kj)(f)|^2) is the |FFT| of the
 * channel's operator. The channel's spectral norm is the largest gain; the
 * channel is an isometry when every gain is 1, which is what ConvNorm's
 * preconditioning V_k(f) = (|P_k(f)|^2 + eps)^(-1/2) makes it.
 */
import {frequencyMatrix, KernelValues, RowScale} from './singular_values.js';

export interface ChannelResponse {
  /** The Fourier grid [nh, nw]. */
  grid: [number, number];
  /** Per output channel, |P_k(f)| (scaled by the row scale) on the whole grid, row-major nh x nw. */
  gains: Float64Array[];
  /** Per output channel, max_f |P_k(f)|: the channel's spectral norm. */
  norms: Float64Array;
  /** Per output channel, max_f | |P_k(f)|^2 - 1 |: how far the channel is from an isometry. */
  isometryErrors: Float64Array;
}

/**
 * Each output channel's gain at every frequency of the grid, in float64, with
 * row k optionally scaled by `rowScale` (ConvNorm's V: spectrumRowScale).
 * A real kernel's P_k(-f) is the conjugate of P_k(f), so half the grid is
 * computed and mirrored.
 */
export function channelResponse(kernel: KernelValues, grid: readonly [number, number],
                                rowScale?: RowScale): ChannelResponse {
  const [nh, nw] = grid;
  const cout = kernel.shape[3];
  const gains = Array.from({length: cout}, () => new Float64Array(nh * nw));
  for (let u = 0; u < nh; u++) {
    for (let v = 0; v <= Math.floor(nw / 2); v++) {
      const p = frequencyMatrix(kernel, grid, u, v, rowScale);
      for (let k = 0; k < cout; k++) {
        let power = 0;
        for (let j = 0; j < p.cols; j++) power += p.re[k * p.cols + j] ** 2 + p.im[k * p.cols + j] ** 2;
        // The scale is read at f; at -f it may differ by rounding (a stored V), so -f is not overwritten when visited.
        gains[k][u * nw + v] = Math.sqrt(power);
        const mirror = ((nh - u) % nh) * nw + (nw - v) % nw;
        if ((nw - v) % nw > Math.floor(nw / 2)) gains[k][mirror] = Math.sqrt(power);
      }
    }
  }
  const norms = Float64Array.from(gains, g => g.reduce((a, b) => Math.max(a, b), 0));
  const isometryErrors = Float64Array.from(gains, g => g.reduce((a, b) => Math.max(a, Math.abs(b * b - 1)), 0));
  return {grid: [nh, nw], gains, norms, isometryErrors};
}

/**
 * Over all output channels, the largest distance from ConvNorm's channel-wise
 * isometry, max_k,f | |P_k(f)|^2 - 1 |, and the largest channel spectral norm
 * (channelResponse has them per channel and frequency).
 */
export function channelGains(kernel: KernelValues, grid: readonly [number, number],
                             rowScale?: RowScale): {isometryError: number; maxChannelNorm: number} {
  const {norms, isometryErrors} = channelResponse(kernel, grid, rowScale);
  return {isometryError: Math.max(0, ...isometryErrors), maxChannelNorm: Math.max(0, ...norms)};
}
