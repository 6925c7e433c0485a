"""Backbones: torchvision's ResNet-50 (paper scale) and small-image ResNets for the twins.

All return pooled features ``(B, D)`` and expose ``feature_dim``. The small ones have a 3x3 stem and no max-pool
(CIFAR-style), so the synthetic twins at 32-64 px keep enough spatial resolution: torchvision's ResNet-18 so
adapted (profile gpu), and a ResNet of torchvision's ``BasicBlock``, one per stage (profiles cpu and smoke).
"""
from __future__ import annotations

import hashlib

import torch
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.resnet import BasicBlock

from .config import ARCHS, external_path
from .rundir import BACKBONE, brief


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


class SmallImageResNet18(nn.Module):
    """torchvision ResNet-18 with the stem of He et al.'s CIFAR ResNets (one 3x3 conv at stride 1, no max-pool) and
    no classifier: 512-d features, for twins at 64 px (profile gpu), where the ImageNet stem would leave 2 x 2."""

    def __init__(self):
        super().__init__()
        net = resnet18(weights=None)
        net.conv1, net.maxpool, net.fc = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.Identity(), nn.Identity()
        self.net = net
        self.feature_dim = 512

    def forward(self, x):
        return self.net(x)


def stages(backbone: nn.Module) -> tuple[nn.Module, list[nn.Module]]:
    """``(stem, [layer1, layer2, layer3, layer4])`` of any backbone here: the dense protocols' view of it."""
    if isinstance(backbone, SmallResNet):
        return backbone.stem, list(backbone.layers)
    net = backbone.net
    return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool), [net.layer1, net.layer2, net.layer3, net.layer4]


def _dilate(stage: nn.Module, dilation: int, previous: int) -> None:
    """Stride 1 and dilation ``dilation`` for one stage, in place, as torchvision's
    ``replace_stride_with_dilation`` does (the first block keeps the previous stage's dilation)."""
    for i, block in enumerate(stage.children()):
        for module in block.modules():
            if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
                module.stride = (1, 1)
            if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
                d = previous if i == 0 else dilation
                module.dilation, module.padding = (d, d), (d, d)


class FeatureMap(nn.Module):
    """Spatial features of a backbone (no pooling): stem and stages up to ``depth`` (4 = layer4).

    ``dilate`` names stages run at stride 1: with ``atrous`` (default) their 3x3 convs get dilation 2,
    4, ... as DeepLab's output-stride trick, so ``(4,)`` is the dilated ResNet of App. A.3/A.7 (output
    stride 16 for ResNet-50); without it only the stride changes, as Jabri et al.'s label propagation
    does for layer3 and layer4 (``depth=3, dilate=(3, 4), atrous=False``: stride-8 res4 features).
    It holds a copy of ``backbone``'s weights.
    """

    def __init__(self, backbone: nn.Module, depth: int = 4, dilate: tuple[int, ...] = (4,), atrous: bool = True):
        super().__init__()
        import copy

        stem, layers = stages(copy.deepcopy(backbone))
        dilation = 1
        for stage in sorted(dilate):
            _dilate(layers[stage - 1], 2 * dilation if atrous else 1, dilation)
            dilation = 2 * dilation if atrous else 1
        self.stem, self.layers = stem, nn.Sequential(*layers[:depth])
        self.channels = [m for m in layers[depth - 1].modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features

    def forward(self, x):
        return self.layers(self.stem(x))


def build_backbone(arch: str, width: int = 32) -> nn.Module:
    """A randomly initialised backbone by name (see ``ARCHS``)."""
    if arch == "resnet50":
        return TorchvisionResNet50()
    if arch == "resnet18":
        return SmallImageResNet18()
    if arch == "resnet_small":
        return SmallResNet(width)
    raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS}")


