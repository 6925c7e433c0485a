"""MoCo-v2 views and the view policies of Sec. 4 (two-crop default, MC, CC, A+).

Default: RandomResizedCrop with scale (0.2, 1.0) and ratio (3/4, 4/3), then colour jitter
(0.4, 0.4, 0.4, 0.1) with p = 0.8, grayscale p = 0.2, Gaussian blur sigma in [0.1, 2.0] with
p = 0.5, horizontal flip, ImageNet normalisation. ``Views`` adds what Sec. 4 varies: N small
crops (multi-crop, 4.1), their overlap constraint with the anchor (constrained multi-crop), an IoU
ceiling between anchor and positive (Figures 2-3) and the positives' augmentation policy (4.2).

Crops (and AutoAugment) are drawn per image in the loader workers; the colour steps run batched with per-image
parameters (kornia), because per image they cost more than the model at the twins' 14-32 px, on chunks of a batch
that fit a CPU's cache (``CHUNK_VALUES``; a whole batch of twins).
On a CPU the batch is coloured in the worker that collates it; on a GPU it goes over as uint8 crops and is
coloured on the GPU (``ViewSet.colour``), where at 224 px the colour steps would otherwise bound the step. All
randomness is drawn from torch's global CPU generator (kornia draws its parameters there too), which ``ViewSet``
seeds per (seed, epoch, index) for the crops and per (seed, epoch, batch) for the colours: a resumed run sees the
same views as an uninterrupted one, with any number of loader workers, wherever the colours are applied.
"""
from __future__ import annotations

import math

import kornia.augmentation as K
import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, default_collate
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .config import POLICIES  # Table 7: the positives' augmentation policy
from .crops import DEFAULT_RATIO, constrained_crop, iou_constrained_pair, sample_crop

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VIEWS = ("anchor", "positive", "small")  # the image tensors of a batch; the rest are per-image counts and flags


