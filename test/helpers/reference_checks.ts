/**
 * The reference-fixture checks (reference/make_fixtures.py: a float64
 * PyTorch port of the authors' PreConv) as functions of the fixtures and the
 * package's exports, with no Node built-in: test/reference.test.ts runs them
 * in Node on cpu and wasm, test/browser/reference_page.ts in Chromium on
 * webgl, webgpu, wasm and cpu. Values are read with `await data()`, which
 * every backend supports (webgpu's dataSync returns zeros). A mismatch
 * throws, naming the case and the quantity.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import type {ConvNorm2D as ConvNorm2DClass, ConvNormMethod} from '../../src/index.js';
import {caseName, decode, GeometryFixture, LayerFixture, ReferenceFixtures} from './fixtures.js';

/** What the checks use of the package: its main entry, or the same bundled for a page. */
export interface ConvNormExports {
  ConvNorm2D: typeof ConvNorm2DClass;
  convNorm: typeof import('../../src/index.js').convNorm;
  convNormSpectrum: typeof import('../../src/index.js').convNormSpectrum;
}

/** Tolerances, norm-wise relative errors: float32 arithmetic against float64 references. */
export interface Tolerances {
  /** Outputs, gradients and running state (cpu and wasm observe ~1e-6). */
  value: number;
  /** The two gradients BatchNorm cancels in exact arithmetic, relative to d/dkernel's scale. */
  cancelled: number;
}

export const NODE_TOLERANCES: Tolerances = {value: 1e-4, cancelled: 1e-3};

/** max |a - b| / (scale ?? max |b|) from values read back asynchronously. */
export async function relativeErrorAsync(actual: tf.Tensor, expected: tf.Tensor, scale?: number): Promise<number> {
  if (!tf.util.arraysEqual(actual.shape, expected.shape)) {
    throw new Error(`shapes differ: [${actual.shape}] and [${expected.shape}]`);
  }
  const [a, b] = [await actual.data(), await expected.data()];
  let diff = 0;
  let max = 0;
  for (let i = 0; i < b.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    max = Math.max(max, Math.abs(b[i]));
  }
  const s = scale ?? max;
  if (!(s > 0)) throw new Error('the reference is all zeros: the comparison would prove nothing');
  return diff / s;
}

/** Collects every comparison's error, so that a run reports its worst and every failure. */
export class Comparisons {
  readonly failures: string[] = [];
  worst = 0;

  constructor(private readonly tolerance: number) {}

  async close(actual: tf.Tensor, expected: tf.Tensor, what: string, options: {tolerance?: number; scale?: number} = {}):
      Promise<void> {
    const error = await relativeErrorAsync(actual, expected, options.scale);
    const tolerance = options.tolerance ?? this.tolerance;
    if (options.tolerance === undefined) this.worst = Math.max(this.worst, error);
    if (!(error <= tolerance)) this.failures.push(`${what}: relative error ${error.toExponential(2)} > ${tolerance}`);
  }

  equal(actual: unknown, expected: unknown, what: string): void {
    if (actual !== expected) this.failures.push(`${what}: ${actual} != ${expected}`);
  }
}

/** `f` in a tfjs scope of its own (tf.tidy cannot await): every tensor it makes and does not return is freed. */
async function scoped(f: () => Promise<void>): Promise<void> {
  tf.engine().startScope();
  try {
    await f();
  } finally {
    tf.engine().endScope();
  }
}

function weightsByName(layer: tfl.layers.Layer): Map<string, tfl.LayerVariable> {
  return new Map(layer.weights.map(w => [w.originalName.split('/').pop()!, w]));
}

/** The spectrum, the op's output and its two gradients, for every geometry. */
export async function checkOp(cn: ConvNormExports, ref: ReferenceFixtures, method: ConvNormMethod,
                              out: Comparisons): Promise<void> {
  const {H, W} = ref.shape;
  for (const c of ref.cases) await scoped(async () => {
    const name = `${caseName(c)} ${method}`;
    const x = decode(c.x[0]) as tf.Tensor4D;
    const kernel = decode(c.kernels[0]) as tf.Tensor4D;
    const size: [number, number] = [H + c.kernelSize[0] - 1, W + c.kernelSize[1] - 1];
    const args = {strides: c.strides, padding: c.padding, method};
    const cotangent = decode(c.op.cotangent);
    const [spectrum, output] = [cn.convNormSpectrum(kernel, size), cn.convNorm(x, kernel, args)];
    const [gx, gk] = tf.grads((a: tf.Tensor, k: tf.Tensor) =>
      tf.sum(tf.mul(cn.convNorm(a as tf.Tensor4D, k as tf.Tensor4D, args), cotangent)))([x, kernel]);
    const expected = [c.op.spectrum, c.op.output, c.op.gradX, c.op.gradKernel].map(decode);
    await out.close(spectrum, expected[0], `${name}: V`);
    await out.close(output, expected[1], `${name}: output`);
    await out.close(gx, expected[2], `${name}: d/dx`);
    await out.close(gk, expected[3], `${name}: d/dkernel`);
  });
}

