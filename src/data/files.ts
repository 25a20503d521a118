import * as fs from 'node:fs';
import {gunzipSync} from 'node:zlib';

/**
 * Reads a whole file as bytes; a missing or unreadable file is reported with
 * its path, because loaders are driven by user-supplied folders.
 */
export function readBytes(file: string): Uint8Array {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as Error).message})`);
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** True when the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Reads a file and gunzips it when its first bytes are the gzip magic. The
 * magic, not the extension, decides, so a `.gz` that was already unpacked by a
 * browser and kept its name still loads.
 */
export function readMaybeGzip(file: string): Uint8Array {
  const bytes = readBytes(file);
  if (!isGzip(bytes)) return bytes;
  let out: Buffer;
  try {
    out = gunzipSync(bytes);
  } catch (e) {
    throw new Error(`${file}: corrupt gzip payload (${(e as Error).message})`);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** The first of `candidates` (paths) that exists as a file, else undefined. */
export function firstExisting(candidates: string[]): string | undefined {
  return candidates.find((p) => {
    try {
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  });
}

/** Throws when `dir` is not an existing folder; `wanted` says what the loader would look for in it. */
export function requireFolder(dir: string, wanted: string): void {
  let ok = false;
  try {
    ok = fs.statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new Error(`${dir}: no such folder (looked for ${wanted})`);
}

/**
 * Class names, one per non-empty line (CIFAR's batches.meta.txt and
 * fine_label_names.txt), or undefined when the file is absent. A present file
 * with the wrong count is an error rather than ignored, as it signals a
 * mismatched folder.
 */
export function readClassNames(file: string, numClasses: number): string[] | undefined {
  if (!firstExisting([file])) return undefined;
  const names = new TextDecoder().decode(readBytes(file)).split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length !== numClasses) {
    throw new Error(`${file}: ${names.length} class names, expected ${numClasses}`);
  }
  return names;
}
