"""The networks of the PyTorch side of the bench and of the label-noise
cross-check, as our models build them: the reference's small CNN, the CIFAR
ResNet-18 and He et al.'s CIFAR ResNets, each 3x3 convolution with BatchNorm
(`bn`) or the official ConvNorm layer (`convnorm`: our port of the authors'
PreConv, convnorm_ref.py, followed by its BatchNorm).
"""
import torch.nn as nn
import torch.nn.functional as F

from convnorm_ref import PreConvRef


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
