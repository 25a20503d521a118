/**
 * The demo page: ConvNorm's effect on a kernel, and the small CNN trained
 * live with ConvNorm(+BN) and with BN, on the backend the user picks. Built
 * by scripts/build-demo.mjs into dist/demo/, served by `convnorm serve-demo`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import {setThreadsCount, setWasmPaths} from '@tensorflow/tfjs-backend-wasm';

import {BROWSER_BACKENDS, BrowserBackendName, ConvKernel, engineInfo, useBackend} from '../../index.js';
import {drawCurves} from './charts.js';
import {Digits, fetchDigits} from './digits.js';
import {analyseKernel, randomKernel, renderAnalysis} from './kernel_view.js';
import {LiveProgress, SERIES, trainLive} from './live_training.js';
import {loadDroppedModel} from './model_file.js';

// The .wasm files sit in wasm/ beside the page; threads need a cross-origin isolated page (serve-demo sends COOP/COEP).
setWasmPaths(new URL('wasm/', location.href).href);
if (globalThis.crossOriginIsolated) setThreadsCount(navigator.hardwareConcurrency);

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const number = (id: string) => Number($<HTMLInputElement>(id).value);

function show(id: string, error: unknown): void {
  const message = $(id);
  message.textContent = error === undefined ? '' : (error instanceof Error ? error.message : String(error));
  message.hidden = error === undefined;
}

// ---- Backend ----

let training: AbortController | undefined;
let trainingDone: Promise<unknown> = Promise.resolve();

async function switchBackend(): Promise<void> {
  training?.abort();
  await trainingDone;
  const choice = $<HTMLSelectElement>('backend').value;
  try {
    const name = await useBackend(choice === '' ? undefined : choice as BrowserBackendName);
    const info = engineInfo();
    const notes = [info?.simdModule && `SIMD module ${info.simdModule.running ? 'on' : `off (${info.simdModule.reason})`}`,
                   info?.wasmThreads && `threads ${info.wasmThreads.running ? 'on' : `off (${info.wasmThreads.reason})`}`]
      .filter(Boolean);
    $('engine').textContent = `running on ${name}${notes.length ? `: ${notes.join('; ')}` : ''}`;
    document.body.dataset.backend = name;
    show('backend-message', undefined);
  } catch (e) {
    show('backend-message', e);
  }
  await drawKernel();
}

// ---- Kernel view ----

let kernels: ConvKernel[] = [];

async function drawKernel(): Promise<void> {
  const view = $('fft-view');
  try {
    const layer = $<HTMLSelectElement>('layer');
    const conv = kernels.length > 0 ? kernels[Number(layer.value)] : randomKernel({
      inChannels: number('cin'), filters: number('cout'), kernelSize: number('ksize'), inputSize: number('isize'),
      seed: number('kseed'),
    });
    renderAnalysis(view, conv, await analyseKernel(conv));
    show('kernel-message', undefined);
  } catch (e) {
    show('kernel-message', e);
  }
}

function useRandomKernel(): void {
  kernels = [];
  $('layer-choice').hidden = true;
  void drawKernel();
}

async function useModelFiles(files: File[]): Promise<void> {
  try {
    const loaded = await loadDroppedModel(files);
    kernels = loaded;
    const layer = $<HTMLSelectElement>('layer');
    layer.replaceChildren(...loaded.map((k, i) => new Option(`${k.name} (${k.className}, ${k.kernel.shape.join('x')})`, String(i))));
    show('kernel-message', undefined);
    $('layer-choice').hidden = false;
    await drawKernel();
  } catch (e) {
    // The view keeps what it showed: a bad file changes nothing.
    show('kernel-message', e);
  }
}

// ---- Live training ----

let digits: Promise<Digits> | undefined;

function renderProgress(p: LiveProgress): void {
  drawCurves($('loss-chart'), p.losses, SERIES, 'training loss');
  drawCurves($('accuracy-chart'), p.accuracies, SERIES, 'test top-1', true);
  const body = $<HTMLTableSectionElement>('train-stats');
  body.replaceChildren(...p.stats.map(s => {
    const row = document.createElement('tr');
    for (const text of [s.series, String(s.step), Number.isFinite(s.loss) ? s.loss.toFixed(4) : '-',
                        s.testTop1 === undefined ? '-' : `${(100 * s.testTop1).toFixed(1)} %`,
                        s.imagesPerSecond > 0 ? s.imagesPerSecond.toFixed(1) : '-']) {
      const td = document.createElement('td');
      td.textContent = text;
      row.append(td);
    }
    return row;
  }));
  $('train-status').textContent = `${p.done ? 'done' : 'training'} on ${tf.getBackend()}`;
}

async function startTraining(): Promise<void> {
  const button = $<HTMLButtonElement>('train');
  if (training !== undefined) {
    training.abort();
    return;
  }
  show('train-message', undefined);
  training = new AbortController();
  button.textContent = 'Stop';
  const run = (async () => {
    try {
      digits ??= fetchDigits();
      const {train, test} = await digits;
      await trainLive(train, test, {steps: number('steps'), batchSize: number('batch'), learningRate: number('lr'),
                                    testEvery: number('test-every'), seed: number('tseed')},
                      renderProgress, training!.signal);
    } catch (e) {
      digits = undefined;
      show('train-message', location.protocol === 'file:' && (e as Error).message.includes('fetch')
        ? 'the page cannot read digits.bin from a file:// URL; open it through npx convnorm serve-demo' : e);
    } finally {
      training = undefined;
      button.textContent = 'Train';
    }
  })();
  trainingDone = run;
  await run;
}

// ---- Wiring ----

function wire(): void {
  const backend = $<HTMLSelectElement>('backend');
  backend.append(...BROWSER_BACKENDS.map(b => new Option(b, b)));
  backend.addEventListener('change', () => void switchBackend());
  $('random').addEventListener('click', useRandomKernel);
  $('kernel-form').addEventListener('change', () => { if (kernels.length === 0) void drawKernel(); });
  $('layer').addEventListener('change', () => void drawKernel());
  const input = $<HTMLInputElement>('model-files');
  input.addEventListener('change', () => void useModelFiles([...input.files ?? []]));
  const drop = $('drop');
  drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', e => {
    e.preventDefault();
    drop.classList.remove('over');
    void useModelFiles([...e.dataTransfer?.files ?? []]);
  });
  $('train').addEventListener('click', () => void startTraining());
  renderProgress({losses: [], accuracies: [], done: false,
                  stats: SERIES.map(series => ({series, step: 0, loss: NaN, testTop1: undefined, imagesPerSecond: 0}))});
}

wire();
void switchBackend().then(() => { document.body.dataset.ready = 'true'; });
