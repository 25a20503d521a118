"""PyTorch port of SNGAN's ResNet networks for 32x32 images in Mimicry's
sngan_32 layout (module names as Mimicry's: l1, block2..4 with b1, c1, b2, c2,
c_sc, b5, c5; block1..4 with c1, c2, c_sc, l5), with the discriminator
normalizations of src/models/sngan.ts: sn (torch.nn.utils.spectral_norm on
every conv and the linear layer), convnorm (the ConvNorm port, PreConvRef,
without BatchNorm, affine on), convnorm+sn (ConvNorm convs, SN linear) and
none. Written from the SNGAN paper and Mimicry's layout, not from the
TypeScript.

Two uses:
  /usr/bin/python3 reference/sngan_ref.py fixtures
      writes test/fixtures/sngan-reference.json: random weights (named as the
      TypeScript layers are), a noise batch and an image batch, and for each
      d-norm the training-mode outputs G(z) and D(x), the discriminator's
      hinge loss on (x, G(z)) and its gradient for every D weight.
  /usr/bin/python3 reference/sngan_ref.py bench --ch 64 --batch 64 --d-norm sn --reps 5
      times one discriminator step and one generator step (Adam, hinge loss)
      and prints JSON; `npm run bench -- --gan` runs it beside ours.
"""
import argparse
import base64
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from convnorm_ref import PreConvRef  # noqa: E402

D_NORMS = ['sn', 'convnorm', 'convnorm+sn', 'none']


def up(x):
    return F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)


class GBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.b1, self.b2 = nn.BatchNorm2d(ch), nn.BatchNorm2d(ch)
        self.c1, self.c2 = nn.Conv2d(ch, ch, 3, 1, 1), nn.Conv2d(ch, ch, 3, 1, 1)
        self.c_sc = nn.Conv2d(ch, ch, 1, 1, 0)

    def forward(self, x):
        h = self.c1(up(F.relu(self.b1(x))))
        h = self.c2(F.relu(self.b2(h)))
        return h + self.c_sc(up(x))


class Generator(nn.Module):
    def __init__(self, ch=256, z_dim=128, image_shape=(32, 32, 3)):
        super().__init__()
        self.blocks = 3 if image_shape[0] == 32 else 2
        self.start = image_shape[0] // 2 ** self.blocks
        self.ch = ch
        self.l1 = nn.Linear(z_dim, self.start * self.start * ch)
        for b in range(self.blocks):
            setattr(self, f'block{b + 2}', GBlock(ch))
        setattr(self, f'b{self.blocks + 2}', nn.BatchNorm2d(ch))
        setattr(self, f'c{self.blocks + 2}', nn.Conv2d(ch, image_shape[2], 3, 1, 1))

    def forward(self, z):
        h = self.l1(z).view(z.shape[0], self.ch, self.start, self.start)
        for b in range(self.blocks):
            h = getattr(self, f'block{b + 2}')(h)
        h = F.relu(getattr(self, f'b{self.blocks + 2}')(h))
        return torch.tanh(getattr(self, f'c{self.blocks + 2}')(h))


