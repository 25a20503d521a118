// Builds the demo page into dist/demo/ (after tsc has built dist/): the page
// bundled by esbuild as one classic script (so that a file:// open can run
// it), its HTML and CSS, tfjs-backend-wasm's .wasm files, and digits.bin,
// the embedded digits the page trains on (format: src/browser/demo/digits.ts).
import {copyFileSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

import * as esbuild from 'esbuild';

const repo = fileURLToPath(new URL('..', import.meta.url));
const source = join(repo, 'src/browser/demo');
const out = join(repo, 'dist/demo');
const staging = `${out}.tmp`;
const TRAIN = 3000;
const TEST = 500;

rmSync(staging, {recursive: true, force: true});
mkdirSync(join(staging, 'wasm'), {recursive: true});
await esbuild.build({
  entryPoints: [join(source, 'main.ts')], bundle: true, format: 'iife', platform: 'browser', target: 'es2022',
  minify: true, outfile: join(staging, 'demo.js'), logLevel: 'warning',
});
for (const file of ['index.html', 'demo.css']) copyFileSync(join(source, file), join(staging, file));
const wasmDir = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
for (const file of readdirSync(wasmDir).filter(f => f.endsWith('.wasm'))) {
  copyFileSync(join(wasmDir, file), join(staging, 'wasm', file));
}

const {loadEmbeddedMnist} = await import(join(repo, 'dist/data/mnist_embedded.js'));
const train = loadEmbeddedMnist({split: 'train'});
const test = loadEmbeddedMnist({split: 'test'});
const side = train.shape[0];
const image = side * side;
const bytes = new Uint8Array(16 + (TRAIN + TEST) * (1 + image));
bytes.set([...'CNDG'].map(c => c.charCodeAt(0)));
const view = new DataView(bytes.buffer);
[TRAIN, TEST, side].forEach((n, i) => view.setUint32(4 + 4 * i, n, true));
bytes.set(train.labels.subarray(0, TRAIN), 16);
bytes.set(test.labels.subarray(0, TEST), 16 + TRAIN);
bytes.set(train.pixels.subarray(0, TRAIN * image), 16 + TRAIN + TEST);
bytes.set(test.pixels.subarray(0, TEST * image), 16 + TRAIN + TEST + TRAIN * image);
writeFileSync(join(staging, 'digits.bin'), bytes);

rmSync(out, {recursive: true, force: true});
renameSync(staging, out);
