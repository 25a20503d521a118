/**
 * The networks GAN scores are taken on. Each maps generated or real images
 * (NHWC in [-1, 1], the generator's range) to a feature vector per image,
 * whose statistics give the Fréchet distance, and to class logits, which
 * give the Inception-style score. Inception-v3 (./inception.ts) makes them
 * FID and IS; a classifier trained here makes them scores of that
 * classifier, labelled with its name so that they are never read as FID or IS.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {fail} from '../common/arguments.js';

/** Per-channel input normalization, `(pixel / 255 - mean) / std` (as the data pipeline's). */
export interface ChannelNormalization {
  mean: number[];
  std: number[];
}

export interface FeatureNetwork {
  /** The names its scores are printed and stored under, e.g. {fd: 'FID', is: 'IS'}. */
  readonly labels: {fd: string; is: string};
  /** [H, W, C] of the images it scores. */
  readonly imageShape: readonly [number, number, number];
  /** Features [N, d] and logits [N, K] of images [N, H, W, C] in [-1, 1]. */
  apply(images: tf.Tensor4D): {features: tf.Tensor2D; logits: tf.Tensor2D};
  dispose(): void;
}

export interface ClassifierFeaturesArgs {
  /** The classifier's name in the score labels, e.g. its run directory. */
  name: string;
  /** The normalization it was trained with; default none (pixel / 255). */
  normalization?: ChannelNormalization;
}

/**
 * A classifier's penultimate features (the input of its final dense layer)
 * and its logits, as one network. The classifier must end in a dense layer
 * whose output is the model's output, as every model here does.
 */
export function classifierFeatures(model: tfl.LayersModel, args: ClassifierFeaturesArgs): FeatureNetwork {
  const last = model.layers[model.layers.length - 1];
  if (model.outputs.length !== 1 || last.getClassName() !== 'Dense' || last.output !== model.outputs[0]) {
    fail(`the feature network '${model.name}' must end in a dense layer (its input gives the features); ` +
         `it ends in ${last.getClassName()}`);
  }
  const shape = model.inputs[0].shape.slice(1) as number[];
  if (shape.length !== 3 || shape.some(d => d === null)) fail(`the feature network takes [${shape}] inputs, not images`);
  const channels = shape[2];
  const norm = args.normalization ?? {mean: new Array(channels).fill(0), std: new Array(channels).fill(1)};
  if (norm.mean.length !== channels || norm.std.length !== channels) {
    fail(`the normalization has ${norm.mean.length} means and ${norm.std.length} stds for ${channels} channels`);
  }
  const both = tfl.model({inputs: model.inputs, outputs: [last.input as tfl.SymbolicTensor, model.outputs[0]]});
  // [-1, 1] -> pixel / 255 -> the classifier's normalization, as one affine map per channel.
  const scale = tf.tensor1d(norm.std.map(s => 0.5 / s));
  const shift = tf.tensor1d(norm.mean.map((m, i) => (0.5 - m) / norm.std[i]));
  return {
    labels: {fd: `FD (features of ${args.name})`, is: `IS (${args.name})`},
    imageShape: shape as unknown as [number, number, number],
    apply(images) {
      return tf.tidy(() => {
        const [features, logits] = both.predict(tf.add(tf.mul(images, scale), shift)) as tf.Tensor[];
        return {features: tf.reshape(features, [features.shape[0], -1]) as tf.Tensor2D, logits: logits as tf.Tensor2D};
      });
    },
    dispose() {
      tf.dispose([scale, shift]);
    },
  };
}
