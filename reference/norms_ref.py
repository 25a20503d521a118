"""Writes test/fixtures/norms-reference.json: the baselines ConvNorm is compared
with, computed in float64 by PyTorch.

- SN: torch.nn.utils.spectral_norm itself on an nn.Conv2d (training calls
  update weight_u / weight_v; eval calls do not).
- ONI: a float64 port of the authors' ONI_Conv2d (huangleiBuaa/ONI,
  extension/normalization/NormedConv.py; ConvNorm's models/oni.py): ONINorm
  (rows) and ONINorm_colum (columns, used when C_out > C_in*kh*kw unless
  ONIRow_Fix), times the per-channel scale.
- OCNN: float64 ports of the penalty functions of the OCNN code
  (samaonline/Orthogonal-Convolutional-Neural-Networks imagenet/utils.py;
  ConvNorm's utils/util.py): orth_dist and deconv_orth_dist.

Run with Debian's PyTorch:  /usr/bin/python3 reference/norms_ref.py
Every input is rounded to float32 before the float64 computation, so the
stored inputs are exactly what was computed on. Arrays are stored in
TensorFlow.js layout (NHWC activations, [kh, kw, Cin, Cout] kernels) as
base64 little-endian float32.
"""
import json
import os

import torch
import torch.nn.functional as F

from make_fixtures import enc  # noqa: E402  (the fixtures' tensor encoding)

torch.set_default_dtype(torch.float64)


def f32(t):
    """Rounded to float32 and back: the values the float32 side will hold."""
    return t.float().double()


def uniform(g, *shape, scale=1.0):
    return f32((torch.rand(*shape, generator=g) * 2 - 1) * scale)


def unit_normal(g, n):
    v = torch.randn(n, generator=g)
    return f32(v / v.norm())


# --------------------------------------------------------------------------- SN

def sn_case(g, cin, cout, k, stride, padding, bias, calls=3):
    """padding: PyTorch's per-side integer (tfjs 'same' for stride 1 and odd k, or 0 = 'valid')."""
    conv = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias)
    conv = torch.nn.utils.spectral_norm(conv)
    fan_in = cin * k * k
    kernel = uniform(g, cout, cin, k, k, scale=fan_in ** -0.5)
    b = uniform(g, cout, scale=fan_in ** -0.5) if bias else None
    u0, v0 = unit_normal(g, cout), unit_normal(g, fan_in)
    with torch.no_grad():
        conv.weight_orig.copy_(kernel)
        if bias:
            conv.bias.copy_(b)
        conv.weight_u.copy_(u0)
        conv.weight_v.copy_(v0)
    xs = [uniform(g, 2, cin, 7, 7) for _ in range(calls)]
    x_eval = uniform(g, 2, cin, 7, 7)

    def sigma():
        w = conv.weight_orig.detach().reshape(cout, -1)
        return torch.dot(conv.weight_u, torch.mv(w, conv.weight_v))

    conv.train()
    x = xs[0].clone().requires_grad_(True)
    out = conv(x)
    cot = uniform(g, *out.shape)
    (out * cot).sum().backward()
    first = {'u': enc(conv.weight_u), 'v': enc(conv.weight_v), 'sigma': sigma().item(),
             'output': enc(out, 'act'), 'cotangent': enc(cot, 'act'),
             'gradKernel': enc(conv.weight_orig.grad, 'kernel'), 'gradX': enc(x.grad, 'act')}
    if bias:
        first['gradBias'] = enc(conv.bias.grad)
    with torch.no_grad():
        for t in range(1, calls):
            conv(xs[t])
        conv.eval()
        out_eval = conv(x_eval)
    case = {
        'kernelSize': k, 'inChannels': cin, 'filters': cout, 'strides': stride,
        'padding': 'same' if padding > 0 else 'valid', 'useBias': bias, 'calls': calls,
        'kernel': enc(kernel, 'kernel'), 'u0': enc(u0), 'v0': enc(v0),
        'x': [enc(t, 'act') for t in xs], 'xEval': enc(x_eval, 'act'),
        'first': first,
        'last': {'u': enc(conv.weight_u), 'v': enc(conv.weight_v), 'sigma': sigma().item(),
                 'evalOutput': enc(out_eval, 'act')},
    }
    if bias:
        case['bias'] = enc(b)
    return case


# -------------------------------------------------------------------------- ONI

def newton(S, T):
    B = torch.eye(S.shape[-1]).expand(S.shape)
    for _ in range(T):
        B = 1.5 * B - 0.5 * torch.bmm(torch.bmm(torch.bmm(B, B), B), S)
    return B


