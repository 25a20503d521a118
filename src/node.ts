/**
 * The package's Node entry (`convnorm/node`): everything the main entry
 * exports, with Node's useBackend in place of the page's (tfjs-node when
 * installed, else multi-threaded wasm with the SIMD module's helper threads),
 * plus what needs Node: models saved to and loaded from the file system,
 * dataset files, training runs with their checkpoints, the experiments
 * `convnorm train` runs, and sweeps of them.
 */
export * from './index.js';

export {BACKENDS, useBackend, wasmThreadCount} from './node/backend.js';
export type {BackendName, UseBackendOptions} from './node/backend.js';
export {fileSystem, registerFileSystemRouter} from './io/file_system.js';

// Dataset files
export {DATASET_NAMES, loadDataset} from './data/load.js';
export type {DatasetName, LoadDatasetOptions} from './data/load.js';
export {loadCifar, parseCifarRecords} from './data/cifar.js';
export {loadFashionMnist, loadMnist} from './data/mnist.js';
export {loadEmbeddedMnist} from './data/mnist_embedded.js';
export {readIdxImages, readIdxLabels} from './data/idx.js';

// Training runs
export {train} from './training/trainer.js';
export type {EpochRecord, TrainOptions, TrainResult} from './training/trainer.js';
export {loadCheckpoint, readCheckpoint, TrainError} from './training/checkpoint.js';
export {checkExperiment, runExperiment} from './cli/experiment.js';
export type {ExperimentConfig} from './cli/experiment.js';

// Sweeps: grids of runs, locally or on a BullMQ queue
export {checkGrid, expandGrid} from './sweep/grid.js';
export type {GridSpec, SweepRun} from './sweep/grid.js';
export {loadSweep, openSweepDir, runState} from './sweep/sweep_dir.js';
export type {RunResult, RunState, RunStatus, Sweep} from './sweep/sweep_dir.js';
export {runLocalSweep} from './sweep/runner.js';
export type {LocalSweepOptions, LocalSweepResult, RunOutcome} from './sweep/runner.js';
export {enqueueSweep, parseQueueUrl, queueStatus, startWorker, waitForSweep} from './sweep/queue.js';
export type {QueueAddress, WorkerOptions} from './sweep/queue.js';
export {summarize} from './sweep/results.js';
export type {SummaryCell, SweepSummary} from './sweep/results.js';
export {slurmScript} from './sweep/slurm.js';

// GAN runs
export {trainGan} from './training/gan_trainer.js';
export type {GanRecord, GanScorer, GanTrainOptions, GanTrainResult} from './training/gan_trainer.js';
export {loadGanCheckpoint, readGanCheckpoint} from './training/gan_checkpoint.js';
export type {GanCheckpointState, GanRunConfig} from './training/gan_checkpoint.js';
export {imageGridPng} from './io/png.js';
