/**
 * The demo page in headless Chromium, served by the real `convnorm
 * serve-demo` command (built dist/): it loads with no console error; the
 * |FFT| view renders and shows ConvNorm's isometry; a trained run's model
 * files load and wrong ones get a message while the page keeps working;
 * the threaded wasm build runs because the server isolates the page; and a
 * few training steps on webgl update the charts. A screenshot goes to
 * test/screenshots/ (gitignored). Skips, saying why, without Chromium.
 */
import assert from 'node:assert/strict';
import {ChildProcess, spawn, spawnSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {after, before, describe, it} from 'node:test';

import * as tfl from '@tensorflow/tfjs-layers';
import type {Browser, Page} from 'playwright-core';

import {fileSystem} from '../src/io/file_system.js';
import {smallCnn} from '../src/models/small_cnn.js';
import {useTestBackend} from './helpers/backends.js';
import {chromiumMissing, launchChromium} from './helpers/chromium.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const SCREENSHOTS = join(REPO, 'test/screenshots');
const missing = chromiumMissing();

async function startServer(): Promise<{url: string; child: ChildProcess}> {
  const child = spawn(process.execPath, [join(REPO, 'dist/cli/main.js'), 'serve-demo', '--port', '0'],
                      {stdio: ['ignore', 'pipe', 'pipe']});
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', chunk => {
      out += chunk;
      const match = /http:\/\/\S+\//.exec(out);
      if (match) resolve(match[0]);
    });
    child.once('exit', code => reject(new Error(`serve-demo exited with ${code}: ${out}`)));
  });
  return {url, child};
}

