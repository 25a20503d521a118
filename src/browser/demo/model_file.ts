/**
 * A trained run's convolutions, from its model dropped on the page: the
 * model.json and the weight files that model.json's manifest names (a run's checkpoint/ folder holds
 * both). Everything is checked before tfjs reads it, so that a wrong file
 * gets a message that says what is wrong with it.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import * as tf from '@tensorflow/tfjs-core';

import {ConvKernel, convKernels} from '../../index.js';

interface ManifestGroup {
  paths: string[];
  weights: {name: string; shape: number[]; dtype?: string}[];
}

const BYTES: Record<string, number> = {float32: 4, int32: 4, bool: 1};

function basename(path: string): string {
  return path.split('/').pop()!;
}

/** The model's convolutions, read from the dropped files; throws an Error saying what is wrong. */
export async function loadDroppedModel(files: File[]): Promise<ConvKernel[]> {
  const jsons = files.filter(f => f.name.endsWith('.json'));
  if (jsons.length !== 1) {
    throw new Error(`drop one model.json and its weight file(s) together; got ${jsons.length} .json files among ` +
                    `${files.map(f => f.name).join(', ') || 'no files'}`);
  }
  const json = jsons[0];
  let parsed: {modelTopology?: {class_name?: string; config?: unknown}; format?: string; weightsManifest?: ManifestGroup[]};
  try {
    parsed = JSON.parse(await json.text());
  } catch (e) {
    throw new Error(`${json.name} is not JSON (${(e as Error).message})`);
  }
  if (parsed.format === 'graph-model') throw new Error(`${json.name} is a graph model; the demo reads layers models, as convnorm train saves them`);
  if (parsed.modelTopology === undefined || !Array.isArray(parsed.weightsManifest)) {
    throw new Error(`${json.name} is not a tfjs layers model.json (it needs modelTopology and weightsManifest)`);
  }
  const weightFiles: File[] = [];
  for (const group of parsed.weightsManifest) {
    let bytes = 0;
    for (const w of group.weights) bytes += w.shape.reduce((a, b) => a * b, 1) * (BYTES[w.dtype ?? 'float32'] ?? 4);
    let got = 0;
    for (const path of group.paths) {
      const file = files.find(f => f.name === basename(path));
      if (file === undefined) throw new Error(`${json.name} names the weight file ${basename(path)}, which was not dropped with it`);
      weightFiles.push(file);
      got += file.size;
    }
    if (got !== bytes) {
      throw new Error(`${group.paths.map(basename).join(' + ')}: ${got} bytes, but ${json.name} lists ${bytes} bytes of ` +
                      `weights (${got < bytes ? 'truncated' : 'another model\'s file'}?)`);
    }
  }
  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel(tf.io.browserFiles([json, ...weightFiles]));
  } catch (e) {
    throw new Error(`tfjs could not build the model in ${json.name}: ${(e as Error).message}`);
  }
  try {
    const kernels = convKernels(model);
    if (kernels.length === 0) throw new Error(`${json.name} has no convolution (ConvNorm2D, Conv2D or a baseline's conv layer)`);
    return kernels;
  } finally {
    // The kernels are read back; the model itself is not needed.
    model.dispose();
  }
}
