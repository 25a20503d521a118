/**
 * ConvNorm in the Fourier domain (the spec's "equivalent formulation"): the
 * full convolution followed by the preconditioning is one circular
 * convolution on the (H + kh - 1) x (W + kw - 1) grid, so
 *
 *   out = iDFT( DFT(x zero-padded) . conj(DFT(kernel)) . V )  at the kept positions,
 *
 * a C_in x C_out complex matrix product per frequency between two DFTs, with
 * no full-resolution convolution. Every transform is one real matrix product
 * (real and imaginary parts stacked along the transformed axis), which is the
 * operation the wasm backend runs fast; the inverse transforms are evaluated
 * only at the rows and columns the crop and stride keep.
 *
 * Where the backend has kernels of its own for the transforms and the
 * per-frequency product (the engine registers them on wasm, found through
 * tfjs's kernel registry: common/kernel_names.ts), they run the same maths in
 * place of the tf ops below.
 *
 * The gradient is written by hand (every step is linear, so the backward pass
 * is the same transforms transposed, in reverse). Autodiff would keep every
 * intermediate of every layer until the backward pass, including the
 * F x C_in x C_out kernel spectra, which for ResNet-18's 512-channel layers
 * exhaust the wasm backend's 4 GB heap; here a layer keeps only its input
 * spectrum and recomputes the kernel spectrum from the taps.
 */
import * as tf from '@tensorflow/tfjs-core';

import {IMAGE_TO_SPECTRUM, SPECTRAL_PRODUCT, SPECTRAL_TAP_GRADIENT, SPECTRUM_TO_IMAGE} from
  '../common/kernel_names.js';
import {forwardComplexBlock, forwardRealStacked, halfSpectrumSize, inverseHalfComplexBlock, inverseRealPart,
        RealMatrix, tapBasis} from './dft.js';
import {ConvNormGeometry} from './geometry.js';

/**
 * Grid positions of the kept outputs. With x placed at the origin of the grid
 * (rather than at k-1, where the full convolution puts it) output i of the
 * reference sits at s*i - p.
 */
function keptPositions(count: number, stride: number, padding: number, n: number): number[] {
  return Array.from({length: count}, (_, i) => (((stride * i - padding) % n) + n) % n);
}

function matrix(m: RealMatrix): tf.Tensor2D {
  return tf.tensor2d(m.values, [m.rows, m.cols]);
}

/** `m`'s entries in a rows x cols matrix, entry (r, q) moved to row-major index to(r, q). */
function rearranged(m: RealMatrix, rows: number, cols: number, to: (r: number, q: number) => number): RealMatrix {
  const values = new Float32Array(m.values.length);
  for (let r = 0; r < m.rows; r++) for (let q = 0; q < m.cols; q++) values[to(r, q)] = m.values[r * m.cols + q];
  return {rows, cols, values};
}

function transposed(m: RealMatrix): RealMatrix {
  return rearranged(m, m.cols, m.rows, (r, q) => q * m.rows + r);
}

interface KernelBases {
  re: RealMatrix;
  imMinusRe: RealMatrix;
  rePlusIm: RealMatrix;
}

/** sign * a + bSign * b, elementwise. */
function combine(a: RealMatrix, b: RealMatrix, bSign: number, sign = 1): RealMatrix {
  return {rows: a.rows, cols: a.cols, values: a.values.map((x, i) => sign * x + bSign * b.values[i])};
}

