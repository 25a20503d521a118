/**
 * Shapes of a ConvNorm layer: ConvNorm's padding limit and the sizes the
 * reference algorithm implies. Every check throws before any tensor is made,
 * so bad input never leaves half-built state behind.
 */
import {fail, symmetricPadding} from '../common/arguments.js';
import type {PaddingArg} from '../common/arguments.js';

/**
 * ConvNorm's per-side padding: symmetricPadding, at most k - 1. The crop the
 * reference does after its full convolution removes k-1-p samples per side,
 * so p > k-1 cannot be expressed and is refused.
 */
export function resolvePadding(padding: PaddingArg | undefined,
                               kernelSize: [number, number]): [number, number] {
  const pads = symmetricPadding(padding, kernelSize);
  pads.forEach((v, axis) => {
    if (v > kernelSize[axis] - 1) {
      fail(`padding ${v} is greater than kernel size - 1 (${kernelSize[axis] - 1}) along ` +
           `${axis === 0 ? 'height' : 'width'}: the reference ConvNorm crops k-1-p samples ` +
           'per side from its full convolution and cannot pad more than k-1');
    }
  });
  return pads;
}

/** Everything one ConvNorm application needs to know about shapes. */
export interface ConvNormGeometry {
  kernelSize: [number, number];
  strides: [number, number];
  padding: [number, number];
  /** Size of the full convolution and of the Fourier grid: H + kh - 1, W + kw - 1. */
  fourierSize: [number, number];
  /** Samples cropped from each side of the full convolution: k - 1 - p. */
  crop: [number, number];
  outputSize: [number, number];
}

export function convNormGeometry(inputSize: readonly [number, number], kernelSize: [number, number],
                                 strides: [number, number], padding: [number, number]): ConvNormGeometry {
  const fourierSize: [number, number] = [0, 1].map(a => inputSize[a] + kernelSize[a] - 1) as [number, number];
  const crop: [number, number] = [0, 1].map(a => kernelSize[a] - 1 - padding[a]) as [number, number];
  const outputSize = [0, 1].map(a => {
    const padded = inputSize[a] + 2 * padding[a];
    if (padded < kernelSize[a]) {
      fail(`input ${a === 0 ? 'height' : 'width'} ${inputSize[a]} with padding ${padding[a]} is ` +
           `smaller than the kernel (${kernelSize[a]})`);
    }
    return Math.floor((padded - kernelSize[a]) / strides[a]) + 1;
  }) as [number, number];
  return {kernelSize, strides, padding, fourierSize, crop, outputSize};
}

/** Shape of V for a kernel on a Fourier grid: [C_out] for 1x1, else [C_out, Mh, floor(Mw/2)+1]. */
export function spectrumShape(kernelSize: readonly number[], outChannels: number,
                              fourierSize: readonly [number, number]): number[] {
  return isPointwise(kernelSize)
    ? [outChannels]
    : [outChannels, fourierSize[0], Math.floor(fourierSize[1] / 2) + 1];
}

export function isPointwise(kernelSize: readonly number[]): boolean {
  return kernelSize[0] === 1 && kernelSize[1] === 1;
}
