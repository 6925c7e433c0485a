"""Linear evaluation of a frozen backbone (App. A.2): ``evaluate`` runs a named evaluation, which target with
which protocol.

``voc``, ``cifar10``, ... are Table 2's logistic regression (``logistic``); ``voc_svm`` is the VOC07 SVM of
Tables 4 and 7-9 (``svm``); ``imagenet_sgd`` and ``places_sgd`` are the SGD linear layer of Tables 4 and 9
(``sgd``). All read the backbone's pooled features on test-time views (``features``). Each returns a
``LinearResult`` so the runner and the results store treat them alike.
"""
from __future__ import annotations

import numpy as np

from ..bootstrap import Predictions
from ..config import EVALUATIONS, LinearParams
from ..data import target_splits
from .features import extract_features, resize_center_crop
from .logistic import LinearResult, c_grid, evaluate_backbone
from .sgd import sgd_linear
from .svm import svm_map


def protocol(name: str) -> tuple[str, str]:
    """``(target, protocol)`` of an evaluation name: ``voc_svm`` -> ``("voc", "svm")``,
    ``cars`` -> ``("cars", "logreg")``."""
    if name not in EVALUATIONS:
        raise ValueError(f"unknown evaluation {name!r}; known: {list(EVALUATIONS)}")
    target, _, how = name.partition("_")
    return target, how or "logreg"


def evaluate(name: str, backbone, p: LinearParams, device="cpu", progress=False) -> LinearResult:
    """Evaluate ``backbone`` with evaluation ``name`` at the params' scale."""
    target, how = protocol(name)
    splits = target_splits(target, p)
    if how == "logreg":
        return evaluate_backbone(backbone, splits, target, p.image_size, c_grid(p.grid, p.grid_size), p.max_iter,
                                 p.batch_size, p.workers, device, progress, p.view, p.standardize)
    n = {split: len(images) for split, images in splits.items()}
    if how == "svm":  # trainval -> test
        feats, labels, skipped = {}, {}, 0
        for split, images in splits.items():
            X, index, s = extract_features(backbone, images, resize_center_crop(p.image_size), p.batch_size, p.workers,
                                           device, progress)
            feats[split], labels[split], skipped = X, images.labels[index], skipped + s
        mean_ap, aps, decision = svm_map(np.concatenate([feats["train"], feats["val"]]),
                                         np.concatenate([labels["train"], labels["val"]]), feats["test"],
                                         labels["test"], p.svm_C, p.seed)
        return LinearResult(name, "mAP", mean_ap, [p.svm_C], [], n["train"] + n["val"], 0, n["test"], skipped,
                            per_class=aps, predictions=Predictions("ap", labels["test"], decision))
    classes = len(splits["train"].classes)
    acc, losses, (labels, predicted) = sgd_linear(backbone, [splits["train"], splits["val"]], splits["test"], classes,
                                                  p.image_size, p.sgd_epochs, p.sgd_lr, p.sgd_milestones,
                                                  p.sgd_weight_decay, p.sgd_batch_size, p.workers, device, p.seed,
                                                  progress)
    return LinearResult(name, "top1_acc", acc, [], [], n["train"] + n["val"], 0, n["test"], 0, train_loss=losses,
                        predictions=Predictions("accuracy", labels, predicted))
