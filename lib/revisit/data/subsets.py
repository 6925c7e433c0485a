"""Subsets of the pretraining sets (paper Table 1, App. A.1, Figure S1).

IN-118K: a uniform subset of ImageNet train. IN-118K-LT: class sizes follow a Pareto law with
alpha = 6 (the sampling of Liu et al., "Large-scale long-tailed recognition in an open world").
OI-118K: a random subset of OpenImages-v4 train.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def long_tailed_class_sizes(num_classes: int, total: int, alpha: float = 6.0, max_per_class: int | None = None):
    """Integer class sizes, decreasing, summing to ``total``, shaped by a Pareto(``alpha``) law.

    The sizes are proportional to the expected order statistics of ``num_classes`` Pareto
    (Lomax, as ``numpy.random.pareto``) draws: the quantiles at ``(i + 0.5) / num_classes``.
    ``max_per_class`` caps each class (ImageNet has at most 1300 train images a class); the
    excess is shared among the other classes so the total is kept.
    """
    if num_classes < 1 or total < 0 or alpha <= 0:
        raise ValueError("need num_classes >= 1, total >= 0 and alpha > 0")
    if max_per_class is not None and max_per_class * num_classes < total:
        raise ValueError(f"{num_classes} classes of at most {max_per_class} images cannot hold {total}")
    u = (np.arange(num_classes) + 0.5) / num_classes
    weights = np.sort((1.0 - u) ** (-1.0 / alpha) - 1.0)[::-1]
    sizes = total * weights / weights.sum()
    if max_per_class is not None:
        while (sizes > max_per_class + 1e-9).any():  # water-filling: cap, then share the excess
            over = sizes >= max_per_class
            excess = (sizes[over] - max_per_class).sum()
            sizes[over] = max_per_class
            sizes[~over] += excess * weights[~over] / weights[~over].sum()
    counts = np.floor(sizes + 1e-9).astype(np.int64)
    for i in np.argsort(-(sizes - counts), kind="stable")[: total - counts.sum()]:  # largest remainder
        counts[i] += 1
    return np.sort(counts)[::-1]


def uniform_subset(labels, total: int, seed: int = 0):
    """Indices of ``total`` images, the same number from each class (IN-118K)."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    per_class = np.full(len(classes), total // len(classes))
    per_class[: total - per_class.sum()] += 1
    return _take_per_class(labels, classes, per_class, seed)


def long_tailed_subset(labels, total: int, alpha: float = 6.0, seed: int = 0):
    """Indices of ``total`` images whose class sizes are ``long_tailed_class_sizes`` (IN-118K-LT).

    Which class becomes the head is a random permutation of the classes (seeded).
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    available = np.array([(labels == c).sum() for c in classes])
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(classes))
    sizes = long_tailed_class_sizes(len(classes), total, alpha, max_per_class=int(available.min()))
    per_class = np.empty(len(classes), dtype=np.int64)
    per_class[order] = sizes
    return _take_per_class(labels, classes, per_class, seed + 1)


def random_subset(n_images: int, total: int, seed: int = 0):
    """Indices of ``total`` images drawn without replacement (OI-118K)."""
    if total > n_images:
        raise ValueError(f"cannot draw {total} images from {n_images}")
    return np.sort(np.random.default_rng(seed).choice(n_images, size=total, replace=False))


def _take_per_class(labels, classes, per_class, seed):
    rng = np.random.default_rng(seed)
    picked = []
    for c, n in zip(classes, per_class):
        members = np.flatnonzero(labels == c)
        if n > len(members):
            raise ValueError(f"class {c} has {len(members)} images, {n} requested")
        picked.append(rng.choice(members, size=int(n), replace=False))
    return np.sort(np.concatenate(picked))


def save_file_list(path: Path, files) -> None:
    """Write the chosen files, one per line, so a subset can be rebuilt exactly."""
    Path(path).write_text("".join(f"{f}\n" for f in files))
