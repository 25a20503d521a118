"""Writes test/fixtures/corruptions-reference.json: the deterministic common
corruptions of Hendrycks & Dietterich (ICLR 2019), computed the way their
CIFAR-10-C construction computes them (hendrycks/robustness,
ImageNet-C/create_c/make_cifar_c.py), on a handful of 32x32x3 inputs.

For gaussian_blur, defocus_blur, zoom_blur, contrast, brightness, saturate,
pixelate and jpeg_compression at severities 1-5 it stores the uint8 outputs,
each image passed through `np.uint8(corruption(img))` as make_cifar_c.py
stores it (float values in [0, 255] truncated, not rounded). The corruptions
call the library functions the construction calls, with its CIFAR-10
parameters: skimage.filters.gaussian, cv2.GaussianBlur (the antialiased disk)
and cv2.filter2D, scipy.ndimage.zoom (order 1), skimage.color.rgb2hsv /
hsv2rgb, PIL's resize with Image.BOX, PIL's JPEG encoder and decoder. The
random corruptions (noise, fog) are not stored: their draws come from numpy
there and from the package's own seeded stream here.

Inputs: seeded uniform noise, a smoothed random texture, two smooth gradients
and a constant colour. Also stored: the 17x17 float32 disk kernels of
defocus_blur and the zoom factors np.arange gives zoom_blur per severity.

numpy evaluates the Gaussian kernel's exp with its AVX-512 routine where the
CPU has it and with libm elsewhere; the two differ in the last bit for a few
taps, which moves a handful of gaussian_blur bytes by one level (the test
allows for it).

Run with Debian's Python (numpy, scipy 1.10, skimage 0.19, opencv 4.6, PIL 9.4):
    /usr/bin/python3 reference/corruptions_ref.py
Images are stored NHWC as base64 uint8, kernels as base64 little-endian float32.
"""
import base64
import io
import json
import os
import warnings

import cv2
import numpy as np
import PIL
import scipy
import scipy.ndimage
import skimage
import skimage.color
import skimage.filters
from PIL import Image

SIZE = 32

# Parameter tables, one per corruption, as make_cifar_c.py defines them for CIFAR-10.
GAUSSIAN_BLUR = [0.4, 0.6, 0.7, 0.8, 1.0]
DEFOCUS_BLUR = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)]
ZOOM_BLUR_STOPS = [1.06, 1.11, 1.16, 1.21, 1.26]  # np.arange(1, stop, 0.01)
CONTRAST = [0.75, 0.5, 0.4, 0.3, 0.15]
BRIGHTNESS = [0.05, 0.1, 0.15, 0.2, 0.3]
SATURATE = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)]
PIXELATE = [0.95, 0.9, 0.85, 0.75, 0.65]
JPEG = [80, 65, 58, 50, 40]


def b64(a, dtype):
    a = np.ascontiguousarray(a, dtype=dtype)
    return base64.b64encode(a.tobytes()).decode('ascii')


# ------------------------------------------------------------------ inputs

def inputs():
    rng = np.random.default_rng(20190328)
    noise = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    # A texture with structure at a few pixels' scale: blurred noise, stretched to the full range.
    field = scipy.ndimage.gaussian_filter(rng.standard_normal((SIZE, SIZE, 3)), sigma=(1.5, 1.5, 0))
    field = (field - field.min()) / (field.max() - field.min())
    texture = np.uint8(field * 255.999)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    horizontal = np.stack([xx * 255 // (SIZE - 1), 255 - xx * 255 // (SIZE - 1),
                           np.full_like(xx, 96)], axis=-1).astype(np.uint8)
    diagonal = np.stack([(xx + yy) * 4, yy * 8, 255 - xx * 6], axis=-1).clip(0, 255).astype(np.uint8)
    constant = np.empty((SIZE, SIZE, 3), np.uint8)
    constant[...] = (200, 100, 50)
    return np.stack([noise, texture, horizontal, diagonal, constant])


# ------------------------------------------------------------- corruptions

def gaussian_blur(x, severity):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # multichannel= is deprecated in 0.19 in favour of channel_axis
        y = skimage.filters.gaussian(np.array(x) / 255., sigma=GAUSSIAN_BLUR[severity - 1], multichannel=True)
    return np.clip(y, 0, 1) * 255


