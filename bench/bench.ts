/**
 * `npm run bench`: ConvNorm against Conv+BN on this machine, layer by layer
 * (CIFAR ResNet-18 and ResNet-20 shapes) and for whole training steps
 * (ResNet-18, ResNet-20, small CNN), with peak RSS, tensor counts and each
 * network's Conv+BN step against the arithmetic cap of WebAssembly SIMD here;
 * beside them the same measurements of PyTorch (Conv+BN and our port of the
 * official ConvNorm) when /usr/bin/python3 has torch. Ratios are taken within
 * this run. A benchmark, not a test.
 */
import {execFileSync} from 'node:child_process';
import {mkdirSync, writeFileSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {Command, InvalidArgumentError, Option} from 'commander';

import {unitSpectra} from '../src/analysis/layer_spectra.js';
import {IsometryLayer, RESNET18_LAYERS} from '../src/cli/isometry.js';
import {BACKENDS, BackendName, useBackend, wasmThreadCount} from '../src/node/backend.js';
import {setSimdKernels, simdKernels} from '../src/engine/simd.js';
import {convUnit, NormKind, SeedSequence} from '../src/models/blocks.js';
import {resnet} from '../src/models/resnet.js';
import {smallCnn} from '../src/models/small_cnn.js';
import {CIFAR_NORMALIZATION} from '../src/data/batches.js';
import {Rng} from '../src/data/random.js';
import {formatTable} from '../src/report/table.js';
import {pgd} from '../src/robustness/pgd.js';
import {TrainStep} from '../src/training/step.js';
import {benchBrowser} from './browser.js';
import {benchGan, D_NORMS} from './gan.js';
import type {DNorm} from '../src/models/sngan.js';
import {convolutionFlopsPerImage, simdPeak} from './peak.js';

const NORMS: NormKind[] = ['bn', 'convnorm'];
const NETWORKS = ['resnet18', 'resnet20', 'small'] as const;
type Network = (typeof NETWORKS)[number];

/** One of each distinct 3x3 convolution of He et al.'s CIFAR ResNet-20 (16, 32, 64 channels). */
const RESNET20_LAYERS: IsometryLayer[] = [
  {name: 'r20 stem 3->16', inChannels: 3, filters: 16, size: 32, strides: 1},
  {name: 'r20 block 16->16', inChannels: 16, filters: 16, size: 32, strides: 1},
  {name: 'r20 down 16->32 s2', inChannels: 16, filters: 32, size: 32, strides: 2},
  {name: 'r20 block 32->32', inChannels: 32, filters: 32, size: 16, strides: 1},
  {name: 'r20 down 32->64 s2', inChannels: 32, filters: 64, size: 16, strides: 2},
  {name: 'r20 block 64->64', inChannels: 64, filters: 64, size: 8, strides: 1},
];
const LAYERS = [...RESNET18_LAYERS, ...RESNET20_LAYERS];

interface Options {
  backend?: BackendName;
  batches: number[];
  reps: number;
  steps: number;
  layers: boolean;
  networks: Network[];
  soak: number;
  networkTimeout: number;
  torch: boolean;
  fma: boolean;
  simd: boolean;
  attackImages: number;
  spectrum: boolean;
  spectrumResnet18: boolean;
  json: string;
  browser: boolean;
  browserBackends: string[];
  browserBatch: number;
  browserUnit: number[];
  gan: boolean;
  ganWidths: number[];
  ganDNorms: DNorm[];
  ganSoak: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function timeMs(fn: () => void, reps: number): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

let peakRss = 0;
const sampleRss = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};

function benchLayers(opts: Options) {
  const rows = [];
  for (const spec of LAYERS) {
    for (const batch of opts.batches) {
      const row: Record<string, number | string> = {layer: spec.name, batch};
      for (const norm of NORMS) {
        const input = tfl.input({shape: [spec.size, spec.size, spec.inChannels]});
        const output = convUnit(input, {filters: spec.filters, kernelSize: 3, strides: spec.strides, norm,
                                        seeds: new SeedSequence(1)});
        const model = tfl.model({inputs: input, outputs: output});
        const x = tf.randomNormal([batch, spec.size, spec.size, spec.inChannels], 0, 1, 'float32', 1);
        const vars = model.trainableWeights.map(w => w.read() as tf.Variable);
        row[`${norm}Forward`] = timeMs(() => tf.tidy(() => {
          (model.apply(x, {training: true}) as tf.Tensor).dataSync();
        }), opts.reps);
        row[`${norm}ForwardBackward`] = timeMs(() => tf.tidy(() => {
          const {grads} = tf.variableGrads(() => tf.sum(model.apply(x, {training: true}) as tf.Tensor) as tf.Scalar, vars);
          Object.values(grads).forEach(g => g.dataSync());
        }), opts.reps);
        sampleRss();
        x.dispose();
        model.dispose();
      }
      rows.push(row);
      console.error(`  layer ${spec.name} batch ${batch}: ${JSON.stringify(row)}`);
    }
  }
  return rows;
}

function buildNetwork(network: Network, norm: NormKind) {
  return network === 'small' ? smallCnn({norm, seed: 1})
    : resnet({depth: network === 'resnet18' ? 18 : 20, norm, seed: 1});
}

interface NetworkResult {
  network: Network;
  norm: NormKind;
  batch: number;
  stepMs?: number;
  imagesPerSecond?: number;
  tensorsPerStep?: number[];
  peakRssMB?: number;
  error?: string;
}

/** One configuration, in this process: what a child runs for --run-network. */
function benchNetwork(network: Network, norm: NormKind, batch: number, steps: number): NetworkResult {
  const model = buildNetwork(network, norm);
  const step = new TrainStep(model, {learningRate: 0.01});
  const x = tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', 2);
  const y = tf.oneHot(tf.tensor1d(Array.from({length: batch}, (_, i) => i % 10), 'int32'), 10);
  const tensorsPerStep: number[] = [];
  const stepMs = timeMs(() => {
    step.run(x, y);
    tensorsPerStep.push(tf.memory().numTensors);
    sampleRss();
  }, steps);
  return {network, norm, batch, stepMs, imagesPerSecond: batch / stepMs * 1000, tensorsPerStep,
          peakRssMB: peakRss / 2 ** 20};
}

/**
 * Each configuration runs in a child process: a model that does not fit the
 * wasm backend's 4 GB heap aborts the wasm module, and must not take the rest
 * of the benchmark with it.
 */
function benchNetworks(opts: Options): NetworkResult[] {
  const rows: NetworkResult[] = [];
  for (const network of opts.networks) {
    for (const batch of opts.batches) {
      for (const norm of NORMS) {
        const args = [...process.execArgv, fileURLToPath(import.meta.url), '--run-network',
                      `${network}:${norm}:${batch}`, '--steps', String(opts.steps)];
        if (opts.backend !== undefined) args.push('--backend', opts.backend);
        if (!opts.fma) args.push('--no-fma');
        if (!opts.simd) args.push('--no-simd');
        let row: NetworkResult;
        try {
          const out = execFileSync(process.execPath, args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
                                                            maxBuffer: 1 << 24, timeout: opts.networkTimeout * 1000});
          row = JSON.parse(out.trim().split('\n').pop()!) as NetworkResult;
          peakRss = Math.max(peakRss, (row.peakRssMB ?? 0) * 2 ** 20);
        } catch (e) {
          const stderr = String((e as {stderr?: string}).stderr ?? e);
          // Threaded wasm tends to spin rather than abort when its 4 GB heap is exhausted.
          const reason = (e as {signal?: string}).signal === 'SIGTERM'
            ? `no result in ${opts.networkTimeout} s (threaded wasm spins when out of memory)`
            : /memory access out of bounds|Aborted\(\)|out of memory|status 6/i.test(stderr)
              ? 'out of memory (wasm heap is limited to 4 GB)' : stderr.trim().split('\n').pop()!;
          row = {network, norm, batch, error: reason};
        }
        rows.push(row);
        console.error(`  ${network} ${norm} batch ${batch}: ${row.error ?? `${row.stepMs!.toFixed(0)} ms/step`}`);
      }
    }
  }
  return rows;
}

