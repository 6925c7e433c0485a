"""VOC semantic segment retrieval with frozen features (paper Table 6, App. A.7, Figure S4).

Protocol (App. A, as the authors' code runs it): the dilated ResNet (layer4 stride 1, dilation 2, no
pooling) sees each image resized to ``image_size`` x ``image_size``; per image, K-means (K = 15)
on the spatial feature vectors splits it into regions; a region's descriptor is the mean feature
of its positions. Each val region takes the label of its nearest train region (plain 1-NN, not
weighted); the val prediction, resized (nearest) to the original resolution, is scored with a
dataset-level confusion matrix: mIoU on all 21 classes and on the 7-class subset.

Choices where the paper is silent, following the authors' retrieval code for MaskContrast
(github.com/wvangansbeke/Unsupervised-Semantic-Segmentation, ``segmentation/utils/retrieval_utils.py``),
the evaluation Table 6's other rows come from:

* position features are L2-normalised before K-means (clusters by direction, as the cosine
  search that follows), the region descriptor is the mean of its normalised features,
  L2-normalised again; the nearest neighbour is the largest dot product (cosine similarity);
* K-means: scikit-learn ``KMeans`` (k-means++, ``n_init=3``, ``random_state=seed``), K clipped to
  the number of positions; empty clusters (duplicate features) simply give fewer regions;
* a train region's label is the majority ground-truth class of its pixels at the original
  resolution (the cluster map resized nearest), 255 ignored, ties to the lower class id; a
  region with no labelled pixel has no label and is left out of the memory bank;
* 7 classes: as MaskContrast's ``ignore_classes``, the other 13 classes become 255 in the train
  and val targets, so train regions are labelled background or one of the 7 and val pixels of
  the 13 are not scored; background stays a class of the confusion matrix (a background pixel
  predicted as car is a false positive of car) but is left out of the 7-class mean.

Feature resolution: App. A.7 says 512 px in and 64 x 64 out, but a ResNet-50 with only layer4
dilated has output stride 16 (32 x 32 at 512 px); ``feature_map`` follows the stated architecture,
``FeatureMap(backbone, 4, (3, 4))`` gives the stride-8, 64 x 64 variant.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from tqdm import tqdm

from ..backbones import FeatureMap
from ..bootstrap import Predictions
from ..data.dense import DenseSet
from ..linear.features import resize_square
from ..metrics import confusion_matrix, mean_iou

SUBSET_7 = ("aeroplane", "bottle", "bus", "car", "cat", "cow", "person")
IGNORE = 255


@dataclass
class RetrievalParams:
    """Table 6 / App. A.7 settings; ``subset`` names the classes of the reduced mIoU."""

    clusters: int = 15
    image_size: int = 512
    batch_size: int = 16
    n_init: int = 3
    seed: int = 0
    subset: tuple = SUBSET_7


def feature_map(backbone) -> FeatureMap:
    """App. A.7's network: layer4 at stride 1 with dilation 2, no average pooling."""
    return FeatureMap(backbone, depth=4, dilate=(4,))


@dataclass
class Regions:
    """The K-means regions of a set of images.

    ``maps[i]`` is image ``i``'s cluster map at feature resolution holding global region ids (rows
    of ``descriptors``), ``None`` for an unreadable image; ``counts[r, c]`` is the number of pixels
    of class ``c`` in region ``r`` at the target's resolution (255 not counted).
    """

    descriptors: np.ndarray  # (R, D) float32, L2-normalised
    image: np.ndarray  # (R,) int64, index of the region's image in the set
    maps: list  # per image (h, w) int64 or None
    counts: np.ndarray  # (R, C) int64

    @property
    def skipped(self) -> int:
        return sum(m is None for m in self.maps)

    def labels(self, keep=None) -> np.ndarray:
        """Majority class of each region among the class ids ``keep`` (all if None); 255 if none."""
        counts = self.counts if keep is None else self.counts * np.isin(np.arange(self.counts.shape[1]), keep)
        return np.where(counts.sum(1) > 0, counts.argmax(1), IGNORE).astype(np.int64)


def _resize_nearest(label_map: np.ndarray, size) -> np.ndarray:
    """An integer map resized to ``size`` (H, W) with pixel-centre nearest neighbours."""
    t = torch.from_numpy(np.asarray(label_map, np.float32))[None, None]  # ids < 2**24 are exact in float32
    return F.interpolate(t, size=tuple(size), mode="nearest-exact")[0, 0].numpy().astype(np.int64)


def cluster(features: np.ndarray, k: int, n_init: int = 3, seed: int = 0) -> np.ndarray:
    """K-means labels ``(P,)`` of ``P`` feature vectors, renumbered ``0..r-1`` over the non-empty clusters."""
    k = min(k, len(features))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct points than k: fewer regions
        labels = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(features)
    return np.unique(labels, return_inverse=True)[1].reshape(-1)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@torch.no_grad()
