/**
 * A SLURM job-array script for a sweep, for clusters that already have a
 * scheduler: one array task per run, each `convnorm sweep <grid> --run-index
 * $SLURM_ARRAY_TASK_ID`, which resumes its run from its checkpoint when the
 * task is requeued.
 */
import {basename} from 'node:path';

import {Sweep} from './sweep_dir.js';

export interface SlurmOptions {
  /** Absolute path of the grid file. */
  gridFile: string;
  /** Where the tasks start (the project with convnorm installed). */
  workingDirectory: string;
  /** Absolute dataRoot given on the command line, passed on to every task. */
  dataRoot?: string;
  /** wasm threads per run; also the CPUs each task asks for. Default 4. */
  threads?: number;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function slurmScript(sweep: Sweep, o: SlurmOptions): string {
  const cpus = o.threads ?? 4;
  const args = [quote(o.gridFile), '--sweep-dir', quote(sweep.dir), ...(o.dataRoot ? ['--data-root', quote(o.dataRoot)] : []),
                '--threads', String(cpus), '--run-index', '"$SLURM_ARRAY_TASK_ID"'];
  const names = sweep.runs.map((r, i) => `#   ${i}: ${r.name}`).join('\n');
  return `#!/bin/bash
# SLURM job array: one task per run of the sweep ${basename(sweep.dir)} (${sweep.runs.length} runs).
# Submit with: sbatch <this file>. A task that is cut short and requeued resumes its run.
#SBATCH --job-name=convnorm-${basename(sweep.dir)}
#SBATCH --array=0-${sweep.runs.length - 1}
#SBATCH --cpus-per-task=${cpus}
#SBATCH --output=${sweep.dir}/logs/slurm-%A_%a.out
#SBATCH --requeue
# Tasks:
${names}
set -euo pipefail
cd ${quote(o.workingDirectory)}
export CONVNORM_WASM_THREADS=${cpus}
npx convnorm sweep ${args.join(' ')}
`;
}
