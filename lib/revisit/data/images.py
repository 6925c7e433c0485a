"""Image collections shared by the real loaders and the synthetic twins.

A split is an ``ImageSet``: images (files read lazily, or an in-memory uint8 array for the
twins and CIFAR-10) plus labels. ``ImageSet[i]`` returns a ``uint8`` tensor ``(3, H, W)``, or
``None`` when the file is corrupt or unreadable: the caller skips it and counts it.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

# What PIL raises for a file it cannot decode: unknown format (UnidentifiedImageError, an OSError),
# a truncated file ("image file is truncated", an OSError raised at load()), broken chunks.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)

# The largest fraction of the files an annotation lists that may be missing from disk. Fewer are
# dropped with one warning (a handful of lost files should not stop a run); more mean a partial or
# misplaced download, whose results would not be comparable, so loading fails.
MAX_MISSING = 0.01


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder is missing or not in its official layout."""


class DatasetFormatError(ValueError):
    """A dataset file is on disk but unreadable, or not in the format of its official release."""


def require(path: Path, dataset: str, layout: str) -> Path:
    """``path`` if it exists, else an error naming the dataset, the path and the expected layout."""
    if not Path(path).exists():
        raise DatasetNotFoundError(
            f"{dataset}: {path} not found. Expected layout under DATA_ROOT:\n  {layout}\n"
            "Download the dataset there, then set DATA_ROOT=/path/to/datasets (or use a profile whose "
            "source is 'twin' to run on the synthetic twins)."
        )
    return Path(path)


def missing_files(paths) -> np.ndarray:
    """``True`` where a path is absent; each parent folder is listed once (``os.scandir``), no stat per file,
    so millions of listed files (Places365 train) take seconds."""
    by_folder = {}
    for i, path in enumerate(paths):
        folder, name = os.path.split(os.fspath(path))
        by_folder.setdefault(folder, []).append((i, name))
    missing = np.zeros(len(paths), bool)
    for folder, entries in by_folder.items():
        try:
            with os.scandir(folder or ".") as listing:
                names = {entry.name for entry in listing}
        except (FileNotFoundError, NotADirectoryError):
            names = set()
        for i, name in entries:
            missing[i] = name not in names
    return missing


def check_listed(dataset: str, layout: str, listed: dict) -> np.ndarray:
    """Which entries of an annotation have all their files on disk: a boolean keep mask.

    ``listed`` maps a kind ("images", "masks") to the paths the annotation implies, aligned entry by
    entry. Above ``MAX_MISSING`` of the entries lacking a file, a ``DatasetNotFoundError`` names the
    counts, a few paths and the layout; below it, one warning, and the caller drops the entries.
    """
    absent = {kind: missing_files(paths) for kind, paths in listed.items()}
    drop = np.any(list(absent.values()), axis=0)
    if not drop.any():
        return ~drop
    report = "; ".join(f"{int(gone.sum())} of {len(gone)} listed {kind} are missing, e.g. "
                       + ", ".join(str(listed[kind][i]) for i in np.flatnonzero(gone)[:3])
                       for kind, gone in absent.items() if gone.any())
    if drop.mean() > MAX_MISSING:
        raise DatasetNotFoundError(
            f"{dataset}: {report}. Expected layout under DATA_ROOT:\n  {layout}\n"
            "Complete the download there (every file the annotation lists must exist) or point DATA_ROOT at a "
            f"complete copy; up to {MAX_MISSING:.0%} of the entries may lack a file (they are then dropped).")
    warnings.warn(f"{dataset}: {report}; dropping {int(drop.sum())} of {len(drop)} entries", stacklevel=3)
    return ~drop


def read_image(path) -> torch.Tensor | None:
    """RGB ``uint8`` tensor ``(3, H, W)``; ``None`` with a warning if the file cannot be decoded."""
    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"))
    except DECODE_ERRORS as err:
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
