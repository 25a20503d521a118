/**
 * The embedded digits as the demo's build writes them (digits.bin): a 16-byte
 * header (the bytes 'CNDG', then the training count, the test count and the
 * side length as little-endian uint32), the labels of both splits (a byte
 * each, training first), then their 8-bit pixels, image-major.
 */
import type {ImageDataset} from '../../index.js';

export const DIGITS_MAGIC = 'CNDG';

export interface Digits {
  train: ImageDataset;
  test: ImageDataset;
}

export function decodeDigits(buffer: ArrayBuffer): Digits {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  if (bytes.length < 16 || String.fromCharCode(...bytes.subarray(0, 4)) !== DIGITS_MAGIC) {
    throw new Error('digits.bin: not a digits file (its first bytes are not CNDG)');
  }
  const [train, test, side] = [4, 8, 12].map(o => view.getUint32(o, true));
  const image = side * side;
  const expected = 16 + (train + test) * (1 + image);
  if (bytes.length !== expected) throw new Error(`digits.bin: ${bytes.length} bytes, its header says ${expected}`);
  const labels = bytes.subarray(16, 16 + train + test);
  const pixels = bytes.subarray(16 + train + test);
  const split = (from: number, count: number): ImageDataset => ({
    name: 'mnist-embedded', shape: [side, side, 1], numClasses: 10,
    labels: Int32Array.from(labels.subarray(from, from + count)),
    pixels: pixels.slice(from * image, (from + count) * image),
  });
  return {train: split(0, train), test: split(train, test)};
}

export async function fetchDigits(url = 'digits.bin'): Promise<Digits> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return decodeDigits(await response.arrayBuffer());
}
