import assert from 'node:assert/strict';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {after, before, describe, it} from 'node:test';

import {mergeEntries, readResults, ResultEntry, storeResults} from '../src/io/results.js';

const entry = (settings: Record<string, unknown>, top1: number): ResultEntry =>
  ({settings, result: {top1}, savedAt: '2000-01-01T00:00:00.000Z'});

describe('results stored with a run', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'convnorm-results-')); });
  after(() => rm(dir, {recursive: true, force: true}));

  it('an entry with the same settings (in any key order) replaces its own, in place; others are appended', () => {
    const old = [entry({attack: 'pgd', eps: 8}, 0.4), entry({attack: 'fgsm', eps: 8}, 0.5)];
    const merged = mergeEntries(old, [entry({eps: 8, attack: 'pgd'}, 0.3), entry({attack: 'pgd', eps: 4}, 0.6)]);
    assert.deepEqual(merged.map(e => [e.settings.attack, e.settings.eps, e.result.top1]),
                     [['pgd', 8, 0.3], ['fgsm', 8, 0.5], ['pgd', 4, 0.6]]);
  });

  it('stores entries across calls, and refuses to replace a file that is not its kind of results', async () => {
    const path = join(dir, 'attacks.json');
    assert.deepEqual(await readResults(path, 'attacks'), []);
    await storeResults(path, 'attacks', [entry({eps: 8}, 0.4)]);
    await storeResults(path, 'attacks', [entry({eps: 4}, 0.6), entry({eps: 8}, 0.3)]);
    assert.deepEqual((await readResults<unknown, {top1: number}>(path, 'attacks')).map(e => e.result.top1), [0.3, 0.6]);
    await assert.rejects(readResults(path, 'spectrum'), /is not a convnorm spectrum results file/);
    await writeFile(path, '{"format": "convnorm-res');
    await assert.rejects(storeResults(path, 'attacks', [entry({eps: 2}, 1)]), /attacks.json is not valid JSON/);
    assert.equal(await readFile(path, 'utf8'), '{"format": "convnorm-res', 'a damaged file was replaced');
  });
});
