export {ConvNorm2D, convNorm2d} from './convnorm/layer.js';
export type {ConvNorm2DArgs} from './convnorm/layer.js';
export {convNorm} from './convnorm/op.js';
export type {ConvNormOpArgs} from './convnorm/op.js';
export {convNormSpectrum, DEFAULT_SPECTRUM_EPSILON} from './convnorm/spectrum.js';
export {ConvNormArgumentError} from './convnorm/geometry.js';
export type {PaddingArg} from './convnorm/geometry.js';
