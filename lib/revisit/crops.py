"""Crop sampling and crop overlap (paper Sec. 3.1, Figure 1).

Boxes are ``(top, left, height, width)`` in pixels, as torchvision's ``RandomResizedCrop``
returns them. The sampler reproduces torchvision's distribution (area scale uniform, aspect
ratio log-uniform, 10 tries, then a centre crop) but takes an explicit numpy ``Generator``, so
the crops of Figure 1 and of the constrained variants of Sec. 4 are reproducible and
vectorised.
"""
from __future__ import annotations

import math

import numpy as np

DEFAULT_SCALE = (0.2, 1.0)  # MoCo-v2 two-crop default (paper footnote 3)
DEFAULT_RATIO = (3 / 4, 4 / 3)


def box_iou(a, b):
    """Intersection over union of boxes ``(top, left, height, width)``; broadcasts over ``(..., 4)``."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape[-1] != 4 or b.shape[-1] != 4:
        raise ValueError(f"boxes must end in 4 values (top, left, height, width); got {a.shape} and {b.shape}")
    top = np.maximum(a[..., 0], b[..., 0])
    left = np.maximum(a[..., 1], b[..., 1])
    bottom = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
    right = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return float(iou) if iou.ndim == 0 else iou


def sample_crops(n, height, width, scale=DEFAULT_SCALE, ratio=DEFAULT_RATIO, rng=None, tries=10):
    """``n`` crop boxes, shape ``(n, 4)``, with torchvision ``RandomResizedCrop.get_params``' law."""
    rng = np.random.default_rng() if rng is None else rng
    if not (0 < scale[0] <= scale[1]) or not (0 < ratio[0] <= ratio[1]):
        raise ValueError(f"scale {scale} and ratio {ratio} must be increasing positive pairs")
    area = height * width
    target_area = area * rng.uniform(scale[0], scale[1], size=(n, tries))
    aspect = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), size=(n, tries)))
    w = np.round(np.sqrt(target_area * aspect)).astype(np.int64)
    h = np.round(np.sqrt(target_area / aspect)).astype(np.int64)
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = np.argmax(ok, axis=1)  # first successful try per crop
    found = ok[np.arange(n), first]
    h = h[np.arange(n), first]
    w = w[np.arange(n), first]
    # torchvision draws the offset as randint(0, H - h + 1): uniform over the valid positions
    top = np.floor(rng.random(n) * (height - np.where(found, h, 0) + 1)).astype(np.int64)
    left = np.floor(rng.random(n) * (width - np.where(found, w, 0) + 1)).astype(np.int64)
    if not found.all():  # centre crop fallback, as torchvision
        fh, fw = _fallback_size(height, width, ratio)
        h = np.where(found, h, fh)
        w = np.where(found, w, fw)
        top = np.where(found, top, (height - fh) // 2)
        left = np.where(found, left, (width - fw) // 2)
    return np.stack([top, left, h, w], axis=1)


def _fallback_size(height, width, ratio):
    in_ratio = width / height
    if in_ratio < min(ratio):
        return int(round(width / min(ratio))), width
    if in_ratio > max(ratio):
        return height, int(round(height * max(ratio)))
    return height, width


def sample_crop(height, width, scale=DEFAULT_SCALE, ratio=DEFAULT_RATIO, rng=None):
    """One crop ``(top, left, h, w)`` with torchvision's RandomResizedCrop distribution."""
    return tuple(int(v) for v in sample_crops(1, height, width, scale, ratio, rng)[0])


def default_view_ious(pairs=100_000, height=224, width=224, scale=DEFAULT_SCALE, ratio=DEFAULT_RATIO, seed=0):
    """IoU of ``pairs`` pairs of independent default crops of one image (the data of Figure 1)."""
    rng = np.random.default_rng(seed)
    a = sample_crops(pairs, height, width, scale, ratio, rng)
    b = sample_crops(pairs, height, width, scale, ratio, rng)
    return box_iou(a, b)


def overlap_fraction(box, anchor):
    """Fraction of ``box``'s own area that lies inside ``anchor`` (paper App. A.1); broadcasts."""
    box, anchor = np.asarray(box, dtype=float), np.asarray(anchor, dtype=float)
    h = np.minimum(box[..., 0] + box[..., 2], anchor[..., 0] + anchor[..., 2]) - np.maximum(box[..., 0], anchor[..., 0])
    w = np.minimum(box[..., 1] + box[..., 3], anchor[..., 1] + anchor[..., 3]) - np.maximum(box[..., 1], anchor[..., 1])
    return np.clip(h, 0, None) * np.clip(w, 0, None) / (box[..., 2] * box[..., 3])


CANDIDATES = 64  # crops drawn at once by the rejection samplers
MAX_DRAWS = 10_000  # beyond this many candidates a constraint is taken as unsatisfiable


def _first_valid(draw, valid, tries):
    """Rejection sampling: the first candidate of ``draw(n)`` that ``valid`` accepts, the number rejected,
    and whether the sampler gave up.

    ``tries`` = None keeps drawing until one passes (raises after ``MAX_DRAWS``); with a number, after
    ``tries`` rejections one more candidate is drawn and kept unchecked (the official code's fallback).
    """
    if tries is not None:
        boxes = draw(tries + 1)
        ok = valid(boxes[:tries])
        if ok.any():
            i = int(np.argmax(ok))
            return tuple(int(v) for v in boxes[i]), i, False
        return tuple(int(v) for v in boxes[-1]), tries, True
    drawn = 0
    while drawn < MAX_DRAWS:
        boxes = draw(CANDIDATES)
        ok = valid(boxes)
        if ok.any():
            i = int(np.argmax(ok))
            return tuple(int(v) for v in boxes[i]), drawn + i, False
        drawn += CANDIDATES
    raise ValueError(f"no crop satisfied the constraint in {drawn} draws; loosen it")


def sample_constrained_crop(height, width, scale, ratio, anchor, min_overlap, rng=None, tries=None):
    """A crop ``(top, left, h, w)`` with at least ``min_overlap`` of its area inside ``anchor`` (Sec. 4.1, CC).

    Crops follow ``sample_crop``'s law and are resampled until one satisfies the constraint (the paper,
    ``min_overlap`` = 0.2). ``tries`` = 10 with ``min_overlap`` = 0.1 is the official code's variant,
    which gives up after 10 rejections and keeps an unconstrained crop.
    """
    box, _, _ = constrained_crop(height, width, scale, ratio, anchor, min_overlap, rng, tries)
    return box


def constrained_crop(height, width, scale, ratio, anchor, min_overlap, rng=None, tries=None):
    """``sample_constrained_crop`` plus the number of rejected candidates and whether it fell back."""
    rng = np.random.default_rng() if rng is None else rng
    return _first_valid(lambda n: sample_crops(n, height, width, scale, ratio, rng),
                        lambda boxes: overlap_fraction(boxes, anchor) >= min_overlap, tries)


def iou_constrained_pair(height, width, scale, ratio, max_iou, rng=None):
    """Two default crops with IoU below ``max_iou`` (the study of Figures 2-3), and the pairs rejected.

    Both crops are redrawn together: with a large first crop no second crop may satisfy the ceiling.
    """
    rng = np.random.default_rng() if rng is None else rng
    pair, rejected, _ = _first_valid(
        lambda n: np.concatenate([sample_crops(n, height, width, scale, ratio, rng),
                                  sample_crops(n, height, width, scale, ratio, rng)], axis=1),
        lambda pairs: box_iou(pairs[:, :4], pairs[:, 4:]) < max_iou, None)
    return pair[:4], pair[4:], rejected
