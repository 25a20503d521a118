import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {existsSync, readFileSync} from 'node:fs';
import os from 'node:os';
import {describe, it} from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import {useBackend} from '../src/node/backend.js';
import {uniformValues} from './helpers/random.js';

describe('useBackend', () => {
  it('picks wasm when tfjs-node is absent, and a conv\'s gradients there are the cpu backend\'s (1e-5)', async () => {
    const gradients = () => tf.tidy(() => {
      const x = tf.tensor4d(uniformValues(2 * 5 * 5 * 3, 1), [2, 5, 5, 3]);
      const k = tf.tensor4d(uniformValues(3 * 3 * 3 * 4, 2), [3, 3, 3, 4]);
      const dy = tf.tensor4d(uniformValues(2 * 3 * 3 * 4, 3), [2, 3, 3, 4]);
      return tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), dy)))([x, k]).map(g => g.dataSync());
    });
    assert.equal(await useBackend(), 'wasm');
    const wasm = gradients();
    await useBackend('cpu');
    const cpu = gradients();
    cpu.forEach((expected, i) => {
      const scale = Math.max(...Array.from(expected, Math.abs));
      const error = Math.max(...Array.from(expected, (e, j) => Math.abs(e - wasm[i][j]))) / scale;
      assert.ok(error < 1e-5, `gradient ${i}: relative error ${error}`);
    });
  });

  it('switches to a named backend and refuses unknown names', async () => {
    assert.equal(await useBackend('cpu'), 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    await assert.rejects(useBackend('webgpu' as never), /unknown backend 'webgpu'/);
    await assert.rejects(useBackend('tensorflow'), /tfjs-node is not installed/);
  });
});

/** Starts the wasm backend in a fresh process (it picks its threads once per process). */
interface Child {
  backend: string;
  threads: number;
  sum: number;
  simd: boolean;
  transposeMatches: boolean;
  helpers: number;
  fusedMultiplyAdd?: boolean;
  productValues: number[];
  aboveTwoGigabytes?: boolean;
  highHeapMatches?: boolean;
}

function startInChild(env: Record<string, string>): Child {
  const script = new URL('./helpers/start_wasm.ts', import.meta.url).pathname;
  const out = execFileSync(process.execPath, ['--import', 'tsx', script],
                           {env: {...process.env, ...env}, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']});
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('multi-threaded wasm', () => {
  it('starts with one thread per core (at most 4), and falls back to one thread when it cannot', () => {
    const threaded = startInChild({});
    assert.equal(threaded.backend, 'wasm');
    assert.equal(threaded.threads, Math.min(4, os.cpus().length));
    const noSharedMemory = startInChild({NO_SHARED_MEMORY: '1'});
    assert.deepEqual({...noSharedMemory, sum: undefined, fusedMultiplyAdd: undefined, productValues: undefined},
                     {backend: 'wasm', threads: 1, sum: undefined, simd: true, transposeMatches: true, helpers: 0,
                      fusedMultiplyAdd: undefined, productValues: undefined});
    // One SIMD helper thread per wasm thread beyond the first.
    assert.equal(threaded.helpers, threaded.threads - 1);
    const noSharedArrayBuffer = startInChild({REMOVE_GLOBAL: 'SharedArrayBuffer'});
    assert.equal(noSharedArrayBuffer.threads, 1);
    assert.equal(startInChild({CONVNORM_WASM_THREADS: '1'}).threads, 1);
    // The same convolution whatever the threading: the module's, on the shared and the plain memory.
    // The SIMD module loads on the shared (threaded) memory and on the plain one, and works above 2 GB.
    const highHeap = startInChild({HIGH_HEAP: '1'});
    assert.deepEqual([highHeap.aboveTwoGigabytes, highHeap.highHeapMatches], [true, true]);
    assert.deepEqual([threaded.simd, threaded.transposeMatches], [true, true]);
    assert.deepEqual([noSharedArrayBuffer.simd, noSharedArrayBuffer.transposeMatches], [true, true]);
    for (const other of [noSharedMemory, noSharedArrayBuffer]) {
      assert.ok(Math.abs(other.sum - threaded.sum) <= 1e-4 * Math.abs(threaded.sum), `${other.sum} vs ${threaded.sum}`);
    }
    // The products use fused multiply-adds (relaxed SIMD) by default, on both memories, and not with CONVNORM_FMA=0.
    // V8 emits relaxed SIMD's madd as one rounding only on CPUs with FMA3 (see the child for the values).
    // Without /proc/cpuinfo the CPU is unknown: the value is then one of the two, and the same on both memories.
    const cpuInfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : undefined;
    const fused = cpuInfo === undefined ? undefined : /\bfma\b/.test(cpuInfo) ? 2 ** -24 : 0;
    for (const run of [threaded, noSharedMemory]) {
      assert.equal(run.fusedMultiplyAdd, true);
      if (fused === undefined) assert.ok([2 ** -24, 0].includes(run.productValues[0]), `${run.productValues}`);
      else assert.deepEqual(run.productValues, [fused]);
    }
    assert.deepEqual(noSharedMemory.productValues, threaded.productValues);
    const separate = startInChild({CONVNORM_FMA: '0'});
    assert.deepEqual([separate.fusedMultiplyAdd, separate.productValues], [false, [0]]);
  });
});
