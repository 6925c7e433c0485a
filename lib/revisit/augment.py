"""MoCo-v2 views and the view policies of Sec. 4 (PROTOCOLS.md "two-crop default", MC, CC, A+).

Default: RandomResizedCrop with scale (0.2, 1.0) and ratio (3/4, 4/3), then colour jitter
(0.4, 0.4, 0.4, 0.1) with p = 0.8, grayscale p = 0.2, Gaussian blur sigma in [0.1, 2.0] with
p = 0.5, horizontal flip, ImageNet normalisation. ``Views`` adds what Sec. 4 varies: N small
crops (multi-crop, 4.1), their overlap constraint with the anchor (constrained multi-crop), an IoU
ceiling between anchor and positive (Figures 2-3) and the positives' augmentation policy (4.2).
All randomness is drawn from torch's global generator, which ``ViewSet`` seeds per
(seed, epoch, index): a resumed run sees the same views as an uninterrupted one.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .config import POLICIES  # Table 7: the positives' augmentation policy
from .crops import DEFAULT_RATIO, constrained_crop, iou_constrained_pair, sample_crop

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize() -> v2.Compose:
    """uint8 (or [0, 1] float) image -> float tensor normalised with ImageNet statistics."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def blur_kernel(size: int) -> int:
    """Odd kernel about a tenth of the crop size (SimCLR's choice; 23 at 224 px), at least 3."""
    k = max(3, int(0.1 * size))
    return k + 1 - k % 2


def color_pipeline(size: int) -> v2.Compose:
    """Everything of MoCo-v2's augmentation after the crop, as torchvision transforms (the reference)."""
    return v2.Compose([
        v2.ToDtype(torch.float32, scale=True),  # colour ops are cheaper on floats than on uint8
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(blur_kernel(size), sigma=(0.1, 2.0))], p=0.5),
        v2.RandomHorizontalFlip(),
        normalize(),
    ])


class ColorAugment:
    """``color_pipeline(size)`` called through torchvision's kernels, without the v2 containers.

    Same random draws in the same order, so the output is identical (tests/test_augment.py); at
    the twins' 14-32 px crops the containers' per-call overhead was half the loader's time
    (0.94 vs 0.49 ms per crop), and a pretraining step needs 2-8 crops per image.
    """

    def __init__(self, size: int):
        self.kernel = [blur_kernel(size)] * 2
        self.mean, self.std = list(IMAGENET_MEAN), list(IMAGENET_STD)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        x = TF.to_dtype_image(img, torch.float32, scale=True)
        if torch.rand(1) < 0.8:  # v2.ColorJitter: a random order, then brightness, contrast, saturation, hue
            order = torch.randperm(4).tolist()
            factors = [_uniform(0.6, 1.4), _uniform(0.6, 1.4), _uniform(0.6, 1.4), _uniform(-0.1, 0.1)]
            for i in order:
                x = _JITTER[i](x, factors[i])
        if torch.rand(1) < 0.2:
            x = TF.rgb_to_grayscale_image(x, num_output_channels=3)
        if torch.rand(1) < 0.5:
            sigma = _uniform(0.1, 2.0)
            x = TF.gaussian_blur_image(x, self.kernel, [sigma, sigma])
        if torch.rand(1) < 0.5:
            x = TF.horizontal_flip_image(x)
        return TF.normalize_image(x, self.mean, self.std)


def _uniform(low: float, high: float) -> float:
    return float(torch.empty(1).uniform_(low, high).item())


_JITTER = (TF.adjust_brightness_image, TF.adjust_contrast_image, TF.adjust_saturation_image, TF.adjust_hue_image)


def autoaugment_pipeline() -> v2.Compose:
    """A+'s other branch: AutoAugment (ImageNet policy) and a flip, no colour jitter (official code)."""
    return v2.Compose([v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET), v2.RandomHorizontalFlip(), normalize()])


