/**
 * A sweep's cells against a reference: per cell, the reference cell that
 * differs from it only in one axis (ConvNorm against each other norm at the
 * same noise rate), the difference of their mean test top-1 and how many
 * standard errors of the difference that is, sqrt(s1²/n1 + s2²/n2) (Welch's).
 * Beyond `threshold` standard errors the reference is ahead or behind;
 * within, the difference is inconclusive at this number of seeds.
 */
import type {MeanStd} from '../report/group.js';
import type {SweepSummary} from './results.js';

type Setting = string | number | boolean;

export interface CellComparison {
  /** The settings both cells hold, the compared axis left out. */
  shared: Record<string, Setting>;
  /** What sets the other cell apart: its value of the axis, and any setting the reference cell lacks. */
  other: Record<string, Setting>;
  /** The test top-1 of the reference cell's runs, and of the other's. */
  referenceTop1: MeanStd;
  otherTop1: MeanStd;
  /** Reference mean minus the other's, a fraction. */
  difference: number;
  /** The difference's standard error; null where a cell has fewer than two runs. */
  standardError: number | null;
  /** difference / standardError (null with it). */
  standardErrors: number | null;
  verdict: 'ahead' | 'behind' | 'inconclusive' | 'too few runs';
}

export interface CompareOptions {
  /** The axis and its value that make a cell the reference (`norm`, `convnorm`). */
  axis: string;
  value: Setting;
  /** Standard errors beyond which a difference counts (default 2). */
  threshold?: number;
}

/** Parses `axis=value` (`norm=convnorm`, `noise=0.4`): the value as a number where it reads as one. */
export function parseReference(text: string): {axis: string; value: Setting} {
  const match = /^([A-Za-z][A-Za-z0-9]*)=(.+)$/.exec(text);
  if (match === null) throw new Error(`--versus takes axis=value (e.g. norm=convnorm), got '${text}'`);
  const raw = match[2];
  const value = raw === 'true' ? true : raw === 'false' ? false : raw.trim() !== '' && Number.isFinite(Number(raw))
    ? Number(raw) : raw;
  return {axis: match[1], value};
}

/**
 * Every cell whose `axis` is not `value` against the one reference cell
 * (axis = value) that holds all its other settings; a cell with no such
 * reference, or more than one, is left out. The reference may lack settings
 * the other cell has (the OCNN penalty of a BN cell), not the other way round.
 */
export function compareCells(summary: SweepSummary, options: CompareOptions): CellComparison[] {
  const {axis, value} = options;
  const threshold = options.threshold ?? 2;
  const references = summary.cells.filter(c => c.settings[axis] === value);
  if (references.length === 0) {
    const seen = [...new Set(summary.cells.map(c => c.settings[axis]).filter(v => v !== undefined))];
    throw new Error(`no cell of this sweep has ${axis}=${value}` +
                    (seen.length > 0 ? ` (its ${axis} values: ${seen.join(', ')})` : ` (it has no axis ${axis})`));
  }
  const comparisons: CellComparison[] = [];
  for (const cell of summary.cells) {
    if (cell.settings[axis] === value || !(axis in cell.settings)) continue;
    const matches = references.filter(r => Object.entries(r.settings)
      .every(([k, v]) => k === axis || cell.settings[k] === v));
    if (matches.length !== 1) continue;
    const [a, b] = [matches[0].testTop1, cell.testTop1];
    if (a === null || b === null) continue;
    const shared = Object.fromEntries(Object.entries(matches[0].settings).filter(([k]) => k !== axis));
    const other = Object.fromEntries(Object.entries(cell.settings).filter(([k]) => !(k in shared)));
    const difference = a.mean - b.mean;
    // A single run's std is null: no standard error then.
    const standardError = a.std === null || b.std === null ? null
      : Math.sqrt(a.std ** 2 / a.values.length + b.std ** 2 / b.values.length);
    const standardErrors = standardError === null ? null
      : standardError === 0 ? (difference === 0 ? 0 : Math.sign(difference) * Infinity) : difference / standardError;
    const verdict = standardErrors === null ? 'too few runs'
      : standardErrors > threshold ? 'ahead' : standardErrors < -threshold ? 'behind' : 'inconclusive';
    comparisons.push({shared, other, referenceTop1: a, otherTop1: b, difference, standardError, standardErrors, verdict});
  }
  return comparisons;
}
