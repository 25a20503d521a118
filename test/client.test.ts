/**
 * The package as a user gets it: `npm pack`, the tarball installed into a
 * fresh app folder beside the umbrella @tensorflow/tfjs and Vite (from the
 * npm cache where it has them, else the registry), the app of
 * test/client/ (two ConvNorm2D layers and model.fit) built with `vite
 * build`, opened in headless Chromium, where it trains a few steps. Skips,
 * saying why, without Chromium.
 */
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {Server} from 'node:http';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {after, describe, it} from 'node:test';

import type {Browser} from 'playwright-core';

import {chromiumMissing, launchChromium, serve} from './helpers/chromium.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const missing = chromiumMissing();

/** The version the repository pins, so that the app and the package share one tfjs. */
function pinned(name: string): string {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  return pkg.dependencies?.[name] ?? pkg.devDependencies[name];
}

describe('a web app built with the packed package', {skip: missing}, () => {
  const folder = mkdtempSync(join(tmpdir(), 'convnorm-client-'));
  let browser: Browser | undefined;
  let server: Server | undefined;

  after(async () => {
    await browser?.close();
    server?.close();
    rmSync(folder, {recursive: true, force: true});
  });

  it('npm pack, npm install with @tensorflow/tfjs and vite, vite build, and two ConvNorm2D layers train in Chromium', async t => {
    // dist/ is built (npm test builds before testing): pack it as is.
    const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', folder],
                                           {cwd: REPO, encoding: 'utf8'}))[0];
    const files = (packed.files as {path: string}[]).map(f => f.path);
    assert.ok(files.includes('dist/index.js') && files.includes('dist/node.js') && files.includes('dist/demo/index.html'));
    assert.deepEqual(files.filter(f => /^(src|test|reference|bench|scratch)\//.test(f)), [], 'sources stay out of the tarball');

    const app = join(folder, 'app');
    cpSync(join(REPO, 'test/client'), app, {recursive: true});
    writeFileSync(join(app, 'package.json'), JSON.stringify({
      name: 'convnorm-client', private: true, type: 'module',
      dependencies: {'convnorm': `file:../${packed.filename}`, '@tensorflow/tfjs': pinned('@tensorflow/tfjs')},
      devDependencies: {vite: pinned('vite')},
    }, null, 2));
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'],
                 {cwd: app, stdio: 'pipe'});
    // One tfjs engine: the package's tfjs-core is the app's, not a copy of its own.
    assert.equal(existsSync(join(app, 'node_modules/convnorm/node_modules/@tensorflow/tfjs-core')), false);
    execFileSync(join(app, 'node_modules/.bin/vite'), ['build', '--logLevel', 'error'], {cwd: app, stdio: 'pipe'});

    const site = await serve({'/': join(app, 'dist')}, false);
    server = site.server;
    browser = await launchChromium();
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', e => errors.push(e.message));
    await page.goto(site.url);
    await page.waitForFunction(() => 'result' in globalThis, null, {timeout: 180_000});
    const result = await page.evaluate(() => (globalThis as unknown as {result: Record<string, unknown>}).result);
    assert.equal(result.error, undefined, String(result.error));
    // The umbrella package brings webgl and cpu; useBackend picks webgl, the fastest of them.
    assert.equal(result.backend, 'webgl');
    assert.deepEqual(result.layers, ['ConvNorm2D', 'ReLU', 'ConvNorm2D', 'ReLU', 'GlobalAveragePooling2D', 'Dense']);
    const losses = result.losses as number[];
    t.diagnostic(`losses on ${result.backend}: ${losses.map(l => l.toFixed(4)).join(', ')}`);
    assert.equal(losses.length, 6);
    // Full-batch steps on a separable task: every step lowers the loss.
    for (let i = 1; i < losses.length; i++) assert.ok(losses[i] < losses[i - 1], `losses ${losses}`);
    assert.deepEqual(errors, []);
  });
});
