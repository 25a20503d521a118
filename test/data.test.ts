import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {after, before, describe, it} from 'node:test';
import {gzipSync} from 'node:zlib';

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

import {Normalization, makeBatch} from '../src/data/batches.js';
import {CIFAR10_CLASSES, loadCifar, parseCifarRecords} from '../src/data/cifar.js';
import {ImageDataset, datasetSize} from '../src/data/dataset.js';
import {parseIdxImages, parseIdxLabels} from '../src/data/idx.js';
import {DATASET_NAMES, loadDataset} from '../src/data/load.js';
import {FASHION_MNIST_CLASSES, loadFashionMnist, loadMnist} from '../src/data/mnist.js';
import {EMBEDDED_MNIST_SIZE, loadEmbeddedMnist, loadEmbeddedMnistAll} from '../src/data/mnist_embedded.js';
import {CIFAR10_ASYMMETRIC_FLIPS, applyLabelNoise} from '../src/data/noise.js';
import {Rng} from '../src/data/random.js';
import {
  complementIndices, sampleIndices, stratifiedCounts, subset, trainFraction, validationSplit,
} from '../src/data/splits.js';
import {CIFAR_SUBSET} from './helpers/datasets.js';

const FASHION = '/usr/share/datasets/fashion-mnist';

// ---------------------------------------------------------------- helpers

/** Bytes in [1, 255]: never zero, so zero padding is distinguishable from image content. */
function randomBytes(n: number, rng: Rng): Uint8Array {
  const out = new Uint8Array(n);
  for (let k = 0; k < n; k++) out[k] = 1 + rng.int(255);
  return out;
}

function randomLabels(n: number, numClasses: number, rng: Rng): Int32Array {
  return Int32Array.from({length: n}, () => rng.int(numClasses));
}

function idx(magic: number, dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, k) => view.setUint32(4 + 4 * k, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** CIFAR records: [labels..., R plane, G plane, B plane] per image, from NHWC pixels. */
function cifarRecords(pixels: Uint8Array, labelBytes: number[][]): Uint8Array {
  const n = labelBytes.length;
  const lb = labelBytes[0].length;
  const out = new Uint8Array(n * (lb + 3072));
  for (let i = 0; i < n; i++) {
    const r = i * (lb + 3072);
    out.set(labelBytes[i], r);
    for (let p = 0; p < 1024; p++) {
      for (let c = 0; c < 3; c++) out[r + lb + c * 1024 + p] = pixels[i * 3072 + 3 * p + c];
    }
  }
  return out;
}

function classCounts(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return counts;
}

/** A synthetic dataset with unbalanced classes. */
function syntheticDataset(n: number, shape: [number, number, number], numClasses: number, seed: number): ImageDataset {
  const rng = new Rng(seed);
  const labels = Int32Array.from({length: n}, () => Math.min(numClasses - 1, Math.floor(numClasses * rng.next() ** 1.5)));
  return {name: 'synthetic', pixels: randomBytes(n * shape[0] * shape[1] * shape[2], rng), labels, shape, numClasses};
}

/** Runs `fn` and asserts it creates no lasting tensors. */
function noLeak(fn: () => void): void {
  const before = tf.memory().numTensors;
  fn();
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
}

let tmp = '';
function tmpFile(name: string, bytes: Uint8Array): string {
  const file = path.join(tmp, name);
  fs.mkdirSync(path.dirname(file), {recursive: true});
  fs.writeFileSync(file, bytes);
  return file;
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnorm-data-'));
  await tf.setBackend('cpu');
});
after(() => fs.rmSync(tmp, {recursive: true, force: true}));

// ---------------------------------------------------------------- IDX / MNIST

