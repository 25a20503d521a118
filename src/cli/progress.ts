/**
 * Progress of a long command on stderr: a cli-progress bar on a terminal,
 * otherwise a line at every tenth of the work, so that logs stay short.
 */
import cliProgress from 'cli-progress';

export interface ProgressReporter {
  /** Work done of total, and what is being done. */
  update(done: number, total: number, label: string): void;
  stop(): void;
}

export function progressReporter(title: string, stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  if (stream.isTTY) {
    let bar: cliProgress.SingleBar | undefined;
    return {
      update(done, total, label) {
        if (bar === undefined) {
          bar = new cliProgress.SingleBar({
            stream, format: `${title} [{bar}] {value}/{total} | {label} | ETA {eta_formatted}`, barsize: 24,
            clearOnComplete: true, hideCursor: false, etaBuffer: 20, fps: 5,
          }, cliProgress.Presets.legacy);
          bar.start(total, 0, {label});
        }
        bar.setTotal(total);
        bar.update(done, {label});
      },
      stop() {
        bar?.stop();
      },
    };
  }
  let shown = 0;
  return {
    update(done, total, label) {
      const tenth = Math.floor((10 * done) / total);
      if (tenth > shown) {
        shown = tenth;
        stream.write(`${title}: ${done}/${total} (${label})\n`);
      }
    },
    stop() {},
  };
}
