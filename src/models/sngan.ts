/**
 * The SNGAN ResNet networks for 32x32 images (Miyato et al., ICLR 2018), laid
 * out as Mimicry's sngan_32 (Lee & Town, 2020): the generator's up-blocks
 * BN, ReLU, x2 bilinear upsampling, conv3x3, BN, ReLU, conv3x3 with an
 * upsampled 1x1 shortcut; the discriminator's optimized first block, a
 * down-block and two plain blocks, ReLU, global sum pooling and a linear
 * output. Weights are initialized as Mimicry does (Xavier uniform, gain sqrt 2
 * for the residual convs and 1 for shortcuts and the ends; PyTorch's default
 * biases). 28x28 images take a 7x7 start and two up-blocks.
 *
 * The discriminator's normalization, `dNorm`:
 * - `sn`: every conv and the linear layer spectrally normalized (SNGAN);
 * - `convnorm`: every conv a ConvNorm2D without BatchNorm (affine filter on),
 *   a plain linear layer;
 * - `convnorm+sn`: ConvNorm convs and a spectrally normalized linear layer
 *   (ConvNorm's output does not depend on its kernel's scale, so SN on the
 *   kernels themselves would change nothing);
 * - `none`: plain convs and linear layer.
 */
import * as tfl from '@tensorflow/tfjs-layers';

import {fail} from '../common/arguments.js';
import {torchDefaultInit} from '../common/initializers.js';
import {convNorm2d} from '../convnorm/layer.js';
import {BatchNorm2D} from '../layers/batch_norm.js';
import {GlobalSumPooling2D} from '../layers/global_sum_pooling.js';
import {PlainConv2D} from '../layers/plain_conv.js';
import {SpectralNormConv2D} from '../layers/spectral_norm.js';
import {BilinearUpsampling2D} from '../layers/upsampling.js';
import {SeedSequence} from './blocks.js';

export const D_NORMS = ['sn', 'convnorm', 'convnorm+sn', 'none'] as const;
export type DNorm = (typeof D_NORMS)[number];

/** The image shapes the networks are laid out for. */
export const GAN_IMAGE_SHAPES = [[32, 32, 3], [28, 28, 1]] as const;

export interface SnganArgs {
  /** [H, W, C] of the images: [32, 32, 3] (default) or [28, 28, 1]. */
  imageShape?: readonly [number, number, number];
  /** Width: channels of every block. Default 256 for the generator, 128 for the discriminator, as SNGAN. */
  ch?: number;
  seed?: number;
}

export interface GeneratorArgs extends SnganArgs {
  /** Length of the noise z. Default 128. */
  zDim?: number;
}

export interface DiscriminatorArgs extends SnganArgs {
  dNorm: DNorm;
}

export function checkDNorm(name: string): DNorm {
  if (!(D_NORMS as readonly string[]).includes(name)) fail(`unknown discriminator norm '${name}'; choose one of ${D_NORMS.join(', ')}`);
  return name as DNorm;
}

function checkArgs(args: SnganArgs, defaultCh: number): {shape: readonly [number, number, number]; ch: number} {
  const shape = args.imageShape ?? GAN_IMAGE_SHAPES[0];
  if (!GAN_IMAGE_SHAPES.some(s => s.every((x, i) => x === shape[i]))) {
    fail(`the SNGAN networks take 32x32x3 or 28x28x1 images, got [${shape}]`);
  }
  const ch = args.ch ?? defaultCh;
  if (!Number.isInteger(ch) || ch < 1) fail(`ch must be a positive integer, got ${ch}`);
  return {shape, ch};
}

/** Xavier uniform with a gain, as torch.nn.init.xavier_uniform_. */
function xavier(gain: number, seed: number) {
  return tfl.initializers.varianceScaling({scale: gain ** 2, mode: 'fanAvg', distribution: 'uniform', seed});
}

type Apply = (x: tfl.SymbolicTensor) => tfl.SymbolicTensor;
const apply = (layer: tfl.layers.Layer): Apply => x => layer.apply(x) as tfl.SymbolicTensor;
const relu = () => apply(tfl.layers.reLU());
const add = (a: tfl.SymbolicTensor, b: tfl.SymbolicTensor) => tfl.layers.add().apply([a, b]) as tfl.SymbolicTensor;
const avgPool = () => apply(tfl.layers.averagePooling2d({poolSize: 2, strides: 2}));

/** A conv with bias, 'same' zero padding, of the discriminator's kind. */
function dConv(name: string, dNorm: DNorm, filters: number, kernelSize: number, gain: number, seeds: SeedSequence): Apply {
  const padding = (kernelSize - 1) / 2;
  const kernelInitializer = xavier(gain, seeds.take());
  if (dNorm === 'convnorm' || dNorm === 'convnorm+sn') {
    return apply(convNorm2d({name, filters, kernelSize, padding, batchNorm: false, affine: true, kernelInitializer,
                             seed: seeds.take()}));
  }
  const args = {name, filters, kernelSize, padding, useBias: true, kernelInitializer, seed: seeds.take()};
  return apply(dNorm === 'sn' ? new SpectralNormConv2D(args) : new PlainConv2D(args));
}

