"""Writes test/fixtures/convnorm-reference.json from the PyTorch port
(reference/convnorm_ref.py), computed in float64.

Run with Debian's PyTorch:  /usr/bin/python3 reference/make_fixtures.py
Arrays are stored in TensorFlow.js layout (NHWC activations, [kh, kw, Cin, Cout]
kernels, [kh, kw, C, 1] depthwise kernels) as base64 little-endian float32.
"""
import base64
import itertools
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from convnorm_ref import PreConvRef, precondition, spectrum  # noqa: E402

torch.set_default_dtype(torch.float64)
N, CIN, COUT, H, W = 2, 3, 4, 7, 6
# A short rampdown so that three steps exercise the cosine formula (the
# reference's 40000 would make every early factor ~1).
RAMPDOWN = 5
KERNELS = [(3, 3), (5, 5), (1, 1), (3, 5), (2, 3)]
STRIDES = [1, 2]
FLAGS = list(itertools.product([True, False], [True, False], [None, 0.1]))  # affine, bn, momentum


def enc(t, layout=None):
    a = t.detach().cpu().numpy()
    if layout == 'act':
        a = a.transpose(0, 2, 3, 1)
    elif layout == 'kernel':
        a = a.transpose(2, 3, 1, 0)
    elif layout == 'depthwise':
        a = a.transpose(2, 3, 0, 1)
    a = np.ascontiguousarray(a, dtype='<f4')
    return {'shape': list(a.shape), 'data': base64.b64encode(a.tobytes()).decode('ascii')}


def rand(g, *shape, scale=1.0):
    return (torch.rand(*shape, generator=g) * 2 - 1) * scale


def geometry_case(g, kh, kw, stride, padding):
    bound = 1 / (CIN * kh * kw) ** 0.5
    xs = [rand(g, N, CIN, H, W) for _ in range(3)]
    x_eval = rand(g, N, CIN, H, W)
    kernels = [rand(g, COUT, CIN, kh, kw, scale=bound) for _ in range(3)]
    affine_w = rand(g, COUT, 1, kh, kw, scale=1 / (kh * kw) ** 0.5)
    affine_b = rand(g, COUT, scale=1 / (kh * kw) ** 0.5)
    gamma = 1 + 0.5 * rand(g, COUT)
    beta = 0.5 * rand(g, COUT)
    size = (H + kh - 1, W + kw - 1)

    # The functional op (steps 1-4), V from the kernel, gradients through the
    # convolution and FFTs only.
    x = xs[0].clone().requires_grad_(True)
    k = kernels[0].clone().requires_grad_(True)
    V = spectrum(k.detach(), size)
    out = precondition(x, k, stride, padding, V)
    g_op = rand(g, *out.shape)
    (out * g_op).sum().backward()
    case = {
        'kernelSize': [kh, kw], 'strides': stride, 'padding': padding,
        'x': [enc(t, 'act') for t in xs], 'xEval': enc(x_eval, 'act'),
        'kernels': [enc(t, 'kernel') for t in kernels],
        'affineKernel': enc(affine_w, 'depthwise'), 'affineBias': enc(affine_b),
        'gamma': enc(gamma), 'beta': enc(beta),
        'op': {'spectrum': enc(V), 'output': enc(out, 'act'), 'cotangent': enc(g_op, 'act'),
               'gradX': enc(x.grad, 'act'), 'gradKernel': enc(k.grad, 'kernel')},
        'layers': [],
    }
    g_layer = None
    for affine, bn, momentum in FLAGS:
        layer = PreConvRef(CIN, COUT, (kh, kw), stride, padding, affine, bn, momentum, RAMPDOWN)
        with torch.no_grad():
            layer.weight.copy_(kernels[0])
            if affine:
                layer.bpconv.weight.copy_(affine_w)
                layer.bpconv.bias.copy_(affine_b)
                if bn:
                    layer.batch_norm.weight.copy_(gamma)
                    layer.batch_norm.bias.copy_(beta)
        layer.train()
        x = xs[0].clone().requires_grad_(True)
        out = layer(x)
        if g_layer is None or g_layer.shape != out.shape:
            g_layer = rand(g, *out.shape)
        (out * g_layer).sum().backward()
        grads = {'x': enc(x.grad, 'act'), 'kernel': enc(layer.weight.grad, 'kernel')}
        if affine:
            grads['affineKernel'] = enc(layer.bpconv.weight.grad, 'depthwise')
            grads['affineBias'] = enc(layer.bpconv.bias.grad)
            if bn:
                grads['gamma'] = enc(layer.batch_norm.weight.grad)
                grads['beta'] = enc(layer.batch_norm.bias.grad)
        with torch.no_grad():
            for t in (1, 2):
                layer.weight.copy_(kernels[t])
                layer(xs[t])
            layer.eval()
            out_eval = layer(x_eval)
        entry = {
            'affine': affine, 'batchNorm': bn, 'momentum': momentum,
            'output': enc(out, 'act'), 'cotangent': enc(g_layer, 'act'), 'grads': grads,
            'runningV': enc(layer.running_V), 'evalOutput': enc(out_eval, 'act'),
        }
        if bn:
            entry['movingMean'] = enc(layer.batch_norm.running_mean)
            entry['movingVariance'] = enc(layer.batch_norm.running_var)
        case['layers'].append(entry)
    return case


