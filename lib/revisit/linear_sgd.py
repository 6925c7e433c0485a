"""Linear classification with SGD on a frozen backbone (Tables 4 and 9, "ImageNet" and "Places").

MoCo's linear-classification recipe (App. A.2): the backbone in eval mode (weights and BN
statistics frozen), a linear layer on its pooled features trained with SGD (momentum 0.9,
lr 30, weight decay 1e-4) for 100 epochs, lr x0.1 at epochs 60 and 80, on RandomResizedCrop +
flip views; top-1 accuracy on Resize + CenterCrop views. Every value comes from the params, so a
profile can shorten the schedule.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader
from torchvision.transforms import v2
from tqdm import tqdm

from .augment import normalize
from .linear import Transformed, drop_unreadable, resize_center_crop


class WithLabels(Transformed):
    """``(view, label)`` instead of ``(view, index)``, so that several sets can be concatenated."""

    def __getitem__(self, i):
        item = super().__getitem__(i)
        return None if item is None else (item[0], int(self.images.labels[i]))


def train_view(size: int) -> v2.Compose:
    """The standard training augmentation of the linear layer."""
    return v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(), normalize()])


def sgd_linear(backbone, train_sets, test_set, num_classes, image_size, epochs=100, lr=30.0, milestones=(60, 80),
               weight_decay=1e-4, batch_size=256, workers=0, device="cpu", seed=0, progress=True):
    """Train a linear layer on ``train_sets`` (``ImageSet`` list) and return (test top-1 %, per-epoch train loss)."""
    torch.manual_seed(seed)
    backbone.eval().to(device)  # frozen: features are computed without gradients, BN keeps its statistics
    head = nn.Linear(backbone.feature_dim, num_classes).to(device)
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    optimizer = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma=0.1)
    train = ConcatDataset([WithLabels(s, train_view(image_size)) for s in train_sets])
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, num_workers=workers, collate_fn=drop_unreadable,
                        drop_last=len(train) > batch_size)
    curve = []
    for _ in tqdm(range(epochs), desc="linear SGD", disable=not progress, leave=False):
        total, seen = 0.0, 0
        for x, y in loader:
            if not len(y):
                continue
            with torch.no_grad():
                features = backbone(x.to(device)).float()
            loss = F.cross_entropy(head(features), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(y), seen + len(y)
        schedule.step()
        curve.append(total / max(seen, 1))
    return top1(backbone, head, test_set, image_size, batch_size, workers, device), curve


@torch.no_grad()
def top1(backbone, head, images, image_size, batch_size=256, workers=0, device="cpu") -> float:
    """Top-1 accuracy (percent) of ``head`` on the backbone's centre-crop features of ``images``."""
    loader = DataLoader(WithLabels(images, resize_center_crop(image_size)), batch_size=batch_size,
                        num_workers=workers, collate_fn=drop_unreadable)
    correct, seen = 0, 0
    for x, y in loader:
        if len(y):
            pred = head(backbone(x.to(device)).float()).argmax(1).cpu()
            correct += int((pred == y).sum())
            seen += len(y)
    return 100.0 * correct / max(seen, 1)
