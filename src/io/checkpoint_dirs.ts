/**
 * The atomic swap every checkpoint of a run uses (training runs' and GAN
 * runs'). A checkpoint is written into `<runDir>/checkpoint.tmp/`, every file
 * flushed to disk, its state file written last, then swapped in:
 * `checkpoint/` is renamed to `checkpoint.old/`, `checkpoint.tmp/` to
 * `checkpoint/`, and `checkpoint.old/` deleted. A crash at any point leaves
 * at least one complete checkpoint among the three names; readers take the
 * complete one that is furthest along, and a resume tidies up the others.
 * What "complete" means (the state file parses, the files have the sizes it
 * lists) is the caller's `read`.
 */
import {mkdir, open, readdir, rename, rm, stat, writeFile} from 'node:fs/promises';
import {join} from 'node:path';

export const CHECKPOINT_DIR = 'checkpoint';
export const CHECKPOINT_TMP_DIR = 'checkpoint.tmp';
export const CHECKPOINT_OLD_DIR = 'checkpoint.old';

/** A checkpoint directory's state when it is complete, else null; never throws for a damaged one. */
export type ReadComplete<S> = (dir: string) => Promise<S | null>;

export async function fileSize(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

export async function syncPath(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch {
    // Some platforms cannot sync directories; the renames are still atomic.
  } finally {
    await handle?.close();
  }
}

/** Flushes every file under `dir`, then `dir` itself. */
async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(path);
    else await syncPath(path);
  }
  await syncPath(dir);
}

/**
 * Writes a checkpoint atomically: `write(tmp)` fills a fresh
 * `checkpoint.tmp/`, then the state file (`state.name`, whose presence marks
 * the directory complete) is written after everything else is on disk, and
 * the directory is swapped in.
 */
export async function commitCheckpoint(runDir: string, write: (dir: string) => Promise<void>,
                                       state: {name: string; text: string}): Promise<void> {
  const main = join(runDir, CHECKPOINT_DIR);
  const tmp = join(runDir, CHECKPOINT_TMP_DIR);
  const old = join(runDir, CHECKPOINT_OLD_DIR);
  await rm(tmp, {recursive: true, force: true});
  await mkdir(tmp, {recursive: true});
  await write(tmp);
  await syncTree(tmp);
  await writeFile(join(tmp, state.name), state.text);
  await syncPath(join(tmp, state.name));
  await syncPath(tmp);
  await rm(old, {recursive: true, force: true});
  if (await fileSize(main) !== null) await rename(main, old);
  await rename(tmp, main);
  await syncPath(runDir);
  await rm(old, {recursive: true, force: true});
}

export interface Located<S> {
  dir: string;
  state: S;
}

/** The complete checkpoint furthest along (by `progress`) among checkpoint/, checkpoint.tmp/ and checkpoint.old/. */
export async function locateCheckpoint<S>(runDir: string, read: ReadComplete<S>,
                                          progress: (state: S) => number): Promise<Located<S> | null> {
  let best: Located<S> | null = null;
  for (const name of [CHECKPOINT_DIR, CHECKPOINT_TMP_DIR, CHECKPOINT_OLD_DIR]) {
    const dir = join(runDir, name);
    const state = await read(dir);
    if (state !== null && (best === null || progress(state) > progress(best.state))) best = {dir, state};
  }
  return best;
}

/**
 * Makes `<runDir>/checkpoint/` the complete checkpoint furthest along and
 * deletes the leftovers of an interrupted save. Returns its state, or null
 * when there is none.
 */
export async function recoverCheckpoint<S>(runDir: string, read: ReadComplete<S>,
                                           progress: (state: S) => number): Promise<S | null> {
  const found = await locateCheckpoint(runDir, read, progress);
  const main = join(runDir, CHECKPOINT_DIR);
  const tmp = join(runDir, CHECKPOINT_TMP_DIR);
  const old = join(runDir, CHECKPOINT_OLD_DIR);
  if (found !== null && found.dir !== main) {
    if (found.dir === tmp) {
      await rm(old, {recursive: true, force: true});
      if (await fileSize(main) !== null) await rename(main, old);
      await rename(tmp, main);
    } else {
      await rm(main, {recursive: true, force: true});
      await rename(old, main);
    }
    await syncPath(runDir);
  }
  await rm(tmp, {recursive: true, force: true});
  await rm(old, {recursive: true, force: true});
  return found?.state ?? null;
}