def load_backbone(path, arch: str, width: int = 32, map_location="cpu") -> nn.Module:
    """A backbone with the weights a pretraining run saved (``backbone.pt``)."""
    net = build_backbone(arch, width)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a truncated or foreign file
        raise RuntimeError(f"{path} cannot be read ({brief(err)}). Its pretraining run must be made "
                           f"again: move that run folder away and rerun `revisit batch`") from err
    net.load_state_dict(state)
    return net


# Where the ResNet-50 of an external checkpoint sits, most specific first: MoCo's ``main_moco.py`` and the authors'
# model zoo (DDP-wrapped ``encoder_q``), the same saved without DDP, a DDP-wrapped torchvision ResNet-50, a plain one.
EXTERNAL_PREFIXES = ("module.encoder_q.", "encoder_q.", "module.", "")


def external_backbone(path) -> nn.Module:
    """The ResNet-50 of a checkpoint trained elsewhere (``pretrain: external:PATH``): MoCo's and the authors' format
    (``{"state_dict": ...}``, keys under ``module.encoder_q.``) or a torchvision state dict; the projection head
    (``fc.*``), the key encoder and the queues are dropped, every other weight must match."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        unset = " (a variable that is not set stays as written)" if "$" in str(path) else ""
        raise FileNotFoundError(f"external checkpoint {path} not found: check the path after 'external:'{unset}") \
            from None
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a truncated or foreign file
        raise RuntimeError(f"external checkpoint {path} cannot be read ({brief(err)})") from err
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise RuntimeError(f"external checkpoint {path} holds no state dict ({type(state).__name__})")
    for prefix in EXTERNAL_PREFIXES:
        weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if "conv1.weight" in weights:
            break
    else:
        raise RuntimeError(f"external checkpoint {path}: no ResNet-50 found (no 'conv1.weight' under any of "
                           f"{[p or '(no prefix)' for p in EXTERNAL_PREFIXES]}; first keys: {list(state)[:3]})")
    net = TorchvisionResNet50()
    try:
        loaded = net.net.load_state_dict({k: v for k, v in weights.items() if not k.startswith("fc.")}, strict=False)
    except RuntimeError as err:  # a shape that differs
        raise RuntimeError(f"external checkpoint {path} is not a torchvision ResNet-50 under '{prefix}': "
                           f"{str(err).strip().splitlines()[-1].strip()}") from err
    if loaded.missing_keys or loaded.unexpected_keys:
        raise RuntimeError(f"external checkpoint {path} is not a torchvision ResNet-50 under '{prefix}': "
                           f"{len(loaded.missing_keys)} weights missing {loaded.missing_keys[:3]}, "
                           f"{len(loaded.unexpected_keys)} unexpected {loaded.unexpected_keys[:3]}")
    return net


def evaluated_backbone(run) -> tuple[nn.Module, str, str]:
    """What an evaluation run (linear or transfer) works on: its pretraining run's ``backbone.pt``, an external
    checkpoint (``pretrain: external:PATH``, ``external_backbone``) or a random initialisation seeded by the run's
    seed plus its replica number; where that came from, and the device to use. Also applies the run's ``threads``."""
    p = run.params
    if p.threads:
        torch.set_num_threads(p.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    path = external_path(p.pretrain)
    if path is not None:  # the run is named by the path as written; the file's digest goes into its metrics
        backbone = external_backbone(path)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return backbone, f"external checkpoint {path} (sha256 {digest.hexdigest()[:16]})", device
    if run.needs is None:
        torch.manual_seed(p.seed + run.replica)
        return build_backbone(p.arch, p.width), "random initialisation", device
    return load_backbone(run.needs.dir / BACKBONE, p.arch, p.width), str(run.needs.dir), device


def channels_last(x):
    """``x`` (a module, or a batch of images) in the channels-last memory layout, where convolutions run 1.2-1.3x
    faster on the CPU (oneDNN) and on tensor-core GPUs; tensors that are not 4-D come back as they are."""
    if isinstance(x, nn.Module):
        return x.to(memory_format=torch.channels_last)
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
