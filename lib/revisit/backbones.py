"""Backbones: torchvision's ResNet-50 (paper scale) and a small-image ResNet for the twins.

Both return pooled features ``(B, D)`` and expose ``feature_dim``; the small variant is built
from torchvision's own ``BasicBlock`` with a 3x3 stem and no max-pool (CIFAR-style), so the
synthetic twins at 32 px keep enough spatial resolution.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet50
from torchvision.models.resnet import BasicBlock

ARCHS = ("resnet50", "resnet_small")


class SmallResNet(nn.Module):
    """ResNet with one BasicBlock per stage, widths ``w, 2w, 4w, 8w``; for 32 px twins."""

    def __init__(self, width: int = 32):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        blocks, inp = [], width
        for i, c in enumerate(widths):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or inp != c:
                down = nn.Sequential(nn.Conv2d(inp, c, 1, stride, bias=False), nn.BatchNorm2d(c))
            blocks.append(BasicBlock(inp, c, stride, down))
            inp = c
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = widths[-1]

    def forward(self, x):
        return self.pool(self.layers(self.stem(x))).flatten(1)


class TorchvisionResNet50(nn.Module):
    """torchvision ResNet-50 without its classifier: avgpool features, 2048-d."""

    def __init__(self):
        super().__init__()
        net = resnet50(weights=None)
        net.fc = nn.Identity()
        self.net = net
        self.feature_dim = 2048

    def forward(self, x):
        return self.net(x)


def build_backbone(arch: str, width: int = 32) -> nn.Module:
    """A randomly initialised backbone by name (see ``ARCHS``)."""
    if arch == "resnet50":
        return TorchvisionResNet50()
    if arch == "resnet_small":
        return SmallResNet(width)
    raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS}")


def load_backbone(path, arch: str, width: int = 32, map_location="cpu") -> nn.Module:
    """A backbone with the weights a pretraining run saved (``backbone.pt``)."""
    net = build_backbone(arch, width)
    net.load_state_dict(torch.load(path, map_location=map_location, weights_only=True))
    return net
