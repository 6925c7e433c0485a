"""The ceiling of a table (not in the paper): the backbone trained with labels, under the budget of the MoCo models
it bounds.

``Supervised`` has MoCo's training interface (``revisit.train.pretrain`` runs both): it reads the anchor view only and
classifies it with a linear layer on the pooled features, with cross-entropy for single-label sets (the ImageNet-like
twins) or binary cross-entropy for multi-label ones (the scene sets' object classes, as annotations would give).
The evaluations then freeze or finetune its backbone exactly as they do a MoCo backbone's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Supervised(nn.Module):
    """``backbone`` plus a linear classifier over ``labels`` (``(N,)`` class ids or ``(N, C)`` multi-hot, one row per
    training image, indexed by the batch's ``image``)."""

    def __init__(self, backbone: nn.Module, labels):
        super().__init__()
        labels = torch.as_tensor(labels)
        if labels.ndim not in (1, 2) or labels.numel() == 0:
            raise ValueError("supervised training needs the pretraining set's labels: (N,) class ids or (N, C) multi-hot")
        self.multi_label = labels.ndim == 2
        classes = labels.shape[1] if self.multi_label else int(labels.max()) + 1
        self.encoder = backbone
        self.classifier = nn.Linear(backbone.feature_dim, classes)
        self.register_buffer("labels", labels.float() if self.multi_label else labels.long(), persistent=False)

    @property
    def backbone(self) -> nn.Module:
        return self.encoder

    def inputs(self, batch: dict, device) -> tuple:
        """What ``forward`` takes from a ``ViewSet`` batch: the anchor views and the indices of their images."""
        return batch["anchor"].to(device, non_blocking=True), batch["image"].to(device, non_blocking=True)

    def forward(self, anchor, image, nn_weight=0.0, nn_startup="warmup"):
        """The classification loss of one batch, the logits ``(B, C)`` and a zero (no nearest-neighbour loss)."""
        logits = self.classifier(self.encoder(anchor))
        target = self.labels[image]
        if self.multi_label:
            loss = F.binary_cross_entropy_with_logits(logits, target)
        else:
            loss = F.cross_entropy(logits, target)
        return loss, logits, torch.zeros((), device=loss.device)

    def accuracy(self, logits, anchor, image) -> float:
        """Top-1 accuracy, or for multi-label sets the fraction of (image, class) decisions that are right."""
        target = self.labels[image]
        if self.multi_label:
            return ((logits > 0).float() == target).float().mean().item()
        return (logits.argmax(1) == target).float().mean().item()
