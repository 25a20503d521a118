#!/usr/bin/env node
import {Command, Option} from 'commander';

import {BACKENDS, BackendName, useBackend} from '../engine/backend.js';
import {DemoRow, formatDemo, RESNET18_LAYERS, runDemoLayer} from './demo.js';

function integer(flag: string) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new Error(`${flag} must be an integer, got '${value}'`);
    return n;
  };
}

async function demo(options: {backend?: BackendName; seed: number}): Promise<void> {
  const backend = await useBackend(options.backend);
  console.log(`ConvNorm on CIFAR ResNet-18's 3x3 layer shapes, random weights (seed ${options.seed}), ` +
              `tfjs backend ${backend}.\n` +
              'isometry err: max over channels k and frequencies f of |sum_j |FFT(filter_kj)(f)|^2 - 1|, ' +
              '0 when every channel is an isometry.\n' +
              'channel norm / layer norm: largest spectral norm of one output channel / of the whole layer,\n' +
              'circular convolution on the (H+2) x (W+2) grid ConvNorm preconditions on, before any stride ' +
              '(Sedghi et al. 2019).\n' +
              'ConvNorm here is the preconditioned convolution; the affine filter and BatchNorm after it are ' +
              'not included.\n');
  const rows: DemoRow[] = [];
  for (const spec of RESNET18_LAYERS) {
    rows.push(runDemoLayer(spec, options.seed));
    if (process.stdout.isTTY) process.stdout.write(`\r${rows.length}/${RESNET18_LAYERS.length} layers`);
  }
  if (process.stdout.isTTY) process.stdout.write('\r');
  console.log(formatDemo(rows));

  const spec = RESNET18_LAYERS[1];
  const scaled = runDemoLayer(spec, options.seed, 10);
  console.log(`\nScale invariance (${spec.name}, weights x10): conv layer norm ${rows[1].conv.spectralNorm.toFixed(3)}` +
              ` -> ${scaled.conv.spectralNorm.toFixed(3)}, ConvNorm ${rows[1].convNorm.spectralNorm.toFixed(3)}` +
              ` -> ${scaled.convNorm.spectralNorm.toFixed(3)}.`);
  console.log('Every ConvNorm channel is an isometry (channel norm 1) whatever the weights; the layer norm lies ' +
              'between 1 and sqrt(C_out), set by how correlated the channels are.');
}

const program = new Command('convnorm')
  .description('Convolutional Normalization (Liu et al., NeurIPS 2021) for TensorFlow.js');

program.command('demo')
  .description('ConvNorm layers on random weights next to plain convolutions: isometry error and spectral norms')
  .addOption(new Option('--backend <name>', 'tfjs backend (default: the fastest available)').choices([...BACKENDS]))
  .addOption(new Option('--seed <n>', 'seed of the random weights and inputs').default(0).argParser(integer('--seed')))
  .action(demo);

program.parseAsync().catch((e: Error) => {
  console.error(`convnorm: ${e.message}`);
  process.exit(1);
});