describe('the demo page in Chromium', {skip: missing}, () => {
  let browser: Browser;
  let server: {url: string; child: ChildProcess};
  let page: Page;
  let folder: string;
  const errors: string[] = [];

  before(async () => {
    folder = mkdtempSync(join(tmpdir(), 'convnorm-demo-'));
    server = await startServer();
    browser = await launchChromium();
    page = await browser.newPage({viewport: {width: 1200, height: 1400}});
    page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', e => errors.push(e.message));
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready]', {timeout: 120_000});
  });

  after(async () => {
    await browser?.close();
    server?.child.kill();
    rmSync(folder, {recursive: true, force: true});
  });

  it('serve-demo sends the isolation headers and refuses a bad port', async () => {
    const response = await fetch(server.url);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(response.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.equal((await fetch(new URL('nothing-here.js', server.url))).status, 404);
    const bad = spawnSync(process.execPath, [join(REPO, 'dist/cli/main.js'), 'serve-demo', '--port', '70000'], {encoding: 'utf8'});
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--port must be an integer from 0 to 65535/);
  });

  it('the |FFT| view of a random kernel: every channel an isometry after ConvNorm, none before', async () => {
    assert.equal(await page.getAttribute('#fft-view', 'data-channels'), '8');
    // 8 channels, a map before and after each: Plot draws each raster as an SVG image.
    assert.equal(await page.locator('#fft-view .gain-maps svg image').count(), 16);
    const rows = await page.locator('#fft-view tbody tr').evaluateAll(trs =>
      trs.map(tr => [...tr.querySelectorAll('td')].map(td => Number(td.textContent))));
    assert.equal(rows.length, 8);
    for (const [, normConv, normConvNorm, errorConv, errorConvNorm] of rows) {
      assert.ok(errorConv > 0.1 && normConv < 0.95, `conv: norm ${normConv}, isometry error ${errorConv}`);
      // float32 V on the page's backend: about 1e-7.
      assert.ok(errorConvNorm < 1e-5 && Math.abs(normConvNorm - 1) < 1e-4, `ConvNorm: ${normConvNorm}, ${errorConvNorm}`);
    }
    await page.fill('#cout', '3');
    await page.dispatchEvent('#cout', 'change');
    await page.waitForFunction(() => document.getElementById('fft-view')!.dataset.channels === '3');
    assert.equal(await page.locator('#fft-view .gain-maps svg image').count(), 6);
  });

  it('a trained run\'s model files load; wrong ones get a message and change nothing', async () => {
    await useTestBackend('cpu');
    const model = smallCnn({norm: 'convnorm', inputShape: [28, 28, 1], seed: 4});
    const good = join(folder, 'good');
    await model.save(fileSystem(good));
    model.dispose();
    const dense = tfl.sequential({layers: [tfl.layers.dense({inputShape: [4], units: 2})]});
    const other = join(folder, 'other');
    await dense.save(fileSystem(other));
    dense.dispose();
    const cut = join(folder, 'cut');
    mkdirSync(cut);
    writeFileSync(join(cut, 'model.json'), readFileSync(join(good, 'model.json')));
    writeFileSync(join(cut, 'weights.bin'), readFileSync(join(good, 'weights.bin')).subarray(0, 1000));
    writeFileSync(join(folder, 'broken.json'), '{"modelTopology": ');

    const heading = await page.textContent('#fft-view .kernel-heading');
    const cases: [string[], RegExp][] = [
      [[join(cut, 'model.json'), join(cut, 'weights.bin')], /weights\.bin: 1000 bytes, but model\.json lists \d+ bytes of weights \(truncated\?\)/],
      [[join(other, 'model.json'), join(other, 'weights.bin')], /model\.json has no convolution/],
      [[join(good, 'model.json')], /names the weight file weights\.bin, which was not dropped/],
      [[join(folder, 'broken.json')], /broken\.json is not JSON/],
    ];
    for (const [files, message] of cases) {
      await page.setInputFiles('#model-files', files);
      await page.waitForSelector('#kernel-message:not([hidden])');
      assert.match(await page.textContent('#kernel-message') ?? '', message);
      assert.equal(await page.textContent('#fft-view .kernel-heading'), heading, 'the view is unchanged');
      assert.equal(await page.isHidden('#layer-choice'), true);
    }
    await page.setInputFiles('#model-files', [join(good, 'model.json'), join(good, 'weights.bin')]);
    await page.waitForSelector('#layer-choice:not([hidden])');
    assert.equal(await page.isHidden('#kernel-message'), true);
    assert.equal(await page.locator('#layer option').count(), 6);
    await page.waitForFunction(() => /ConvNorm2D\): 3x3 kernel, 1 -> 8 channels, input 28x28, Fourier grid 30x30/
      .test(document.querySelector('#fft-view .kernel-heading')?.textContent ?? ''));
    await page.selectOption('#layer', '4');
    await page.waitForFunction(() => /16 -> 32 channels, input 7x7, Fourier grid 9x9/
      .test(document.querySelector('#fft-view .kernel-heading')?.textContent ?? ''));
    assert.equal(await page.getAttribute('#fft-view', 'data-channels'), '32');
    await page.click('#random');
    await page.waitForFunction(() => document.getElementById('fft-view')!.dataset.channels === '3');
  });

  it('wasm: the SIMD module and the threaded build run (serve-demo isolates the page)', async () => {
    await page.selectOption('#backend', 'wasm');
    await page.waitForFunction(() => document.body.dataset.backend === 'wasm', null, {timeout: 60_000});
    assert.match(await page.textContent('#engine') ?? '', /running on wasm: SIMD module on; threads on/);
  });

  it('webgl: a few training steps of both networks update the charts and the table', async () => {
    await page.selectOption('#backend', 'webgl');
    await page.waitForFunction(() => document.body.dataset.backend === 'webgl', null, {timeout: 60_000});
    assert.equal(await page.getAttribute('#loss-chart', 'data-points'), '0');
    await page.fill('#steps', '2');
    await page.fill('#batch', '16');
    await page.fill('#test-every', '2');
    await page.click('#train');
    await page.waitForFunction(() => document.getElementById('train-status')!.textContent === 'done on webgl', null,
                               {timeout: 240_000});
    // Two steps of two networks, a test top-1 each after the second.
    assert.equal(await page.getAttribute('#loss-chart', 'data-points'), '4');
    assert.equal(await page.getAttribute('#accuracy-chart', 'data-points'), '2');
    assert.equal(await page.locator('#loss-chart svg [aria-label=line] path').count(), 2);
    const rows = await page.locator('#train-stats tr').evaluateAll(trs =>
      trs.map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent ?? '')));
    assert.deepEqual(rows.map(r => r.slice(0, 2)), [['ConvNorm+BN', '2'], ['BN', '2']]);
    for (const r of rows) assert.ok(Number(r[2]) > 0 && Number(r[4]) > 0, `loss and images/s: ${r}`);
    mkdirSync(SCREENSHOTS, {recursive: true});
    await page.screenshot({path: join(SCREENSHOTS, 'demo.png'), fullPage: true});
    assert.deepEqual(errors, [], 'console errors');
  });
});
