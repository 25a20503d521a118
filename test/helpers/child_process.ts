import type {ChildProcess} from 'node:child_process';
import {pathToFileURL} from 'node:url';

/** The first stdout line of `child` matching `pattern`; rejects on exit or after `timeoutMs`, with what it printed. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`child printed no ${pattern} in ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find(l => pattern.test(l));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.on('exit', code => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code}) before printing ${pattern}; stdout: ${out}; stderr: ${err}`));
    });
  });
}

/** Prints `line` for the parent test and waits forever, for it to kill this process at a known point. */
export function hang(line: string): Promise<never> {
  process.stdout.write(`${line}\n`);
  return new Promise(() => setInterval(() => {}, 1000));
}

/** Runs `main` when the module at `url` is the script Node was started with; a failure exits 1 with its stack. */
export function runIfScript(url: string, main: () => Promise<void>): void {
  if (process.argv[1] === undefined || url !== pathToFileURL(process.argv[1]).href) return;
  main().catch(e => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
}
