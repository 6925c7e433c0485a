"""Subsets of the pretraining sets (paper Table 1, App. A.1, Figure S1).

IN-118K: a uniform subset of ImageNet train. IN-118K-LT: class sizes follow a Pareto law with
alpha = 6 (the sampling of Liu et al., "Large-scale long-tailed recognition in an open world").
OI-118K: a random subset of OpenImages-v4 train.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


LT_MIN_PER_CLASS = 5  # ImageNet-LT's smallest class (Liu et al.), whose sampling the paper's IN-118K-LT follows


def long_tailed_class_sizes(num_classes: int, total: int, alpha: float = 6.0, max_per_class=None,
                            min_per_class: int = 0):
    """Integer class sizes, decreasing, summing to ``total``, shaped by a Pareto(``alpha``) law.

    The sizes are proportional to the expected order statistics of ``num_classes`` Pareto
    (Lomax, as ``numpy.random.pareto``) draws: the quantiles at ``(i + 0.5) / num_classes``.
    ``max_per_class`` caps the classes (ImageNet has at most 1300 train images a class): one int for
    all, or one cap per position of the ranking (then the sizes follow the ranking and may no longer
    decrease where a cap binds). ``min_per_class`` raises the smallest classes to that floor (ImageNet-LT's 5), or
    to an equal share of ``total`` where that is smaller; a class with fewer images keeps what it has. What a cap
    removes or a floor adds is taken from or shared among the other classes, so the total is kept.
    """
    if num_classes < 1 or total < 0 or alpha <= 0:
        raise ValueError("need num_classes >= 1, total >= 0 and alpha > 0")
    cap = np.broadcast_to(np.inf if max_per_class is None else np.asarray(max_per_class, float), (num_classes,))
    floor = np.minimum(min(min_per_class, total // num_classes), cap)
    if cap.sum() < total:
        raise ValueError(f"{num_classes} classes of at most {max_per_class} images cannot hold {total}")
    u = (np.arange(num_classes) + 0.5) / num_classes
    weights = np.sort((1.0 - u) ** (-1.0 / alpha) - 1.0)[::-1]
    sizes = total * weights / weights.sum()
    if ((sizes > cap) | (sizes < floor)).any():  # water-filling: the scale at which the clipped sizes hold total
        low, high = 0.0, total / weights.min()  # the sum of clip(scale * weights) grows with the scale
        for _ in range(200):
            scale = (low + high) / 2
            low, high = (scale, high) if np.clip(scale * weights, floor, cap).sum() < total else (low, scale)
        sizes = np.clip(high * weights, floor, cap)
    counts = np.floor(sizes + 1e-9).astype(np.int64)
    assert counts.sum() <= total, (counts.sum(), total)
    room = counts < cap
    for i in np.argsort(-(sizes - counts) + 2.0 * ~room, kind="stable")[: total - counts.sum()]:  # largest remainder
        counts[i] += 1
    return counts if np.ndim(max_per_class) else np.sort(counts)[::-1]


def uniform_subset(labels, total: int, seed: int = 0):
    """Indices of ``total`` images, the same number from each class (IN-118K)."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    per_class = np.full(len(classes), total // len(classes))
    per_class[: total - per_class.sum()] += 1
    return _take_per_class(labels, classes, per_class, seed)


def long_tailed_subset(labels, total: int, alpha: float = 6.0, seed: int = 0, min_per_class: int = LT_MIN_PER_CLASS):
    """Indices of ``total`` images whose class sizes are ``long_tailed_class_sizes`` (IN-118K-LT), at least
    ``min_per_class`` a class as ImageNet-LT.

    Which class becomes the head is a random permutation of the classes (seeded).
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    available = np.array([(labels == c).sum() for c in classes])
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(classes))
    sizes = long_tailed_class_sizes(len(classes), total, alpha, available[order], min_per_class)
    per_class = np.empty(len(classes), dtype=np.int64)
    per_class[order] = sizes  # the class ranked i-th gets the i-th size, within what it has
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
