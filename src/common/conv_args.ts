import type {LayerArgs} from '@tensorflow/tfjs-layers/dist/engine/topology.js';

import type {Constraint, Regularizer, SerializedObject} from './serialization.js';

/** The arguments every convolution layer of the package takes, as tfjs's Conv2D names them. */
export interface ConvArgs extends LayerArgs {
  /** Number of output channels C_out. */
  filters: number;
  /** Kernel height and width: one number or [kh, kw]. */
  kernelSize: number | [number, number];
  /** Stride: one number or [sh, sw]. Default 1. */
  strides?: number | [number, number];
  /** Regularizer of the conv kernel. */
  kernelRegularizer?: Regularizer | SerializedObject;
  /** Constraint on the conv kernel. */
  kernelConstraint?: Constraint | SerializedObject;
}
