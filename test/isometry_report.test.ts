import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {formatIsometry, runIsometryLayer} from '../src/cli/isometry.js';
import {useTestBackend} from './helpers/backends.js';

describe('convnorm isometry', () => {
  it('reports isometric ConvNorm channels, a non-isometric conv, and scale invariance', async () => {
    await useTestBackend('wasm');
    const spec = {name: 'small 8->12 s2', inChannels: 8, filters: 12, size: 6, strides: 2};
    const row = runIsometryLayer(spec, 3);
    assert.ok(row.convNorm.isometryError < 1e-5, `ConvNorm isometry error ${row.convNorm.isometryError}`);
    assert.ok(Math.abs(row.convNorm.maxChannelNorm - 1) < 1e-5);
    assert.ok(row.convNorm.spectralNorm >= 1 - 1e-5 && row.convNorm.spectralNorm <= Math.sqrt(12) + 1e-5);
    assert.ok(row.conv.isometryError > 0.1);
    const scaled = runIsometryLayer(spec, 3, 10);
    assert.ok(Math.abs(scaled.conv.spectralNorm / row.conv.spectralNorm - 10) < 1e-3);
    assert.ok(Math.abs(scaled.convNorm.spectralNorm - row.convNorm.spectralNorm) < 1e-4);
    const table = formatIsometry([row]).split('\n');
    assert.equal(table.length, 3);
    assert.match(table[2], /^small 8->12 s2 /);
  });
});
