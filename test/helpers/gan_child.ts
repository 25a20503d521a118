/**
 * The tiny GAN run the GAN tests share, and, run as a script, a GAN training
 * process for the resume test to kill:
 *
 *   node --import tsx test/helpers/gan_child.ts <runDir> <steps> <hangStep>
 *
 * trains as the tests do (wasm backend) and, after step <hangStep>, prints
 * `HANGING <step>` and waits forever, so that the test can SIGKILL it at a
 * known point after a checkpoint.
 */
import {ImageDataset} from '../../src/data/dataset.js';
import {Rng} from '../../src/data/random.js';
import {DNorm, snganDiscriminator, snganGenerator} from '../../src/models/sngan.js';
import {GanTrainOptions, trainGan} from '../../src/training/gan_trainer.js';
import {useTestBackend} from './backends.js';
import {hang, runIfScript} from './child_process.js';

/** `count` random 28x28 grey images: a bright blob at a random place on a dark field. */
export function tinyImages(count: number, seed: number): ImageDataset {
  const rng = new Rng(seed);
  const pixels = new Uint8Array(count * 28 * 28);
  for (let i = 0; i < count; i++) {
    const [cy, cx] = [6 + rng.int(16), 6 + rng.int(16)];
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const blob = Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 18);
        pixels[(i * 28 + y) * 28 + x] = Math.min(255, Math.round(230 * blob + rng.int(25)));
      }
    }
  }
  return {name: 'tiny-blobs', pixels, labels: new Int32Array(count), shape: [28, 28, 1], numClasses: 1};
}

export const TINY_GAN = {imageShape: [28, 28, 1] as const, ch: 2, zDim: 4};

/** Options of the tiny run (networks of width 2, batch 4, n_dis 2) for `dNorm`. */
export function tinyGanOptions(runDir: string, steps: number, dNorm: DNorm = 'convnorm'): GanTrainOptions {
  const generatorSpec = {...TINY_GAN, seed: 3};
  const discriminatorSpec = {imageShape: TINY_GAN.imageShape, ch: TINY_GAN.ch, dNorm, seed: 4};
  return {
    generator: snganGenerator(generatorSpec), discriminator: snganDiscriminator(discriminatorSpec),
    generatorSpec, discriminatorSpec, data: tinyImages(10, 5), steps, batchSize: 4, nDis: 2, seed: 9,
    // Checkpoints and metrics lines at steps that do not line up with the kill or the ends.
    checkpointEvery: 3, logEvery: 2, sampleEvery: 4, sampleCount: 6, runDir, log: null,
  };
}

async function main(): Promise<void> {
  const [runDir, steps, hangStep] = process.argv.slice(2);
  await useTestBackend('wasm');
  await trainGan({
    ...tinyGanOptions(runDir, Number(steps)),
    onStep: async step => {
      if (step === Number(hangStep)) await hang(`HANGING ${step}`);
    },
  });
  process.stdout.write('FINISHED\n');
}

runIfScript(import.meta.url, main);