/** Small CNN with ConvNorm for `steps` steps: tensor count and RSS must not grow. */
function soak(steps: number) {
  const model = smallCnn({norm: 'convnorm', seed: 3});
  const step = new TrainStep(model, {learningRate: 0.01});
  const x = tf.randomNormal([32, 32, 32, 3], 0, 1, 'float32', 4);
  const y = tf.oneHot(tf.tensor1d(Array.from({length: 32}, (_, i) => i % 10), 'int32'), 10);
  const marks: Array<{step: number; tensors: number; rssMB: number}> = [];
  for (let i = 1; i <= steps; i++) {
    step.run(x, y);
    if ([10, 100, steps / 2, steps].includes(i)) {
      marks.push({step: i, tensors: tf.memory().numTensors, rssMB: process.memoryUsage().rss / 2 ** 20});
    }
  }
  tf.dispose([x, y]);
  step.dispose();
  model.dispose();
  return marks;
}

/**
 * PGD-10 (eps 8/255, steps of 2/255) on `images` random 32x32x3 images with
 * the small CNN, every image attacked (as if all were classified correctly
 * clean, which an untrained network's are not): what `convnorm attack`
 * spends on 1,000 CIFAR test images.
 */
async function benchAttack(images: number) {
  const rows = [];
  for (const norm of NORMS) {
    const model = smallCnn({norm, seed: 5});
    const batch = 100;
    const start = performance.now();
    for (let first = 0; first < images; first += batch) {
      const n = Math.min(batch, images - first);
      const x = tf.randomUniform([n, 32, 32, 3], 0, 1, 'float32', first) as tf.Tensor4D;
      const labels = tf.tensor1d(Array.from({length: n}, (_, i) => i % 10), 'int32');
      const {adversarial} = await pgd({classifier: {model, normalization: CIFAR_NORMALIZATION}, images: x, labels,
                                       cleanCorrect: new Uint8Array(n).fill(1)},
                                      {eps: 8 / 255, step: 2 / 255, steps: 10, rng: new Rng(first)});
      tf.dispose([x, labels, adversarial]);
      sampleRss();
    }
    const seconds = (performance.now() - start) / 1000;
    rows.push({norm, images, steps: 10, seconds, imagesPerSecond: images / seconds});
    console.error(`  PGD-10, small CNN ${norm}, ${images} images: ${seconds.toFixed(1)} s`);
    model.dispose();
  }
  return rows;
}

