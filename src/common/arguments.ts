/**
 * Argument checks every layer and op of the package shares: the error they
 * throw, and sizes, strides and symmetric padding from the forms tfjs and
 * PyTorch users write. Every check throws before any tensor is made, so bad
 * input never leaves half-built state behind.
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
