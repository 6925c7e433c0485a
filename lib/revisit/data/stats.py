"""Dataset statistics of Table 1, measured on the images and annotations themselves.

* objects per image: mean of the annotated (twins: visible) objects per image;
* uniform: class imbalance = most frequent / least frequent class count (of image labels, or for multi-label
  scenes of the images holding an object of the class); "uniform" when below 2;
* discriminative: image diversity = mean distance between random pairs of 8x8 colour thumbnails
  (RMS over pixels, in [0, 1] units); monotonous street scenes score low. The threshold is ours,
  stated where the table is shown.
"""
from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

UNIFORM_MAX_IMBALANCE = 2.0
DISCRIMINATIVE_MIN_DIVERSITY = 0.2


def class_counts(images) -> np.ndarray | None:
    """Images per class (single label), or images holding an object of the class (multi-hot); ``None`` without
    labels."""
    if images.labels is None:
        return None
    labels = np.asarray(images.labels)
    return labels.sum(0) if labels.ndim == 2 else np.bincount(labels, minlength=len(images.classes))


def thumbnails(images, sample: int = 500, seed: int = 0) -> np.ndarray:
    """8x8 RGB thumbnails in [0, 1] of up to ``sample`` readable images."""
    index = np.random.default_rng(seed).permutation(len(images))[:sample]
    thumbs = [TF.resize(img, [8, 8], antialias=True) for img in (images[int(i)] for i in index) if img is not None]
    return torch.stack(thumbs).float().div(255).flatten(1).numpy()


def diversity(images, sample: int = 500, seed: int = 0) -> float:
    """Mean RMS distance between thumbnails of random image pairs."""
    t = thumbnails(images, sample, seed)
    a, b = t[: len(t) // 2], t[len(t) // 2: 2 * (len(t) // 2)]
    return float(np.sqrt(((a - b) ** 2).mean(1)).mean())


def table1_row(images, sample: int = 500, seed: int = 0) -> dict:
    """The Table 1 columns of one pretraining set, measured."""
    counts = class_counts(images)
    counts = None if counts is None else counts[counts > 0] if (counts > 0).any() else None
    imbalance = float(counts.max() / counts.min()) if counts is not None else np.nan
    div = diversity(images, sample, seed)
    return {
        "images": len(images),
        "objects_per_image": float(np.mean(images.objects)) if images.objects is not None else np.nan,
        "class_imbalance": imbalance,
        "uniform": bool(imbalance < UNIFORM_MAX_IMBALANCE) if counts is not None else None,
        "diversity": div,
        "discriminative": bool(div >= DISCRIMINATIVE_MIN_DIVERSITY),
    }
