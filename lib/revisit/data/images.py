"""Image collections shared by the real loaders and the synthetic twins.

A split is an ``ImageSet``: images (files read lazily, or an in-memory uint8 array for the
twins and CIFAR-10) plus labels. ``ImageSet[i]`` returns a ``uint8`` tensor ``(3, H, W)``, or
``None`` when the file is corrupt or unreadable: the caller skips it and counts it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder is missing or not in its official layout."""


def require(path: Path, dataset: str, layout: str) -> Path:
    """``path`` if it exists, else an error naming the dataset, the path and the expected layout."""
    if not Path(path).exists():
        raise DatasetNotFoundError(
            f"{dataset}: {path} not found. Expected layout under DATA_ROOT:\n  {layout}\n"
            "Download the dataset there, then set DATA_ROOT=/path/to/datasets (or use a profile whose "
            "source is 'twin' to run on the synthetic twins)."
        )
    return Path(path)


def read_image(path) -> torch.Tensor | None:
    """RGB ``uint8`` tensor ``(3, H, W)``; ``None`` with a warning if the file cannot be decoded."""
    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        warnings.warn(f"skipping unreadable image {path}: {err}", stacklevel=2)
        return None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


@dataclass
class ImageSet(Dataset):
    """One split: ``files`` (lazy) or ``array`` ``(N, H, W, 3)`` uint8, with labels.

    ``labels`` is ``(N,)`` for single-label sets, ``(N, C)`` multi-hot for VOC, or ``None``.
    ``objects`` holds the number of annotated objects per image where the dataset provides it.
    """

    name: str
    files: list = field(default_factory=list)
    array: np.ndarray | None = None
    labels: np.ndarray | None = None
    classes: list = field(default_factory=list)
    objects: np.ndarray | None = None

    def __len__(self):
        return len(self.array) if self.array is not None else len(self.files)

    def __getitem__(self, i):
        if self.array is not None:
            return torch.from_numpy(self.array[i]).permute(2, 0, 1)
        return read_image(self.files[i])

    def subset(self, index) -> "ImageSet":
        """The images at ``index`` (labels and object counts follow)."""
        index = np.asarray(index, dtype=np.int64)
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return ImageSet(self.name, [self.files[i] for i in index] if self.files else [], pick(self.array),
                        pick(self.labels), self.classes, pick(self.objects))
