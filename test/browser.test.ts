/**
 * The reference fixtures in real headless Chromium (Debian's chromium driven
 * by playwright-core), on every backend a page can use: webgl and webgpu
 * (both SwiftShader, software, here), wasm threaded (the test's server sends
 * COOP/COEP, so the page is cross-origin isolated) and single-threaded, and
 * cpu. The page bundles the built main entry (dist/index.js), as a web app
 * would. Skips, saying why, where Chromium is not installed.
 */
import assert from 'node:assert/strict';
import {rmSync} from 'node:fs';
import {Server} from 'node:http';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {after, before, describe, it} from 'node:test';

import type {Browser} from 'playwright-core';

import type {ReferenceRun} from './browser/reference_page.js';
import {bundlePage, chromiumMissing, launchChromium, serve, WASM_DIR} from './helpers/chromium.js';
import {NODE_TOLERANCES, Tolerances} from './helpers/reference_checks.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const missing = chromiumMissing();

/**
 * The Node tolerances hold on every backend: webgl (float32 textures) and
 * webgpu on SwiftShader sum in other orders than cpu, and their worst
 * relative error here is 2.7e-5 against cpu's and wasm's 2-3e-6, still within
 * 1e-4 (each test prints its worst).
 */
const TOLERANCES: Record<string, Tolerances> = {
  webgl: NODE_TOLERANCES, webgpu: NODE_TOLERANCES, wasm: NODE_TOLERANCES, cpu: NODE_TOLERANCES,
};

/**
 * The layer's default ('auto') computes with 'fourier' for every kernel but
 * 1x1, so that is what webgl and webgpu check (SwiftShader compiles a shader
 * per op and shape, and both methods take minutes there); wasm and cpu check
 * the reference's 'spatial' algorithm too.
 */
const METHODS: Record<string, ('spatial' | 'fourier')[]> = {
  webgl: ['fourier'], webgpu: ['fourier'], wasm: ['spatial', 'fourier'], cpu: ['spatial', 'fourier'],
};

describe('reference fixtures in Chromium', {skip: missing}, () => {
  let browser: Browser;
  let folder: string;
  const servers: Server[] = [];
  const urls: {isolated?: string; plain?: string} = {};

  before(async () => {
    folder = await bundlePage(join(REPO, 'test/browser/reference_page.ts'), 'convnorm-browser-');
    const routes = {
      '/fixtures/': join(REPO, 'test/fixtures'),
      '/wasm/': WASM_DIR,
      '/': folder,
    };
    for (const isolated of [true, false]) {
      const {url, server} = await serve(routes, isolated);
      servers.push(server);
      urls[isolated ? 'isolated' : 'plain'] = url;
    }
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    for (const s of servers) s.close();
    rmSync(folder, {recursive: true, force: true});
  });

  async function run(backend: string, url: string): Promise<ReferenceRun> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', e => errors.push(e.message));
    try {
      await page.goto(url);
      await page.waitForFunction(() => 'runReference' in globalThis);
      const result = await page.evaluate(([b, t, m]) =>
        (globalThis as unknown as {runReference: (b: string, t: Tolerances, m: string[]) => Promise<ReferenceRun>})
          .runReference(b, t, m), [backend, TOLERANCES[backend], METHODS[backend]] as const);
      assert.deepEqual(errors, [], 'console errors');
      return result;
    } finally {
      await context.close();
    }
  }

  for (const [backend, isolated] of [['webgl', false], ['webgpu', false], ['wasm', true], ['wasm', false],
                                     ['cpu', false]] as const) {
    const label = backend === 'wasm' ? `wasm, ${isolated ? 'threaded (cross-origin isolated)' : 'single-threaded'}` : backend;
    it(`${label}: spectrum, op, layer, gradients, running V and inference match the reference`, async t => {
      const result = await run(backend, isolated ? urls.isolated! : urls.plain!);
      t.diagnostic(`${label}: worst relative error ${result.worst.toExponential(2)}; engine ${JSON.stringify(result.info)}` +
                   (result.threads === undefined ? '' : `; ${result.threads} wasm thread(s)`));
      assert.equal(result.backend, backend);
      assert.deepEqual(result.failures, []);
      assert.equal(result.tensors[1], result.tensors[0], 'tensors left behind');
      if (backend === 'wasm') {
        assert.equal(result.info?.simdModule?.running, true, `SIMD module: ${JSON.stringify(result.info)}`);
        // The threaded build runs on shared memory; how many threads XNNPACK's pool then starts is tfjs's choice.
        assert.equal(result.info?.wasmThreads?.running, isolated, `threads: ${JSON.stringify(result.info)}`);
      }
    });
  }
});
