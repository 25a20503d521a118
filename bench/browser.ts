/**
 * `npm run bench -- --browser`: ConvNorm(+BN) against Conv+BN in headless
 * Chromium on each backend a page can use (webgpu and webgl on SwiftShader
 * here, software; wasm threaded, the page being cross-origin isolated; cpu),
 * a page per backend. Prints the ratios and writes the JSON.
 */
import {mkdirSync, renameSync, rmSync, writeFileSync} from 'node:fs';
import {dirname} from 'node:path';
import {fileURLToPath} from 'node:url';

import {BROWSER_BACKENDS} from '../src/engine/backend.js';
import {formatTable} from '../src/report/table.js';
import {bundlePage, chromiumMissing, launchChromium, serve, WASM_DIR} from '../test/helpers/chromium.js';
import type {BrowserBenchConfig, BrowserBenchResult} from './browser_page.js';

export interface BrowserBenchOptions extends BrowserBenchConfig {
  backends: string[];
  json: string;
}

const f = (x: number | undefined, digits = 0) => x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);

export async function benchBrowser(opts: BrowserBenchOptions): Promise<void> {
  const missing = chromiumMissing();
  if (missing !== undefined) throw new Error(missing);
  const unknown = opts.backends.filter(b => !(BROWSER_BACKENDS as readonly string[]).includes(b));
  if (unknown.length > 0) throw new Error(`unknown browser backend ${unknown}; choose from ${BROWSER_BACKENDS.join(', ')}`);
  const folder = await bundlePage(fileURLToPath(new URL('browser_page.ts', import.meta.url)), 'convnorm-bench-browser-');
  const {url, server} = await serve({'/wasm/': WASM_DIR, '/': folder}, true);
  const browser = await launchChromium();
  const config: BrowserBenchConfig = {reps: opts.reps, steps: opts.steps, unit: opts.unit, batch: opts.batch};
  const results: (BrowserBenchResult | {backend: string; error: string})[] = [];
  try {
    for (const backend of opts.backends) {
      const page = await browser.newPage();
      try {
        await page.goto(url);
        await page.waitForFunction(() => 'benchBackend' in globalThis);
        const r = await page.evaluate(([b, c]) =>
          (globalThis as unknown as {benchBackend: (b: string, c: BrowserBenchConfig) => Promise<BrowserBenchResult>})
            .benchBackend(b, c), [backend, config] as const);
        results.push(r);
        console.error(`  ${backend}: ${JSON.stringify(r)}`);
      } catch (e) {
        results.push({backend, error: (e as Error).message.split('\n')[0]});
        console.error(`  ${backend}: ${(e as Error).message}`);
      } finally {
        await page.close();
      }
    }
  } finally {
    await browser.close();
    server.close();
    rmSync(folder, {recursive: true, force: true});
  }
  const version = browser.version();
  mkdirSync(dirname(opts.json), {recursive: true});
  writeFileSync(`${opts.json}.tmp`, JSON.stringify({date: new Date().toISOString(), chromium: version, options: opts,
                                                    results}, null, 1));
  renameSync(`${opts.json}.tmp`, opts.json);
  const {channels, size, batch} = opts.unit;
  console.log(`\nChromium ${version}, headless (webgl and webgpu on SwiftShader, software). Median ms; ` +
              `unit: ${channels} -> ${channels} channels, 3x3, ${size}x${size}, batch ${batch}, forward + backward; ` +
              `small-CNN training step: 32x32x3, batch ${opts.batch}.`);
  console.log(formatTable(
    ['backend', 'unit Conv+BN', 'unit ConvNorm', 'ratio', 'step Conv+BN', 'step ConvNorm', 'ratio', 'tensors/step'],
    results.map(r => 'error' in r ? [r.backend, r.error, '', '', '', '', '', ''] : [
      r.backend, f(r.unitMs.bn, 1), f(r.unitMs.convnorm, 1), f(r.unitMs.convnorm / r.unitMs.bn, 2),
      f(r.stepMs.bn, 1), f(r.stepMs.convnorm, 1), f(r.stepMs.convnorm / r.stepMs.bn, 2),
      `${[...new Set(r.tensors.bn)].join(',')} / ${[...new Set(r.tensors.convnorm)].join(',')}`,
    ])));
  console.log(`Results: ${opts.json}`);
}
