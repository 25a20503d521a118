/**
 * Saving and loading tfjs models to a directory in Node without tfjs-node
 * (whose native install cannot be assumed): `model.json` plus one
 * `weights.bin`, the layout tfjs-node's `file://` handler uses, so either can
 * read what the other wrote. Each file is written to a temporary name and
 * renamed into place, so an interrupted save never leaves a half-written model.
 */
import {readFileSync} from 'node:fs';
import {mkdir, readFile, rename, stat, writeFile} from 'node:fs/promises';
import {dirname, isAbsolute, join, relative, resolve} from 'node:path';

import * as tf from '@tensorflow/tfjs-core';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';
const SCHEME = 'file://';

/** Writes a file whole or not at all: to a temporary name, then renamed over `path`. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** Parses the JSON file at `path`; errors name it as `what` (e.g. "the config file") and say why. */
export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Throws, naming the folder, unless the folder `path` would be written into exists: checked before long work. */
export async function checkParentDirectory(path: string): Promise<void> {
  const dir = dirname(path);
  let isDirectory = false;
  try {
    isDirectory = (await stat(dir)).isDirectory();
  } catch {
    // Missing: refused below.
  }
  if (!isDirectory) throw new Error(`cannot write ${path}: ${dir} is not a directory`);
}

/**
 * Throws unless every weight file the model.json at `path` names lies in its
 * own directory: run directories travel between people, and a manifest
 * naming `../` or an absolute path would make a reader open other files.
 */
export function checkWeightPaths(json: Pick<tf.io.ModelJSON, 'weightsManifest'>, path: string): void {
  const base = dirname(path);
  for (const p of (json.weightsManifest ?? []).flatMap(group => group.paths)) {
    const inside = relative(resolve(base), resolve(base, p));
    if (isAbsolute(p) || inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
      throw new Error(`${path} names the weight file '${p}', outside its own directory; refused`);
    }
  }
}

/** Reads the model.json at `path` and checks its weight paths (checkWeightPaths). */
export async function readModelJson(path: string): Promise<tf.io.ModelJSON> {
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(path, 'utf8')) as tf.io.ModelJSON;
  } catch (e) {
    throw new Error(`cannot read a tfjs model from ${path}: ${(e as Error).message}`);
  }
  checkWeightPaths(json, path);
  return json;
}

class FileSystemHandler implements tf.io.IOHandler {
  constructor(private readonly dir: string) {}

  async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
    if (artifacts.modelTopology instanceof ArrayBuffer) {
      throw new Error('saving binary model topologies to files is not supported');
    }
    await mkdir(this.dir, {recursive: true});
    const weights = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
    const json: tf.io.ModelJSON = {
      modelTopology: artifacts.modelTopology ?? {},
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy,
      weightsManifest: [{paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? []}],
    };
    if (artifacts.trainingConfig !== undefined) json.trainingConfig = artifacts.trainingConfig;
    if (artifacts.userDefinedMetadata !== undefined) json.userDefinedMetadata = artifacts.userDefinedMetadata;
    // Weights first: a model.json is only ever there with its weights beside it.
    await writeAtomic(join(this.dir, WEIGHTS_BIN), new Uint8Array(weights));
    await writeAtomic(join(this.dir, MODEL_JSON), JSON.stringify(json));
    return {modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts)};
  }

  async load(): Promise<tf.io.ModelArtifacts> {
    const path = this.dir.endsWith('.json') ? this.dir : join(this.dir, MODEL_JSON);
    const base = path.slice(0, path.lastIndexOf('/') + 1);
    const json = await readModelJson(path);
    return tf.io.getModelArtifactsForJSON(json, async manifest => {
      const specs = manifest.flatMap(group => group.weights);
      const buffers = await Promise.all(manifest.flatMap(group => group.paths).map(async p => {
        const bytes = await readFile(join(base, p));
        return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      }));
      return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
    });
  }
}

/**
 * An IOHandler for `model.save(fileSystem(dir))` and
 * `tf.loadLayersModel(fileSystem(dir))`; `dir` may also name the model.json.
 */
export function fileSystem(path: string): tf.io.IOHandler {
  return new FileSystemHandler(path.startsWith(SCHEME) ? path.slice(SCHEME.length) : path);
}

/**
 * Lets `model.save('file://dir')` and `tf.loadLayersModel('file://dir/model.json')`
 * work as they do with tfjs-node. Does nothing where a file:// handler (tfjs-node's) exists.
 */
export function registerFileSystemRouter(): void {
  if (tf.io.getSaveHandlers(`${SCHEME}probe`).length > 0) return;
  // tfjs routers return null for URLs they do not handle; its type says IOHandler.
  const router = ((url: string | string[]) => {
    const u = Array.isArray(url) ? url[0] : url;
    return u.startsWith(SCHEME) ? fileSystem(u) : null;
  }) as (url: string | string[]) => tf.io.IOHandler;
  tf.io.registerSaveRouter(router);
  tf.io.registerLoadRouter(router);
}
