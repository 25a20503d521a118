/**
 * The demo's figures, drawn by Observable Plot: each call replaces the
 * figure in its container, which is how Plot updates (a figure is a pure
 * function of its data).
 */
import * as Plot from '@observablehq/plot';

export interface CurvePoint {
  series: string;
  step: number;
  value: number;
}

/**
 * A line per series over training steps, coloured in the order of `series`;
 * `percent` formats the y axis as a percentage.
 */
export function drawCurves(container: HTMLElement, points: CurvePoint[], series: readonly string[], label: string,
                           percent = false): void {
  const figure = Plot.plot({
    width: 460, height: 240, marginLeft: 50,
    x: {label: 'step', grid: true, tickFormat: 'd', domain: [0, Math.max(1, ...points.map(p => p.step))]},
    y: {label, grid: true, ...(percent ? {tickFormat: '%', domain: [0, 1]} : {zero: true})},
    color: {legend: true, domain: [...series], range: ['#d6604d', '#4393c3']},
    marks: [
      Plot.line(points, {x: 'step', y: 'value', z: 'series', stroke: 'series', strokeWidth: 1.5}),
      ...(percent ? [Plot.dot(points, {x: 'step', y: 'value', fill: 'series', r: 2.5})] : []),
    ],
  });
  container.replaceChildren(figure);
  container.dataset.points = String(points.length);
}

/**
 * A channel's |FFT| on the Fourier grid, zero frequency at the centre (the
 * grid shifted by half its size), on a colour scale shared by the maps it is
 * compared with.
 */
export function drawGainMap(container: HTMLElement, gains: Float64Array, grid: readonly [number, number],
                            domain: [number, number], title: string): void {
  const [nh, nw] = grid;
  const shifted = new Float64Array(nh * nw);
  for (let u = 0; u < nh; u++) {
    for (let v = 0; v < nw; v++) {
      shifted[((u + Math.floor(nh / 2)) % nh) * nw + (v + Math.floor(nw / 2)) % nw] = gains[u * nw + v];
    }
  }
  const figure = Plot.plot({
    width: 130, height: 130 * nh / nw + 20, margin: 0, marginTop: 20,
    x: {axis: null}, y: {axis: null},
    color: {type: 'linear', scheme: 'viridis', domain},
    marks: [
      Plot.raster(shifted, {width: nw, height: nh, imageRendering: 'pixelated'}),
      Plot.text([title], {frameAnchor: 'top', dy: -14, fontSize: 11}),
    ],
  });
  container.replaceChildren(figure);
}

/** The colour legend of the gain maps. */
export function drawGainLegend(container: HTMLElement, domain: [number, number]): void {
  container.replaceChildren(Plot.legend({color: {type: 'linear', scheme: 'viridis', domain, label: '|FFT| of the channel'}}));
}