/** Sizes of one application and its transform matrices. */
class Plan {
  readonly n: number; readonly h: number; readonly w: number; readonly cin: number; readonly cout: number;
  readonly mh: number; readonly mw: number; readonly fw: number; readonly freqs: number;
  readonly ho: number; readonly wo: number; readonly taps: number;
  /** DFT along the height of real data: [2 Mh, H]. */
  readonly alongH: RealMatrix;
  /** Half-spectrum DFT along the width of complex data: [2 Fw, 2 W]. */
  readonly alongW: RealMatrix;
  /** Inverse along the width at the kept columns, complex: [2 Wo, 2 Fw]. */
  readonly backW: RealMatrix;
  /** Real part of the inverse along the height at the kept rows: [Ho, 2 Mh]. */
  readonly backH: RealMatrix;
  /** Tap-to-frequency basis [F, kh kw], frequencies ordered (fw, fh). */
  readonly basis: {cos: RealMatrix; sin: RealMatrix};
  /** The bases of the kernel's Gauss operand, and of its conjugate. */
  readonly kernelBases: {plain: KernelBases; conjugate: KernelBases};
  /**
   * Whether the backend has the transforms and the per-frequency product as
   * kernels of their own (the engine's, on wasm: common/kernel_names.ts),
   * which take and give spectra as [N, C] per frequency.
   */
  readonly fourierKernels: boolean;
  /**
   * Spectra as [C, N] per frequency (else [N, C]). Chosen when the products
   * run on XNNPACK, which is fastest with the larger dimension as its rows:
   * the kernel operand on the left when the layer has more channels than the
   * batch has images (ResNet-18's 512-channel layers at batch 128: 1.7x), the
   * images otherwise (64 channels at batch 128: 1.4x). On the SIMD product the
   * two orders measured within noise of each other, so where the transform
   * kernels run, spectra are [N, C].
   */
  readonly channelsFirst: boolean;
  /** NHWC to [W, H, channels and images in spectrum order], and back. */
  readonly toColumns: number[];
  readonly fromColumns: number[];

  constructor(x: tf.Tensor4D, kernel: tf.Tensor4D, g: ConvNormGeometry) {
    [this.n, this.h, this.w, this.cin] = x.shape;
    const [kh, kw, , cout] = kernel.shape;
    this.cout = cout;
    [this.mh, this.mw] = g.fourierSize;
    [this.ho, this.wo] = g.outputSize;
    this.fw = halfSpectrumSize(this.mw);
    this.freqs = this.fw * this.mh;
    this.taps = kh * kw;
    const backend = tf.getBackend();
    this.fourierKernels = [IMAGE_TO_SPECTRUM, SPECTRUM_TO_IMAGE, SPECTRAL_PRODUCT, SPECTRAL_TAP_GRADIENT]
      .every(name => tf.getKernel(name, backend) !== undefined);
    this.channelsFirst = !this.fourierKernels && Math.max(this.cin, this.cout) > this.n;
    [this.toColumns, this.fromColumns] = this.channelsFirst ? [[2, 1, 3, 0], [3, 1, 0, 2]] : [[2, 1, 0, 3], [2, 1, 0, 3]];
    this.alongH = forwardRealStacked(this.mh, this.h, this.mh);
    this.alongW = forwardComplexBlock(this.mw, this.w, this.fw);
    this.backW = inverseHalfComplexBlock(this.mw, keptPositions(this.wo, g.strides[1], g.padding[1], this.mw));
    this.backH = inverseRealPart(this.mh, keptPositions(this.ho, g.strides[0], g.padding[0], this.mh));
    this.basis = tapBasis(kh, kw, this.mh, this.mw);
    const {cos, sin} = this.basis;
    this.kernelBases = {
      plain: {re: cos, imMinusRe: combine(sin, cos, -1), rePlusIm: combine(cos, sin, 1)},
      conjugate: {re: cos, imMinusRe: combine(sin, cos, -1, -1), rePlusIm: combine(cos, sin, -1)},
    };
  }
}

type Complex = {re: tf.Tensor3D; im: tf.Tensor3D};

function split(stacked: tf.Tensor, shape: [number, number, number]): Complex {
  const four = tf.reshape(stacked, [2, ...shape]);
  const part = (i: number) => tf.reshape(tf.slice(four, [i, 0, 0, 0], [1, ...shape]), shape) as tf.Tensor3D;
  return {re: part(0), im: part(1)};
}

