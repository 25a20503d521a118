/**
 * Inception-v3 as the feature network of FID and IS, from a tfjs graph model
 * the user converted (it cannot be downloaded here). What pytorch-fid and
 * torch-fidelity compute, and so what the model must give:
 *
 * - input: one float image batch [N, 299, 299, 3] (batch size free) with
 *   values in [-1, 1]; images are resized to 299x299 bilinearly (half-pixel
 *   centres, PyTorch's align_corners=False) and grey images repeated to
 *   three channels before they go in;
 * - features: the 2048-d output of the last average pool (`pool_3` in the
 *   TF graph pytorch-fid's FID-Inception weights come from), [N, 2048] or
 *   [N, 1, 1, 2048];
 * - logits: the classifier's logits before the softmax (`softmax/logits`
 *   there, 1008 classes), for the Inception Score.
 *
 * The node names are options (defaults `pool_3` and `softmax/logits`), so that a
 * converted graph with other names (e.g. Keras' InceptionV3 with
 * `avg_pool` and `predictions`, which is not the FID network and gives
 * other numbers) loads too. README: "GAN networks and scores" shows the
 * conversion.
 */
import * as tf from '@tensorflow/tfjs-core';
import {loadGraphModel} from '@tensorflow/tfjs-converter';

import type {FeatureNetwork} from './features.js';

export const INCEPTION_SIZE = 299;

export interface InceptionOptions {
  /** Node of the 2048-d pool features. Default 'pool_3'. */
  features?: string;
  /** Node of the logits. Default 'softmax/logits'. */
  logits?: string;
}

interface GraphNode {
  name?: string;
  op?: string;
}

/**
 * Loads and checks a graph model of Inception-v3 for images of `imageShape`
 * (the GAN's). Throws, naming the problem, when the artifacts are not a
 * graph model (a layers model, say), have no single image input, or lack
 * the named nodes.
 */
export async function loadInception(handler: tf.io.IOHandler, imageShape: readonly [number, number, number],
                                    options: InceptionOptions = {}): Promise<FeatureNetwork> {
  const featuresNode = options.features ?? 'pool_3';
  const logitsNode = options.logits ?? 'softmax/logits';
  if (handler.load === undefined) throw new Error('the model source cannot be read');
  const artifacts = await handler.load();
  const topology = artifacts.modelTopology as {node?: GraphNode[]} | undefined;
  if (artifacts.format !== 'graph-model' || !Array.isArray(topology?.node)) {
    throw new Error(`not a tfjs graph model (format '${artifacts.format ?? 'none'}'); convert Inception-v3 with ` +
                    'tensorflowjs_converter to a graph model');
  }
  const names = new Set(topology!.node!.map(n => n.name));
  const missing = [featuresNode, logitsNode].filter(n => !names.has(n));
  if (missing.length > 0) {
    throw new Error(`the graph has no node ${missing.map(n => `'${n}'`).join(' or ')} (the pool features and the ` +
                    'logits); name them with the features and logits options');
  }
  const placeholders = topology!.node!.filter(n => n.op === 'Placeholder');
  if (placeholders.length !== 1) throw new Error(`the graph must take one image input, it has ${placeholders.length}`);
  if (imageShape[2] !== 1 && imageShape[2] !== 3) throw new Error(`Inception scores 1- or 3-channel images, not ${imageShape[2]}`);
  const model = await loadGraphModel(tf.io.fromMemory(artifacts));
  return {
    labels: {fd: 'FID', is: 'IS'},
    imageShape,
    apply(images) {
      return tf.tidy(() => {
        let x = tf.image.resizeBilinear(images, [INCEPTION_SIZE, INCEPTION_SIZE], false, true);
        if (imageShape[2] === 1) x = tf.tile(x, [1, 1, 1, 3]);
        const [features, logits] = model.execute(x, [featuresNode, logitsNode]) as tf.Tensor[];
        const n = images.shape[0];
        return {features: tf.reshape(features, [n, -1]) as tf.Tensor2D, logits: tf.reshape(logits, [n, -1]) as tf.Tensor2D};
      });
    },
    dispose() {
      model.dispose();
    },
  };
}
