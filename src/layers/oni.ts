/**
 * Orthogonalization by Newton's Iteration (ONI; Huang et al., CVPR 2020), one
 * of the baselines ConvNorm is compared with: the authors' ONI_Conv2d
 * (huangleiBuaa/ONI, NormedConv.py, which the ConvNorm code copies as
 * models/oni.py).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import {fail} from '../common/arguments.js';
import {kernelToMatrix, matrixToKernel, NormalizedConv2D, NormalizedConv2DArgs} from './normalized_conv.js';

/** The authors' eps added to the diagonal of S. */
export const ONI_EPSILON = 1e-5;
/** The authors' NScale: sqrt(2), so that ReLU layers keep their variance. */
export const ONI_SCALE = 1.414;

export interface OniOptions {
  /** Newton iterations T. Default 5 (ONINorm's and the ONI paper's; the ConvNorm code runs 3). */
  iterations?: number;
  /** Norm groups: the C_out rows are split into this many groups, each orthogonalized alone. Default 1. */
  normGroups?: number;
  /** Added to the diagonal of S. Default 1e-5, the authors'. */
  epsilon?: number;
  /**
   * When C_out > C_in * kh * kw (more rows than columns), the authors
   * orthogonalize columns instead (ONINorm_colum) unless ONIRow_Fix is set.
   * false (default) follows them; true uses the row form for every shape.
   */
  rowFix?: boolean;
}

function checkOptions(options: OniOptions, filters: number): Required<OniOptions> {
  const iterations = options.iterations ?? 5;
  if (!Number.isInteger(iterations) || iterations < 1) {
    fail(`ONI: iterations (T) must be a positive integer, got ${JSON.stringify(options.iterations)}`);
  }
  const normGroups = options.normGroups ?? 1;
  if (!Number.isInteger(normGroups) || normGroups < 1) {
    fail(`ONI: normGroups must be a positive integer, got ${JSON.stringify(options.normGroups)}`);
  }
  if (filters % normGroups !== 0) {
    fail(`ONI: normGroups (${normGroups}) must divide the number of output channels (${filters})`);
  }
  const epsilon = options.epsilon ?? ONI_EPSILON;
  if (!(epsilon >= 0 && Number.isFinite(epsilon))) fail(`ONI: epsilon must be a finite number >= 0, got ${epsilon}`);
  return {iterations, normGroups, epsilon, rowFix: options.rowFix ?? false};
}

/**
 * Whether ONI orthogonalizes columns for this kernel: the authors' test,
 * C_out > C_in * kh * kw on the whole kernel (not per group), unless rowFix.
 */
export function oniUsesColumns(kernelShape: readonly number[], rowFix = false): boolean {
  const [kh, kw, cin, cout] = kernelShape;
  return !rowFix && cout > cin * kh * kw;
}

/** ||S||_F of each [n, n] matrix of a [G, n, n] batch, as [G, 1, 1]. */
function frobenius(s: tf.Tensor3D): tf.Tensor3D {
  return tf.sqrt(tf.sum(tf.square(s), [1, 2], true)) as tf.Tensor3D;
}

/**
 * B_T of the authors' Newton iteration B_0 = I, B_{t+1} = 1.5 B_t - 0.5 B_t^3 S,
 * for a [G, n, n] batch S, computed in the coupled form (Higham, Functions of
 * Matrices, 2008, sec. 6.7): Y_0 = S, Z_0 = I, M = 1.5 I - 0.5 Z_t Y_t,
 * Y_{t+1} = Y_t M, Z_{t+1} = M Z_t. By induction Y_t = S Z_t and Z_t = B_t in
 * exact arithmetic (all are polynomials in S), at the same three products per
 * step; but the authors' form amplifies rounding error by ~2.5x per step once
 * converged (float32: W W^T off I by 5e-6 at T = 10, 5e-4 at T = 15, NaN by
 * T = 40), while the coupled one stays at rounding level.
 */
function newtonIterations(s: tf.Tensor3D, iterations: number): tf.Tensor3D {
  const n = s.shape[1];
  const eye = tf.eye(n);
  let z: tf.Tensor3D | undefined;
  let y = s;
  for (let t = 0; t < iterations; t++) {
    const zy = z === undefined ? y : tf.matMul(z, y);
    const m = tf.sub(tf.mul(1.5, eye), tf.mul(0.5, zy)) as tf.Tensor3D;
    if (t + 1 < iterations) y = tf.matMul(y, m) as tf.Tensor3D;
    z = z === undefined ? m : tf.matMul(m, z) as tf.Tensor3D;
  }
  return z!;
}