/**
 * `convnorm spectrum`'s work (every singular value, 30 power iterations) on
 * a 512 -> 512 3x3 unit at 4x4 input, BN and ConvNorm, and optionally on a
 * whole CIFAR ResNet-18 with ConvNorm; each after one training call, so that
 * running statistics and running V are set.
 */
function benchSpectrum(resnet18: boolean) {
  const rows: {what: string; norm: NormKind; units: number; seconds: number}[] = [];
  const time = (what: string, norm: NormKind, model: tfl.LayersModel, inputShape: number[]) => {
    tf.tidy(() => { model.apply(tf.randomNormal([4, ...inputShape], 0, 1, 'float32', 6), {training: true}); });
    const start = performance.now();
    const spectra = unitSpectra(model, {values: true, powerIterations: 30});
    const seconds = (performance.now() - start) / 1000;
    rows.push({what, norm, units: spectra.units.length, seconds});
    console.error(`  spectrum of ${what} ${norm}: ${seconds.toFixed(1)} s`);
    model.dispose();
  };
  for (const norm of NORMS) {
    const input = tfl.input({shape: [4, 4, 512]});
    time('unit 512->512 at 4x4', norm, tfl.model({inputs: input, outputs: convUnit(input, {
      filters: 512, kernelSize: 3, norm, seeds: new SeedSequence(1)})}), [4, 4, 512]);
  }
  if (resnet18) time('resnet18 at 32x32', 'convnorm', resnet({depth: 18, norm: 'convnorm', seed: 1}), [32, 32, 3]);
  return rows;
}

function runTorch(opts: Options) {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'torch_bench.py');
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], {stdio: 'ignore'});
  } catch {
    console.error('PyTorch not found (/usr/bin/python3 -c "import torch" failed): skipping the PyTorch side.');
    return undefined;
  }
  const config = {threads: 2, batches: opts.batches, reps: opts.reps, steps: opts.steps,
                  layers: opts.layers ? LAYERS : [], networks: opts.networks};
  console.error('PyTorch (2 threads)...');
  return JSON.parse(execFileSync('/usr/bin/python3', [script, JSON.stringify(config)], {encoding: 'utf8',
                                                                                       maxBuffer: 1 << 24}));
}