def normalize() -> v2.Compose:
    """uint8 (or [0, 1] float) image -> float tensor normalised with ImageNet statistics."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def blur_kernel(size: int) -> int:
    """Odd kernel about a tenth of the crop size (SimCLR's choice; 23 at 224 px), at least 3."""
    k = max(3, int(0.1 * size))
    return k + 1 - k % 2


def adjust_hue(image: torch.Tensor, radians: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue of RGB images ``(B, 3, H, W)`` in [0, 1] by ``radians`` ``(B,)``: kornia's
    ``enhance.adjust_hue`` (equal to 2e-6) without its HSV round trip, 6x faster on a CPU at 224 px.

    Hue and value come from the channel maximum as in kornia (ties go to red, then green); the RGB of the
    rotated hue is ``V - C clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + H') mod 6``, n = 5, 3, 1.
    """
    r, g, b = image.unbind(-3)
    value = image.amax(-3)
    chroma = value - image.amin(-3)
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    sextant = torch.where(value == r, (g - b) / safe, torch.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4))
    shift = torch.as_tensor(radians, dtype=image.dtype, device=image.device) * (3 / math.pi)
    hue = torch.remainder(sextant + shift.reshape(*shift.shape, 1, 1), 6)
    channels = []
    for n in (5, 3, 1):
        k = torch.remainder(hue + n, 6)
        channels.append(value - chroma * torch.minimum(k, 4 - k).clamp(0, 1))
    return torch.stack(channels, -3)


class ColorJitter(K.ColorJitter):
    """kornia's ColorJitter with ``adjust_hue`` as its hue step: the same views (to 2e-6), the jitter 2x faster on a CPU
    (kornia's HSV round trip took 0.44 s of its 0.52 s for 64 images at 224 px on one core)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._hue_fn = adjust_hue  # kornia's hook for the hue step (radians, per image)


def color_pipeline(size: int) -> nn.Sequential:
    """Everything of MoCo-v2's augmentation after the crop except the normalisation, on a float batch in [0, 1].

    kornia's ColorJitter uses torchvision's formulas with per-image factors; the order of its four
    steps is drawn per batch, where torchvision draws it per image.
    """
    k = blur_kernel(size)
    return nn.Sequential(
        ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        K.RandomGrayscale(p=0.2),
        K.RandomGaussianBlur((k, k), (0.1, 2.0), p=0.5),
        K.RandomHorizontalFlip(),
    )


def autoaugment_pipeline() -> v2.Compose:
    """A+'s other branch: AutoAugment (ImageNet policy) and a flip, no colour jitter (official code); uint8 out."""
    return v2.Compose([v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET), v2.RandomHorizontalFlip()])


def _torch_rng() -> np.random.Generator:
    return np.random.default_rng(int(torch.randint(0, 2**62, ())))


class Views:
    """One image -> the anchor, its large positive and ``small_crops`` small positives.

    The anchor always gets the default pipeline (it feeds the momentum encoder and the queue).
    Positives get the default pipeline (``policy="standard"``), AutoAugment (``"autoaugment"``)
    or either at random with p = 0.5 (``"mixed"``, the paper's A+). Small crops must keep
    ``min_overlap`` of their area inside the anchor crop (0 = unconstrained multi-crop); the
    positive must have IoU below ``max_iou`` with the anchor (None = no ceiling).

    ``crops(img)`` draws one image's uint8 crops (AutoAugment already applied where the policy
    says); ``colour(batch)`` finishes a collated batch of them; ``views(img)`` does both for one image.
    """

    def __init__(self, size=224, scale=(0.2, 1.0), ratio=DEFAULT_RATIO, small_crops=0, small_size=96,
                 small_scale=(0.05, 0.14), min_overlap=0.0, overlap_tries=None, max_iou=None, policy="standard"):
        if policy not in POLICIES:
            raise ValueError(f"policy {policy!r}; choose one of {POLICIES}")
        self.size, self.scale, self.ratio = size, tuple(scale), tuple(ratio)
        self.small_crops, self.small_size, self.small_scale = small_crops, small_size, tuple(small_scale)
        self.min_overlap, self.overlap_tries, self.max_iou, self.policy = min_overlap, overlap_tries, max_iou, policy
        self.color, self.small_color = color_pipeline(size), color_pipeline(small_size)
        self.strong = autoaugment_pipeline()
        self.normalize = normalize()

    def _strong(self) -> bool:
        """Whether a positive takes AutoAugment instead of the default pipeline (one torch draw for "mixed")."""
        return self.policy == "autoaugment" or (self.policy == "mixed" and bool(torch.rand(()) >= 0.5))

    def crops(self, img) -> dict:
        height, width = img.shape[-2:]
        rng = _torch_rng()
        rejected, fallbacks = 0, 0
        if self.max_iou is None:
            anchor = sample_crop(height, width, self.scale, self.ratio, rng)
            positive = sample_crop(height, width, self.scale, self.ratio, rng)
        else:
            anchor, positive, rejected = iou_constrained_pair(height, width, self.scale, self.ratio, self.max_iou, rng)
        boxes, sizes = [positive], [self.size]
        for _ in range(self.small_crops):
            if self.min_overlap > 0:
                box, n, fell_back = constrained_crop(height, width, self.small_scale, self.ratio, anchor,
                                                     self.min_overlap, rng, self.overlap_tries)
                rejected += n
                fallbacks += fell_back
            else:
                box = sample_crop(height, width, self.small_scale, self.ratio, rng)
            boxes.append(box)
            sizes.append(self.small_size)
        positives, strong = [], []
        for box, size in zip(boxes, sizes):
            crop, is_strong = _resized(img, box, size), self._strong()
            positives.append(self.strong(crop) if is_strong else crop)
            strong.append(is_strong)
        small = positives[1:]
        return {"anchor": _resized(img, anchor, self.size), "positive": positives[0],
                "small": torch.stack(small) if small else torch.zeros(0, 3, self.small_size, self.small_size,
                                                                     dtype=torch.uint8),
                "strong": torch.tensor(strong), "rejected": rejected, "fallbacks": int(fallbacks)}

    def colour(self, batch: dict) -> dict:
        """A collated batch of ``crops`` -> normalised float views; the colour steps skip AutoAugment's positives."""
        anchor, positive, small = (batch[k].float() / 255 for k in VIEWS)
        strong = batch["strong"]
        anchor = _in_chunks(self.color, anchor)
        positive = _where_not(strong[:, 0], lambda x: _in_chunks(self.color, x), positive)
        if small.shape[1]:
            b, n = small.shape[:2]
            small = _where_not(strong[:, 1:].flatten(), lambda x: _in_chunks(self.small_color, x), small.flatten(0, 1))
            small = small.view(b, n, *small.shape[1:])
        return {**batch, "anchor": self.normalize(anchor), "positive": self.normalize(positive),
                "small": self.normalize(small)}

    def __call__(self, img) -> dict:
        """One image's finished views (for figures and tests; training colours whole batches)."""
        views = self.colour(default_collate([self.crops(img)]))
        return {k: v[0] if k in VIEWS else v for k, v in views.items()}


def policy_examples(img, views: Views, count: int = 6) -> np.ndarray:
    """Table 7's figure: the anchor view of ``img``, then ``count - 1`` positives (view ``i`` drawn at torch seed
    ``i``), as ``(count, H, W, 3)`` images in [0, 1] with the normalisation undone."""
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    shown = []
    for i in range(count):
        torch.manual_seed(i)
        out = views(img)
        shown.append((out["anchor"] if i == 0 else out["positive"]) * std + mean)
    return torch.stack(shown).clamp(0, 1).permute(0, 2, 3, 1).numpy()


CHUNK_VALUES = 2**20  # the colour steps run on chunks of about 4 MiB of float32: within a CPU's cache, 4x faster
# than on a whole batch of 64 images at 224 px on one core; the same chunks on a GPU, so the views do not change


def _in_chunks(transform, x: torch.Tensor) -> torch.Tensor:
    """``transform`` applied to consecutive chunks of ``x``'s images (``CHUNK_VALUES`` values each, at least one
    image), each chunk drawing its own parameters; a batch of 32 px twins is one chunk."""
    per_chunk = max(1, CHUNK_VALUES // max(x[0].numel(), 1)) if len(x) else 1
    if len(x) <= per_chunk:
        return transform(x)
    return torch.cat([transform(chunk) for chunk in x.split(per_chunk)])


def _where_not(skip: torch.Tensor, transform, x: torch.Tensor) -> torch.Tensor:
    """``transform`` applied to the images of ``x`` whose ``skip`` flag is False."""
    todo = ~skip
    if todo.all():
        return transform(x)
    out = x.clone()
    if todo.any():
        out[todo] = transform(x[todo])
    return out


def _resized(img, box, size):
    top, left, h, w = box
    return TF.resized_crop(img, top, left, h, w, [size, size], antialias=True)


def colour_on_device(device) -> bool:
    """Whether the colour steps run on the training device after the transfer (a GPU) rather than in the loader."""
    return torch.device(device).type == "cuda"


class ViewSet(Dataset):
    """Wraps an ``ImageSet``: item ``i`` -> the crops of image ``i``, ``skipped`` and ``image`` (the index of the image
    drawn, whose label a supervised model reads); ``collate`` stacks a batch and, with ``colour_in_loader``, colours it.

    An unreadable image is replaced by the next readable one (the batch keeps its size, so the
    queue stays divisible by it) and ``skipped`` (0 or 1) counts it for the run's metrics: only item
    ``i``'s own file, not the unreadable neighbours passed over while looking for a replacement (those
    are counted when they are drawn themselves). Use ``DataLoader(viewset, collate_fn=viewset.collate)``; without
    ``colour_in_loader``, pass each batch to ``colour(batch, device)``: the views are the same.
    """

    def __init__(self, images, transform: Views, seed: int = 0, colour_in_loader: bool = True):
        self.images, self.transform, self.seed, self.epoch = images, transform, seed, 0
        self.colour_in_loader = colour_in_loader

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        for step in range(len(self.images)):
            img = self.images[(i + step) % len(self.images)]
            if img is not None:
                break
        else:
            raise RuntimeError(f"no readable image in {self.images.name}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self.seed, self.epoch, i)) & (2**62 - 1))
            views = self.transform.crops(img)
        return {**views, "skipped": int(step > 0), "index": i, "image": (i + step) % len(self.images)}

    def collate(self, samples: list[dict]) -> dict:
        """Stack the samples with their colour seed, (seed, epoch, first index): the same in any worker."""
        batch = default_collate(samples)
        batch["colour_seed"] = torch.tensor(hash((self.seed, self.epoch, samples[0]["index"], -1)) & (2**62 - 1))
        return self.colour(batch) if self.colour_in_loader else batch

    def colour(self, batch: dict, device=None) -> dict:
        """A collated batch of uint8 crops -> its normalised views, on ``device`` (default: where the crops are)."""
        if device is not None:
            batch = {k: v.to(device, non_blocking=True) if k in (*VIEWS, "strong") else v for k, v in batch.items()}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(batch["colour_seed"]))
            return self.transform.colour(batch)
