/**
 * `convnorm demo`, the main job: the reference's small CNN trained with
 * BatchNorm and with ConvNorm(+BN) on the embedded MNIST digits with 40 %
 * symmetric label noise, side by side: clean test accuracy, training time,
 * and the layer spectral norms of the trained networks.
 */
import {join} from 'node:path';

import {unitSpectra} from '../analysis/layer_spectra.js';
import {storeResults} from '../io/results.js';
import {NormKind} from '../models/blocks.js';
import {formatTable} from '../report/table.js';
import {buildReport} from '../report/page.js';
import {writeAtomic} from '../io/file_system.js';
import {ExperimentConfig, runExperiment} from './experiment.js';
import {SPECTRUM_FILE} from './spectrum.js';
import type {TrainOptions} from '../training/trainer.js';

export interface DemoOptions {
  /** Folder the two runs go into (one subfolder per norm). */
  outDir: string;
  epochs: number;
  noise: number;
  seed: number;
  batchSize: number;
  lr: number;
  norms: NormKind[];
  /** Fraction of the 8,000 training digits used (1 in the demo; less in tests). */
  trainFraction?: number;
  log?: TrainOptions['log'];
}

export interface DemoResult {
  norm: NormKind;
  runDir: string;
  testTop1: number;
  /** Accuracy on the (noisy) training labels during the last epoch. */
  trainTop1: number;
  trainSeconds: number;
  /** Per conv unit: the folded spectral norm (see unitSpectra). */
  spectralNorms: number[];
}

export async function runDemo(o: DemoOptions): Promise<DemoResult[]> {
  const results: DemoResult[] = [];
  for (const norm of o.norms) {
    const config: Partial<ExperimentConfig> = {
      dataset: 'mnist-embedded', model: 'small-cnn', norm, epochs: o.epochs, batchSize: o.batchSize, lr: o.lr,
      schedule: 'cosine', noise: o.noise, noiseType: 'symmetric', seed: o.seed, runDir: join(o.outDir, norm),
      trainFraction: o.trainFraction ?? 1,
    };
    o.log?.write(`\n== small CNN, ${norm} ==\n`);
    const run = await runExperiment(config, {log: o.log});
    try {
      const last = run.history[run.history.length - 1];
      // As `convnorm spectrum <run> --power-iterations 0` stores them, so that the run holds its spectra.
      const spectra = unitSpectra(run.model, {values: true, powerIterations: 0});
      await storeResults(join(run.runDir, SPECTRUM_FILE), 'spectrum', [{
        settings: {epoch: run.epochs, powerIterations: 0, seed: 0}, result: spectra, savedAt: new Date().toISOString(),
      }]);
      results.push({
        norm, runDir: run.runDir, testTop1: last.testTop1!, trainTop1: last.trainTop1,
        trainSeconds: run.history.reduce((s, r) => s + r.trainSeconds, 0),
        spectralNorms: spectra.units.map(u => u.folded),
      });
    } finally {
      run.model.dispose();
    }
  }
  return results;
}

/** Writes `<outDir>/report.html` for the demo's runs; returns its path and what it could not read. */
export async function writeDemoReport(outDir: string, results: DemoResult[]): Promise<{path: string; problems: string[]}> {
  const path = join(outDir, 'report.html');
  const report = await buildReport(results.map(r => r.runDir), {output: path});
  await writeAtomic(path, report.html);
  return {path, problems: report.problems};
}

export function formatDemoResults(results: DemoResult[]): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  return formatTable(
    ['norm', 'clean test top-1', 'noisy train top-1', 'train time', 'layer spectral norms (conv units)',
     'max', 'product'],
    results.map(r => [
      r.norm, pct(r.testTop1), pct(r.trainTop1), `${r.trainSeconds.toFixed(0)} s`,
      r.spectralNorms.map(s => s.toFixed(2)).join(' '),
      Math.max(...r.spectralNorms).toFixed(2),
      r.spectralNorms.reduce((a, b) => a * b, 1).toExponential(2),
    ]));
}
