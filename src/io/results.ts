/**
 * Results that live with a run: `convnorm attack`, `eval --corruptions` and
 * `spectrum` each keep one JSON file in the run directory (attacks.json,
 * corruptions.json, spectrum.json) whose entries are keyed by the settings
 * that produced them, so that a later call with other settings adds entries
 * and one with the same settings replaces its own. A report reads them.
 */
import {readFile} from 'node:fs/promises';

import {canonicalJson} from '../common/canonical_json.js';
import {writeAtomic} from './file_system.js';

export const RESULTS_FORMAT = 'convnorm-results';

/** One stored result: the settings that key it and what they measured. */
export interface ResultEntry<S = Record<string, unknown>, R = Record<string, unknown>> {
  settings: S;
  result: R;
  /** When it was measured (ISO time). */
  savedAt: string;
}

export interface ResultsFile<S = Record<string, unknown>, R = Record<string, unknown>> {
  format: typeof RESULTS_FORMAT;
  /** What the entries hold: 'attacks', 'corruptions' or 'spectrum'. */
  kind: string;
  entries: ResultEntry<S, R>[];
}

/** `entries` with each of `fresh` replacing the entry of equal settings, or appended after them. */
export function mergeEntries<S, R>(entries: ResultEntry<S, R>[], fresh: ResultEntry<S, R>[]): ResultEntry<S, R>[] {
  const key = (e: ResultEntry<S, R>) => canonicalJson(e.settings);
  const replaced = new Map(fresh.map(e => [key(e), e]));
  const kept = entries.map(e => replaced.get(key(e)) ?? e);
  const present = new Set(entries.map(key));
  return [...kept, ...fresh.filter(e => !present.has(key(e)))];
}

/**
 * The entries of a results file, [] when there is none. Throws, naming the
 * file, when it exists but is not a results file of this kind: it is never
 * silently replaced.
 */
export async function readResults<S, R>(path: string, kind: string): Promise<ResultEntry<S, R>[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return parseResults<S, R>(text, path, kind);
  } catch (e) {
    throw new Error(`${(e as Error).message}; move it away to store new results`);
  }
}

/** The entries of a results file's text; throws, naming `path`, when it is not one of this kind. */
export function parseResults<S, R>(text: string, path: string, kind: string): ResultEntry<S, R>[] {
  let parsed: ResultsFile<S, R>;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message})`);
  }
  if (parsed?.format !== RESULTS_FORMAT || parsed.kind !== kind || !Array.isArray(parsed.entries)) {
    throw new Error(`${path} is not a convnorm ${kind} results file`);
  }
  return parsed.entries;
}

/** Adds `fresh` to the results file at `path` (see mergeEntries), written atomically. Returns every entry. */
export async function storeResults<S, R>(path: string, kind: string,
                                         fresh: ResultEntry<S, R>[]): Promise<ResultEntry<S, R>[]> {
  const entries = mergeEntries(await readResults<S, R>(path, kind), fresh);
  const file: ResultsFile<S, R> = {format: RESULTS_FORMAT, kind, entries};
  await writeAtomic(path, `${JSON.stringify(file, null, 1)}\n`);
  return entries;
}