function gConv(name: string, filters: number, kernelSize: number, gain: number, seeds: SeedSequence): Apply {
  return apply(new PlainConv2D({name, filters, kernelSize, padding: (kernelSize - 1) / 2, useBias: true,
                                kernelInitializer: xavier(gain, seeds.take()), seed: seeds.take()}));
}

const batchNorm = (name: string) => apply(new BatchNorm2D({name}));

/**
 * The generator: z [N, zDim] -> images [N, H, W, C] in [-1, 1]. The linear
 * layer's output is read as [start, start, ch] NHWC (PyTorch's view reads
 * [ch, start, start]: a port permutes the weight's columns).
 */
export function snganGenerator(args: GeneratorArgs = {}): tfl.LayersModel {
  const {shape, ch} = checkArgs(args, 256);
  const zDim = args.zDim ?? 128;
  if (!Number.isInteger(zDim) || zDim < 1) fail(`zDim must be a positive integer, got ${zDim}`);
  const seeds = new SeedSequence(args.seed ?? 0);
  const blocks = shape[0] === 32 ? 3 : 2;
  const start = shape[0] / 2 ** blocks;
  const z = tfl.input({shape: [zDim]});
  let h = tfl.layers.dense({name: 'l1', units: start * start * ch, kernelInitializer: xavier(1, seeds.take()),
                            biasInitializer: torchDefaultInit(seeds.take())}).apply(z) as tfl.SymbolicTensor;
  h = tfl.layers.reshape({targetShape: [start, start, ch]}).apply(h) as tfl.SymbolicTensor;
  for (let b = 0; b < blocks; b++) {
    const block = `block${b + 2}`;
    const up = new BilinearUpsampling2D({});
    let r = gConv(`${block}_c1`, ch, 3, Math.SQRT2, seeds)(apply(up)(relu()(batchNorm(`${block}_b1`)(h))));
    r = gConv(`${block}_c2`, ch, 3, Math.SQRT2, seeds)(relu()(batchNorm(`${block}_b2`)(r)));
    const shortcut = gConv(`${block}_c_sc`, ch, 1, 1, seeds)(apply(new BilinearUpsampling2D({}))(h));
    h = add(r, shortcut);
  }
  h = relu()(batchNorm(`b${blocks + 2}`)(h));
  const image = tfl.layers.activation({activation: 'tanh'})
    .apply(gConv(`c${blocks + 2}`, shape[2], 3, 1, seeds)(h)) as tfl.SymbolicTensor;
  return tfl.model({inputs: z, outputs: image, name: `sngan_generator_${ch}`});
}

/** The discriminator: images [N, H, W, C] -> one logit per image [N, 1]. */
export function snganDiscriminator(args: DiscriminatorArgs): tfl.LayersModel {
  const {shape, ch} = checkArgs(args, 128);
  const dNorm = checkDNorm(args.dNorm);
  const seeds = new SeedSequence(args.seed ?? 0);
  const x = tfl.input({shape: [...shape]});
  // Optimized block: conv, ReLU, conv, avg-pool; shortcut avg-pool, conv 1x1.
  const conv = (name: string, k: number, gain: number) => dConv(name, dNorm, ch, k, gain, seeds);
  let h = avgPool()(conv('block1_c2', 3, Math.SQRT2)(relu()(conv('block1_c1', 3, Math.SQRT2)(x))));
  h = add(h, conv('block1_c_sc', 1, 1)(avgPool()(x)));
  // Down-block: ReLU, conv, ReLU, conv, avg-pool; shortcut conv 1x1, avg-pool.
  let r = avgPool()(conv('block2_c2', 3, Math.SQRT2)(relu()(conv('block2_c1', 3, Math.SQRT2)(relu()(h)))));
  h = add(r, avgPool()(conv('block2_c_sc', 1, 1)(h)));
  for (const block of ['block3', 'block4']) {
    r = conv(`${block}_c2`, 3, Math.SQRT2)(relu()(conv(`${block}_c1`, 3, Math.SQRT2)(relu()(h))));
    h = add(r, h);
  }
  const pooled = apply(new GlobalSumPooling2D({}))(relu()(h));
  // The linear layer as a 1x1 conv on [N, 1, 1, ch]: the same map, and SN's matrix is the same [1, ch].
  const column = tfl.layers.reshape({targetShape: [1, 1, ch]}).apply(pooled) as tfl.SymbolicTensor;
  const linearArgs = {name: 'l5', filters: 1, kernelSize: 1, useBias: true, kernelInitializer: xavier(1, seeds.take()), seed: seeds.take()};
  const linear = dNorm === 'sn' || dNorm === 'convnorm+sn' ? new SpectralNormConv2D(linearArgs) : new PlainConv2D(linearArgs);
  const logit = tfl.layers.flatten().apply(apply(linear)(column)) as tfl.SymbolicTensor;
  return tfl.model({inputs: x, outputs: logit, name: `sngan_discriminator_${dNorm.replace('+', '_')}_${ch}`});
}
