/**
 * The package's main entry, safe to bundle for a browser (no Node built-ins):
 * the ConvNorm layer and op, the spectrum, the baselines' layers, the models,
 * the training step, the analysis and the robustness maths, and a useBackend
 * for pages. File-system IO, dataset files, training runs and checkpoints,
 * threads and the command line come from the Node entry, `convnorm/node`
 * (src/node.ts), which exports all of this too.
 */
export {ConvNorm2D, convNorm2d} from './convnorm/layer.js';
export type {ConvNorm2DArgs} from './convnorm/layer.js';
export {convNorm} from './convnorm/op.js';
export type {ConvNormMethod, ConvNormOpArgs} from './convnorm/op.js';
export {convNormSpectrum, DEFAULT_SPECTRUM_EPSILON} from './convnorm/spectrum.js';
export {ConvNormArgumentError} from './common/arguments.js';
export type {PaddingArg} from './common/arguments.js';
export {channelGains, channelResponse} from './analysis/channel_response.js';
export type {ChannelResponse} from './analysis/channel_response.js';
export {convSingularValues, convSpectralNorm, spectrumRowScale} from './analysis/singular_values.js';
export type {KernelValues} from './analysis/singular_values.js';
export {BatchNorm2D} from './layers/batch_norm.js';
export type {BatchNorm2DArgs} from './layers/batch_norm.js';
export {NORMS} from './models/blocks.js';
export type {NormKind} from './models/blocks.js';
export {resnet} from './models/resnet.js';
export type {ResNetArgs} from './models/resnet.js';
export {smallCnn} from './models/small_cnn.js';
export type {SmallCnnArgs} from './models/small_cnn.js';
export {TrainStep} from './training/step.js';
export type {TrainStepArgs} from './training/step.js';
export {BN_EPSILON, BN_MOMENTUM} from './layers/batch_norm.js';
export {NormalizedConv2D} from './layers/normalized_conv.js';
export type {NormalizedConv2DArgs} from './layers/normalized_conv.js';
export {PlainConv2D, plainConv2d} from './layers/plain_conv.js';
export type {PlainConv2DArgs} from './layers/plain_conv.js';
export {SpectralNormConv2D, spectralNormConv2d} from './layers/spectral_norm.js';
export type {SpectralNormConv2DArgs} from './layers/spectral_norm.js';
export {OniConv2D, oniConv2d, oniKernel} from './layers/oni.js';
export type {OniConv2DArgs} from './layers/oni.js';
export {ARCHITECTURES, buildModel} from './models/build.js';
export type {Architecture, ModelSpec} from './models/build.js';
export {convKernels, layerSpectralNorms, unitSpectra} from './analysis/layer_spectra.js';
export type {ConvKernel, LayerSpectralNorm, ModelSpectra, UnitSpectraOptions, UnitSpectrum} from './analysis/layer_spectra.js';
export {lipschitzBound} from './analysis/lipschitz.js';
export {powerIterationNorm} from './analysis/power_iteration.js';
export {setLeanBackprop} from './engine/lean_backprop.js';
export {BROWSER_BACKENDS, engineInfo, useBackend} from './engine/backend.js';
export type {BrowserBackendName, EngineInfo} from './engine/backend.js';

// Data
export type {ImageDataset} from './data/dataset.js';
export {datasetSize} from './data/dataset.js';
export {Rng} from './data/random.js';
export {CIFAR_NORMALIZATION, makeBatch} from './data/batches.js';
export type {Augmentation, BatchOptions, Normalization} from './data/batches.js';
export {applyLabelNoise, CIFAR10_ASYMMETRIC_FLIPS} from './data/noise.js';
export type {LabelNoiseOptions, LabelNoiseResult} from './data/noise.js';
export {subset, trainFraction, validationSplit} from './data/splits.js';

// Training
export {learningRateAt, parseSchedule} from './training/schedule.js';
export type {Schedule} from './training/schedule.js';
export {evaluate, topKAccuracy} from './training/metrics.js';
export type {EvalResult} from './training/metrics.js';
export {ocnnLoss, ocnnPenalty} from './training/ocnn.js';
export type {OcnnOptions} from './training/ocnn.js';
export {checkAdversarial} from './training/adversarial.js';
export type {AdversarialTraining, FreeAdversarialTraining, PgdAdversarialTraining} from './training/adversarial.js';

// Robustness
export {pixelLogits} from './robustness/classifier.js';
export type {PixelClassifier} from './robustness/classifier.js';
export type {AttackInputs, AttackResult} from './robustness/attack.js';
export {fgsm} from './robustness/fgsm.js';
export type {FgsmOptions} from './robustness/fgsm.js';
export {pgd} from './robustness/pgd.js';
export type {PgdOptions} from './robustness/pgd.js';
export {apgd, apgdCe, apgdTargeted} from './robustness/apgd.js';
export type {ApgdOptions} from './robustness/apgd.js';
export {crossEntropyPerImage, dlrLoss, dlrTargetedLoss} from './robustness/losses.js';
export {ATTACK_NAMES, evaluateAttacks} from './robustness/attack_eval.js';
export type {AttackEvaluation, AttackRow, AttackSetting} from './robustness/attack_eval.js';
export {CORRUPTION_NAMES, corrupt, corruptDataset, corruptionsFor} from './robustness/corruptions/index.js';
export type {CorruptionName} from './robustness/corruptions/index.js';
export {evaluateCorruptions} from './robustness/corruption_eval.js';
export type {CorruptionEvalOptions, CorruptionEvalResult} from './robustness/corruption_eval.js';

// GAN
export {checkDNorm, D_NORMS, GAN_IMAGE_SHAPES, snganDiscriminator, snganGenerator} from './models/sngan.js';
export type {DiscriminatorArgs, DNorm, GeneratorArgs, SnganArgs} from './models/sngan.js';
export {BilinearUpsampling2D} from './layers/upsampling.js';
export {GlobalSumPooling2D} from './layers/global_sum_pooling.js';
export {featureStatistics, frechetDistance, inceptionScore} from './gan/scores.js';
export {hingeDiscriminatorLoss, hingeGeneratorLoss} from './gan/losses.js';
export {GanStep} from './gan/step.js';
export type {GanStepArgs, GanStepResult} from './gan/step.js';
export {Adam} from './training/adam.js';
export type {AdamArgs} from './training/adam.js';
export type {FeatureStatistics, InceptionScore, Samples} from './gan/scores.js';
export {classifierFeatures} from './gan/features.js';
export type {ClassifierFeaturesArgs, FeatureNetwork} from './gan/features.js';
export {loadInception} from './gan/inception.js';
export type {InceptionOptions} from './gan/inception.js';
export {gaussianNoise, realStatistics, scoreGenerator} from './gan/evaluate.js';
export type {GanScores, GeneratorScoreOptions} from './gan/evaluate.js';
