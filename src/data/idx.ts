import {readMaybeGzip} from './files.js';

/** IDX magic of unsigned-byte images: 0x00 0x00, type 0x08, 3 dimensions (count, rows, columns). */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** IDX magic of unsigned-byte labels: 0x00 0x00, type 0x08, 1 dimension (count). */
export const IDX_LABELS_MAGIC = 0x00000801;

/** Images of an IDX3 file: `pixels` image-major, row-major, one channel. */
export interface IdxImages {
  /** Number of images. */
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

/**
 * Parses an unsigned-byte IDX file with the given magic; `file` only names
 * the source in errors. The length must match the header exactly, because a
 * short file is a truncated download and a long one a wrong file.
 */
function parseIdx(bytes: Uint8Array, magic: number, file: string): {dims: number[]; data: Uint8Array} {
  const ndim = magic & 0xff;
  const headerLength = 4 + 4 * ndim;
  if (bytes.length < 4) {
    throw new Error(`${file}: ${bytes.length} bytes, too short for an IDX header of ${headerLength} bytes` +
      (bytes.length === 0 ? ' (empty file)' : ''));
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The magic first: a labels file passed as images is a wrong-file error, not a short one.
  const found = view.getUint32(0, false);
  if (found !== magic) {
    throw new Error(`${file}: wrong IDX magic 0x${hex(found)}, expected 0x${hex(magic)} ` +
      `(${magic === IDX_IMAGES_MAGIC ? 'unsigned-byte images, 3 dimensions' : 'unsigned-byte labels, 1 dimension'})`);
  }
  if (bytes.length < headerLength) {
    throw new Error(`${file}: ${bytes.length} bytes, too short for an IDX header of ${headerLength} bytes`);
  }
  const dims: number[] = [];
  for (let d = 0; d < ndim; d++) dims.push(view.getUint32(4 + 4 * d, false));
  if (dims.some((v) => v === 0)) throw new Error(`${file}: IDX dimensions ${dims.join(' x ')} include a zero`);
  const expected = headerLength + dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== expected) {
    throw new Error(`${file}: ${bytes.length} bytes, but the IDX header (${dims.join(' x ')}) needs exactly ${expected}` +
      (bytes.length < expected ? ' (truncated)' : ' (trailing bytes)'));
  }
  return {dims, data: bytes.subarray(headerLength)};
}

/** Parses IDX3 unsigned-byte images (MNIST layout). */
export function parseIdxImages(bytes: Uint8Array, file = 'IDX images'): IdxImages {
  const {dims, data} = parseIdx(bytes, IDX_IMAGES_MAGIC, file);
  return {count: dims[0], rows: dims[1], cols: dims[2], pixels: data.slice()};
}

/** Parses IDX1 unsigned-byte labels, each checked to be below `numClasses`. */
export function parseIdxLabels(bytes: Uint8Array, numClasses: number, file = 'IDX labels'): Int32Array {
  const {data} = parseIdx(bytes, IDX_LABELS_MAGIC, file);
  const labels = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    if (data[i] >= numClasses) {
      throw new Error(`${file}: label ${data[i]} of item ${i} is out of range [0, ${numClasses})`);
    }
    labels[i] = data[i];
  }
  return labels;
}

/** Reads an IDX3 images file, plain or gzipped. */
export function readIdxImages(file: string): IdxImages {
  return parseIdxImages(readMaybeGzip(file), file);
}

/** Reads an IDX1 labels file, plain or gzipped. */
export function readIdxLabels(file: string, numClasses: number): Int32Array {
  return parseIdxLabels(readMaybeGzip(file), numClasses, file);
}

function hex(v: number): string {
  return v.toString(16).padStart(8, '0');
}