/*
 * Every transform stage multiplies a small transform matrix, on the left, by
 * the data laid out with the transformed axis first, so that a trip between a
 * map and its spectrum is two products and one transpose (of the map, whose
 * channels and images stay together): [W, H, ...lead] on the map side, and
 * per W column [2 Mh, ...lead] in between. The wasm backend's SIMD product
 * streams such wide right operands without packing them; the data-left
 * orientation needed two more transposes per trip (~2 s of a ResNet-18 step).
 */

/** The leading axes of a spectrum or a map's columns: [C, N] or [N, C]. */
function lead(c: number, p: Plan): [number, number] {
  return p.channelsFirst ? [c, p.n] : [p.n, c];
}

/** `m` with the (part, i) order of its rows or columns, 2 x n of them, changed to (i, part). */
function partsInner(m: RealMatrix, axis: 'rows' | 'cols'): RealMatrix {
  const half = (axis === 'rows' ? m.rows : m.cols) / 2;
  const moved = (k: number) => (k < half ? 2 * k : 2 * (k - half) + 1);
  return rearranged(m, m.rows, m.cols,
                    (r, q) => (axis === 'rows' ? moved(r) * m.cols + q : r * m.cols + moved(q)));
}

/**
 * A map [N, H', W', C] (NHWC) to a spectrum [2, Fw, Mh, ...lead]: per column
 * w, `byH` [2 Mh, H'] times its [H', ...lead] (to real and imaginary parts
 * over Mh), then `byW` [2 Fw, 2 W'] (columns (part, w)) times all of it.
 */
function imageToSpectrum(x: tf.Tensor4D, p: Plan, byH: RealMatrix, byW: RealMatrix): tf.Tensor {
  if (p.fourierKernels) {
    return tf.engine().runKernel(IMAGE_TO_SPECTRUM, {x, byH: matrix(partsInner(byH, 'rows')), byW: matrix(byW)}) as
      tf.Tensor;
  }
  const [, h, w, c] = x.shape;
  const cn = c * p.n;
  const columns = tf.reshape(tf.transpose(x, p.toColumns), [w, h, cn]);
  const alongH = tf.matMul(tf.reshape(matrix(byH), [1, 2 * p.mh, h]), columns);
  // Rows (w, part) of alongH, so byW's columns go (w, part) too.
  return tf.matMul(matrix(partsInner(byW, 'cols')), tf.reshape(alongH, [2 * w, p.mh * cn]));
}

/**
 * The reverse trip, a spectrum [2, Fw, Mh, ...lead] of `c` channels to a map
 * [N, h, w, C]: `byW` [2 w, 2 Fw] (rows (part, w)) times it, then per column
 * w, `byH` [h, 2 Mh] times its [2 Mh, ...lead].
 */
function spectrumToImage(z: tf.Tensor, c: number, p: Plan, byW: RealMatrix, byH: RealMatrix,
                         [h, w]: [number, number]): tf.Tensor4D {
  if (p.fourierKernels) {
    const z4 = tf.reshape(z, [2 * p.fw, p.mh, p.n, c]);
    return tf.engine().runKernel(SPECTRUM_TO_IMAGE, {z: z4, byW: matrix(byW), byH: matrix(partsInner(byH, 'cols'))}) as
      tf.Tensor4D;
  }
  const cn = c * p.n;
  const alongW = tf.matMul(matrix(partsInner(byW, 'rows')), tf.reshape(z, [2 * p.fw, p.mh * cn]));
  const alongH = tf.matMul(tf.reshape(matrix(byH), [1, h, 2 * p.mh]), tf.reshape(alongW, [w, 2 * p.mh, cn]));
  return tf.transpose(tf.reshape(alongH, [w, h, ...lead(c, p)]), p.fromColumns) as tf.Tensor4D;
}