const f0 = (x: unknown) => (typeof x === 'number' ? x.toFixed(0) : '-');
const f2 = (x: unknown) => (typeof x === 'number' ? x.toFixed(2) : '-');
const ratio = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' ? a / b : undefined);

async function main(opts: Options & {runNetwork?: string}) {
  if (opts.browser) {
    const [channels, size, batch] = opts.browserUnit;
    await benchBrowser({backends: opts.browserBackends, reps: opts.reps, steps: opts.steps, batch: opts.browserBatch,
                        unit: {channels, size, batch}, json: opts.json});
    return;
  }
  const backend = await useBackend(opts.backend, {fusedMultiplyAdd: opts.fma});
  const threads = backend === 'wasm' ? wasmThreadCount() : undefined;
  setSimdKernels(opts.simd);
  if (opts.gan) {
    await benchGan({widths: opts.ganWidths, dNorms: opts.ganDNorms, batch: 64, reps: opts.reps, soakSteps: opts.ganSoak,
                    torch: opts.torch, engine: `${backend}${threads === undefined ? '' : ` (${threads} threads)`}`,
                    json: opts.json});
    return;
  }
  if (opts.runNetwork !== undefined) {
    const [network, norm, batch] = opts.runNetwork.split(':');
    console.log(JSON.stringify(benchNetwork(network as Network, norm as NormKind, Number(batch), opts.steps)));
    return;
  }
  const module = simdKernels(tf.backend());
  const engine = `${backend}${threads === undefined ? '' : ` (${threads} threads)`}` +
    (backend !== 'wasm' ? '' : module === undefined ? ', SIMD module off' :
      `, SIMD module ${module.fusedMultiplyAdd ? 'with' : 'without'} fused multiply-adds`);
  console.error(`backend ${engine}; batches ${opts.batches}`);
  const peak = backend === 'wasm' ? simdPeak() : undefined;
  // Each benched network's convolution arithmetic per image and training step, counted on its Conv+BN build.
  const convolutionFlops = Object.fromEntries(opts.networks.map(network => {
    const counted = buildNetwork(network, 'bn');
    const flops = convolutionFlopsPerImage(counted);
    counted.dispose();
    return [network, flops];
  })) as Record<Network, number>;
  // What the arithmetic alone allows: the convolutions at every thread's best multiply-add rate.
  const capOf = (network: Network) => peak === undefined ? undefined
    : Math.max(peak.multiplyAdd, peak.fusedMultiplyAdd ?? 0) * (threads ?? 1) * 1e9 / convolutionFlops[network];
  const layers = opts.layers ? benchLayers(opts) : [];
  const networks = benchNetworks(opts);
  const soakMarks = opts.soak > 0 ? soak(opts.soak) : [];
  const attack = opts.attackImages > 0 ? await benchAttack(opts.attackImages) : [];
  const spectrum = opts.spectrum ? benchSpectrum(opts.spectrumResnet18) : [];
  const torch = opts.torch ? runTorch(opts) : undefined;
  const arithmeticCap = opts.networks.flatMap(network => opts.batches.map(batch => {
    const bn = networks.find(r => r.network === network && r.batch === batch && r.norm === 'bn');
    const cap = capOf(network);
    return {network, batch, convolutionFlopsPerImage: convolutionFlops[network], capImagesPerSecond: cap,
            convBnImagesPerSecond: bn?.imagesPerSecond,
            percentOfCap: cap === undefined || bn?.imagesPerSecond === undefined ? undefined
              : 100 * bn.imagesPerSecond / cap};
  }));
  const result = {date: new Date().toISOString(), backend, engine, wasmThreads: threads, options: opts, simdPeak: peak,
                  layers, networks, arithmeticCap, soak: soakMarks, attack, spectrum, torch};
  mkdirSync(dirname(opts.json), {recursive: true});
  writeFileSync(`${opts.json}.tmp`, JSON.stringify(result, null, 1));
  (await import('node:fs')).renameSync(`${opts.json}.tmp`, opts.json);

  const tl = (layer: string, batch: number) =>
    torch?.layers.find((r: {layer: string; batch: number}) => r.layer === layer && r.batch === batch);
  if (layers.length > 0) {
    console.log(`\nPer layer, ms (tfjs ${backend}${threads === undefined ? '' : ` ${threads} threads`} vs PyTorch ${torch?.torch ?? 'n/a'}, ${torch?.threads ?? '-'} threads)`);
    console.log(formatTable(
      ['layer', 'batch', 'ours Conv+BN f', 'f+b', 'ours ConvNorm f', 'f+b', 'ratio f+b', 'torch Conv+BN f+b',
       'torch official f+b', 'torch ratio'],
      layers.map(r => {
        const t = tl(r.layer as string, r.batch as number);
        return [r.layer as string, String(r.batch), f0(r.bnForward), f0(r.bnForwardBackward), f0(r.convnormForward),
                f0(r.convnormForwardBackward), f2(ratio(r.convnormForwardBackward, r.bnForwardBackward)),
                f0(t?.bnForwardBackward), f0(t?.convnormForwardBackward),
                f2(ratio(t?.convnormForwardBackward, t?.bnForwardBackward))];
      })));
  }
  const tn = (network: string, norm: string, batch: number) => torch?.networks.find(
    (r: {network: string; norm: string; batch: number}) => r.network === network && r.norm === norm && r.batch === batch);
  console.log('\nTraining step (forward, cross-entropy, backward, SGD momentum 0.9, weight decay 1e-4), images/s');
  console.log(formatTable(
    ['network', 'batch', 'norm', 'ours img/s', 'ours ms/step', 'tensors/step', 'torch img/s', 'ours / torch'],
    networks.map(r => {
      const t = tn(r.network, r.norm, r.batch);
      if (r.error !== undefined) {
        return [r.network, String(r.batch), r.norm, r.error, '-', '-', f2(t?.imagesPerSecond), '-'];
      }
      const counts = [...new Set(r.tensorsPerStep)].join(',');
      return [r.network, String(r.batch), r.norm, f2(r.imagesPerSecond), f0(r.stepMs), counts,
              f2(t?.imagesPerSecond), f2(ratio(r.imagesPerSecond, t?.imagesPerSecond))];
    })));
  console.log('\nConvNorm(+BN) / Conv+BN step time, same engine:');
  for (const network of opts.networks) {
    for (const batch of opts.batches) {
      const ours = ratio(networks.find(r => r.network === network && r.batch === batch && r.norm === 'convnorm')?.stepMs,
                         networks.find(r => r.network === network && r.batch === batch && r.norm === 'bn')?.stepMs);
      const theirs = ratio(tn(network, 'convnorm', batch)?.stepMs, tn(network, 'bn', batch)?.stepMs);
      const vsOfficial = ratio(networks.find(r => r.network === network && r.batch === batch && r.norm === 'convnorm')
        ?.imagesPerSecond, tn(network, 'convnorm', batch)?.imagesPerSecond);
      console.log(`  ${network} batch ${batch}: ours ${f2(ours)}, PyTorch official ${f2(theirs)}; ` +
                  `our ConvNorm images/s / official's: ${f2(vsOfficial)}`);
    }
  }
  if (peak !== undefined) {
    console.log(`\nWebAssembly SIMD here, one thread: ${f2(peak.multiplyAdd)} GFLOP/s as multiplies and adds, ` +
                `${f2(peak.fusedMultiplyAdd)} fused. At ${threads} threads' peak a network's convolutions alone cap ` +
                'its training step at:');
    console.log(formatTable(
      ['network', 'batch', 'conv GFLOP/image/step', 'cap img/s', 'ours Conv+BN img/s', '% of cap', 'torch Conv+BN img/s'],
      arithmeticCap.map(r => [r.network, String(r.batch), f2(r.convolutionFlopsPerImage / 1e9), f2(r.capImagesPerSecond),
                              f2(r.convBnImagesPerSecond), f0(r.percentOfCap),
                              f2(tn(r.network, 'bn', r.batch)?.imagesPerSecond)])));
  }
  console.log(`Peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MB.`);
  if (soakMarks.length > 0) {
    console.log('Soak (small CNN + ConvNorm, batch 32): ' +
                soakMarks.map(m => `step ${m.step}: ${m.tensors} tensors, ${m.rssMB.toFixed(0)} MB RSS`).join('; '));
  }
  for (const a of attack) {
    console.log(`PGD-10 (eps 8/255) on ${a.images} 32x32x3 images, small CNN ${a.norm}: ${a.seconds.toFixed(1)} s ` +
                `(${a.imagesPerSecond.toFixed(1)} images/s).`);
  }
  for (const r of spectrum) {
    console.log(`convnorm spectrum's work on ${r.what} (${r.norm}, ${r.units} unit(s), every singular value, 30 power ` +
                `iterations): ${r.seconds.toFixed(1)} s.`);
  }
  console.log(`Results: ${opts.json}`);
}

