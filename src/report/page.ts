/**
 * `convnorm report`: one self-contained HTML file (inline SVG and PNG, no
 * script, nothing fetched) from run directories. Every string that comes
 * from a run is escaped; a run with missing or malformed files gets a
 * visible note, and the figures show what could be read.
 */
import {escapeHtml} from './html.js';
import {
  attackFigure, corruptionFigure, Figure, ganFigures, memorizationFigure, spectrumFigure, trainingFigure,
} from './figures.js';
import {ReportRun, readRun} from './read_run.js';
import {isSweepDir, openSweepDir} from '../sweep/sweep_dir.js';
import {sweepFigure} from './sweep_figure.js';

export interface Report {
  html: string;
  runs: ReportRun[];
  /** Every run's problems, "<dir>: <problem>", for the command to warn about. */
  problems: string[];
  /** How many of the directories were sweeps. */
  sweeps: number;
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } .plots figure { margin: 0; }
.images { display: flex; flex-wrap: wrap; gap: 1.5em; } .images img { image-rendering: pixelated; width: 274px; }
table { border-collapse: collapse; font-size: 12px; } td, th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.note { background: #fff4e5; border-left: 4px solid #f0a030; padding: 0.5em 1em; }
code { font-size: 12px; }
`;

function table(t: Figure['table']): string {
  const head = t.header.map(h => `<th>${escapeHtml(h)}</th>`).join('');
  const rows = t.rows.map(r => `<tr>${r.map(c => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

function section(f: Figure, command: string): string {
  const plots = f.plots.length === 0 ? '' : `<div class="plots">${f.plots.join('\n')}</div>`;
  const images = f.images.length === 0 ? '' : `<div class="images">${f.images.map(i =>
    `<figure><img alt="${escapeHtml(i.caption)}" src="data:image/png;base64,${i.png.toString('base64')}">` +
    `<figcaption>${escapeHtml(i.caption)}</figcaption></figure>`).join('\n')}</div>`;
  return `<section class="figure"><h2>${escapeHtml(f.title)}</h2><p>${escapeHtml(f.caption)}</p>
${plots}${images}
<details><summary>The numbers</summary>${table(f.table)}</details>
<p>From ${f.sources.map(s => `<code>${escapeHtml(s)}</code>`).join(', ')}. Regenerate: <code>${escapeHtml(command)}</code></p>
</section>`;
}

/** Shell quoting for the regenerating command, so that it can be pasted. */
function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, '\'\\\'\'')}'`;
}

/** Reads the run directories (and sweep directories: a figure of each sweep's results) and builds the report. */
export async function buildReport(dirs: string[], options: {output?: string} = {}): Promise<Report> {
  if (dirs.length === 0) throw new Error('a report needs at least one run directory');
  const sweepDirs = dirs.filter(isSweepDir);
  const runs = await Promise.all(dirs.filter(d => !isSweepDir(d)).map(readRun));
  const command = ['convnorm', 'report', ...dirs, ...(options.output === undefined ? [] : ['-o', options.output])]
    .map(quote).join(' ');
  const figures = [...sweepDirs.map(d => sweepFigure(openSweepDir(d), d)), trainingFigure(runs), memorizationFigure(runs), attackFigure(runs), corruptionFigure(runs), spectrumFigure(runs), ...ganFigures(runs)]
    .filter((f): f is Figure => f !== undefined);
  const problems = runs.flatMap(r => r.problems.map(p => `${r.dir}: ${p}`));
  const notes = problems.length === 0 ? ''
    : `<div class="note"><p>Some files could not be read; the figures show the rest.</p><ul>${
      problems.map(p => `<li>${escapeHtml(p)}</li>`).join('')}</ul></div>`;
  const list = sweepDirs.map(d => `<li><code>${escapeHtml(d)}</code>: sweep</li>`).join('') + runs.map(r => `<li><code>${escapeHtml(r.dir)}</code>: ${escapeHtml(r.kind === 'unknown' ? 'not a run' :
    `${r.kind === 'gan' ? 'GAN' : 'training'} run, ${r.kind === 'gan' ? `${r.steps.at(-1)?.step ?? 0} steps` :
      `${r.epochs.length} epochs`}`)}</li>`).join('');
  const body = figures.length === 0 ? '<p class="note">Nothing to plot: no readable metrics in these runs.</p>'
    : figures.map(f => section(f, command)).join('\n');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>convnorm report</title><link rel="icon" href="data:,">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<style>${STYLE}</style></head>
<body><h1>convnorm report</h1><ul>${list}</ul>${notes}
${body}
</body></html>
`;
  return {html, runs, problems, sweeps: sweepDirs.length};
}
