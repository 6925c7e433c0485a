"""Datasets with dense targets (App. A.3-A.7): per-pixel labels, depth, boxes and videos.

Shared by the real loaders (``dense_loaders``) and the synthetic twins (``dense_twins``), so every
protocol reads one interface:

* ``DenseSet[i]`` -> ``(image, target)``: ``image`` a ``uint8`` tensor ``(3, H, W)`` (``None`` when
  the file cannot be decoded), ``target`` one of
  - segmentation: ``int64`` ``(H, W)`` class ids, 255 = ignore;
  - depth: ``float32`` ``(H, W)`` metres, 0 = no measurement;
  - detection: ``Boxes`` (``xyxy`` float boxes in pixels, 0-based labels, ``difficult`` flags).
* ``Video``: one sequence, frames ``(T, H, W, 3)`` and instance masks ``(T, H, W)`` (0 = background,
  ``k`` = object ``k``), read lazily from files or held in memory (twins).

A label PNG that cannot be decoded is a ``DatasetFormatError`` naming it, not a skip: targets are
read on their own (``DenseSet.target``) by several protocols, and a corrupt label file is a broken
download to re-extract. ``Video.readable`` drops a video's unreadable frames (with their masks).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .images import DECODE_ERRORS, DatasetFormatError, read_image

TASKS = ("segmentation", "depth", "detection")


@dataclass
class Boxes:
    """The objects of one detection image; ``difficult`` objects are ignored by VOC's AP."""

    boxes: np.ndarray  # (K, 4) float32 x0, y0, x1, y1 in pixels
    labels: np.ndarray  # (K,) int64, 0-based class index
    difficult: np.ndarray  # (K,) bool


def read_label_png(path) -> np.ndarray:
    """The indices of a label PNG (palette or grey): VOC/DAVIS palette PNGs store class/object ids."""
    try:
        with Image.open(path) as img:
            return np.asarray(img if img.mode in ("P", "L", "I", "I;16") else img.convert("L")).astype(np.int64)
    except DECODE_ERRORS as err:
        raise DatasetFormatError(f"unreadable label PNG {path}: {err}. Re-extract it from the dataset's "
                                 "archive.") from err


def read_depth(path) -> np.ndarray:
    """Depth in metres from ``.npy`` (NYUD as the multi-task benchmarks store it) or a 16-bit PNG in mm."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path).astype(np.float32)
    with Image.open(path) as img:
        return np.asarray(img, dtype=np.float32) / 1000.0


@dataclass
class DenseSet(Dataset):
    """One split of a dense task: ``images`` (paths, or an ``(N, H, W, 3)`` uint8 array) with ``targets``.

    ``targets`` holds, per image, a label-PNG / depth path, an in-memory array, or ``Boxes``;
    ``read_target`` (optional) maps a raw target to the task's convention, e.g. Cityscapes label ids
    to train ids.
    """

    name: str
    task: str
    classes: list
    images: list | np.ndarray = field(default_factory=list)
    targets: list | np.ndarray = field(default_factory=list)
    read_target: object = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"{self.name}: unknown task {self.task!r}; one of {TASKS}")
        if len(self.images) != len(self.targets):
            raise ValueError(f"{self.name}: {len(self.images)} images but {len(self.targets)} targets")

    def __len__(self):
        return len(self.images)

    def image(self, i) -> torch.Tensor | None:
        if isinstance(self.images, np.ndarray):
            return torch.from_numpy(self.images[i]).permute(2, 0, 1)
        return read_image(self.images[i])

    def target(self, i):
        raw = self.targets[i]
        if isinstance(raw, (str, Path)):
            raw = read_depth(raw) if self.task == "depth" else read_label_png(raw)
        if self.read_target is not None:
            raw = self.read_target(raw)
        if isinstance(raw, Boxes):
            return raw
        return torch.as_tensor(np.asarray(raw), dtype=torch.float32 if self.task == "depth" else torch.int64)

    def __getitem__(self, i):
        return self.image(i), self.target(i)

    def subset(self, index) -> "DenseSet":
        index = np.asarray(index, dtype=np.int64)
        pick = lambda a: a[index] if isinstance(a, np.ndarray) else [a[i] for i in index]  # noqa: E731
        return DenseSet(self.name, self.task, self.classes, pick(self.images), pick(self.targets), self.read_target)


@dataclass
class Video:
    """One video: ``frames`` and instance ``masks``, as file lists or in-memory arrays."""

    name: str
    frames: list | np.ndarray  # paths, or (T, H, W, 3) uint8
    masks: list | np.ndarray  # paths, or (T, H, W) int; 0 = background, k = object k

    def __len__(self):
        return len(self.frames)

    def frame(self, t) -> np.ndarray:
        if isinstance(self.frames, np.ndarray):
            return self.frames[t]
        try:
            with Image.open(self.frames[t]) as img:
                return np.array(img.convert("RGB"))  # writable: torch.from_numpy warns on read-only arrays
        except DECODE_ERRORS as err:
            raise DatasetFormatError(f"video {self.name!r}: unreadable frame {self.frames[t]}: {err}") from err

    def mask(self, t) -> np.ndarray:
        if isinstance(self.masks, np.ndarray):
            return self.masks[t].astype(np.int64)
        try:
            return read_label_png(self.masks[t])
        except DatasetFormatError as err:
            raise DatasetFormatError(f"video {self.name!r}: {err}") from err

    def objects(self) -> list[int]:
        """Object ids annotated in the first frame (DAVIS semi-supervised: what is to be tracked)."""
        return [int(k) for k in np.unique(self.mask(0)) if k not in (0, 255)]

    def readable(self) -> "Video":
        """This video without the frames whose image or mask cannot be decoded, each dropped with a warning.

        Decodes every file once, so that propagation and scoring see the same frames. Frame 0 and its
        mask are the propagation's input: if either is unreadable, that is a ``DatasetFormatError``.
        In-memory videos are returned as they are.
        """
        if isinstance(self.frames, np.ndarray):
            return self
        keep = []
        for t in range(len(self)):
            try:
                self.frame(t), self.mask(t)
            except DatasetFormatError as err:
                if t == 0:
                    raise DatasetFormatError(f"{err} (frame 0 and its annotation start the propagation, so they "
                                             "must be readable)") from err
                warnings.warn(f"{err}; skipping frame {t} (image and mask)", stacklevel=2)
                continue
            keep.append(t)
        if len(keep) == len(self):
            return self
        return Video(self.name, [self.frames[t] for t in keep], [self.masks[t] for t in keep])
