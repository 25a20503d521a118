// A web app as a user writes one: the umbrella @tensorflow/tfjs, two
// ConvNorm2D layers from the packed convnorm package, model.fit.
import * as tf from '@tensorflow/tfjs';
import {convNorm2d, engineInfo, useBackend} from 'convnorm';

async function run() {
  const backend = await useBackend();
  const model = tf.sequential({layers: [
    convNorm2d({inputShape: [12, 12, 1], filters: 4, kernelSize: 3, padding: 1, seed: 1}),
    tf.layers.reLU(),
    convNorm2d({filters: 6, kernelSize: 3, strides: 2, padding: 1, seed: 2}),
    tf.layers.reLU(),
    tf.layers.globalAveragePooling2d({}),
    tf.layers.dense({units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: 3})}),
  ]});
  model.compile({optimizer: tf.train.sgd(0.2), loss: 'categoricalCrossentropy'});
  // Two classes a convolution tells apart: bright images and dark ones.
  const x = tf.tidy(() => tf.randomNormal([32, 12, 12, 1], 0, 1, 'float32', 4)
    .add(tf.tile(tf.tensor1d([1, -1]), [16]).reshape([32, 1, 1, 1])));
  const y = tf.oneHot(tf.tile(tf.tensor1d([0, 1], 'int32'), [16]), 2);
  const history = await model.fit(x, y, {epochs: 6, batchSize: 32, shuffle: false});
  tf.dispose([x, y]);
  return {backend, info: engineInfo(), layers: model.layers.map(l => l.getClassName()), losses: history.history.loss};
}

run().then(result => { window.result = result; }, error => { window.result = {error: String(error)}; });