def check_port(g):
    """The port against a direct fp64 computation in numpy: the full
    cross-correlation summed tap by tap, then the circular convolution with
    the spatial filter v_k = irfft2(V_k) summed shift by shift, then crop and
    stride. Shares nothing with the torch path but the definition of V."""
    for (kh, kw), stride in itertools.product(KERNELS, STRIDES):
        for padding in range(min(kh, kw)):
            x = rand(g, N, CIN, H, W)
            w = rand(g, COUT, CIN, kh, kw)
            mh, mw = H + kh - 1, W + kw - 1
            V = spectrum(w, (mh, mw))
            ours = precondition(x, w, stride, padding, V).numpy()
            xn, wn = x.numpy(), w.numpy()
            xp = np.pad(xn, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
            y = np.zeros((N, COUT, mh, mw))
            for a in range(kh):
                for b in range(kw):
                    y += np.einsum('ncij,kc->nkij', xp[:, :, a:a + mh, b:b + mw], wn[:, :, a, b])
            if kh == 1 and kw == 1:
                z = y * V.numpy()[None, :, None, None]
            else:
                v = np.fft.irfft2(V.numpy(), s=(mh, mw))
                z = np.zeros_like(y)
                for p in range(mh):
                    for q in range(mw):
                        z += v[None, :, p:p + 1, q:q + 1] * np.roll(y, (p, q), axis=(2, 3))
            th, tw = kh - 1 - padding, kw - 1 - padding
            direct = z[:, :, th:mh - th, tw:mw - tw][:, :, ::stride, ::stride]
            err = np.abs(ours - direct).max() / np.abs(direct).max()
            assert err < 1e-12, f'port disagrees with the direct computation: {err} ({kh}x{kw} s{stride} p{padding})'


def main():
    g = torch.Generator().manual_seed(20211206)
    check_port(torch.Generator().manual_seed(1))
    cases = []
    for (kh, kw), stride in itertools.product(KERNELS, STRIDES):
        for padding in range(min(kh, kw)):
            cases.append(geometry_case(g, kh, kw, stride, padding))
    doc = {
        'source': 'reference/make_fixtures.py (PyTorch port of the authors\' PreConv, float64)',
        'torch': torch.__version__, 'rampdownSteps': RAMPDOWN, 'steps': 3,
        'shape': {'N': N, 'Cin': CIN, 'Cout': COUT, 'H': H, 'W': W}, 'cases': cases,
    }
    path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'convnorm-reference.json')
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
    os.replace(tmp, path)
    print(f'wrote {len(cases)} geometries x {len(FLAGS)} layer configurations to {os.path.normpath(path)}')


if __name__ == '__main__':
    main()
