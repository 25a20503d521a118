/**
 * Names of the kernels the engine registers for this package's layers (tfjs's
 * kernel registry is how a layer finds them without importing the engine).
 */

/** Training-mode BatchNorm forward: x, gamma, beta -> y, batch mean, batch variance. */
export const BATCH_NORM_FORWARD = 'ConvNormBatchNormForward';
/** Its gradient: dy, x, mean, variance, gamma -> dx, dgamma, dbeta. */
export const BATCH_NORM_BACKWARD = 'ConvNormBatchNormBackward';
/**
 * The Fourier ConvNorm's trip from maps to spectra: x [N, H, W, C], byH
 * [2 Mh, H] (rows (frequency, part)), byW [R, 2 W] (columns (part, column))
 * -> [R, Mh, N, C], the transform along the height, then along the width.
 */
export const IMAGE_TO_SPECTRUM = 'ConvNormImageToSpectrum';
/**
 * The reverse trip: z [R, Mh, N, C], byW [2 W, R] (rows (part, column)), byH
 * [H, 2 Mh] (columns (frequency, part)) -> [N, H, W, C], the transform along
 * the width, then along the height.
 */
export const SPECTRUM_TO_IMAGE = 'ConvNormSpectrumToImage';
