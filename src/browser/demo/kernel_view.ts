/**
 * ConvNorm's effect on one kernel: each output channel's |FFT| before and
 * after the preconditioning V (computed by the layer's own convNormSpectrum
 * on the running backend), the channel spectral norms and how far each
 * channel is from an isometry.
 */
import * as tf from '@tensorflow/tfjs-core';

import {channelResponse, ChannelResponse, ConvKernel, convNormSpectrum, KernelValues, Rng,
        spectrumRowScale} from '../../index.js';
import {drawGainLegend, drawGainMap} from './charts.js';
import {checkIntegers} from './checks.js';

/** Channels drawn as maps; the table lists all of them. */
export const CHANNELS_DRAWN = 8;

export interface RandomKernelOptions {
  inChannels: number;
  filters: number;
  kernelSize: number;
  /** Input height and width; the grid is inputSize + kernelSize - 1. */
  inputSize: number;
  seed: number;
}

/** A kernel drawn as PyTorch's Conv2d initializes one, U(-1/sqrt(fan in), 1/sqrt(fan in)), seeded. */
export function randomKernel(o: RandomKernelOptions): ConvKernel {
  checkIntegers([
    ['input channels', o.inChannels, 1, 256], ['output channels', o.filters, 1, 256],
    ['kernel size', o.kernelSize, 1, 9], ['input size', o.inputSize, 1, 64], ['seed', o.seed, 0, 2 ** 31 - 1],
  ]);
  const k = o.kernelSize;
  const shape: KernelValues['shape'] = [k, k, o.inChannels, o.filters];
  const bound = 1 / Math.sqrt(k * k * o.inChannels);
  const rng = new Rng(o.seed);
  const data = Float32Array.from({length: k * k * o.inChannels * o.filters}, () => (2 * rng.next() - 1) * bound);
  return {name: `random ${shape.join('x')}`, className: 'random', kernel: {data, shape},
          inputSize: [o.inputSize, o.inputSize], grid: [o.inputSize + k - 1, o.inputSize + k - 1]};
}

export interface KernelAnalysis {
  before: ChannelResponse;
  after: ChannelResponse;
}

/** V on the running backend (read back asynchronously, as webgl and webgpu want), then both responses in float64. */
export async function analyseKernel(conv: ConvKernel): Promise<KernelAnalysis> {
  const {kernel, grid} = conv;
  const v = tf.tidy(() => convNormSpectrum(tf.tensor4d(kernel.data as Float32Array, [...kernel.shape]), grid));
  const spectrum = await v.data();
  v.dispose();
  const pointwise = kernel.shape[0] === 1 && kernel.shape[1] === 1;
  return {before: channelResponse(kernel, grid),
          after: channelResponse(kernel, grid, spectrumRowScale(spectrum, grid, pointwise))};
}

function cell(row: HTMLTableRowElement, text: string, header = false): void {
  const td = document.createElement(header ? 'th' : 'td');
  td.textContent = text;
  row.append(td);
}

/** Draws the maps of the first channels and the table of every channel into `view`. */
export function renderAnalysis(view: HTMLElement, conv: ConvKernel, {before, after}: KernelAnalysis): void {
  const cout = before.norms.length;
  const top = Math.max(1, ...before.norms, ...after.norms);
  const domain: [number, number] = [0, top];
  const [kh, kw, cin] = conv.kernel.shape;
  const heading = document.createElement('p');
  heading.className = 'kernel-heading';
  heading.textContent = `${conv.name} (${conv.className}): ${kh}x${kw} kernel, ${cin} -> ${cout} channels, ` +
    `input ${conv.inputSize.join('x')}, Fourier grid ${conv.grid.join('x')}` +
    (cout > CHANNELS_DRAWN ? `; maps of the first ${CHANNELS_DRAWN} channels` : '');
  const legend = document.createElement('div');
  drawGainLegend(legend, domain);
  const maps = document.createElement('div');
  maps.className = 'gain-maps';
  for (let k = 0; k < Math.min(cout, CHANNELS_DRAWN); k++) {
    const pair = document.createElement('div');
    pair.className = 'gain-pair';
    const [b, a] = [document.createElement('div'), document.createElement('div')];
    drawGainMap(b, before.gains[k], conv.grid, domain, `channel ${k}: conv`);
    drawGainMap(a, after.gains[k], conv.grid, domain, `channel ${k}: ConvNorm`);
    pair.append(b, a);
    maps.append(pair);
  }
  const table = document.createElement('table');
  table.className = 'channel-table';
  const head = table.createTHead().insertRow();
  for (const h of ['channel', 'spectral norm, conv', 'spectral norm, ConvNorm', 'isometry error, conv',
                   'isometry error, ConvNorm']) cell(head, h, true);
  const body = table.createTBody();
  for (let k = 0; k < cout; k++) {
    const row = body.insertRow();
    cell(row, String(k));
    for (const x of [before.norms[k], after.norms[k]]) cell(row, x.toFixed(4));
    for (const x of [before.isometryErrors[k], after.isometryErrors[k]]) cell(row, x.toExponential(2));
  }
  const summary = document.createElement('p');
  summary.className = 'kernel-summary';
  summary.textContent = `Largest channel spectral norm: ${Math.max(...before.norms).toFixed(4)} before, ` +
    `${Math.max(...after.norms).toFixed(4)} after ConvNorm; largest isometry error max |(|FFT|^2 - 1)|: ` +
    `${Math.max(...before.isometryErrors).toExponential(2)} before, ${Math.max(...after.isometryErrors).toExponential(2)} after.`;
  view.replaceChildren(heading, summary, legend, maps, table);
  view.dataset.channels = String(cout);
}