const list = (v: string) => v.split(',').map(s => s.trim()).filter(Boolean);

/** Commander parsers that refuse what the bench would otherwise run mislabelled. */
function networkList(v: string): Network[] {
  const names = list(v);
  const unknown = names.filter(n => !(NETWORKS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(`unknown network ${unknown.join(', ')}; choose from ${NETWORKS.join(', ')}`);
  }
  return names as Network[];
}

function batchList(v: string): number[] {
  const batches = list(v).map(Number);
  if (batches.length === 0 || !batches.every(b => Number.isInteger(b) && b >= 2)) {
    throw new InvalidArgumentError(`batch sizes must be integers >= 2 (BatchNorm needs two images), got '${v}'`);
  }
  return batches;
}
const program = new Command('bench')
  .description('ConvNorm vs Conv+BN speed on this machine (and PyTorch beside it when available)')
  .addOption(new Option('--backend <name>', 'tfjs backend').choices([...BACKENDS]))
  .option('--batches <list>', 'batch sizes', batchList, [32, 128])
  .option('--reps <n>', 'timed repetitions per layer measurement (median)', Number, 3)
  .option('--steps <n>', 'timed training steps per network (median)', Number, 3)
  .option('--no-layers', 'skip the per-layer section')
  .option('--networks <list>', `networks (${NETWORKS.join(', ')}; '' for none)`, networkList, [...NETWORKS])
  .option('--soak <n>', 'steps of the tensor-count/RSS soak (0 to skip)', Number, 1000)
  .option('--network-timeout <s>', 'seconds allowed for one network configuration', Number, 600)
  .option('--no-torch', 'skip the PyTorch side')
  .option('--no-fma', 'wasm: separate multiplies and adds in the SIMD products (for A/B runs)')
  .option('--no-simd', 'wasm: no SIMD module (its JS and XNNPACK fallbacks; for A/B runs)')
  .option('--attack-images <n>', 'images of the PGD-10 timing with the small CNN (0 to skip)', Number, 1000)
  .option('--no-spectrum', 'skip the timing of convnorm spectrum on a 512 -> 512 unit')
  .option('--spectrum-resnet18', 'also time convnorm spectrum on a whole CIFAR ResNet-18 with ConvNorm (about 2 minutes)')
  .option('--browser', 'instead: ConvNorm against Conv+BN in headless Chromium on each browser backend')
  .option('--browser-backends <list>', 'with --browser: the backends', list, ['webgpu', 'webgl', 'wasm', 'cpu'])
  .option('--browser-batch <n>', 'with --browser: the small-CNN step\'s batch', Number, 32)
  .option('--browser-unit <channels,size,batch>', 'with --browser: the conv unit timed', (v: string) => {
    const xs = list(v).map(Number);
    if (xs.length !== 3 || !xs.every(x => Number.isInteger(x) && x >= 2)) {
      throw new InvalidArgumentError(`three integers >= 2 (channels, input side, batch), got '${v}'`);
    }
    return xs;
  }, [32, 16, 16])
  .option('--gan', 'instead: SNGAN discriminator and generator steps per d-norm, beside the PyTorch port')
  .option('--gan-widths <list>', 'with --gan: widths', (v: string) => list(v).map(Number), [64, 128])
  .option('--gan-d-norms <list>', `with --gan: d-norms (${D_NORMS.join(', ')})`, (v: string) => {
    const names = list(v);
    const unknown = names.filter(n => !(D_NORMS as readonly string[]).includes(n));
    if (unknown.length > 0) throw new InvalidArgumentError(`unknown d-norm ${unknown}; choose from ${D_NORMS.join(', ')}`);
    return names;
  }, [...D_NORMS])
  .option('--gan-soak <n>', 'with --gan: GAN steps of the tensor-count soak (0 to skip)', Number, 500)
  .addOption(new Option('--run-network <network:norm:batch>', 'internal: one network configuration').hideHelp())
  .option('--json <path>', 'where to write the results', `runs/bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  .action(main);
program.parseAsync().catch((e: Error) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