describe('IDX files (MNIST layout)', () => {
  const rng = new Rng(11);
  const n = 7;
  const images = randomBytes(n * 5 * 4, rng);
  const labels = randomLabels(n, 10, rng);
  const imagesFile = idx(0x803, [n, 5, 4], images);
  const labelsFile = idx(0x801, [n], Uint8Array.from(labels));

  it('loads a folder of plain and gzipped files (both name variants) exactly', () => {
    const dir = path.join(tmp, 'mnist-ok');
    tmpFile('mnist-ok/train-images-idx3-ubyte', imagesFile);
    tmpFile('mnist-ok/train-labels-idx1-ubyte.gz', gzipSync(labelsFile));
    tmpFile('mnist-ok/t10k-images.idx3-ubyte.gz', gzipSync(imagesFile));
    tmpFile('mnist-ok/t10k-labels.idx1-ubyte', labelsFile);
    for (const split of ['train', 'test'] as const) {
      const ds = loadMnist(dir, {split});
      assert.equal(ds.name, 'mnist');
      assert.deepEqual(ds.shape, [5, 4, 1]);
      assert.deepEqual(ds.pixels, images);
      assert.deepEqual(ds.labels, labels);
      assert.equal(ds.numClasses, 10);
    }
    const fashion = loadFashionMnist(dir, {split: 'train'});
    assert.deepEqual(fashion.classNames, [...FASHION_MNIST_CLASSES]);
    assert.deepEqual(loadDataset('mnist', {root: dir, split: 'test'}).labels, labels);
  });

  it('refuses corrupt files with the file and the problem named', () => {
    const cases: Array<[string, Uint8Array, 'images' | 'labels', RegExp]> = [
      ['wrong-magic', idx(0x801, [n], images.subarray(0, n)), 'images', /wrong IDX magic 0x00000801, expected 0x00000803/],
      ['wrong-magic-labels', imagesFile, 'labels', /wrong IDX magic 0x00000803, expected 0x00000801/],
      ['wrong-dims', idx(0x803, [n + 1, 5, 4], images), 'images', /156 bytes, but the IDX header \(8 x 5 x 4\) needs exactly 176 \(truncated\)/],
      ['zero-dim', idx(0x803, [0, 5, 4], new Uint8Array(0)), 'images', /include a zero/],
      ['truncated', imagesFile.subarray(0, imagesFile.length - 1), 'images', /\(truncated\)/],
      ['trailing', Uint8Array.from([...labelsFile, 0]), 'labels', /\(trailing bytes\)/],
      ['label-range', idx(0x801, [3], Uint8Array.from([1, 10, 2])), 'labels', /label 10 of item 1 is out of range \[0, 10\)/],
      ['empty', new Uint8Array(0), 'images', /0 bytes, too short .*\(empty file\)/],
      ['short-magic', Uint8Array.from([0, 0, 8]), 'labels', /3 bytes, too short for an IDX header of 8 bytes/],
      ['short-header', Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 9, 0, 0]), 'images', /10 bytes, too short for an IDX header of 16 bytes/],
      ['bad-gzip', Uint8Array.from([...gzipSync(imagesFile).subarray(0, 30)]), 'images', /corrupt gzip payload/],
    ];
    for (const [name, bytes, kind, pattern] of cases) {
      const dir = path.join(tmp, `idx-${name}`);
      const good = kind === 'images' ? labelsFile : imagesFile;
      tmpFile(`idx-${name}/train-${kind}-idx${kind === 'images' ? 3 : 1}-ubyte`, bytes);
      tmpFile(`idx-${name}/train-${kind === 'images' ? 'labels' : 'images'}-idx${kind === 'images' ? 1 : 3}-ubyte`, good);
      const file = path.join(dir, `train-${kind}-idx${kind === 'images' ? 3 : 1}-ubyte`);
      assert.throws(() => loadMnist(dir, {split: 'train'}), (e: Error) => {
        assert.ok(e.message.startsWith(file + ':'), `${name}: message does not name ${file}: ${e.message}`);
        assert.match(e.message, pattern, name);
        return true;
      });
    }
  });

  it('refuses gzip garbage after a valid magic, count mismatches, missing files and folders', () => {
    const garbage = Uint8Array.from([0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.throws(() => {
      tmpFile('idx-garbage/train-images-idx3-ubyte.gz', garbage);
      tmpFile('idx-garbage/train-labels-idx1-ubyte', labelsFile);
      loadMnist(path.join(tmp, 'idx-garbage'), {split: 'train'});
    }, /train-images-idx3-ubyte\.gz: corrupt gzip payload/);

    tmpFile('idx-count/train-images-idx3-ubyte', imagesFile);
    tmpFile('idx-count/train-labels-idx1-ubyte', idx(0x801, [n - 1], Uint8Array.from(labels.subarray(1))));
    assert.throws(() => loadMnist(path.join(tmp, 'idx-count'), {split: 'train'}),
      /train-labels-idx1-ubyte: 6 labels, but .*train-images-idx3-ubyte has 7 images/);

    tmpFile('idx-missing/train-images-idx3-ubyte', imagesFile);
    assert.throws(() => loadMnist(path.join(tmp, 'idx-missing'), {split: 'train'}),
      /no mnist train labels file \(looked for train-labels-idx1-ubyte, train-labels-idx1-ubyte\.gz, /);
    assert.throws(() => loadMnist(path.join(tmp, 'idx-missing'), {split: 'test'}),
      /no mnist test images file \(looked for t10k-images-idx3-ubyte/);
    assert.throws(() => loadMnist(path.join(tmp, 'nowhere'), {split: 'train'}),
      /nowhere: no such folder \(looked for train-images-idx3-ubyte\[\.gz\]/);
  });

  it('parses in memory without a file name', () => {
    const parsed = parseIdxImages(imagesFile);
    assert.equal(parsed.count, n);
    assert.deepEqual([parsed.rows, parsed.cols], [5, 4]);
    assert.deepEqual(parseIdxLabels(labelsFile, 10), labels);
    assert.throws(() => parseIdxLabels(labelsFile, 2), /IDX labels: label \d+ of item \d+ is out of range \[0, 2\)/);
  });

  it('Fashion-MNIST from the Debian package: 60000 / 10000 images of 28x28x1, 10 balanced classes', (t) => {
    if (!fs.existsSync(FASHION)) {
      t.skip(`${FASHION} is absent (Debian package fashion-mnist not installed)`);
      return;
    }
    const train = loadDataset('fashion-mnist', {split: 'train'});
    const test = loadFashionMnist(FASHION, {split: 'test'});
    assert.equal(datasetSize(train), 60000);
    assert.equal(datasetSize(test), 10000);
    for (const ds of [train, test]) {
      assert.deepEqual(ds.shape, [28, 28, 1]);
      assert.equal(ds.pixels.length, datasetSize(ds) * 784);
      assert.equal(ds.name, 'fashion-mnist');
      assert.deepEqual(ds.classNames, [...FASHION_MNIST_CLASSES]);
      assert.ok(ds.labels.every((l) => l >= 0 && l < 10));
    }
    // Fashion-MNIST is balanced by construction.
    assert.deepEqual(classCounts(train.labels, 10), new Array(10).fill(6000));
    assert.deepEqual(classCounts(test.labels, 10), new Array(10).fill(1000));
    let sum = 0;
    for (let i = 0; i < 784 * 100; i++) sum += train.pixels[i];
    assert.ok(sum / (784 * 100) > 40 && sum / (784 * 100) < 110, `mean pixel ${sum / 78400}`);
  });
});

// ---------------------------------------------------------------- CIFAR

describe('CIFAR binary version', () => {
  const rng = new Rng(21);
  const n = 5;
  const pixels = randomBytes(n * 3072, rng);
  const labels = randomLabels(n, 10, rng);
  const fine = randomLabels(n, 100, rng);
  const coarse = randomLabels(n, 20, rng);
  const c10 = cifarRecords(pixels, Array.from(labels, (l) => [l]));
  const c100 = cifarRecords(pixels, Array.from(fine, (l, i) => [coarse[i], l]));

  it('converts planar records to NHWC and keeps the label (CIFAR-100: the fine one)', () => {
    const a = parseCifarRecords(c10, 'cifar10');
    assert.deepEqual(a.pixels, pixels);
    assert.deepEqual(a.labels, labels);
    const b = parseCifarRecords(c100, 'cifar100');
    assert.deepEqual(b.pixels, pixels);
    assert.deepEqual(b.labels, fine);
    // One hand-checked byte: image 3, y 7, x 30, blue.
    const rec = c10.subarray(3 * 3073, 4 * 3073);
    assert.equal(a.pixels[3 * 3072 + (7 * 32 + 30) * 3 + 2], rec[1 + 2048 + 7 * 32 + 30]);
  });

  it('loads a folder: cifar10 concatenates the batches present, class names from batches.meta.txt', () => {
    const dir = path.join(tmp, 'c10');
    tmpFile('c10/data_batch_2.bin', c10.subarray(0, 2 * 3073));
    tmpFile('c10/data_batch_4.bin', c10.subarray(2 * 3073));
    tmpFile('c10/test_batch.bin', c10.subarray(3073, 2 * 3073));
    const train = loadCifar(dir, {variant: 'cifar10', split: 'train'});
    assert.deepEqual(train.pixels, pixels);
    assert.deepEqual(train.labels, labels);
    assert.deepEqual(train.shape, [32, 32, 3]);
    assert.deepEqual(train.classNames, [...CIFAR10_CLASSES], 'standard names without batches.meta.txt');
    const test = loadDataset('cifar10', {root: dir, split: 'test'});
    assert.deepEqual(test.labels, labels.subarray(1, 2));
    tmpFile('c10/batches.meta.txt', new TextEncoder().encode('a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n'));
    assert.deepEqual(loadCifar(dir, {variant: 'cifar10', split: 'test'}).classNames, [...'abcdefghij']);
    tmpFile('c10/batches.meta.txt', new TextEncoder().encode('a\nb\n'));
    assert.throws(() => loadCifar(dir, {variant: 'cifar10', split: 'test'}), /batches\.meta\.txt: 2 class names, expected 10/);
  });

  it('loads a cifar100 folder with fine labels and fine_label_names.txt', () => {
    const dir = path.join(tmp, 'c100');
    tmpFile('c100/train.bin', c100);
    const ds = loadDataset('cifar100', {root: dir, split: 'train'});
    assert.equal(ds.numClasses, 100);
    assert.deepEqual(ds.labels, fine);
    assert.equal(ds.classNames, undefined);
    const names = Array.from({length: 100}, (_, k) => `class${k}`);
    tmpFile('c100/fine_label_names.txt', new TextEncoder().encode(names.join('\n') + '\n'));
    assert.deepEqual(loadCifar(dir, {variant: 'cifar100', split: 'train'}).classNames, names);
    assert.throws(() => loadCifar(dir, {variant: 'cifar100', split: 'test'}),
      /c100: no cifar100 test file \(looked for test\.bin\)/);
  });

  it('refuses empty, truncated, wrong-variant and out-of-range files with the file named', () => {
    const bad10 = Uint8Array.from(c10); bad10[2 * 3073] = 10;
    const badFine = Uint8Array.from(c100); badFine[3074 + 1] = 100;
    const badCoarse = Uint8Array.from(c100); badCoarse[0] = 20;
    const cases: Array<[string, Uint8Array, 'cifar10' | 'cifar100', RegExp]> = [
      ['empty', new Uint8Array(0), 'cifar10', /empty file, expected 3073-byte cifar10 records/],
      ['truncated', c10.subarray(0, c10.length - 1), 'cifar10', /15364 bytes is not a whole number of 3073-byte cifar10 records \(4 records and 3072 extra bytes/],
      ['wrong-variant', c100, 'cifar10', /not a whole number of 3073-byte cifar10 records/],
      ['label10', bad10, 'cifar10', /label 10 of record 2 is out of range \[0, 10\)/],
      ['fine100', badFine, 'cifar100', /label 100 of record 1 is out of range \[0, 100\)/],
      ['coarse20', badCoarse, 'cifar100', /coarse label 20 of record 0 is out of range \[0, 20\)/],
    ];
    for (const [name, bytes, variant, pattern] of cases) {
      const file = tmpFile(`cbad-${name}/${variant === 'cifar10' ? 'data_batch_1.bin' : 'train.bin'}`, bytes);
      assert.throws(() => loadCifar(path.dirname(file), {variant, split: 'train'}), (e: Error) => {
        assert.ok(e.message.startsWith(file + ':'), `${name}: ${e.message}`);
        assert.match(e.message, pattern, name);
        return true;
      });
    }
    fs.mkdirSync(path.join(tmp, 'c-empty-dir'));
    assert.throws(() => loadCifar(path.join(tmp, 'c-empty-dir'), {variant: 'cifar10', split: 'train'}),
      /no cifar10 train file \(looked for data_batch_1\.bin, data_batch_2\.bin, data_batch_3\.bin, data_batch_4\.bin, data_batch_5\.bin\)/);
  });

  it('the real 5,000-image subset: class counts and the first record', (t) => {
    if (!fs.existsSync(CIFAR_SUBSET)) {
      t.skip(`${CIFAR_SUBSET} is absent`);
      return;
    }
    const train = loadCifar(CIFAR_SUBSET, {variant: 'cifar10', split: 'train'});
    const test = loadDataset('cifar10', {root: CIFAR_SUBSET, split: 'test'});
    assert.equal(datasetSize(train), 4000);
    assert.equal(datasetSize(test), 1000);
    assert.deepEqual(classCounts(train.labels, 10), [396, 366, 420, 384, 422, 393, 414, 385, 407, 413]);
    assert.deepEqual(classCounts(test.labels, 10), [103, 89, 100, 103, 90, 86, 112, 102, 106, 109]);
    assert.equal(train.labels[0], 6);
    assert.equal(train.classNames![6], 'frog');
    assert.deepEqual([train.pixels[0], train.pixels[3], train.pixels[6]], [59, 43, 50], 'red bytes of the first pixels');
    assert.deepEqual(train.classNames, [...CIFAR10_CLASSES]);
  });
});

// ---------------------------------------------------------------- embedded MNIST and the dispatcher

describe('embedded mnist digits and loadDataset', () => {
  const key = (ds: ImageDataset, i: number) => Buffer.from(ds.pixels.subarray(i * 784, (i + 1) * 784)).toString('base64');

  it('10,000 real 28x28x1 digits; the 8,000 / 2,000 split is stratified, disjoint, complete and seeded', () => {
    const all = loadEmbeddedMnistAll();
    assert.equal(datasetSize(all), EMBEDDED_MNIST_SIZE);
    assert.deepEqual(all.shape, [28, 28, 1]);
    const sizes = classCounts(all.labels, 10);
    assert.equal(sizes[0], 1001);
    let sum = 0, max = 0;
    for (const p of all.pixels) { sum += p; max = Math.max(max, p); }
    assert.equal(max, 255);
    assert.ok(sum / all.pixels.length > 25 && sum / all.pixels.length < 45, `MNIST mean pixel ~33, got ${sum / all.pixels.length}`);

    const train = loadEmbeddedMnist({split: 'train'});
    const test = loadDataset('mnist-embedded', {split: 'test'});
    assert.equal(datasetSize(train), 8000);
    assert.equal(datasetSize(test), 2000);
    const testCounts = classCounts(test.labels, 10);
    testCounts.forEach((c, d) => assert.ok(Math.abs(c - 0.2 * sizes[d]) < 1, `digit ${d}: ${c} of ${sizes[d]}`));
    // Train and test together are exactly the whole set (as a multiset of image+label).
    const multiset = new Map<string, number>();
    for (let i = 0; i < datasetSize(all); i++) {
      const k = `${all.labels[i]}:${key(all, i)}`;
      multiset.set(k, (multiset.get(k) ?? 0) + 1);
    }
    for (const ds of [train, test]) {
      for (let i = 0; i < datasetSize(ds); i++) {
        const k = `${ds.labels[i]}:${key(ds, i)}`;
        const left = multiset.get(k);
        assert.ok(left, `image ${i} of ${ds.labels.length} is not in the set, or is in both splits`);
        multiset.set(k, left - 1);
      }
    }
    // Not class-major: the first 100 training images hold every digit.
    assert.equal(new Set(train.labels.subarray(0, 100)).size, 10);
    assert.deepEqual(loadEmbeddedMnist({split: 'test'}).labels, test.labels);
    const other = loadEmbeddedMnist({split: 'test', seed: 1});
    assert.notDeepEqual(other.labels, test.labels);
    assert.equal(datasetSize(loadEmbeddedMnist({split: 'train', trainSize: 9000})), 9000);
    assert.throws(() => loadEmbeddedMnist({split: 'train', trainSize: 10000}), /trainSize must be an integer in \[1, 9999\]/);
  });

  it('loadDataset refuses unknown names and missing roots or folders, saying what it looked for', () => {
    assert.deepEqual([...DATASET_NAMES], ['cifar10', 'cifar100', 'mnist', 'fashion-mnist', 'mnist-embedded']);
    assert.throws(() => loadDataset('imagenet', {split: 'train'}),
      /unknown dataset 'imagenet'; known: cifar10, cifar100, mnist, fashion-mnist, mnist-embedded/);
    assert.throws(() => loadDataset('cifar10', {split: 'train'}), /dataset 'cifar10' needs a root folder holding data_batch_1\.\.5\.bin and test_batch\.bin/);
    assert.throws(() => loadDataset('cifar100', {root: path.join(tmp, 'absent'), split: 'train'}),
      /absent: no such folder \(looked for train\.bin\)/);
    assert.throws(() => loadDataset('fashion-mnist', {root: path.join(tmp, 'absent'), split: 'test'}),
      /absent: no such folder \(looked for t10k-images-idx3-ubyte\[\.gz\] and t10k-labels-idx1-ubyte\[\.gz\]\)/);
  });
});

// ---------------------------------------------------------------- label noise

describe('label noise', () => {
  const K = 10;
  const n = 20000;
  const clean = randomLabels(n, K, new Rng(31));

  it('symmetric 0.4: round(0.4 n) selected, changed rate ~0.36, new labels uniform, input untouched', () => {
    const copy = Int32Array.from(clean);
    const out = applyLabelNoise(clean, {kind: 'symmetric', fraction: 0.4, numClasses: K, rng: new Rng(5)});
    assert.deepEqual(clean, copy, 'input modified');
    assert.equal(out.noisyIndices.length, 8000);
    for (let k = 1; k < out.noisyIndices.length; k++) assert.ok(out.noisyIndices[k] > out.noisyIndices[k - 1]);
    const selected = new Uint8Array(n);
    for (const i of out.noisyIndices) selected[i] = 1;
    let changed = 0;
    for (let i = 0; i < n; i++) {
      assert.equal(out.changed[i], out.labels[i] !== clean[i] ? 1 : 0);
      if (!selected[i]) assert.equal(out.labels[i], clean[i], `unselected label ${i} changed`);
      changed += out.changed[i];
    }
    // Each selected label changes with probability 0.9: sd of the rate = sqrt(8000 * 0.09) / n.
    const sigma = Math.sqrt(8000 * 0.9 * 0.1) / n;
    assert.ok(Math.abs(changed / n - 0.36) < 3 * sigma, `changed rate ${changed / n}`);
    // The drawn labels of the selected indices are uniform: chi-square, 9 dof, p = 0.001 at 27.88.
    const counts = classCounts(Array.from(out.noisyIndices, (i) => out.labels[i]), K);
    const chi2 = counts.reduce((s, c) => s + (c - 800) ** 2 / 800, 0);
    assert.ok(chi2 < 27.88, `chi-square ${chi2}, counts ${counts}`);

    const again = applyLabelNoise(clean, {kind: 'symmetric', fraction: 0.4, numClasses: K, rng: new Rng(5)});
    assert.deepEqual(again, out);
    const other = applyLabelNoise(clean, {kind: 'symmetric', fraction: 0.4, numClasses: K, rng: new Rng(6)});
    assert.notDeepEqual(other.labels, out.labels);
  });

  it('symmetric edge fractions: 0 changes nothing, 1 selects every label', () => {
    const none = applyLabelNoise(clean, {kind: 'symmetric', fraction: 0, numClasses: K, rng: new Rng(1)});
    assert.deepEqual(none.labels, clean);
    assert.equal(none.noisyIndices.length, 0);
    const all = applyLabelNoise(clean, {kind: 'symmetric', fraction: 1, numClasses: K, rng: new Rng(1)});
    assert.equal(all.noisyIndices.length, n);
  });

  it('asymmetric, unchained: exactly round(f * size) of each source class go to its target, nothing else moves', () => {
    const labels = syntheticDataset(5000, [1, 1, 1], K, 41).labels;
    const sizes = classCounts(labels, K);
    const out = applyLabelNoise(labels, {kind: 'asymmetric', fraction: 0.3, numClasses: K, rng: new Rng(7), chained: false});
    const target = new Map(CIFAR10_ASYMMETRIC_FLIPS.map(([s, t]) => [s, t] as [number, number]));
    const flipped = new Array<number>(K).fill(0);
    for (let i = 0; i < labels.length; i++) {
      if (!out.changed[i]) continue;
      assert.equal(out.labels[i], target.get(labels[i]), `label ${i}: ${labels[i]} -> ${out.labels[i]}`);
      flipped[labels[i]]++;
    }
    for (let c = 0; c < K; c++) assert.equal(flipped[c], target.has(c) ? Math.round(0.3 * sizes[c]) : 0, `class ${c}`);
    assert.deepEqual(out.noisyIndices, Int32Array.from(out.changed.reduce<number[]>((a, v, i) => (v ? [...a, i] : a), [])));
  });

  it('asymmetric, chained as the reference: the dog pool includes cats just flipped, some flip back', () => {
    const labels = syntheticDataset(5000, [1, 1, 1], K, 42).labels;
    const sizes = classCounts(labels, K);
    const f = 0.4;
    const out = applyLabelNoise(labels, {kind: 'asymmetric', fraction: f, numClasses: K, rng: new Rng(8)});
    const selected = new Uint8Array(labels.length);
    for (const i of out.noisyIndices) selected[i] = 1;
    const count = (pred: (i: number) => boolean) => labels.reduce((s, _, i) => s + (pred(i) ? 1 : 0), 0);
    for (const [s, t] of [[2, 0], [4, 7], [9, 1]]) {
      assert.equal(count((i) => labels[i] === s && out.labels[i] === t), Math.round(f * sizes[s]));
      assert.equal(count((i) => labels[i] === s && out.labels[i] !== s && out.labels[i] !== t), 0);
    }
    for (const c of [0, 1, 6, 7, 8]) assert.equal(count((i) => labels[i] === c && out.changed[i] === 1), 0, `class ${c} moved`);
    const catsSelected = Math.round(f * sizes[3]);
    assert.equal(count((i) => labels[i] === 3 && selected[i] === 1), catsSelected);
    const catsToDog = count((i) => labels[i] === 3 && out.labels[i] === 5);
    const dogsToCat = count((i) => labels[i] === 5 && out.labels[i] === 3);
    const catsBack = catsSelected - catsToDog;
    assert.ok(catsBack > 0, 'no cat was flipped back: the pools are not chained');
    assert.equal(dogsToCat + catsBack, Math.round(f * (sizes[5] + catsSelected)), 'dog pool = dogs + flipped cats');
    assert.equal(count((i) => labels[i] === 5 && selected[i] === 1), dogsToCat);
  });

  it('refuses bad options with a clear message', () => {
    const rng = new Rng(1);
    assert.throws(() => applyLabelNoise(clean, {kind: 'asymmetric', fraction: 0.2, numClasses: 100, rng}),
      /asymmetric noise is defined \(by the reference\) only for CIFAR-10's 10 classes, got numClasses 100/);
    for (const fraction of [-0.1, 1.5, NaN]) {
      assert.throws(() => applyLabelNoise(clean, {kind: 'symmetric', fraction, numClasses: K, rng}), /fraction must be in \[0, 1\]/);
    }
    assert.throws(() => applyLabelNoise(clean, {kind: 'symmetric', fraction: 0.2, numClasses: 5, rng}), /label \d+ at index \d+ is out of range \[0, 5\)/);
    assert.throws(() => applyLabelNoise(clean, {kind: 'pair' as 'symmetric', fraction: 0.2, numClasses: K, rng}), /kind must be/);
  });
});

// ---------------------------------------------------------------- batches

/** An Rng whose draws are scripted, to force crop offsets and flips. */
class ScriptedRng extends Rng {
  constructor(private readonly values: number[]) { super(0); }
  override next(): number {
    const v = this.values.shift();
    assert.ok(v !== undefined, 'script exhausted');
    return v;
  }
}
/** The next() value that makes int(n) return k. */
const pick = (k: number, n: number) => (k + 0.5) / n;

/** Plain-JS torchvision reference: zero pad in pixel space, crop at (top, left) in [0, 2p], maybe flip, normalize. */
function referenceImage(ds: ImageDataset, i: number, pad: number, top: number, left: number, flip: boolean, norm?: Normalization): number[] {
  const [h, w, c] = ds.shape;
  const out: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const cx = flip ? w - 1 - x : x;
      const py = y + top - pad, px = cx + left - pad;
      for (let ch = 0; ch < c; ch++) {
        const raw = py >= 0 && py < h && px >= 0 && px < w ? ds.pixels[((i * h + py) * w + px) * c + ch] : 0;
        out.push(norm ? (raw / 255 - norm.mean[ch]) / norm.std[ch] : raw / 255);
      }
    }
  }
  return out;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let k = 0; k < expected.length; k++) {
    if (Math.abs(actual[k] - expected[k]) > 1e-5 * (1 + Math.abs(expected[k]))) {
      assert.fail(`${what}: element ${k} is ${actual[k]}, expected ${expected[k]}`);
    }
  }
}

describe('makeBatch', () => {
  const ds = syntheticDataset(40, [6, 5, 3], 10, 51);
  const norm: Normalization = {mean: [0.3, 0.5, 0.7], std: [0.2, 0.25, 0.3]};
  const imageSize = 6 * 5 * 3;

  it('normalizes (pixel / 255 - mean) / std per channel and returns int32 labels', () => noLeak(() => {
    const indices = [3, 0, 39, 3, 17];
    const {x, labels} = makeBatch(ds, indices, {normalization: norm});
    assert.deepEqual(x.shape, [5, 6, 5, 3]);
    assert.equal(x.dtype, 'float32');
    assert.equal(labels.dtype, 'int32');
    assert.deepEqual(Array.from(labels.dataSync()), indices.map((i) => ds.labels[i]));
    const expected = indices.flatMap((i) => Array.from(ds.pixels.subarray(i * imageSize, (i + 1) * imageSize),
      (p, k) => (p / 255 - norm.mean[k % 3]) / norm.std[k % 3]));
    assertClose(x.dataSync(), expected, 'normalized');
    const plain = makeBatch(ds, indices);
    assertClose(plain.x.dataSync(), indices.flatMap((i) => Array.from(ds.pixels.subarray(i * imageSize, (i + 1) * imageSize), (p) => p / 255)), 'pixel/255');
    tf.dispose([x, labels, plain.x, plain.labels]);
  }));

  it('forced offsets and flips match the torchvision reference; offset = pad is the original, padding is normalized zero', () => noLeak(() => {
    const pad = 2;
    const n = 2 * pad + 1;
    // (top, left, flip) per image: centre, centre+flip, corner, other corner+flip.
    const plan: Array<[number, number, boolean]> = [[pad, pad, false], [pad, pad, true], [0, 0, false], [4, 1, true]];
    const indices = [5, 6, 7, 8];
    const script = plan.flatMap(([t, l, f]) => [pick(t, n), pick(l, n), f ? 0.25 : 0.75]);
    const {x, labels} = makeBatch(ds, indices, {normalization: norm, augmentation: {cropPadding: pad, flip: true}, rng: new ScriptedRng(script)});
    const data = x.dataSync();
    plan.forEach(([t, l, f], b) => {
      assertClose(data.subarray(b * imageSize, (b + 1) * imageSize), referenceImage(ds, indices[b], pad, t, l, f, norm), `image ${b}`);
    });
    assertClose(data.subarray(0, imageSize), referenceImage(ds, 5, 0, 0, 0, false, norm), 'offset pad shows the original');
    // Image 2 is cropped at (0, 0): its first `pad` rows and columns are padding.
    for (let y = 0; y < 6; y++) {
      for (let xx = 0; xx < 5; xx++) {
        if (y >= pad && xx >= pad) continue;
        for (let c = 0; c < 3; c++) {
          assert.ok(Math.abs(data[2 * imageSize + (y * 5 + xx) * 3 + c] - -norm.mean[c] / norm.std[c]) < 1e-6, `padding at ${y},${xx},${c}`);
        }
      }
    }
    // Without flip, only the two offsets are drawn per image.
    const noFlip = makeBatch(ds, [9], {augmentation: {cropPadding: pad, flip: false}, rng: new ScriptedRng([pick(3, n), pick(0, n)])});
    assertClose(noFlip.x.dataSync(), referenceImage(ds, 9, pad, 3, 0, false), 'no flip');
    const flipOnly = makeBatch(ds, [9], {augmentation: {cropPadding: 0, flip: true}, rng: new ScriptedRng([0.1])});
    assertClose(flipOnly.x.dataSync(), referenceImage(ds, 9, 0, 0, 0, true), 'flip only');
    tf.dispose([x, labels, noFlip.x, noFlip.labels, flipOnly.x, flipOnly.labels]);
  }));

  it('random augmentation equals the reference under the documented draw order, and is seeded', () => noLeak(() => {
    const pad = 1;
    const indices = Array.from(new Rng(3).permutation(40));
    const aug = {cropPadding: pad, flip: true};
    const a = makeBatch(ds, indices, {normalization: norm, augmentation: aug, rng: new Rng(9)});
    const twin = new Rng(9);
    const data = a.x.dataSync();
    let centred = 0, flipped = 0;
    indices.forEach((i, b) => {
      const top = twin.int(2 * pad + 1), left = twin.int(2 * pad + 1), flip = twin.next() < 0.5;
      if (top === pad && left === pad && !flip) centred++;
      if (flip) flipped++;
      assertClose(data.subarray(b * imageSize, (b + 1) * imageSize), referenceImage(ds, i, pad, top, left, flip, norm), `image ${b}`);
    });
    assert.ok(centred > 0 && flipped > 5 && flipped < 35, `centred ${centred}, flipped ${flipped} of 40`);
    const same = makeBatch(ds, indices, {normalization: norm, augmentation: aug, rng: new Rng(9)});
    const other = makeBatch(ds, indices, {normalization: norm, augmentation: aug, rng: new Rng(10)});
    assert.deepEqual(same.x.dataSync(), data);
    assert.notDeepEqual(other.x.dataSync(), data);
    tf.dispose([a.x, a.labels, same.x, same.labels, other.x, other.labels]);
  }));

  it('refuses bad indices, a missing rng and mismatched normalization', () => noLeak(() => {
    for (const bad of [1.5, -1, 40, NaN]) {
      assert.throws(() => makeBatch(ds, [0, bad]), /makeBatch: index .* at batch position 1 is not an integer in \[0, 40\)/);
    }
    assert.throws(() => makeBatch(ds, [0], {augmentation: {cropPadding: 4, flip: true}}), /augmentation needs an rng/);
    assert.throws(() => makeBatch(ds, [0], {normalization: {mean: [0.5], std: [0.5]}}), /normalization has 1 means and 1 stds, the images have 3 channel\(s\)/);
    assert.throws(() => makeBatch(ds, [0], {normalization: {mean: [0, 0, 0], std: [1, 0, 1]}}), /channel 1 needs a finite mean and a positive std/);
  }));
});

// ---------------------------------------------------------------- splits

describe('subsets and splits', () => {
  const ds = syntheticDataset(1000, [2, 2, 1], 10, 71);
  const sizes = classCounts(ds.labels, 10);

  it('subset copies the chosen images in order and validates indices', () => {
    const s = subset(ds, [9, 2, 9]);
    assert.deepEqual(s.labels, Int32Array.from([ds.labels[9], ds.labels[2], ds.labels[9]]));
    assert.deepEqual(s.pixels, Uint8Array.from([...ds.pixels.subarray(36, 40), ...ds.pixels.subarray(8, 12), ...ds.pixels.subarray(36, 40)]));
    assert.deepEqual(s.shape, ds.shape);
    assert.throws(() => subset(ds, [0, 1000]), /subset: index 1000 at position 1 is not an integer in \[0, 1000\)/);
  });

  it('stratifiedCounts adds up exactly and stays within one of each share', () => {
    const counts = stratifiedCounts(sizes, 333);
    assert.equal(counts.reduce((a, b) => a + b, 0), 333);
    counts.forEach((c, k) => assert.ok(Math.abs(c - (sizes[k] * 333) / 1000) < 1, `class ${k}`));
    assert.deepEqual(stratifiedCounts([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978], 8000),
      [801, 902, 793, 826, 784, 690, 811, 856, 755, 782]);
  });

  it('trainFraction keeps round(f n) distinct images, stratified by default, seeded', () => {
    const idxs = sampleIndices(ds.labels, 10, 250, new Rng(4));
    assert.equal(new Set(idxs).size, 250);
    for (let k = 1; k < idxs.length; k++) assert.ok(idxs[k] > idxs[k - 1]);
    const part = trainFraction(ds, 0.25, new Rng(4));
    assert.deepEqual(part, subset(ds, idxs));
    classCounts(part.labels, 10).forEach((c, k) => assert.ok(Math.abs(c - 0.25 * sizes[k]) < 1, `class ${k}`));
    const flat = trainFraction(ds, 0.25, new Rng(4), {stratified: false});
    assert.equal(datasetSize(flat), 250);
    assert.notDeepEqual(trainFraction(ds, 0.25, new Rng(5)).pixels, part.pixels);
    assert.throws(() => trainFraction(ds, 0, new Rng(1)), /fraction must be in \(0, 1\]/);
    assert.throws(() => trainFraction(ds, 0.0001, new Rng(1)), /keeps none/);
  });

  it('validationSplit partitions the data (unlike the reference), by fraction or count', () => {
    for (const size of [0.1, 137]) {
      const split = validationSplit(ds, size, new Rng(12));
      const expected = size < 1 ? 100 : 137;
      assert.equal(split.validationIndices.length, expected);
      assert.equal(split.trainIndices.length, 1000 - expected);
      const all = new Set([...split.trainIndices, ...split.validationIndices]);
      assert.equal(all.size, 1000, 'overlap or gap');
      assert.deepEqual(split.train, subset(ds, split.trainIndices));
      assert.deepEqual(split.validation, subset(ds, split.validationIndices));
    }
    assert.deepEqual(validationSplit(ds, 0.1, new Rng(12)).validationIndices, validationSplit(ds, 0.1, new Rng(12)).validationIndices);
    assert.deepEqual(complementIndices(5, [3, 0]), Int32Array.from([1, 2, 4]));
    for (const bad of [0, 1000, 2.5, -3]) assert.throws(() => validationSplit(ds, bad, new Rng(1)), /validationSplit: size/);
  });
});
