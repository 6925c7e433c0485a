"""Class activation maps of frozen representations (paper Figure 6, Figure S2; Zhou et al., 2016).

A linear classifier is trained on the backbone's globally pooled features of its last conv block
(ImageNet in the paper; here any single-label ``ImageSet``). Zhou et al.'s CAM is that linear
layer applied at every position before the pooling: CAM_c(x, y) = sum_k w_ck f_k(x, y), bias
excluded (discrepancies page, "CAM classifier"). The map is resized (bilinear) to the image and min-max normalised
to [0, 1]; normalising after the resize makes 0 and 1 attained at image resolution (the order only
changes how bilinear smooths the extremes).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..backbones import FeatureMap
from ..data.images import ImageSet
from ..linear.features import extract_features, resize_square


@dataclass
class LinearHead:
    """A linear classifier on pooled features: ``logits = features @ weight.T + bias``."""

    weight: np.ndarray  # (C, D), on raw (unstandardised) pooled features
    bias: np.ndarray  # (C,)
    classes: list  # name (or label id) of each row


def fit_classifier(backbone, images: ImageSet, image_size: int, C: float = 1.0, max_iter: int = 1000,
                   batch_size: int = 256, device="cpu", progress=True) -> LinearHead:
    """Multinomial logistic regression on the frozen pooled features of ``images``.

    Zhou et al.'s CAM needs exactly a linear layer on globally average-pooled features, which is
    what logistic regression fits (scikit-learn's L-BFGS, as ``revisit.linear.logistic``; no training loop
    to tune). Features are standardised for the fit; the weight is mapped back to raw features
    (``w / scale``; the mean shift goes into the bias), so CAMs apply it to raw feature maps.
    """
    if images.labels is None or np.asarray(images.labels).ndim != 1:
        raise ValueError(f"{images.name}: CAMs need a single-label ImageSet (labels of shape (N,))")
    X, index, _ = extract_features(backbone, images, resize_square(image_size), batch_size, 0, device, progress)
    y = np.asarray(images.labels)[index]
    if len(np.unique(y)) < 2:
        raise ValueError(f"{images.name}: need at least two classes to fit a classifier, got {np.unique(y).tolist()}")
    scaler = StandardScaler().fit(X)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=C, max_iter=max_iter).fit(scaler.transform(X), y)
    coef, intercept = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # scikit-learn keeps one row for two classes: the equivalent softmax pair
        coef, intercept = np.concatenate([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    weight = coef / scaler.scale_
    bias = intercept - weight @ scaler.mean_
    names = [images.classes[c] for c in clf.classes_] if len(images.classes) else clf.classes_.tolist()
    return LinearHead(weight.astype(np.float32), bias.astype(np.float32), names)


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Each ``(H, W)`` map of ``(B, H, W)`` scaled to [0, 1]; a constant map becomes zeros."""
    flat = maps.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    span = (hi - lo).clamp_min(torch.finfo(maps.dtype).tiny)
    return (maps - lo[:, None, None]) / span[:, None, None]


@torch.no_grad()
def class_activation_maps(backbone, weight, images: torch.Tensor, classes=None, image_size: int = 224, bias=None,
                          device="cpu") -> np.ndarray:
    """CAMs ``(B, H, W)`` in [0, 1] of ``images`` (``(B, 3, H, W)`` uint8) for ``classes``.

    ``classes``: a class index per image (or one for all); None = the classifier's prediction
    (with ``bias`` when given). Features: the last conv block, not dilated, the block whose pooled
    output the classifier was trained on.
    """
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"images must be a (B, 3, H, W) uint8 tensor, got {tuple(images.shape)} {images.dtype}")
    net = FeatureMap(backbone, depth=4, dilate=()).eval().to(device)
    feats = net(resize_square(image_size)(images).to(device)).float()  # (B, D, h, w)
    w = torch.as_tensor(np.asarray(weight), dtype=torch.float32, device=device)
    if w.ndim != 2 or w.shape[1] != feats.shape[1]:
        raise ValueError(f"weight must be (classes, {feats.shape[1]}), got {tuple(w.shape)}")
    maps = torch.einsum("cd,bdhw->bchw", w, feats)
    if classes is None:
        logits = maps.mean((2, 3))  # = pooled features @ w.T
        if bias is not None:
            logits = logits + torch.as_tensor(np.asarray(bias), dtype=torch.float32, device=device)
        classes = logits.argmax(1)
    classes = torch.as_tensor(classes, device=device).long().expand(len(images))
    cam = maps[torch.arange(len(images), device=device), classes]
    cam = F.interpolate(cam[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return minmax(cam).cpu().numpy()


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """``(H, W, 3)`` uint8: ``image`` blended with the colour-mapped ``cam`` (values in [0, 1])."""
    image, cam = np.asarray(image), np.asarray(cam)
    if image.ndim != 3 or image.shape[2] != 3 or cam.shape != image.shape[:2]:
        raise ValueError(f"need an (H, W, 3) image and an (H, W) cam, got {image.shape} and {cam.shape}")
    heat = matplotlib.colormaps[cmap](np.clip(cam, 0, 1))[..., :3] * 255
    return np.clip((1 - alpha) * image + alpha * heat, 0, 255).round().astype(np.uint8)