/** DFT of x zero-padded to the grid, [Re; Im] stacked: [2, F, ...lead]. */
function inputSpectrum(x: tf.Tensor4D, p: Plan): tf.Tensor {
  return imageToSpectrum(x, p, p.alongH, p.alongW);
}

/** The adjoint of inputSpectrum: the same steps transposed, in reverse. */
function inputSpectrumAdjoint(dSpec: tf.Tensor, p: Plan): tf.Tensor4D {
  return spectrumToImage(dSpec, p.cin, p, transposed(p.alongW), transposed(p.alongH), [p.h, p.w]);
}

/** Output at the kept positions from the output spectrum [2, F, ...lead]. */
function outputFromSpectrum(z: tf.Tensor, p: Plan): tf.Tensor4D {
  return spectrumToImage(z, p.cout, p, p.backW, p.backH, [p.ho, p.wo]);
}

/** The adjoint of outputFromSpectrum. */
function outputAdjoint(dy: tf.Tensor4D, p: Plan): tf.Tensor {
  return imageToSpectrum(dy, p, transposed(p.backH), transposed(p.backW));
}

/**
 * A complex matrix M = re + i im (a batch of them, one per frequency) as the
 * three real matrices a Gauss product uses: re, im - re, re + im.
 */
interface GaussOperand {
  re: tf.Tensor3D;
  imMinusRe: tf.Tensor3D;
  rePlusIm: tf.Tensor3D;
}

/**
 * The kernel operand conj(DFT(kernel zero-padded)) (conjugated again when
 * `conj`) straight from the taps, without V: each of its three parts is one
 * product with a fixed combination of the cos / sin tap bases, so the complex
 * kernel spectrum itself, F x C_in x C_out twice, is never formed. That keeps
 * the 512-channel layers' transient memory to three such tensors. `transposed`
 * builds each frequency's matrix as C_out x C_in (K^T) instead.
 *
 * V scales K's output channels (K_f diag(V_f)), so it is applied to the data
 * instead: to the output spectrum, and to its gradient before both products
 * that use it. That is two passes over F x N x C_out per step where scaling
 * the operand took eight over F x C_in x C_out (three parts forward, three
 * backward, two for the tap gradient).
 *
 * @param taps [kh kw, C_in C_out]
 */
function kernelOperand(taps: tf.Tensor2D, p: Plan, conj: boolean, transposed = false): GaussOperand {
  // conj(sum_taps w e^{-i t}) = sum_taps w (cos t + i sin t).
  const [shape, byTap]: [[number, number, number], tf.Tensor2D] = transposed
    ? [[p.freqs, p.cout, p.cin],
       tf.reshape(tf.transpose(tf.reshape(taps, [p.taps, p.cin, p.cout]), [0, 2, 1]), [p.taps, p.cout * p.cin])]
    : [[p.freqs, p.cin, p.cout], taps];
  const part = (basis: RealMatrix) =>
    tf.tidy(() => tf.reshape(tf.matMul(matrix(basis), byTap), shape) as tf.Tensor3D);
  const b = conj ? p.kernelBases.conjugate : p.kernelBases.plain;
  return {re: part(b.re), imMinusRe: part(b.imMinusRe), rePlusIm: part(b.rePlusIm)};
}

/**
 * Per-frequency products K X of a kernel operand (left) and complex data, with
 * three real products (Gauss): for K = a + ib, X = c + id,
 * K X = (k1 - k2) + i(k1 + k3), k1 = a(c + d), k2 = (a + b)d, k3 = (b - a)c.
 */
function kernelTimes(k: GaussOperand, x: Complex): Complex {
  const k1 = tf.matMul(k.re, tf.add(x.re, x.im));
  const re = tf.sub(k1, tf.matMul(k.rePlusIm, x.im));
  const im = tf.add(k1, tf.matMul(k.imMinusRe, x.re));
  return {re: re as tf.Tensor3D, im: im as tf.Tensor3D};
}

