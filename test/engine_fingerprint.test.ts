import assert from 'node:assert/strict';
import {existsSync} from 'node:fs';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {before, describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import {useTestBackend} from './helpers/backends.js';
import {engineFingerprint, FINGERPRINT_NORMS, readFingerprintFile} from './helpers/engine_fingerprint.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));

describe('engine fingerprint', () => {
  const expected = readFingerprintFile();
  before(() => useTestBackend('wasm'));

  it('names committed records that exist, and every norm the studies train', () => {
    assert.deepEqual(Object.keys(expected.norms).sort(), [...FINGERPRINT_NORMS].sort());
    for (const folder of Object.keys(expected.records)) {
      assert.ok(existsSync(join(REPO, folder)), `${folder}, named in test/fixtures/engine-fingerprint.json, does not exist`);
    }
  });

  it('three small-CNN steps give the weights of the engine that trained the committed study records', async t => {
    const before = tf.memory().numTensors;
    const current = await engineFingerprint();
    assert.equal(tf.memory().numTensors, before, 'the fingerprint leaves no tensors');
    if (current.fusedMultiplyAdd !== expected.fusedMultiplyAdd) {
      // Another rounding of every product: this machine cannot tell whether the engine changed.
      t.skip(`the SIMD module runs ${current.fusedMultiplyAdd ? 'with' : 'without'} fused multiply-adds here, ` +
             `the fixture's engine ${expected.fusedMultiplyAdd ? 'with' : 'without'}`);
      return;
    }
    const changed = FINGERPRINT_NORMS.filter(norm => current.norms[norm] !== expected.norms[norm]);
    assert.deepEqual(changed, [],
      `the engine's arithmetic changed for ${changed.join(', ')}: the committed runs in ` +
      `${Object.keys(expected.records).join(', ')} were trained by the engine before the change, and a ` +
      `15-epoch run can move by as much as the seed spread. Train the affected runs again (see ` +
      `studies/label-noise/README.md), commit their records, then ` +
      '`node --import tsx test/helpers/engine_fingerprint.ts --write`.');
  });
});
