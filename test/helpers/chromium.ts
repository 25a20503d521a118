/**
 * Headless Chromium for the browser tests: Debian's chromium driven by
 * playwright-core (never a browser playwright downloads), pages served by a
 * local server of the test's own, optionally cross-origin isolated (COOP and
 * COEP headers, which threaded wasm needs).
 */
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs';
import {createServer, Server} from 'node:http';
import {AddressInfo} from 'node:net';
import {tmpdir} from 'node:os';
import {dirname, extname, join, normalize} from 'node:path';
import {fileURLToPath} from 'node:url';

import * as esbuild from 'esbuild';
import {Browser, chromium} from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why Chromium tests cannot run here, or undefined when they can. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined
    : `${CHROMIUM} is absent (apt-get install chromium; .ci/run installs it): the Chromium tests skip`;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--enable-unsafe-swiftshader', '--enable-unsafe-webgpu'],
  });
}

/** Where tfjs-backend-wasm's .wasm files are: beside the package's main file. */
export const WASM_DIR = dirname(fileURLToPath(import.meta.resolve('@tensorflow/tfjs-backend-wasm')));

/**
 * A new temporary folder holding `entry` bundled for the browser by esbuild
 * (page.js, an ES module) and the index.html that loads it.
 */
export async function bundlePage(entry: string, prefix: string): Promise<string> {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  await esbuild.build({entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser',
                       outfile: join(folder, 'page.js'), logLevel: 'warning'});
  writeFileSync(join(folder, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
                '<script type="module" src="page.js"></script>');
  return folder;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm',
  '.png': 'image/png', '.css': 'text/css',
};

/** Serves `routes` (URL prefix -> folder) on 127.0.0.1; with `isolated`, as a cross-origin isolated site. */
export async function serve(routes: Record<string, string>, isolated: boolean): Promise<{url: string; server: Server}> {
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
    if (path === '/favicon.ico') {
      response.writeHead(204).end();
      return;
    }
    const prefix = Object.keys(routes).sort((a, b) => b.length - a.length).find(p => path.startsWith(p));
    const relative = prefix === undefined ? undefined : normalize(path.slice(prefix.length) || 'index.html');
    const file = prefix === undefined || relative!.startsWith('..') ? undefined : join(routes[prefix], relative!);
    if (file === undefined || !existsSync(file)) {
      response.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = {'content-type': TYPES[extname(file)] ?? 'application/octet-stream'};
    if (isolated) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    response.writeHead(200, headers).end(readFileSync(file));
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return {url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server};
}