/** X K with the kernel operand on the right: (k1 - k3) + i(k1 + k2), k1 = (a + b)c, k2 = a(d - c), k3 = b(c + d). */
function timesKernel(x: Complex, k: GaussOperand): Complex {
  const k1 = tf.matMul(tf.add(x.re, x.im), k.re);
  const re = tf.sub(k1, tf.matMul(x.im, k.rePlusIm));
  const im = tf.add(k1, tf.matMul(x.re, k.imMinusRe));
  return {re: re as tf.Tensor3D, im: im as tf.Tensor3D};
}

/**
 * conj(A) B per frequency, A and B (transposed as in matMul) complex: with
 * conj(A) = a - ib and B = c + id, (k1 - k3) + i(k1 + k2) for k1 = (a - b)c,
 * k2 = a(d - c), k3 = -b(c + d). A transposed A goes to matMul's flag (the
 * wasm engine's product reads it in place); a transposed B is transposed
 * before the Gauss combinations, two transposes where the engine would make
 * one for each of three combined operands.
 */
function conjTimes(a: Complex, b: Complex, transposeA: boolean, transposeB: boolean): Complex {
  const swap = (t: tf.Tensor3D) => tf.transpose(t, [0, 2, 1]);
  const [c, d] = transposeB ? [swap(b.re), swap(b.im)] : [b.re, b.im];
  const k1 = tf.matMul(tf.sub(a.re, a.im), c, transposeA);
  const k2 = tf.matMul(a.re, tf.sub(d, c), transposeA);
  const re = tf.add(k1, tf.matMul(a.im, tf.add(c, d), transposeA));
  return {re: re as tf.Tensor3D, im: tf.add(k1, k2) as tf.Tensor3D};
}

/** A linear map with its adjoint as gradient: autodiff would keep every intermediate transform. */
function linearOp(forward: (t: tf.Tensor) => tf.Tensor, adjoint: (dy: tf.Tensor) => tf.Tensor) {
  return tf.customGrad((...args) => ({
    value: forward(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.tidy(() => adjoint(dy)),
  }));
}

/**
 * The per-frequency product Z = X K diag(V) and its gradient as the backend's
 * kernels (Plan.fourierKernels), on spectra [2, F, N, C]: the kernel
 * spectrum is made from the taps one frequency at a time inside them.
 */
function kernelProduct(p: Plan) {
  const basis = () => ({cos: matrix(p.basis.cos), sin: matrix(p.basis.sin)});
  const perFrequency = (v: tf.Tensor) => tf.reshape(v, [p.freqs, p.cout]);
  return tf.customGrad((...args) => {
    const [xSpec, taps, v] = args as [tf.Tensor, tf.Tensor2D, tf.Tensor];
    (args[3] as tf.GradSaveFunc)([xSpec, taps, v]);
    return {
      value: tf.engine().runKernel(SPECTRAL_PRODUCT, {x: xSpec, taps, ...basis(), v: perFrequency(v)},
                                   {conjugate: false, scaleInput: false}) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        const [savedSpec, savedTaps, v] = saved as [tf.Tensor, tf.Tensor2D, tf.Tensor];
        const common = {...basis(), v: perFrequency(v)};
        // dX = dZ diag(V) K^H: the product with the taps transposed ([T, C_out C_in]) and conjugated.
        const tapsT = tf.reshape(tf.transpose(tf.reshape(savedTaps, [p.taps, p.cin, p.cout]), [0, 2, 1]),
                                 [p.taps, p.cout * p.cin]);
        const dSpec = tf.engine().runKernel(SPECTRAL_PRODUCT, {x: dy, taps: tapsT, ...common},
                                            {conjugate: true, scaleInput: true}) as tf.Tensor;
        const dTaps = tf.engine().runKernel(SPECTRAL_TAP_GRADIENT, {x: savedSpec, dy, ...common}) as tf.Tensor;
        return [dSpec, dTaps, tf.zerosLike(v)];
      }),
    };
  });
}