def _spatial_features(net, images: DenseSet, image_size, batch_size, device, progress):
    """``(index, (h, w, D) float32 features)`` of each readable image, in order."""
    net.eval().to(device)
    transform = resize_square(image_size)
    order = range(0, len(images), batch_size)
    for start in tqdm(order, desc=f"regions {images.name}", disable=not progress, leave=False):
        batch = [(i, images.image(i)) for i in range(start, min(start + batch_size, len(images)))]
        batch = [(i, transform(img)) for i, img in batch if img is not None]
        if not batch:
            continue
        out = net(torch.stack([x for _, x in batch]).to(device)).float().permute(0, 2, 3, 1).cpu().numpy()
        yield from zip([i for i, _ in batch], out)


def region_descriptors(net, images: DenseSet, params: RetrievalParams | None = None, device="cpu",
                       progress=True) -> Regions:
    """K-means regions of every image of ``images`` with their descriptors and class counts (App. A.7)."""
    params = params or RetrievalParams()
    if images.task != "segmentation":
        raise ValueError(f"{images.name}: segment retrieval needs a segmentation set, got task {images.task!r}")
    num_classes = len(images.classes)
    descriptors, owner, counts, maps = [], [], [], [None] * len(images)
    total = 0
    for i, feats in _spatial_features(net, images, params.image_size, params.batch_size, device, progress):
        h, w, d = feats.shape
        x = _normalise(feats.reshape(h * w, d))
        labels = cluster(x, params.clusters, params.n_init, params.seed)
        r = int(labels.max()) + 1
        descriptors.append(_normalise(np.stack([x[labels == j].mean(0) for j in range(r)])))
        owner.append(np.full(r, i, np.int64))
        maps[i] = labels.reshape(h, w) + total
        counts.append(_class_counts(labels.reshape(h, w), images.target(i), r, num_classes, images.name))
        total += r
    if not descriptors:
        raise ValueError(f"{images.name}: no readable image to cluster")
    return Regions(np.concatenate(descriptors).astype(np.float32), np.concatenate(owner), maps,
                   np.concatenate(counts))


def _class_counts(label_map, target, regions: int, num_classes: int, name: str) -> np.ndarray:
    """``(regions, C)`` pixel counts of each class in each region, the map resized to the target."""
    target = np.asarray(target, np.int64)
    region = _resize_nearest(label_map, target.shape).ravel()
    target = target.ravel()
    keep = target != IGNORE
    if keep.any() and (target[keep].min() < 0 or target[keep].max() >= num_classes):
        raise ValueError(f"{name}: target labels outside [0, {num_classes}) other than {IGNORE}")
    flat = region[keep] * num_classes + target[keep]
    return np.bincount(flat, minlength=regions * num_classes).reshape(regions, num_classes)


