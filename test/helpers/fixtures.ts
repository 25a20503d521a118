import * as tf from '@tensorflow/tfjs-core';

/** A float32 array as reference/make_fixtures.py stores it (tfjs layout). */
export interface Encoded {shape: number[]; data: string}

export interface LayerFixture {
  affine: boolean;
  batchNorm: boolean;
  momentum: number | null;
  output: Encoded;
  cotangent: Encoded;
  grads: Record<'x' | 'kernel' | 'affineKernel' | 'affineBias' | 'gamma' | 'beta', Encoded | undefined>;
  runningV: Encoded;
  evalOutput: Encoded;
  movingMean?: Encoded;
  movingVariance?: Encoded;
}

export interface GeometryFixture {
  kernelSize: [number, number];
  strides: number;
  padding: number;
  x: Encoded[];
  xEval: Encoded;
  kernels: Encoded[];
  affineKernel: Encoded;
  affineBias: Encoded;
  gamma: Encoded;
  beta: Encoded;
  op: {spectrum: Encoded; output: Encoded; cotangent: Encoded; gradX: Encoded; gradKernel: Encoded};
  layers: LayerFixture[];
}

export interface ReferenceFixtures {
  rampdownSteps: number;
  steps: number;
  shape: {N: number; Cin: number; Cout: number; H: number; W: number};
  cases: GeometryFixture[];
}

/** A stored array as a float32 tensor (atob: the same in Node and in a page). */
export function decode(e: Encoded): tf.Tensor {
  const binary = atob(e.data);
  const bytes = Uint8Array.from(binary, ch => ch.charCodeAt(0));
  return tf.tensor(new Float32Array(bytes.buffer), e.shape);
}

export function caseName(c: GeometryFixture, l?: LayerFixture): string {
  const base = `${c.kernelSize.join('x')} s${c.strides} p${c.padding}`;
  return l === undefined ? base
    : `${base} affine=${l.affine} bn=${l.batchNorm} momentum=${l.momentum}`;
}
