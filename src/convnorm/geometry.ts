/**
 * Shapes of a ConvNorm layer: argument normalization and the sizes the
 * reference algorithm implies. Every check throws before any tensor is made,
 * so bad input never leaves half-built state behind.
 */

/** Per-side zero padding: one integer for both axes, [h, w], or tfjs's names. */
export type PaddingArg = number | [number, number] | 'same' | 'valid';

/** Thrown for arguments and inputs the layer cannot take; the message names the problem. */
export class ConvNormArgumentError extends Error {
  override name = 'ConvNormArgumentError';
}

export function fail(message: string): never {
  throw new ConvNormArgumentError(message);
}

function positiveInt(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    fail(`${what} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A number or an [h, w] pair of positive integers. */
export function pair(value: number | readonly number[] | undefined, what: string,
                     fallback?: number): [number, number] {
  const v = value ?? fallback;
  if (Array.isArray(v)) {
    if (v.length !== 2) fail(`${what} must be a number or [height, width], got ${JSON.stringify(v)}`);
    return [positiveInt(v[0], `${what}[0]`), positiveInt(v[1], `${what}[1]`)];
  }
  const n = positiveInt(v, what);
  return [n, n];
}

/**
 * Per-side padding [ph, pw], the same on both sides of an axis as PyTorch's
 * integer padding: an integer, [h, w], 'valid' (0) or 'same' ((k-1)/2 for odd
 * kernels, PyTorch's padding='same'). At strides > 1 this is PyTorch's
 * sampling grid, not tfjs's 'same', which pads the end of an axis more than
 * its start.
 */
export function symmetricPadding(padding: PaddingArg | undefined, kernelSize: [number, number]): [number, number] {
  const p = padding ?? 0;
  let pads: [number, number];
  if (p === 'valid') {
    pads = [0, 0];
  } else if (p === 'same') {
    for (const k of kernelSize) {
      if (k % 2 === 0) {
        fail(`padding 'same' needs odd kernel sizes, got kernelSize [${kernelSize}]; ` +
             'give the padding as integers instead');
      }
    }
    pads = [(kernelSize[0] - 1) / 2, (kernelSize[1] - 1) / 2];
  } else if (Array.isArray(p) && p.length === 2) {
    pads = [p[0], p[1]];
  } else if (typeof p === 'number') {
    pads = [p, p];
  } else {
    fail(`padding must be an integer, [h, w], 'same' or 'valid', got ${JSON.stringify(p)}`);
  }
  if (!pads.every(v => Number.isInteger(v) && v >= 0)) {
    fail(`padding must be non-negative integers, got ${JSON.stringify(p)}`);
  }
  return pads;
}

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
