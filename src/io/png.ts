/**
 * Images as PNG files (pngjs): a grid of generated samples, as
 * torchvision.utils.save_image lays one out (rows of `columns` images, a
 * `padding`-pixel border around and between them), values in [-1, 1] mapped
 * to 0..255.
 */
import {PNG} from 'pngjs';

export interface ImageGridOptions {
  /** Images per row. Default: the ceiling of the square root of the count (as make_grid's nrow=8 would at 64). */
  columns?: number;
  /** Border in pixels. Default 2, as make_grid's. */
  padding?: number;
  /** Value of the border, 0..255. Default 0 (black). */
  background?: number;
}

/**
 * A PNG of `count` images of shape [h, w, c] (c = 1 or 3), NHWC values in
 * [-1, 1] (clipped), as a Buffer.
 */
export function imageGridPng(values: ArrayLike<number>, count: number, shape: readonly [number, number, number],
                             options: ImageGridOptions = {}): Buffer {
  const [h, w, c] = shape;
  if (c !== 1 && c !== 3) throw new Error(`an image grid takes 1 or 3 channels, got ${c}`);
  if (!Number.isInteger(count) || count < 1) throw new Error(`an image grid needs at least one image, got ${count}`);
  if (values.length !== count * h * w * c) throw new Error(`${values.length} values for ${count} images of [${shape}]`);
  const columns = options.columns ?? Math.ceil(Math.sqrt(count));
  const pad = options.padding ?? 2;
  if (!Number.isInteger(columns) || columns < 1) throw new Error(`columns must be a positive integer, got ${columns}`);
  if (!Number.isInteger(pad) || pad < 0) throw new Error(`padding must be an integer >= 0, got ${pad}`);
  const rows = Math.ceil(count / columns);
  const width = columns * (w + pad) + pad;
  const height = rows * (h + pad) + pad;
  const png = new PNG({width, height, colorType: c === 1 ? 0 : 2, inputColorType: 6, inputHasAlpha: true});
  const bg = options.background ?? 0;
  for (let i = 0; i < width * height; i++) png.data.set([bg, bg, bg, 255], 4 * i);
  for (let n = 0; n < count; n++) {
    const top = pad + Math.floor(n / columns) * (h + pad);
    const left = pad + (n % columns) * (w + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = 4 * ((top + y) * width + left + x);
        for (let k = 0; k < 3; k++) {
          const v = values[((n * h + y) * w + x) * c + (c === 1 ? 0 : k)];
          // save_image's mapping: (v + 1) / 2 * 255 + 0.5, clamped, truncated.
          png.data[at + k] = Math.min(255, Math.max(0, Math.floor((v + 1) * 127.5 + 0.5)));
        }
      }
    }
  }
  return PNG.sync.write(png, {colorType: c === 1 ? 0 : 2});
}
