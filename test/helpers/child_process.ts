import type {ChildProcess} from 'node:child_process';

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