/**
 * The orthogonalized kernel of ONI, before the scale: the authors' ONINorm
 * (row form) or ONINorm_colum (column form, see oniUsesColumns), for a tfjs
 * [kh, kw, C_in, C_out] kernel. With Z the kernel as [G, C_out/G, C_in*kh*kw]
 * (PyTorch's order), Zc = Z minus each row's mean:
 *
 * - rows: S = Zc Zc^T + eps I, S <- S / ||S||_F, T Newton steps, W = B_T Zc / sqrt(||S||_F)
 *   (W W^T -> I per group as T grows, when C_out/G <= C_in*kh*kw).
 * - columns: S = Zc^T Zc + eps I, **not** divided by ||S||_F (the authors have
 *   that line commented out), W = Zc B_T / sqrt(||S||_F). So W's columns come
 *   out orthogonal with norm ~||S||_F^(-1/2), not 1, and the iteration only
 *   converges while S's eigenvalues stay below 3 (it diverges above 5).
 *
 * Differentiable throughout (plain tf ops).
 */
export function oniKernel(kernel: tf.Tensor4D, options: OniOptions = {}): tf.Tensor4D {
  const cout = kernel.shape[3];
  const {iterations, normGroups, epsilon, rowFix} = checkOptions(options, cout);
  return tf.tidy(() => {
    const fanIn = kernel.size / cout;
    const z = tf.reshape(kernelToMatrix(kernel), [normGroups, cout / normGroups, fanIn]);
    const zc = tf.sub(z, tf.mean(z, 2, true)) as tf.Tensor3D;
    let w: tf.Tensor;
    if (oniUsesColumns(kernel.shape, rowFix)) {
      const s = tf.add(tf.matMul(zc, zc, true, false), tf.mul(epsilon, tf.eye(fanIn))) as tf.Tensor3D;
      const norm = frobenius(s);
      w = tf.div(tf.matMul(zc, newtonIterations(s, iterations)), tf.sqrt(norm));
    } else {
      const s = tf.add(tf.matMul(zc, zc, false, true), tf.mul(epsilon, tf.eye(cout / normGroups))) as tf.Tensor3D;
      const norm = frobenius(s);
      w = tf.div(tf.matMul(newtonIterations(tf.div(s, norm), iterations), zc), tf.sqrt(norm));
    }
    return matrixToKernel(tf.reshape(w, [cout, fanIn]), kernel.shape);
  });
}

export interface OniConv2DArgs extends NormalizedConv2DArgs, OniOptions {
  /** The factor the orthogonalized kernel is multiplied by (NScale), one per output channel. Default 1.414. */
  scale?: number;
  /**
   * Learn the per-channel scale (the authors' adjustScale), starting at `scale`.
   * Default false (the ONI authors' default; the ConvNorm code sets it).
   */
  learnableScale?: boolean;
}

/**
 * Conv2D whose kernel is orthogonalized by ONI on every call (training and
 * inference alike: ONI keeps no state) and multiplied by a per-output-channel
 * scale. Gradients flow through the Newton iterations. Weights: kernel, bias
 * (when useBias), scale [C_out] (when learnableScale).
 */
export class OniConv2D extends NormalizedConv2D {
  static className = 'OniConv2D';
  readonly iterations: number;
  readonly normGroups: number;
  readonly epsilon: number;
  readonly rowFix: boolean;
  readonly scale: number;
  readonly learnableScale: boolean;
  private scaleWeight?: tfl.LayerVariable;

  constructor(args: OniConv2DArgs) {
    super(args);
    const checked = checkOptions(args, this.filters);
    this.iterations = checked.iterations;
    this.normGroups = checked.normGroups;
    this.epsilon = checked.epsilon;
    this.rowFix = checked.rowFix;
    this.scale = args.scale ?? ONI_SCALE;
    if (!Number.isFinite(this.scale)) fail(`OniConv2D: scale must be a finite number, got ${args.scale}`);
    this.learnableScale = args.learnableScale ?? false;
  }

  protected override buildState(): void {
    if (this.learnableScale) {
      this.scaleWeight = this.addWeight('scale', [this.filters], 'float32',
                                        tfl.initializers.constant({value: this.scale}));
    }
  }

  protected override normalizedKernel(kernel: tf.Tensor4D): tf.Tensor4D {
    const w = oniKernel(kernel, {iterations: this.iterations, normGroups: this.normGroups,
                                 epsilon: this.epsilon, rowFix: this.rowFix});
    return tf.mul(w, this.scaleWeight?.read() ?? this.scale);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      iterations: this.iterations, normGroups: this.normGroups, epsilon: this.epsilon, rowFix: this.rowFix,
      scale: this.scale, learnableScale: this.learnableScale, ...super.getConfig(),
    };
  }
}
tf.serialization.registerClass(OniConv2D);

/** Factory in the tf.layers style. */
export function oniConv2d(args: OniConv2DArgs): OniConv2D {
  return new OniConv2D(args);
}
