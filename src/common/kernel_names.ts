/**
 * Names of the kernels the engine registers for this package's layers (tfjs's
 * kernel registry is how a layer finds them without importing the engine).
 */

/** Training-mode BatchNorm forward: x, gamma, beta -> y, batch mean, batch variance. */
export const BATCH_NORM_FORWARD = 'ConvNormBatchNormForward';
/** Its gradient: dy, x, mean, variance, gamma -> dx, dgamma, dbeta. */
export const BATCH_NORM_BACKWARD = 'ConvNormBatchNormBackward';
