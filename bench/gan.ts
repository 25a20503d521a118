/**
 * `npm run bench -- --gan`: SNGAN's discriminator step (a generator forward
 * for the fakes, the hinge loss on a real and a fake batch, backward, Adam)
 * and generator step (through the discriminator, backward, Adam) at batch 64
 * on 32x32x3 images, for each width and d-norm, beside the PyTorch port
 * (reference/sngan_ref.py, 2 threads); the ConvNorm-D / SN-D step ratios;
 * and a soak of 500 GAN steps at width 2 counting tensors.
 */
import {execFileSync} from 'node:child_process';
import {mkdirSync, renameSync, writeFileSync} from 'node:fs';
import {dirname} from 'node:path';
import {fileURLToPath} from 'node:url';

import * as tf from '@tensorflow/tfjs-core';

import {Rng} from '../src/data/random.js';
import {gaussianNoise} from '../src/gan/evaluate.js';
import {GanStep} from '../src/gan/step.js';
import {DNorm, snganDiscriminator, snganGenerator} from '../src/models/sngan.js';
import {formatTable} from '../src/report/table.js';

export interface GanBenchOptions {
  widths: number[];
  dNorms: DNorm[];
  batch: number;
  reps: number;
  soakSteps: number;
  torch: boolean;
  engine: string;
  json: string;
}

interface GanRow {
  ch: number;
  dNorm: DNorm;
  dStepSeconds: number;
  gStepSeconds: number;
  torch?: {dStepSeconds: number; gStepSeconds: number};
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeSeconds(fn: () => Promise<unknown>, reps: number): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

async function benchOne(ch: number, dNorm: DNorm, batch: number, reps: number): Promise<GanRow> {
  // The generator at the discriminator's width (SNGAN's is twice as wide), so that a row runs in seconds here.
  const g = snganGenerator({ch, seed: 1});
  const d = snganDiscriminator({ch, dNorm, seed: 2});
  const step = new GanStep({generator: g, discriminator: d, nDis: 1});
  const rng = new Rng(3);
  const real = tf.randomUniform([batch, 32, 32, 3], -1, 1, 'float32', 4) as tf.Tensor4D;
  try {
    const dStepSeconds = await timeSeconds(() => step.discriminatorStep(tf.clone(real), gaussianNoise(rng, batch, 128)), reps);
    const gStepSeconds = await timeSeconds(() => step.generatorStep(gaussianNoise(rng, batch, 128)), reps);
    return {ch, dNorm, dStepSeconds, gStepSeconds};
  } finally {
    real.dispose();
    step.dispose();
    g.dispose();
    d.dispose();
  }
}

/** Tensor counts over `steps` GAN steps (n_dis 5) at width 2, batch 4, ConvNorm in D. */
async function soak(steps: number): Promise<{step: number; tensors: number}[]> {
  const g = snganGenerator({imageShape: [28, 28, 1], ch: 2, zDim: 4, seed: 1});
  const d = snganDiscriminator({imageShape: [28, 28, 1], ch: 2, dNorm: 'convnorm', seed: 2});
  const step = new GanStep({generator: g, discriminator: d});
  const rng = new Rng(5);
  const marks: {step: number; tensors: number}[] = [];
  try {
    for (let s = 1; s <= steps; s++) {
      await step.step(() => tf.randomUniform([4, 28, 28, 1], -1, 1) as tf.Tensor4D, () => gaussianNoise(rng, 4, 4));
      if (s === 1 || s % 100 === 0 || s === steps) marks.push({step: s, tensors: tf.memory().numTensors});
    }
  } finally {
    step.dispose();
    g.dispose();
    d.dispose();
  }
  return marks;
}

function torchRow(ch: number, dNorm: DNorm, batch: number, reps: number): {dStepSeconds: number; gStepSeconds: number} {
  const script = fileURLToPath(new URL('../reference/sngan_ref.py', import.meta.url));
  const out = execFileSync('/usr/bin/python3', [script, 'bench', '--ch', String(ch), '--g-ch', String(ch), '--batch',
                                                String(batch), '--d-norm', dNorm, '--reps', String(reps), '--threads', '2'],
                           {encoding: 'utf8'});
  return JSON.parse(out.trim().split('\n').pop()!);
}

const f3 = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(3));
const f2 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(2));

export async function benchGan(o: GanBenchOptions): Promise<void> {
  const rows: GanRow[] = [];
  for (const ch of o.widths) {
    for (const dNorm of o.dNorms) {
      console.error(`SNGAN ch ${ch}, ${dNorm}...`);
      rows.push(await benchOne(ch, dNorm, o.batch, o.reps));
    }
  }
  // PyTorch after ours, never beside it: the two would share the cores.
  if (o.torch) {
    for (const row of rows) {
      console.error(`PyTorch port, ch ${row.ch}, ${row.dNorm}...`);
      row.torch = torchRow(row.ch, row.dNorm, o.batch, o.reps);
    }
  }
  const marks = o.soakSteps > 0 ? await soak(o.soakSteps) : [];
  const result = {date: new Date().toISOString(), engine: o.engine, options: o, rows, soak: marks};
  mkdirSync(dirname(o.json), {recursive: true});
  writeFileSync(`${o.json}.tmp`, JSON.stringify(result, null, 1));
  renameSync(`${o.json}.tmp`, o.json);

  console.log(`\nSNGAN steps at batch ${o.batch}, 32x32x3, generator as wide as the discriminator; seconds (median of ` +
              `${o.reps}); tfjs ${o.engine} vs the PyTorch port, 2 threads`);
  console.log(formatTable(['ch', 'd-norm', 'ours D step', 'ours G step', 'torch D step', 'torch G step', 'ours / torch D'],
    rows.map(r => [String(r.ch), r.dNorm, f3(r.dStepSeconds), f3(r.gStepSeconds), f3(r.torch?.dStepSeconds),
                   f3(r.torch?.gStepSeconds), f2(r.torch === undefined ? undefined : r.dStepSeconds / r.torch.dStepSeconds)])));
  console.log('\nConvNorm-D / SN-D step time, same engine (target <= 1.3):');
  for (const ch of o.widths) {
    const find = (dNorm: DNorm) => rows.find(r => r.ch === ch && r.dNorm === dNorm);
    const [sn, cn] = [find('sn'), find('convnorm')];
    if (sn === undefined || cn === undefined) continue;
    const torch = sn.torch && cn.torch ? `; PyTorch port D ${f2(cn.torch.dStepSeconds / sn.torch.dStepSeconds)}, ` +
      `G ${f2(cn.torch.gStepSeconds / sn.torch.gStepSeconds)}` : '';
    console.log(`  ch ${ch}: D step ${f2(cn.dStepSeconds / sn.dStepSeconds)}, G step ${f2(cn.gStepSeconds / sn.gStepSeconds)}${torch}`);
  }
  if (marks.length > 0) {
    console.log(`\nSoak, ${o.soakSteps} GAN steps (n_dis 5, width 2, ConvNorm D): tensors ` +
                marks.map(m => `${m.tensors} at step ${m.step}`).join(', '));
  }
  console.log(`Results: ${o.json}`);
}

export {D_NORMS} from '../src/models/sngan.js';