def d_conv(d_norm, cin, cout, k):
    if d_norm in ('convnorm', 'convnorm+sn'):
        return PreConvRef(cin, cout, (k, k), padding=(k - 1) // 2, affine=True, bn=False)
    conv = nn.Conv2d(cin, cout, k, 1, (k - 1) // 2)
    return nn.utils.spectral_norm(conv) if d_norm == 'sn' else conv


class DBlockOptimized(nn.Module):
    def __init__(self, d_norm, cin, ch):
        super().__init__()
        self.c1, self.c2, self.c_sc = d_conv(d_norm, cin, ch, 3), d_conv(d_norm, ch, ch, 3), d_conv(d_norm, cin, ch, 1)

    def forward(self, x):
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


class DBlock(nn.Module):
    def __init__(self, d_norm, ch, downsample):
        super().__init__()
        self.downsample = downsample
        self.c1, self.c2 = d_conv(d_norm, ch, ch, 3), d_conv(d_norm, ch, ch, 3)
        if downsample:
            self.c_sc = d_conv(d_norm, ch, ch, 1)

    def forward(self, x):
        h = self.c2(F.relu(self.c1(F.relu(x))))
        if not self.downsample:
            return h + x
        return F.avg_pool2d(h, 2) + F.avg_pool2d(self.c_sc(x), 2)


class Discriminator(nn.Module):
    def __init__(self, d_norm, ch=128, channels=3):
        super().__init__()
        self.block1 = DBlockOptimized(d_norm, channels, ch)
        self.block2 = DBlock(d_norm, ch, True)
        self.block3 = DBlock(d_norm, ch, False)
        self.block4 = DBlock(d_norm, ch, False)
        linear = nn.Linear(ch, 1)
        self.l5 = nn.utils.spectral_norm(linear) if d_norm in ('sn', 'convnorm+sn') else linear

    def forward(self, x):
        h = self.block4(self.block3(self.block2(self.block1(x))))
        return self.l5(torch.sum(F.relu(h), dim=(2, 3)))


def hinge_d(real, fake):
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


# --- fixtures ---------------------------------------------------------------

def enc(a):
    a = np.ascontiguousarray(a.detach().cpu().numpy() if torch.is_tensor(a) else a, dtype='<f4')
    return {'shape': list(a.shape), 'data': base64.b64encode(a.tobytes()).decode('ascii')}


def ts_weights(model, linear_nhwc=None):
    """Every weight (and gradient, with .grad) in the TypeScript layout, keyed '<layer>/<weight>'."""
    out, grads = {}, {}
    modules = dict(model.named_modules())

    def put(layer, name, value, grad=None):
        out[f'{layer}/{name}'] = enc(value)
        if grad is not None:
            grads[f'{layer}/{name}'] = enc(grad)

    def kernel(t):  # OIHW -> HWIO
        return t.permute(2, 3, 1, 0)

    def grad(t, layout=lambda a: a):
        return None if t.grad is None else layout(t.grad)

    for path, m in modules.items():
        layer = path.replace('.', '_')
        if isinstance(m, PreConvRef):
            put(layer, 'kernel', kernel(m.weight), grad(m.weight, kernel))
            w = m.bpconv.weight  # [C, 1, kh, kw] -> [kh, kw, C, 1]
            put(layer, 'affine_kernel', w.permute(2, 3, 0, 1), grad(w, lambda a: a.permute(2, 3, 0, 1)))
            put(layer, 'affine_bias', m.bpconv.bias, grad(m.bpconv.bias))
        elif isinstance(m, nn.Conv2d) and not path.endswith('bpconv'):
            w = m.weight_orig if hasattr(m, 'weight_orig') else m.weight
            put(layer, 'kernel', kernel(w), grad(w, kernel))
            put(layer, 'bias', m.bias, grad(m.bias))
            if hasattr(m, 'weight_u'):
                put(layer, 'weight_u', m.weight_u)
                put(layer, 'weight_v', m.weight_v)
        elif isinstance(m, nn.Linear) and path == 'l5':
            # The TypeScript linear layer is a 1x1 conv: kernel [1, 1, ch, 1].
            w = m.weight_orig if hasattr(m, 'weight_orig') else m.weight
            put(layer, 'kernel', w.t().reshape(1, 1, -1, 1), grad(w, lambda a: a.t().reshape(1, 1, -1, 1)))
            put(layer, 'bias', m.bias, grad(m.bias))
            if hasattr(m, 'weight_u'):
                put(layer, 'weight_u', m.weight_u)
                put(layer, 'weight_v', m.weight_v)
        elif isinstance(m, nn.Linear):
            # PyTorch views l1's output as [ch, s, s], the TypeScript as [s, s, ch]: permute the output units.
            ch, s = linear_nhwc
            order = torch.arange(ch * s * s).view(ch, s, s).permute(1, 2, 0).reshape(-1)
            put(layer, 'kernel', m.weight[order].t())
            put(layer, 'bias', m.bias[order])
        elif isinstance(m, nn.BatchNorm2d):
            put(layer, 'gamma', m.weight)
            put(layer, 'beta', m.bias)
            put(layer, 'moving_mean', m.running_mean)
            put(layer, 'moving_variance', m.running_var)
    return out, grads


def randomize(model, g):
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 1.0 if ('weight' in name and p.dim() == 1) else 0.4
            p.copy_(((torch.rand(p.shape, generator=g) * 2 - 1) * scale) + (1.0 if scale == 1.0 else 0.0))
        for name, b in model.named_buffers():
            if name.endswith('weight_u') or name.endswith('weight_v'):
                v = torch.randn(b.shape, generator=g, dtype=torch.float64).float()
                b.copy_(v / v.norm())


def fixtures():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2024)
    ch, z_dim, n = 8, 16, 4
    gen = Generator(ch, z_dim)
    randomize(gen, g)
    z = torch.randn(n, z_dim, generator=g)
    x = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    gen_weights, _ = ts_weights(gen, (ch, 4))
    gen.train()
    fake = gen(z).detach()
    doc = {'ch': ch, 'zDim': z_dim, 'z': enc(z), 'x': enc(x.permute(0, 2, 3, 1)),
           'generator': {'weights': gen_weights, 'output': enc(fake.permute(0, 2, 3, 1))}, 'discriminators': {}}
    for d_norm in D_NORMS:
        disc = Discriminator(d_norm, ch)
        randomize(disc, g)
        weights, _ = ts_weights(disc)
        disc.train()
        real_logits = disc(x)
        # The step's discriminator loss: a second training-mode call (SN iterates again, ConvNorm's running V moves).
        loss = hinge_d(disc(x), disc(fake))
        loss.backward()
        _, grads = ts_weights(disc)
        doc['discriminators'][d_norm] = {'weights': weights, 'realLogits': enc(real_logits), 'loss': float(loss),
                                         'grads': grads}
    path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'sngan-reference.json')
    with open(path, 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
    print(f'wrote {path}')


# --- bench ------------------------------------------------------------------

def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen, disc = Generator(args.g_ch, 128), Discriminator(args.d_norm, args.ch)
    gen.train()
    disc.train()
    opt_g = torch.optim.Adam(gen.parameters(), 2e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), 2e-4, betas=(0.0, 0.9))
    x = torch.rand(args.batch, 3, 32, 32) * 2 - 1

    def d_step():
        with torch.no_grad():
            fake = gen(torch.randn(args.batch, 128))
        opt_d.zero_grad()
        hinge_d(disc(x), disc(fake)).backward()
        opt_d.step()

    def g_step():
        opt_g.zero_grad()
        (-disc(gen(torch.randn(args.batch, 128))).mean()).backward()
        opt_g.step()

    result = {'threads': args.threads, 'ch': args.ch, 'gCh': args.g_ch, 'batch': args.batch, 'dNorm': args.d_norm}
    for name, fn in [('dStep', d_step), ('gStep', g_step)]:
        fn()
        times = []
        for _ in range(args.reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        result[f'{name}Seconds'] = float(np.median(times))
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest='mode', required=True)
    sub.add_parser('fixtures')
    b = sub.add_parser('bench')
    b.add_argument('--ch', type=int, default=128)
    b.add_argument('--g-ch', type=int, default=256)
    b.add_argument('--batch', type=int, default=64)
    b.add_argument('--d-norm', choices=D_NORMS, default='sn')
    b.add_argument('--reps', type=int, default=5)
    b.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    fixtures() if args.mode == 'fixtures' else bench(args)


if __name__ == '__main__':
    main()
