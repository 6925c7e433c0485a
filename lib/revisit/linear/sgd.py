"""Linear classification with SGD on a frozen backbone (Tables 4 and 9, "ImageNet" and "Places").

MoCo's linear-classification recipe (App. A.2): the backbone in eval mode (weights and BN
statistics frozen), a linear layer on its pooled features trained with SGD (momentum 0.9,
lr 30, weight decay 1e-4) for 100 epochs, lr x0.1 at epochs 60 and 80, on RandomResizedCrop +
flip views; top-1 accuracy on Resize + CenterCrop views. Every value comes from the params, so a
profile can shorten the schedule.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader
from torchvision.transforms import v2
from tqdm import tqdm

from ..augment import normalize
from .features import Transformed, drop_unreadable, resize_center_crop


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
    """Train a linear layer on ``train_sets`` (``ImageSet`` list); return the test top-1 (%), the mean train loss of
    each epoch, and the test labels and predicted classes."""
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
    labels, predicted = predict(backbone, head, test_set, image_size, batch_size, workers, device)
    return 100.0 * float(np.mean(labels == predicted)) if len(labels) else 0.0, curve, (labels, predicted)


@torch.no_grad()
def predict(backbone, head, images, image_size, batch_size=256, workers=0, device="cpu"):
    """Labels and ``head``'s predicted classes on the backbone's centre-crop features of the readable ``images``."""
    loader = DataLoader(WithLabels(images, resize_center_crop(image_size)), batch_size=batch_size,
                        num_workers=workers, collate_fn=drop_unreadable)
    labels, predicted = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for x, y in loader:
        if len(y):
            predicted.append(head(backbone(x.to(device)).float()).argmax(1).cpu().numpy())
            labels.append(y.numpy())
    return np.concatenate(labels), np.concatenate(predicted)