def disk_kernel(radius, alias_blur):
    """The construction's antialiased disk, for radii <= 8 (all CIFAR severities)."""
    assert radius <= 8
    taps = np.arange(-8, 8 + 1)
    xg, yg = np.meshgrid(taps, taps)
    disk = np.array((xg ** 2 + yg ** 2) <= radius ** 2, dtype=np.float32)
    disk /= np.sum(disk)
    return cv2.GaussianBlur(disk, ksize=(3, 3), sigmaX=alias_blur)


def defocus_blur(x, severity):
    radius, alias_blur = DEFOCUS_BLUR[severity - 1]
    kernel = disk_kernel(radius, alias_blur)
    x = np.array(x) / 255.
    planes = [cv2.filter2D(x[:, :, d], -1, kernel) for d in range(x.shape[2])]
    return np.clip(np.stack(planes, axis=-1), 0, 1) * 255


def zoom_factors(severity):
    return np.arange(1, ZOOM_BLUR_STOPS[severity - 1], 0.01)


def clipped_zoom(img, factor):
    h = img.shape[0]
    crop = int(np.ceil(h / factor))
    top = (h - crop) // 2
    zoomed = scipy.ndimage.zoom(img[top:top + crop, top:top + crop], (factor, factor, 1), order=1)
    trim = (zoomed.shape[0] - h) // 2
    return zoomed[trim:trim + h, trim:trim + h]


def zoom_blur(x, severity):
    factors = zoom_factors(severity)
    x = (np.array(x) / 255.).astype(np.float32)
    acc = np.zeros_like(x)
    for factor in factors:
        acc += clipped_zoom(x, factor)
    return np.clip((x + acc) / (len(factors) + 1), 0, 1) * 255


def contrast(x, severity):
    c = CONTRAST[severity - 1]
    x = np.array(x) / 255.
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def brightness(x, severity):
    hsv = skimage.color.rgb2hsv(np.array(x) / 255.)
    hsv[:, :, 2] = np.clip(hsv[:, :, 2] + BRIGHTNESS[severity - 1], 0, 1)
    return np.clip(skimage.color.hsv2rgb(hsv), 0, 1) * 255


def saturate(x, severity):
    scale, shift = SATURATE[severity - 1]
    hsv = skimage.color.rgb2hsv(np.array(x) / 255.)
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] * scale + shift, 0, 1)
    return np.clip(skimage.color.hsv2rgb(hsv), 0, 1) * 255


def pixelate(x, severity):
    side = int(SIZE * PIXELATE[severity - 1])
    img = Image.fromarray(x).resize((side, side), Image.BOX)
    return img.resize((SIZE, SIZE), Image.BOX)


def jpeg_compression(x, severity):
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, 'JPEG', quality=JPEG[severity - 1])
    return Image.open(buf)


CORRUPTIONS = {
    'gaussian_blur': gaussian_blur, 'defocus_blur': defocus_blur, 'zoom_blur': zoom_blur,
    'contrast': contrast, 'brightness': brightness, 'saturate': saturate,
    'pixelate': pixelate, 'jpeg_compression': jpeg_compression,
}


def main():
    images = inputs()
    outputs = {}
    for name, fn in CORRUPTIONS.items():
        outputs[name] = []
        for severity in range(1, 6):
            out = np.stack([np.uint8(fn(img, severity)) for img in images])
            assert out.shape == images.shape, (name, out.shape)
            outputs[name].append({'severity': severity, 'data': b64(out, np.uint8)})
    doc = {
        'source': 'reference/corruptions_ref.py (make_cifar_c.py\'s construction and CIFAR-10 parameters)',
        'versions': {'numpy': np.__version__, 'scipy': scipy.__version__, 'skimage': skimage.__version__,
                     'opencv': cv2.__version__, 'PIL': PIL.__version__},
        'shape': list(images.shape),
        'inputs': b64(images, np.uint8),
        'outputs': outputs,
        'defocusKernels': [b64(disk_kernel(*p), '<f4') for p in DEFOCUS_BLUR],
        'zoomFactors': [zoom_factors(s).tolist() for s in range(1, 6)],
    }
    path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'corruptions-reference.json')
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
    os.replace(tmp, path)
    print(f'wrote {len(CORRUPTIONS)} corruptions x 5 severities on {len(images)} images to {os.path.normpath(path)}')


if __name__ == '__main__':
    main()