def oni_rows(weight, T, groups, eps=1e-5):
    Z = weight.view(groups, weight.shape[0] // groups, -1)
    Zc = Z - Z.mean(dim=-1, keepdim=True)
    S = torch.matmul(Zc, Zc.transpose(1, 2)) + eps * torch.eye(Z.shape[1])
    norm = S.norm(p='fro', dim=(1, 2), keepdim=True)
    return (newton(S / norm, T).matmul(Zc) / norm.sqrt()).view_as(weight)


def oni_columns(weight, T, groups, eps=1e-5):
    Z = weight.view(groups, weight.shape[0] // groups, -1)
    Zc = Z - Z.mean(dim=-1, keepdim=True)
    S = torch.matmul(Zc.transpose(1, 2), Zc) + eps * torch.eye(Z.shape[2])
    norm = S.norm(p='fro', dim=(1, 2), keepdim=True)
    # As the authors: S is not divided by its norm here (their line is commented out).
    return (Zc.matmul(newton(S, T)) / norm.sqrt()).view_as(weight)


def oni_case(g, cin, cout, k, T, groups, row_fix, kernel_scale=None):
    fan_in = cin * k * k
    columns = cout > fan_in and not row_fix
    kernel = uniform(g, cout, cin, k, k, scale=kernel_scale or fan_in ** -0.5).requires_grad_(True)
    scale = f32(1.414 + uniform(g, cout, scale=0.2)).requires_grad_(True)
    bias = uniform(g, cout, scale=fan_in ** -0.5).requires_grad_(True)
    x = uniform(g, 2, cin, 6, 6).requires_grad_(True)
    w = (oni_columns if columns else oni_rows)(kernel, T, groups)
    wq = w * scale.view(-1, 1, 1, 1)
    out = F.conv2d(x, wq, bias, 1, (k - 1) // 2)
    cot = uniform(g, *out.shape)
    (out * cot).sum().backward()
    return {
        'kernelSize': k, 'inChannels': cin, 'filters': cout, 'iterations': T, 'normGroups': groups,
        'rowFix': row_fix, 'columns': columns,
        'kernel': enc(kernel, 'kernel'), 'scale': enc(scale), 'bias': enc(bias), 'x': enc(x, 'act'),
        'orthogonalized': enc(w, 'kernel'), 'effectiveKernel': enc(wq, 'kernel'),
        'output': enc(out, 'act'), 'cotangent': enc(cot, 'act'),
        'gradKernel': enc(kernel.grad, 'kernel'), 'gradScale': enc(scale.grad),
        'gradBias': enc(bias.grad), 'gradX': enc(x.grad, 'act'),
    }


# ------------------------------------------------------------------------- OCNN

def deconv_orth_dist(kernel, stride, padding):
    o = kernel.shape[0]
    out = F.conv2d(kernel, kernel, stride=stride, padding=padding)
    target = torch.zeros(o, o, out.shape[-2], out.shape[-1])
    ct = out.shape[-1] // 2
    target[:, :, ct, ct] = torch.eye(o)
    return (out - target).norm()


def orth_dist(weight):
    m = weight.reshape(weight.shape[0], -1)
    if m.shape[0] < m.shape[1]:
        m = m.t()
    return (m.t() @ m - torch.eye(m.shape[1])).norm()


def ocnn_case(g, cin, cout, k, stride):
    kernel = uniform(g, cout, cin, k, k, scale=(cin * k * k) ** -0.5).requires_grad_(True)
    value = orth_dist(kernel) if k == 1 else deconv_orth_dist(kernel, stride, k // 2)
    value.backward()
    return {'kernelSize': k, 'inChannels': cin, 'filters': cout, 'strides': stride,
            'kernel': enc(kernel, 'kernel'), 'value': value.item(), 'gradKernel': enc(kernel.grad, 'kernel')}


def main():
    g = torch.Generator().manual_seed(20200614)
    doc = {
        'source': 'reference/norms_ref.py (torch spectral_norm; float64 ports of the ONI and OCNN code)',
        'torch': torch.__version__,
        'sn': [sn_case(g, 3, 5, 3, 1, 1, True), sn_case(g, 6, 4, 1, 2, 0, False)],
        'oni': [
            oni_case(g, 4, 6, 3, 5, 1, False),                     # rows
            oni_case(g, 4, 8, 3, 5, 2, False),                     # rows, two norm groups
            oni_case(g, 4, 6, 3, 3, 1, False, kernel_scale=1.0),   # rows, T = 3, larger weights
            oni_case(g, 4, 8, 1, 5, 1, False),                     # 1x1, C_out > fan-in: columns
            oni_case(g, 4, 8, 1, 5, 1, True),                      # the same with ONIRow_Fix: rows
            oni_case(g, 2, 24, 3, 3, 2, False),                    # 3x3, C_out 24 > 18: columns, groups
        ],
        'ocnn': [ocnn_case(g, 4, 6, 3, 1), ocnn_case(g, 4, 6, 3, 2), ocnn_case(g, 3, 8, 3, 2),
                 ocnn_case(g, 8, 4, 1, 1), ocnn_case(g, 4, 8, 1, 2)],
    }
    path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'norms-reference.json')
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
    os.replace(tmp, path)
    print(f"wrote {len(doc['sn'])} SN, {len(doc['oni'])} ONI and {len(doc['ocnn'])} OCNN cases to "
          f'{os.path.normpath(path)}')


if __name__ == '__main__':
    main()
