"""PyTorch side of `npm run bench`: Conv+BN and the official ConvNorm layer
(our port of the authors' PreConv, reference/convnorm_ref.py, in float32) on the
same layer shapes and networks as the TypeScript bench. Prints one JSON object.

    /usr/bin/python3 bench/torch_bench.py '{"threads": 2, "batches": [32], ...}'
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'reference'))
from convnorm_ref import PreConvRef  # noqa: E402


def unit(cin, cout, k, stride, norm):
    if norm == 'convnorm':
        return PreConvRef(cin, cout, (k, k), stride, (k - 1) // 2, affine=True, bn=True)
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False), nn.BatchNorm2d(cout))


class Block(nn.Module):
    def __init__(self, cin, planes, stride, norm):
        super().__init__()
        self.c1, self.c2 = unit(cin, planes, 3, stride, norm), unit(planes, planes, 3, 1, norm)
        self.short = unit(cin, planes, 1, stride, norm) if stride != 1 or cin != planes else nn.Identity()

    def forward(self, x):
        return F.relu(self.c2(F.relu(self.c1(x))) + self.short(x))


def resnet18(norm):
    layers, cin = [unit(3, 64, 3, 1, norm), nn.ReLU()], 64
    for stage, planes in enumerate([64, 128, 256, 512]):
        for b in range(2):
            layers.append(Block(cin, planes, 2 if stage > 0 and b == 0 else 1, norm))
            cin = planes
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))


def cifar_resnet(depth, norm):
    """He et al.'s CIFAR ResNet (depth 6n + 2, 16/32/64 channels, 1x1 projection shortcuts)."""
    n = (depth - 2) // 6
    layers, cin = [unit(3, 16, 3, 1, norm), nn.ReLU()], 16
    for stage, planes in enumerate([16, 32, 64]):
        for b in range(n):
            layers.append(Block(cin, planes, 2 if stage > 0 and b == 0 else 1, norm))
            cin = planes
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def network(name, norm):
    if name == 'small':
        return small_cnn(norm)
    depth = int(name[len('resnet'):])
    return resnet18(norm) if depth == 18 else cifar_resnet(depth, norm)


def small_cnn(norm):
    layers, cin = [], 3
    for w in [8, 8, 'M', 16, 16, 'M', 32, 32, 'M']:
        if w == 'M':
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [unit(cin, w, 3, 1, norm), nn.ReLU()]
            cin = w
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, 10))


def median_ms(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg.get('threads', 2))
    torch.manual_seed(0)
    out = {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'layers': [], 'networks': []}
    for spec in cfg.get('layers', []):
        for batch in cfg['batches']:
            row = {'layer': spec['name'], 'batch': batch}
            x = torch.randn(batch, spec['inChannels'], spec['size'], spec['size'])
            for norm in ('bn', 'convnorm'):
                m = unit(spec['inChannels'], spec['filters'], 3, spec['strides'], norm).train()
                xg = x.clone().requires_grad_(True)

                def fwd():
                    with torch.no_grad():
                        m(x)

                def fwd_bwd():
                    m.zero_grad()
                    m(xg).sum().backward()
                row[f'{norm}Forward'] = median_ms(fwd, cfg['reps'])
                row[f'{norm}ForwardBackward'] = median_ms(fwd_bwd, cfg['reps'])
            out['layers'].append(row)
    for net in cfg.get('networks', []):
        for batch in cfg['batches']:
            for norm in ('bn', 'convnorm'):
                model = network(net, norm).train()
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
                x = torch.randn(batch, 3, 32, 32)
                y = torch.randint(0, 10, (batch,))

                def step():
                    opt.zero_grad()
                    F.cross_entropy(model(x), y).backward()
                    opt.step()
                ms = median_ms(step, cfg['steps'])
                out['networks'].append({'network': net, 'norm': norm, 'batch': batch, 'stepMs': ms,
                                        'imagesPerSecond': batch / ms * 1000})
    print(json.dumps(out))


if __name__ == '__main__':
    main()
