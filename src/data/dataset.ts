/**
 * The in-memory form every loader produces and the trainer consumes: raw
 * 8-bit pixels (a quarter of the memory of float32; CIFAR-10 is 150 MB) with
 * integer labels. Conversion to normalized float tensors happens per batch.
 */
export interface ImageDataset {
  /** e.g. 'cifar10', 'fashion-mnist', 'mnist-embedded'. */
  name: string;
  /** Pixels, image-major NHWC: pixel (i, y, x, c) at ((i * H + y) * W + x) * C + c. */
  pixels: Uint8Array;
  /** One class index in [0, numClasses) per image. */
  labels: Int32Array;
  /** [H, W, C] of one image. */
  shape: [number, number, number];
  numClasses: number;
  /** Class names in label order, when the format provides them. */
  classNames?: string[];
}

/** Number of images in a dataset. */
export function datasetSize(ds: ImageDataset): number {
  return ds.labels.length;
}
