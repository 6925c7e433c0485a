"""MoCo-v2 views and the view policies of Sec. 4 (two-crop default, MC, CC, A+).

Default: RandomResizedCrop with scale (0.2, 1.0) and ratio (3/4, 4/3), then colour jitter
(0.4, 0.4, 0.4, 0.1) with p = 0.8, grayscale p = 0.2, Gaussian blur sigma in [0.1, 2.0] with
p = 0.5, horizontal flip, ImageNet normalisation. ``Views`` adds what Sec. 4 varies: N small
crops (multi-crop, 4.1), their overlap constraint with the anchor (constrained multi-crop), an IoU
ceiling between anchor and positive (Figures 2-3) and the positives' augmentation policy (4.2).

Crops (and AutoAugment) are drawn per image; the colour steps run on a whole batch at once with
per-image parameters (kornia), because per image they cost more than the model at the twins'
14-32 px. All randomness is drawn from torch's global generator, which ``ViewSet`` seeds per
(seed, epoch, index) for the crops and per (seed, epoch, batch) for the colours: a resumed run
sees the same views as an uninterrupted one, with any number of loader workers.
"""
from __future__ import annotations

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


def normalize() -> v2.Compose:
    """uint8 (or [0, 1] float) image -> float tensor normalised with ImageNet statistics."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def blur_kernel(size: int) -> int:
    """Odd kernel about a tenth of the crop size (SimCLR's choice; 23 at 224 px), at least 3."""
    k = max(3, int(0.1 * size))
    return k + 1 - k % 2


def color_pipeline(size: int) -> nn.Sequential:
    """Everything of MoCo-v2's augmentation after the crop except the normalisation, on a float batch in [0, 1].

    kornia's ColorJitter uses torchvision's formulas with per-image factors; the order of its four
    steps is drawn per batch, where torchvision draws it per image.
    """
    k = blur_kernel(size)
    return nn.Sequential(
        K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
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
        anchor, positive, small = (batch[k].float() / 255 for k in ("anchor", "positive", "small"))
        strong = batch["strong"]
        anchor = self.color(anchor)
        positive = _where_not(strong[:, 0], self.color, positive)
        if small.shape[1]:
            b, n = small.shape[:2]
            small = _where_not(strong[:, 1:].flatten(), self.small_color, small.flatten(0, 1))
            small = small.view(b, n, *small.shape[1:])
        return {**batch, "anchor": self.normalize(anchor), "positive": self.normalize(positive),
                "small": self.normalize(small)}

    def __call__(self, img) -> dict:
        """One image's finished views (for figures and tests; training colours whole batches)."""
        views = self.colour(default_collate([self.crops(img)]))
        return {k: v[0] if k in ("anchor", "positive", "small") else v for k, v in views.items()}


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


class ViewSet(Dataset):
    """Wraps an ``ImageSet``: item ``i`` -> the crops of image ``i``, ``skipped`` and ``image`` (the index of the image
    drawn, whose label a supervised model reads); ``collate`` colours a batch.

    An unreadable image is replaced by the next readable one (the batch keeps its size, so the
    queue stays divisible by it) and ``skipped`` (0 or 1) counts it for the run's metrics: only item
    ``i``'s own file, not the unreadable neighbours passed over while looking for a replacement (those
    are counted when they are drawn themselves). Use ``DataLoader(viewset, collate_fn=viewset.collate)``.
    """

    def __init__(self, images, transform: Views, seed: int = 0):
        self.images, self.transform, self.seed, self.epoch = images, transform, seed, 0

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
        """Stack the samples and colour them, seeded by (seed, epoch, first index): the same in any worker."""
        batch = default_collate(samples)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self.seed, self.epoch, samples[0]["index"], -1)) & (2**62 - 1))
            return self.transform.colour(batch)
