/**
 * Learning-rate schedules, evaluated per epoch exactly as PyTorch's
 * schedulers produce them when `scheduler.step()` is called once after each
 * epoch (the reference's loop): `learningRateAt(s, e)` is the rate used during
 * 0-based epoch `e`. Each is a pure function of the epoch, so a resumed run
 * needs no scheduler state.
 *
 * PyTorch computes both schedules recursively from the previous epoch's rate
 * (its "chainable" form); the closed forms in its documentation differ from
 * that in the last bits of a float64. `learningRateAt` replays the recursion,
 * so the rates are PyTorch's float64 values (up to the last-ulp differences
 * between V8's and the C library's cosine), not merely close to them.
 */

export type Schedule = ConstantSchedule | MultiStepSchedule | CosineSchedule;

export interface ConstantSchedule {
  kind: 'constant';
  /** The learning rate. */
  lr: number;
}

/** torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma). */
export interface MultiStepSchedule {
  kind: 'multistep';
  /** Initial learning rate. */
  lr: number;
  /**
   * Epochs (0-based) from which the rate is multiplied by `gamma`: with [40, 80]
   * epochs 0..39 run at lr, 40..79 at lr * gamma, 80.. at lr * gamma^2. A
   * milestone listed twice applies gamma twice, as in PyTorch (a Counter).
   */
  milestones: number[];
  gamma: number;
}

/** torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max, eta_min). */
export interface CosineSchedule {
  kind: 'cosine';
  /** Initial (largest) learning rate. */
  lr: number;
  /** Epochs of the half period, usually the number of epochs; PyTorch's curve rises again after it. */
  tMax: number;
  /** Smallest learning rate, reached at epoch tMax. */
  etaMin: number;
}

export const SCHEDULE_KINDS = ['constant', 'multistep', 'cosine'] as const;

/** The reference's CIFAR schedule: lr 0.1, divided by 10 at epochs 40 and 80 (of 120). */
export const REFERENCE_SCHEDULE: MultiStepSchedule = Object.freeze({
  kind: 'multistep', lr: 0.1, milestones: Object.freeze([40, 80]) as number[], gamma: 0.1,
}) as MultiStepSchedule;

export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

function fail(message: string): never {
  throw new ScheduleError(message);
}

function checkEpoch(epoch: number): void {
  if (!Number.isInteger(epoch) || epoch < 0) fail(`the epoch must be a non-negative integer, got ${epoch}`);
}

/** The learning rate used during 0-based `epoch` (after `epoch` scheduler steps in PyTorch). */
export function learningRateAt(schedule: Schedule, epoch: number): number {
  checkEpoch(epoch);
  switch (schedule.kind) {
    case 'constant':
      return schedule.lr;
    case 'multistep': {
      // MultiStepLR.get_lr: lr * gamma ** milestones[last_epoch] when last_epoch is a milestone.
      const counts = new Map<number, number>();
      for (const m of schedule.milestones) counts.set(m, (counts.get(m) ?? 0) + 1);
      // The scheduler's construction counts as the step to epoch 0, so a milestone at 0 applies from the start.
      let lr = schedule.lr;
      for (let e = 0; e <= epoch; e++) {
        const count = counts.get(e);
        if (count !== undefined) lr = lr * schedule.gamma ** count;
      }
      return lr;
    }
    case 'cosine': {
      // CosineAnnealingLR.get_lr, one call per scheduler.step().
      const {lr: base, tMax, etaMin} = schedule;
      let lr = base;
      for (let e = 1; e <= epoch; e++) {
        if ((e - 1 - tMax) % (2 * tMax) === 0) {
          lr = lr + (base - etaMin) * (1 - Math.cos(Math.PI / tMax)) / 2;
        } else {
          lr = (1 + Math.cos(Math.PI * e / tMax)) / (1 + Math.cos(Math.PI * (e - 1) / tMax)) * (lr - etaMin) + etaMin;
        }
      }
      return lr;
    }
    default:
      return fail(`unknown schedule kind '${(schedule as {kind: unknown}).kind}'; choose one of ${SCHEDULE_KINDS.join(', ')}`);
  }
}

