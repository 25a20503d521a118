/**
 * The package as users import it: the main entry (dist/index.js, what
 * `import ... from 'convnorm'` loads) bundles for a browser with esbuild,
 * without Node built-ins or polyfills, and pulls in none of the Node-only
 * modules; the Node entry (`convnorm/node`) adds them, with Node's useBackend.
 */
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {describe, it} from 'node:test';

import * as esbuild from 'esbuild';

const REPO = new URL('..', import.meta.url);

/** The package's own source modules a bundle of `entry` contains, and its text. */
async function bundle(entry: string): Promise<{modules: string[]; text: string}> {
  const result = await esbuild.build({
    entryPoints: [new URL(entry, REPO).pathname], bundle: true, platform: 'browser', format: 'esm', write: false,
    logLevel: 'silent', metafile: true,
  });
  const modules = Object.keys(result.metafile.inputs).filter(path => path.startsWith('dist/'));
  return {modules, text: new TextDecoder().decode(result.outputFiles[0].contents)};
}

describe('the package entries', () => {
  it('the main entry bundles for a browser, with no Node built-in and no Node-only module', async () => {
    const {modules, text} = await bundle('dist/index.js');
    assert.ok(modules.includes('dist/convnorm/layer.js') && modules.includes('dist/engine/backend.js'), `${modules}`);
    const nodeOnly = modules.filter(m => /^dist\/(node|io|cli)\/|^dist\/node\.js$|trainer|checkpoint|data\/(load|cifar|mnist|files|idx)/.test(m));
    assert.deepEqual(nodeOnly, []);
    // esbuild refuses node: imports for the browser platform; what tfjs itself guards stays (process.versions).
    assert.doesNotMatch(text, /require\(["']node:|from ["']node:/);
  });

  it('a bundle of the Node entry would need Node: esbuild refuses it for a browser, naming a built-in', async () => {
    await assert.rejects(bundle('dist/node.js'), (e: {errors?: {text: string}[]}) =>
      (e.errors ?? []).some(x => /node:(os|fs|v8|path|module|worker_threads|crypto|fs\/promises)/.test(x.text)));
  });

  it('package.json maps convnorm and convnorm/node to the two entries, whose useBackends differ', async () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', REPO), 'utf8'));
    assert.deepEqual(Object.keys(pkg.exports), ['.', './node']);
    const main = await import(new URL(pkg.exports['.'].default, REPO).href);
    const node = await import(new URL(pkg.exports['./node'].default, REPO).href);
    assert.deepEqual([...main.BROWSER_BACKENDS], ['webgpu', 'webgl', 'wasm', 'cpu']);
    assert.deepEqual([...node.BACKENDS], ['tensorflow', 'wasm', 'cpu']);
    assert.notEqual(node.useBackend, main.useBackend);
    assert.equal(node.ConvNorm2D, main.ConvNorm2D, 'one layer class, registered once');
    assert.equal(typeof node.train, 'function');
    assert.equal(main.train, undefined);
  });
});
