/**
 * `convnorm spectrum <run-dir>`: every conv unit's spectral norms in the
 * run's checkpoint (kernel, folded unit, strided, power iteration) and the
 * network's Lipschitz bounds, printed as a table, stored with all singular
 * values in the run's spectrum.json and, with --json, written to a file of
 * its own (singular values with --values).
 */
import {ModelSpectra, unitSpectra} from '../analysis/layer_spectra.js';
import type {ResultEntry} from '../io/results.js';
import {formatTable} from '../report/table.js';
import {progressReporter} from './progress.js';
import {startRunCommand} from './run_model.js';

export const SPECTRUM_FILE = 'spectrum.json';

export interface SpectrumCommandOptions {
  json?: string;
  values: boolean;
  powerIterations: number;
  seed: number;
}

/** How a spectrum is keyed in spectrum.json. */
export interface SpectrumEntrySettings {
  epoch: number;
  powerIterations: number;
  seed: number;
}

const fmt = (x: number | null) => (x === null ? '-' : x < 1e4 ? x.toFixed(3) : x.toExponential(3));

export function formatSpectrumTable(s: ModelSpectra): string {
  const table = formatTable(
    ['unit', 'norm', 'input', 'stride', 'grid', 'conv', 'folded', 'strided', 'power it.', 'bound'],
    s.units.map(u => [u.name, u.norm, u.inputSize.join('x'), u.stride.join('x'), u.grid.join('x'), fmt(u.conv),
                      fmt(u.folded), fmt(u.strided), fmt(u.powerIteration), fmt(u.bound)]));
  return `${table}\n\nLipschitz bound of the network (its normalized input): ${fmt(s.lipschitzBound)}; ` +
    `product of the circular values (strided where exact, else folded): ${fmt(s.circularBound)}`;
}

/** Runs the command; options, the run's spectrum.json and the --json folder are checked before any work. */
export async function spectrumCommand(runDir: string, options: SpectrumCommandOptions,
                                      startEngine: () => Promise<string>): Promise<void> {
  if (!Number.isInteger(options.powerIterations) || options.powerIterations < 0) {
    throw new Error(`--power-iterations must be an integer >= 0, got ${options.powerIterations}`);
  }
  const {run, engine, finish} = await startRunCommand(runDir, {
    store: {file: SPECTRUM_FILE, kind: 'spectrum'}, json: options.json, testSet: false}, startEngine);
  try {
    console.error(`${runDir} (epoch ${run.state.epoch}, ${run.spec.architecture} ${run.spec.norm}, input ` +
                  `${run.spec.inputShape.join('x')}), backend ${engine}; inference mode, circular boundary on each ` +
                  `unit's (H + k - 1) x (W + k - 1) grid, ${options.powerIterations} power iterations per unit`);
    const progress = progressReporter('spectrum');
    let spectra: ModelSpectra;
    try {
      spectra = unitSpectra(run.model, {values: true, powerIterations: options.powerIterations, seed: options.seed,
                                        onUnit: (done, total, name) => progress.update(done, total, name)});
    } finally {
      progress.stop();
    }
    console.log(formatSpectrumTable(spectra));
    const entry: ResultEntry<SpectrumEntrySettings, ModelSpectra> = {
      settings: {epoch: run.state.epoch, powerIterations: options.powerIterations, seed: options.seed},
      result: spectra, savedAt: new Date().toISOString(),
    };
    const units = options.values ? spectra.units : spectra.units.map(({values: _values, ...u}) => u);
    const where = await finish([entry], {run: runDir, epoch: run.state.epoch, ...spectra, units});
    console.log(`\n${where} The stored spectra hold every singular value.`);
  } finally {
    run.model.dispose();
  }
}