function finiteNumber(value: unknown, what: string, min: number, inclusive: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || (inclusive ? value < min : value <= min)) {
    fail(`${what} must be a finite number ${inclusive ? '>=' : '>'} ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Checks a schedule (e.g. one read back from JSON) and returns a normalized
 * copy: milestones sorted. Throws a ScheduleError that names the bad field.
 */
export function validateSchedule(schedule: unknown): Schedule {
  if (typeof schedule !== 'object' || schedule === null) fail(`a schedule must be an object, got ${JSON.stringify(schedule)}`);
  const s = schedule as Record<string, unknown>;
  const lr = finiteNumber(s.lr, 'the schedule\'s lr', 0, false);
  switch (s.kind) {
    case 'constant':
      return {kind: 'constant', lr};
    case 'multistep': {
      if (!Array.isArray(s.milestones)) fail(`multistep milestones must be an array of epochs, got ${JSON.stringify(s.milestones)}`);
      for (const m of s.milestones) {
        if (typeof m !== 'number' || !Number.isInteger(m) || m < 0) {
          fail(`multistep milestones must be non-negative integers (0-based epochs), got ${JSON.stringify(s.milestones)}`);
        }
      }
      const gamma = finiteNumber(s.gamma, 'multistep gamma', 0, false);
      return {kind: 'multistep', lr, milestones: [...(s.milestones as number[])].sort((a, b) => a - b), gamma};
    }
    case 'cosine': {
      if (typeof s.tMax !== 'number' || !Number.isInteger(s.tMax) || s.tMax < 1) {
        fail(`cosine tMax must be a positive integer (epochs), got ${JSON.stringify(s.tMax)}`);
      }
      const etaMin = finiteNumber(s.etaMin ?? 0, 'cosine etaMin', 0, true);
      return {kind: 'cosine', lr, tMax: s.tMax, etaMin};
    }
    default:
      return fail(`unknown schedule kind ${JSON.stringify(s.kind)}; choose one of ${SCHEDULE_KINDS.join(', ')}`);
  }
}

export interface ParseScheduleOptions {
  /** Initial learning rate. Default 0.1 (the reference's). */
  lr?: number;
  /** Total epochs: the cosine schedule's default tMax. */
  epochs: number;
}

export const SCHEDULE_SYNTAX = 'constant | multistep[:m1,m2,...[:gamma]] | cosine[:etaMin[:tMax]]';

/**
 * Parses a command-line schedule:
 *
 * - `constant`
 * - `multistep` (the reference's milestones 40,80 and gamma 0.1),
 *   `multistep:30,60,90`, `multistep:30,60,90:0.2`
 * - `cosine` (etaMin 0, tMax = epochs), `cosine:1e-4`, `cosine:1e-4:200`
 *
 * Milestones are 0-based epochs, as PyTorch counts them.
 */
export function parseSchedule(text: string, options: ParseScheduleOptions): Schedule {
  const lr = options.lr ?? 0.1;
  const parts = text.trim().split(':');
  const kind = parts[0].toLowerCase();
  const number = (part: string, what: string): number => {
    const v = Number(part);
    if (part.trim() === '' || !Number.isFinite(v)) fail(`schedule '${text}': ${what} '${part}' is not a number (syntax: ${SCHEDULE_SYNTAX})`);
    return v;
  };
  const tooMany = (n: number) => {
    if (parts.length > n) fail(`schedule '${text}' has too many ':' parts (syntax: ${SCHEDULE_SYNTAX})`);
  };
  switch (kind) {
    case 'constant':
      tooMany(1);
      return validateSchedule({kind, lr});
    case 'multistep': {
      tooMany(3);
      const milestones = parts.length > 1 ? parts[1].split(',').map(m => number(m, 'milestone')) : [...REFERENCE_SCHEDULE.milestones];
      const gamma = parts.length > 2 ? number(parts[2], 'gamma') : REFERENCE_SCHEDULE.gamma;
      return validateSchedule({kind, lr, milestones, gamma});
    }
    case 'cosine': {
      tooMany(3);
      const etaMin = parts.length > 1 ? number(parts[1], 'etaMin') : 0;
      const tMax = parts.length > 2 ? number(parts[2], 'tMax') : options.epochs;
      return validateSchedule({kind, lr, tMax, etaMin});
    }
    default:
      return fail(`unknown schedule '${text}'; syntax: ${SCHEDULE_SYNTAX}`);
  }
}

/** A short human-readable form, e.g. `multistep lr 0.1 x0.1 at 40,80`. */
export function describeSchedule(s: Schedule): string {
  switch (s.kind) {
    case 'constant': return `constant lr ${s.lr}`;
    case 'multistep': return `multistep lr ${s.lr} x${s.gamma} at ${s.milestones.join(',')}`;
    case 'cosine': return `cosine lr ${s.lr} -> ${s.etaMin} over ${s.tMax} epochs`;
  }
}
