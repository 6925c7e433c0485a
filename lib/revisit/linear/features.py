"""Frozen features of a backbone and the test-time views they are taken on (App. A.2), for every evaluation that
reads pooled features: the linear protocols (``logistic``, ``sgd``, ``svm``), the CAM classifier
(``revisit.dense.cams``) and segment retrieval's view (``revisit.dense.retrieval``)."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from tqdm import tqdm

from ..augment import normalize


def resize_square(size: int) -> v2.Compose:
    """The logistic regressions' view in App. A.2's text: the whole image resized to ``size`` x ``size``."""
    return v2.Compose([v2.Resize([size, size], antialias=True), normalize()])


def short_side_crop(size: int) -> v2.Compose:
    """The same in Ericsson et al.'s code: the short side resized to ``size`` (bicubic), then the centre crop."""
    return v2.Compose([v2.Resize(size, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
                       v2.CenterCrop(size), normalize()])


LOGISTIC_VIEWS = {"square": resize_square, "short_side_crop": short_side_crop}  # LinearParams.view


def resize_center_crop(size: int) -> v2.Compose:
    """The MoCo / VOC-SVM test-time view: Resize(256) then CenterCrop(224), scaled to ``size``."""
    return v2.Compose([v2.Resize(round(size * 256 / 224), antialias=True), v2.CenterCrop(size), normalize()])


class Transformed(Dataset):
    """``(transform(image), index)`` for each readable image of an ``ImageSet``; None for an unreadable one."""

    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = self.images[i]
        return None if img is None else (self.transform(img), i)


def drop_unreadable(batch):
    """Collate function that leaves out unreadable images (counted by the caller)."""
    batch = [b for b in batch if b is not None]
    if not batch:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch])


@torch.no_grad()
def extract_features(backbone, images, transform, batch_size=256, workers=0, device="cpu", progress=True):
    """Pooled features ``(N, D)`` of the readable images, their indices, and the number skipped."""
    backbone.eval().to(device)
    loader = DataLoader(Transformed(images, transform), batch_size=batch_size, num_workers=workers,
                        collate_fn=drop_unreadable)
    feats, index = [], []
    for x, i in tqdm(loader, desc=f"features {images.name}", disable=not progress, leave=False):
        if len(i):
            feats.append(backbone(x.to(device)).float().cpu())
            index.append(i)
    feats = torch.cat(feats).numpy() if feats else np.zeros((0, 0), np.float32)
    index = torch.cat(index).numpy() if index else np.zeros(0, np.int64)
    return feats, index, len(images) - len(index)