def nearest(queries: np.ndarray, bank: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Index of each query's nearest bank row by dot product (cosine for normalised rows)."""
    if len(bank) == 0:
        raise ValueError("empty memory bank: no train region has a labelled pixel")
    bank_t = torch.from_numpy(bank)
    parts = [(torch.from_numpy(queries[s:s + chunk]) @ bank_t.T).argmax(1) for s in range(0, len(queries), chunk)]
    return torch.cat(parts).numpy()


def _retrieve(train: Regions, val: Regions, keep=None) -> tuple[np.ndarray, np.ndarray]:
    """``(label of each val region, index of its nearest labelled train region)``."""
    labels = train.labels(keep)
    bank = np.flatnonzero(labels != IGNORE)
    neighbour = bank[nearest(val.descriptors, train.descriptors[bank])]
    return labels[neighbour], neighbour


def _subset_ids(classes, subset) -> list[int]:
    missing = [c for c in subset if c not in classes]
    if missing:
        raise ValueError(f"classes {missing} of the retrieval subset are not in the dataset's classes {list(classes)}; "
                         "pass RetrievalParams(subset=...) with names of this dataset")
    return [list(classes).index(c) for c in subset]


@dataclass
class RetrievalResult:
    """Table 6's two mIoUs (percent), per-class IoUs, and the regions Figure S4 draws from."""

    miou_21: float
    miou_7: float
    per_class_21: list  # IoU (percent) of each class of ``classes``, NaN where absent
    per_class_7: list  # IoU (percent) of each class of ``subset``
    classes: list
    subset: list
    n_train: int
    n_val: int
    n_train_regions: int
    n_val_regions: int
    skipped_images: int
    train: Regions = field(repr=False)
    val: Regions = field(repr=False)
    neighbour: np.ndarray = field(repr=False)  # (R_val,) nearest train region (21-class memory bank)
    predictions: Predictions | None = field(default=None, repr=False)  # the 7-class score per val image (bootstrap)

    def scores(self) -> dict:
        """The plain numbers, for a results store."""
        keys = ("miou_21", "miou_7", "per_class_21", "per_class_7", "classes", "subset", "n_train", "n_val",
                "n_train_regions", "n_val_regions", "skipped_images")
        return {k: getattr(self, k) for k in keys}


def segment_retrieval(net, train: DenseSet, val: DenseSet, params: RetrievalParams | None = None,
                      device="cpu", progress=True) -> RetrievalResult:
    """Table 6: regions of train and val, 1-NN labels, dataset-level mIoU on 21 and on 7 classes.

    ``net`` is the spatial feature extractor, normally ``feature_map(backbone)``.
    """
    params = params or RetrievalParams()
    if list(train.classes) != list(val.classes):
        raise ValueError(f"train classes {train.classes} differ from val classes {val.classes}")
    classes, num_classes = list(val.classes), len(val.classes)
    subset = _subset_ids(classes, params.subset)
    keep_7 = subset + ([classes.index("background")] if "background" in classes else [])
    train_r = region_descriptors(net, train, params, device, progress)
    val_r = region_descriptors(net, val, params, device, progress)
    pred_21, neighbour = _retrieve(train_r, val_r)
    pred_7, _ = _retrieve(train_r, val_r, keep_7)

    conf_21 = np.zeros((num_classes, num_classes), np.int64)
    per_image_7 = []  # the 7-class confusion of each scored val image
    for i, region_map in enumerate(val_r.maps):
        if region_map is None:
            continue
        target = np.asarray(val.target(i), np.int64)
        conf_21 += confusion_matrix(_resize_nearest(pred_21[region_map], target.shape), target, num_classes, IGNORE)
        target_7 = np.where(np.isin(target, keep_7), target, IGNORE)
        per_image_7.append(confusion_matrix(_resize_nearest(pred_7[region_map], target.shape), target_7, num_classes,
                                            IGNORE))
    per_image_7 = np.stack(per_image_7) if per_image_7 else np.zeros((0, num_classes, num_classes), np.int64)

    miou_21, iou_21 = mean_iou(conf_21)
    iou_7 = mean_iou(per_image_7.sum(0))[1][subset]
    miou_7 = float(np.nanmean(iou_7)) if np.isfinite(iou_7).any() else float("nan")
    return RetrievalResult(100 * miou_21, 100 * miou_7, (100 * iou_21).tolist(), (100 * iou_7).tolist(), classes,
                           list(params.subset), len(train), len(val), len(train_r.descriptors),
                           len(val_r.descriptors), train_r.skipped + val_r.skipped, train_r, val_r, neighbour,
                           _predictions_7(per_image_7, classes))


def _predictions_7(confusions: np.ndarray, classes: list) -> Predictions | None:
    """The 7-class mIoU per val image, for its bootstrap: the confusions hold only the 7 classes and background,
    and background (class 0) is left out of the mean (``miou_fg``); without a background class every class counts."""
    if "background" not in classes:
        return Predictions("miou", confusions.sum(2), confusions)
    if classes.index("background") != 0:
        return None  # miou_fg leaves out class 0 only
    return Predictions("miou_fg", confusions.sum(2), confusions)


@dataclass
class Example:
    """One Figure S4 row: a val query region and its nearest train regions (masks at feature resolution)."""

    val_image: int
    val_mask: np.ndarray  # (h, w) bool
    val_label: int  # ground-truth majority class of the query region
    train_images: list  # train image index of each retrieval, nearest first
    train_masks: list  # (h, w) bool each
    train_labels: list  # label of each retrieved region


def examples(result: RetrievalResult, count: int = 4, neighbours: int = 1) -> list[Example]:
    """Queries for Figure S4: in the first ``count`` val images with a region that is mostly an object,
    that region with the most object pixels, with its ``neighbours`` nearest train regions."""
    classes = result.classes
    background = classes.index("background") if "background" in classes else None
    train_labels, val_labels = result.train.labels(), result.val.labels()
    bank = np.flatnonzero(train_labels != IGNORE)
    foreground = result.val.counts.copy()
    if background is not None:
        foreground[:, background] = 0
    rows = []
    for i, region_map in enumerate(result.val.maps):
        if region_map is None or len(rows) == count:
            continue
        ids = np.array([r for r in np.unique(region_map) if val_labels[r] not in (background, IGNORE)])
        if not len(ids):  # no region of this image is mostly an object
            continue
        query = ids[foreground[ids].sum(1).argmax()]
        similarity = result.train.descriptors[bank] @ result.val.descriptors[query]
        found = bank[np.argsort(-similarity, kind="stable")[:neighbours]]
        owners = result.train.image[found]
        rows.append(Example(i, region_map == query, int(val_labels[query]), owners.tolist(),
                            [result.train.maps[o] == r for o, r in zip(owners, found)],
                            train_labels[found].tolist()))
    return rows