function buildLayer(cn: ConvNormExports, ref: ReferenceFixtures, c: GeometryFixture, l: LayerFixture,
                    method: ConvNormMethod): ConvNorm2DClass {
  const {N, Cin, Cout, H, W} = ref.shape;
  const layer = new cn.ConvNorm2D({
    filters: Cout, kernelSize: c.kernelSize, strides: c.strides, padding: c.padding,
    affine: l.affine, batchNorm: l.batchNorm, momentum: l.momentum, rampdownSteps: ref.rampdownSteps, method,
  });
  layer.apply(tfl.input({batchShape: [N, H, W, Cin]}));
  const w = weightsByName(layer);
  const set = (name: string, value: Parameters<typeof decode>[0]) => w.get(name)!.write(decode(value));
  set('kernel', c.kernels[0]);
  if (l.affine) {
    set('affine_kernel', c.affineKernel);
    set('affine_bias', c.affineBias);
    if (l.batchNorm) {
      set('gamma', c.gamma);
      set('beta', c.beta);
    }
  }
  return layer;
}

/**
 * ConvNorm2D for every geometry and every affine / batchNorm / momentum
 * setting: the training output and every gradient, then two more training
 * steps with their own kernels, the step count, running V and statistics,
 * and an inference pass.
 */
export async function checkLayer(cn: ConvNormExports, ref: ReferenceFixtures, method: ConvNormMethod,
                                 tolerances: Tolerances, out: Comparisons): Promise<void> {
  for (const c of ref.cases) {
    for (const l of c.layers) await scoped(async () => {
      const name = `${caseName(c, l)} ${method}`;
      const layer = buildLayer(cn, ref, c, l, method);
      const w = weightsByName(layer);
      const x = tf.variable(decode(c.x[0]), true);
      const cotangent = decode(l.cotangent);
      const trainable = layer.trainableWeights.map(v => v.originalName.split('/').pop()!);
      const vars = [x, ...trainable.map(n => tf.engine().registeredVariables[w.get(n)!.name])];
      let output: tf.Tensor | undefined;
      const {grads} = tf.variableGrads(() => {
        output = tf.keep(layer.apply(x, {training: true}) as tf.Tensor);
        return tf.sum(tf.mul(output, cotangent)) as tf.Scalar;
      }, vars);
      await out.close(output!, decode(l.output), `${name}: training output`);
      await out.close(grads[x.name], decode(l.grads.x!), `${name}: d/dx`);
      for (const n of trainable) {
        const key = n.replace(/_(\w)/g, (_, ch: string) => ch.toUpperCase()) as keyof LayerFixture['grads'];
        // BatchNorm cancels a per-channel shift exactly and a per-channel scale up to
        // its epsilon, so d/daffine_bias is zero and, for 1x1 filters, d/daffine_kernel
        // is eps-driven: both are sums whose terms cancel (0.4 left of terms ~10), so
        // float32 rounding dominates them. They are measured against the scale of
        // d/dkernel, a gradient of the same layer without cancellation.
        const cancelled = l.batchNorm &&
          (key === 'affineBias' || (key === 'affineKernel' && c.kernelSize.every(k => k === 1)));
        const scale = cancelled ? Math.max(...Array.from(await tf.abs(decode(l.grads.kernel!)).data())) : undefined;
        await out.close(grads[w.get(n)!.name], decode(l.grads[key]!), `${name}: d/d${n}`,
                        cancelled ? {tolerance: tolerances.cancelled, scale} : {});
      }
      // Kept tensors outlive a scope: these two are freed by hand.
      tf.dispose([x, output!]);
      for (const t of [1, 2]) {
        w.get('kernel')!.write(decode(c.kernels[t]));
        tf.dispose(layer.apply(decode(c.x[t]), {training: true}) as tf.Tensor);
      }
      out.equal((await w.get('step')!.read().data())[0], ref.steps, `${name}: step count`);
      await out.close(w.get('running_v')!.read(), decode(l.runningV), `${name}: running V`);
      if (l.batchNorm) {
        await out.close(w.get('moving_mean')!.read(), decode(l.movingMean!), `${name}: moving mean`);
        await out.close(w.get('moving_variance')!.read(), decode(l.movingVariance!), `${name}: moving variance`);
      }
      const inference = layer.apply(decode(c.xEval), {training: false}) as tf.Tensor;
      await out.close(inference, decode(l.evalOutput), `${name}: inference output`);
      layer.dispose();
    });
  }
}
