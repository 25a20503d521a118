"""PyTorch port of the authors' ConvNorm layer (PreConv in shengliu66/ConvNorm,
models/prec_conv.py), written from ../shared/docs/convnorm-spec.md.

It keeps the reference algorithm step by step (full convolution at stride 1,
rfft2 preconditioning with V from FFTs of the zero-padded kernel, crop, stride,
depthwise affine, BatchNorm) and moves it from the removed torch.rfft API to
torch.fft. It is the oracle the TypeScript layer is tested against, so it is
deliberately the slow, literal algorithm and never shares code with ours.

Deliberate differences from the original, each named in the spec:
- 1x1 kernels only take the scalar-V branch (the original also takes it for
  1 x k kernels, where it only broadcasts by accident).
- the affine filter is kh x kw with padding ((kh-1)//2, (kw-1)//2); the
  original reads kh only.
- the cosine rampdown length is a parameter (the original hard-codes 40000).
- eps is added inside the sum before the inverse square root (the original has
  none; eps=0 reproduces it).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def cosine_rampdown(current, length):
    current = min(max(float(current), 0.0), float(length))
    return 0.5 * (math.cos(math.pi * current / length) + 1.0)


def spectrum(weight, size, eps=0.0):
    """V[k, f] = (sum_j |rfft2(W padded to size)[k, j, f]|^2 + eps)^(-1/2)."""
    kh, kw = weight.shape[-2:]
    with torch.no_grad():
        if kh == 1 and kw == 1:
            return (weight.pow(2).sum(dim=(1, 2, 3)) + eps).pow(-0.5)
        mh, mw = size
        padded = F.pad(weight, [0, mw - kw, 0, mh - kh])
        f = torch.fft.rfft2(padded)
        return (f.abs().pow(2).sum(dim=1) + eps).pow(-0.5)


def precondition(x, weight, stride, padding, V):
    """Steps 1-4 of the spec: full conv, Fourier preconditioning, crop, stride."""
    kh, kw = weight.shape[-2:]
    y = F.conv2d(x, weight, None, 1, (kh - 1, kw - 1))
    if kh == 1 and kw == 1:
        y = y * V.view(1, -1, 1, 1)
    else:
        mh, mw = y.shape[-2:]
        y = torch.fft.irfft2(torch.fft.rfft2(y) * V, s=(mh, mw))
    th, tw = kh - 1 - padding, kw - 1 - padding
    assert th >= 0 and tw >= 0
    y = y[:, :, th:y.shape[-2] - th, tw:y.shape[-1] - tw]
    return y[:, :, ::stride, ::stride]


class PreConvRef(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride=1, padding=0, affine=True,
                 bn=True, momentum=None, rampdown=40000, eps=0.0):
        super().__init__()
        kh, kw = kernel_size
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.momentum, self.rampdown, self.eps = momentum, rampdown, eps
        self.affine, self.bn = affine, bn
        self.weight = nn.Parameter(torch.empty(cout, cin, kh, kw))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.register_buffer('running_V', torch.zeros(1))
        self.num_batches_tracked = 0
        if affine:
            self.bpconv = nn.Conv2d(cout, cout, (kh, kw), padding=((kh - 1) // 2, (kw - 1) // 2),
                                    groups=cout, bias=True)
        if bn:
            self.batch_norm = nn.BatchNorm2d(cout, affine=affine)

    def _update_running(self, V):
        self.num_batches_tracked += 1
        if self.momentum is None:
            f = max(cosine_rampdown(self.num_batches_tracked, self.rampdown), 1e-2)
        else:
            f = self.momentum
        self.running_V = f * V + (1 - f) * self.running_V

    def forward(self, x):
        kh, kw = self.kernel_size
        size = (x.shape[-2] + kh - 1, x.shape[-1] + kw - 1)
        if self.training:
            V = spectrum(self.weight.detach(), size, self.eps)
            with torch.no_grad():
                self._update_running(V)
        else:
            V = self.running_V
        y = precondition(x, self.weight, self.stride, self.padding, V)
        if self.affine:
            y = self.bpconv(y)
        if self.bn:
            y = self.batch_norm(y)
        return y