export function fourierConvNorm(x: tf.Tensor4D, kernel: tf.Tensor4D, spectrum: tf.Tensor,
                                g: ConvNormGeometry): tf.Tensor4D {
  const p = new Plan(x, kernel, g);
  // V is a constant (detached, as in the reference), in the (fw, fh) order and shaped to scale the
  // output channels of a stacked spectrum [2, F, ...lead(C_out)].
  const v = tf.reshape(tf.transpose(spectrum, [2, 1, 0]), p.channelsFirst ? [p.freqs, p.cout, 1] : [p.freqs, 1, p.cout]);
  const toSpectrum = linearOp(t => tf.reshape(inputSpectrum(t as tf.Tensor4D, p), [2, p.freqs, ...lead(p.cin, p)]),
                              dy => inputSpectrumAdjoint(dy, p));
  const fromSpectrum = linearOp(z => outputFromSpectrum(z, p),
                                dy => tf.reshape(outputAdjoint(dy as tf.Tensor4D, p), [2, p.freqs, ...lead(p.cout, p)]));
  // The product keeps only its inputs (the input spectrum, the taps, V); K is recomputed for the gradient.
  // V is an input only so that it is saved: tfjs disposes anything else the forward pass made.
  const product = p.fourierKernels ? kernelProduct(p) : tf.customGrad((...args) => {
    const [xSpec, taps, v] = args as [tf.Tensor, tf.Tensor2D, tf.Tensor];
    (args[3] as tf.GradSaveFunc)([xSpec, taps, v]);
    const x = split(xSpec, [p.freqs, ...lead(p.cin, p)]);
    // Z = X K diag(V), or Z^T = diag(V) K^T X^T with the spectra channels-first.
    const z = p.channelsFirst ? kernelTimes(kernelOperand(taps, p, false, true), x)
                              : timesKernel(x, kernelOperand(taps, p, false));
    return {
      value: tf.mul(tf.stack([z.re, z.im]), v),
      // tfjs runs a custom gradient outside any tidy: without one, every layer's backward
      // intermediates would live until the whole backward pass ends. The inner tidies
      // free each stage's F x C_in x C_out temporaries before the next stage starts.
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        const [savedSpec, savedTaps, v] = saved as [tf.Tensor, tf.Tensor2D, tf.Tensor];
        // dZ diag(V) (V is real), which both products below take.
        const dz = split(tf.mul(dy, v), [p.freqs, ...lead(p.cout, p)]);
        // dX = dZ diag(V) K^H, or dX^T = conj(K) diag(V) dZ^T.
        const dSpec = tf.tidy(() => {
          const dx = p.channelsFirst ? kernelTimes(kernelOperand(savedTaps, p, true), dz)
                                     : timesKernel(dz, kernelOperand(savedTaps, p, true, true));
          return tf.stack([dx.re, dx.im]);
        });
        // dK = X^H dZ diag(V) (= conj(X^T) (dZ^T)^T channels-first), then through K = basis taps.
        const dTaps = tf.tidy(() => {
          const xs = split(savedSpec, [p.freqs, ...lead(p.cin, p)]);
          const dk = conjTimes(xs, dz, !p.channelsFirst, p.channelsFirst);
          const throughBasis = (d: tf.Tensor, basis: RealMatrix) => tf.tidy(() =>
            tf.matMul(matrix(transposed(basis)), tf.reshape(d, [p.freqs, p.cin * p.cout])));
          const fromRe = throughBasis(dk.re, p.basis.cos);
          dk.re.dispose();
          return tf.add(fromRe, throughBasis(dk.im, p.basis.sin));
        });
        return [dSpec, dTaps, tf.zerosLike(v)];
      }),
    };
  });
  const taps = tf.reshape(kernel, [p.taps, p.cin * p.cout]);
  return fromSpectrum(product(toSpectrum(x), taps, v)) as tf.Tensor4D;
}
