"""MoCo-v2 views (paper Sec. 2 and PROTOCOLS.md "two-crop default").

RandomResizedCrop with scale (0.2, 1.0) and ratio (3/4, 4/3), then colour jitter
(0.4, 0.4, 0.4, 0.1) with p = 0.8, grayscale p = 0.2, Gaussian blur sigma in [0.1, 2.0] with
p = 0.5, horizontal flip, ImageNet normalisation. Crops come from ``revisit.crops`` so that the
constrained variants of Sec. 4 can reuse the same boxes. All randomness is drawn from torch's
global generator, which ``ViewPairs`` seeds per (seed, epoch, index): a resumed run sees the
same views as an uninterrupted one.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .crops import DEFAULT_RATIO, sample_crop

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
    """Everything of MoCo-v2's augmentation after the crop."""
    return v2.Compose([
        v2.ToDtype(torch.float32, scale=True),  # colour ops are cheaper on floats than on uint8
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(blur_kernel(size), sigma=(0.1, 2.0))], p=0.5),
        v2.RandomHorizontalFlip(),
        normalize(),
    ])


def _torch_rng() -> np.random.Generator:
    return np.random.default_rng(int(torch.randint(0, 2**62, ())))


class TwoCrops:
    """Anchor and positive: two independent default crops, each with the colour pipeline."""

    def __init__(self, size: int = 224, scale=(0.2, 1.0), ratio=DEFAULT_RATIO):
        self.size, self.scale, self.ratio = size, tuple(scale), tuple(ratio)
        self.color = color_pipeline(size)

    def crop(self, img, box):
        top, left, h, w = box
        return TF.resized_crop(img, top, left, h, w, [self.size, self.size], antialias=True)

    def __call__(self, img):
        height, width = img.shape[-2:]
        rng = _torch_rng()
        boxes = [sample_crop(height, width, self.scale, self.ratio, rng) for _ in range(2)]
        return tuple(self.color(self.crop(img, b)) for b in boxes)


class ViewPairs(Dataset):
    """Wraps an ``ImageSet``: item ``i`` -> ``(anchor, positive, skipped)``.

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
            anchor, positive = self.transform(img)
        return anchor, positive, skipped
