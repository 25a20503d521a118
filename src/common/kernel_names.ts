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
 * -> [R, Mh, N, C], byW applied along the width to byH applied along the
 * height. byW is a complex matrix in block form ([[A, -B], [B, A]], rows and
 * columns (part, index)), as DFTs and their adjoints are: the engine's kernel
 * transforms the width first, on the real map.
 */
export const IMAGE_TO_SPECTRUM = 'ConvNormImageToSpectrum';
/**
 * The reverse trip: z [R, Mh, N, C], byW [2 W, R] (rows (part, column)), byH
 * [H, 2 Mh] (columns (frequency, part)) -> [N, H, W, C], byH applied along the
 * height to byW applied along the width, byW in the same block form.
 */
export const SPECTRUM_TO_IMAGE = 'ConvNormSpectrumToImage';
/**
 * The Fourier ConvNorm's per-frequency product: x [2, F, N, rows] (real
 * parts, then imaginary), taps [T, rows cols], cos and sin [F, T], v [F, scaled
 * channels] -> z [2, F, N, cols], Z_f = X_f K_f diag(v_f), or X_f diag(v_f) K_f
 * with attribute scaleInput, K_f = sum_t taps[t] (cos[f, t] + i s sin[f, t]), s
 * = -1 with attribute conjugate, else 1.
 */
export const SPECTRAL_PRODUCT = 'ConvNormSpectralProduct';
/**
 * Its gradient for the taps: x [2, F, N, rows], dy [2, F, N, cols], cos, sin, v
 * [F, cols] -> [T, rows cols], sum over f of cos[f, t] Re G_f + sin[f, t] Im
 * G_f, G_f = X_f^H dY_f diag(v_f).
 */
export const SPECTRAL_TAP_GRADIENT = 'ConvNormSpectralTapGradient';
/**
 * The preconditioning spectrum V from a kernel's taps: taps [T, C_in C_out],
 * cos and sin [F, T] -> [F, C_out], V[f, k] = (sum over j of |K_f[j, k]|^2 +
 * epsilon)^(-1/2), K_f = sum_t taps[t] (cos[f, t] + i sin[f, t]); attribute
 * epsilon.
 */
export const PRECONDITIONING_SPECTRUM = 'ConvNormPreconditioningSpectrum';