def _torch_rng() -> np.random.Generator:
    return np.random.default_rng(int(torch.randint(0, 2**62, ())))


class Views:
    """One image -> the anchor, its large positive and ``small_crops`` small positives.

    The anchor always gets the default pipeline (it feeds the momentum encoder and the queue).
    Positives get the default pipeline (``policy="standard"``), AutoAugment (``"autoaugment"``)
    or either at random with p = 0.5 (``"mixed"``, the paper's A+). Small crops must keep
    ``min_overlap`` of their area inside the anchor crop (0 = unconstrained multi-crop); the
    positive must have IoU below ``max_iou`` with the anchor (None = no ceiling).
    """

    def __init__(self, size=224, scale=(0.2, 1.0), ratio=DEFAULT_RATIO, small_crops=0, small_size=96,
                 small_scale=(0.05, 0.14), min_overlap=0.0, overlap_tries=None, max_iou=None, policy="standard"):
        if policy not in POLICIES:
            raise ValueError(f"policy {policy!r}; choose one of {POLICIES}")
        self.size, self.scale, self.ratio = size, tuple(scale), tuple(ratio)
        self.small_crops, self.small_size, self.small_scale = small_crops, small_size, tuple(small_scale)
        self.min_overlap, self.overlap_tries, self.max_iou, self.policy = min_overlap, overlap_tries, max_iou, policy
        self.color, self.small_color = ColorAugment(size), ColorAugment(small_size)
        self.strong = autoaugment_pipeline()

    def _positive(self, crop, color):
        """The positive's pipeline, chosen by the policy (one torch draw only for "mixed")."""
        if self.policy == "standard" or (self.policy == "mixed" and torch.rand(()) < 0.5):
            return color(crop)
        return self.strong(crop)

    def __call__(self, img) -> dict:
        height, width = img.shape[-2:]
        rng = _torch_rng()
        rejected, fallbacks = 0, 0
        if self.max_iou is None:
            anchor = sample_crop(height, width, self.scale, self.ratio, rng)
            positive = sample_crop(height, width, self.scale, self.ratio, rng)
        else:
            anchor, positive, rejected = iou_constrained_pair(height, width, self.scale, self.ratio, self.max_iou, rng)
        views = {"anchor": self.color(_resized(img, anchor, self.size)),
                 "positive": self._positive(_resized(img, positive, self.size), self.color)}
        small = []
        for _ in range(self.small_crops):
            if self.min_overlap > 0:
                box, n, fell_back = constrained_crop(height, width, self.small_scale, self.ratio, anchor,
                                                     self.min_overlap, rng, self.overlap_tries)
                rejected += n
                fallbacks += fell_back
            else:
                box = sample_crop(height, width, self.small_scale, self.ratio, rng)
            small.append(self._positive(_resized(img, box, self.small_size), self.small_color))
        views["small"] = torch.stack(small) if small else torch.zeros(0, 3, self.small_size, self.small_size)
        views["rejected"], views["fallbacks"] = rejected, int(fallbacks)
        return views


def _resized(img, box, size):
    top, left, h, w = box
    return TF.resized_crop(img, top, left, h, w, [size, size], antialias=True)


class ViewSet(Dataset):
    """Wraps an ``ImageSet``: item ``i`` -> the ``Views`` of image ``i`` plus ``skipped``.

    An unreadable image is replaced by the next readable one (the batch keeps its size, so the
    queue stays divisible by it) and ``skipped`` counts it for the run's metrics.
    """

    def __init__(self, images, transform, seed: int = 0):
        self.images, self.transform, self.seed, self.epoch = images, transform, seed, 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        for skipped in range(len(self.images)):
            img = self.images[(i + skipped) % len(self.images)]
            if img is not None:
                break
        else:
            raise RuntimeError(f"no readable image in {self.images.name}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self.seed, self.epoch, i)) & (2**62 - 1))
            views = self.transform(img)
        return {**views, "skipped": skipped}
