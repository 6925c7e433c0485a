"""VOC object detection transfer (App. A.4; Table 3, "Detection (AP)").

The paper finetunes Faster R-CNN with an R50-dilated-C5 backbone, all layers, on VOC07+12 trainval
and reports AP (mean over IoU 0.50:0.95), AP50 and AP75 on VOC07 test with detectron2. Two backends
run that protocol from one entry point, ``detect``:

* ``"torchvision"`` (default, runs anywhere): torchvision's ``FasterRCNN`` on the dilated C5 map of
  ``FeatureMap(backbone, depth=4, dilate=(4,))`` with one anchor set, RoIAlign 7x7 and a 2-FC box
  head, as detectron2's DC5 config (``Base-RCNN-DilatedC5.yaml``: ``FastRCNNConvFCHead``, NUM_FC 2).
* ``"detectron2"``: detectron2 itself (not on PyPI) with the DC5 config, in ``detectron2_backend``.

Both score with ``voc_ap``, a re-implementation of detectron2's ``PascalVOCDetectionEvaluator`` (per class
``metrics.detector_ap``).

Known differences of the torchvision backend from detectron2 (small; for the book's notes):
BN runs in one process on that process's batch (``bn="batch"``, the default: MoCo's config
synchronises BN over its 16 images on 8 GPUs, the same statistics when one GPU takes all 16), or
keeps the backbone's statistics frozen with trainable affine parameters (``bn="frozen"``, for CPU
batches of 1-2 images and a well pretrained backbone; on a random-init ResNet-50 at lr 0.02 it
diverged within 10 iterations, H200, while "batch" trained). RoIAlign is torchvision's
(``aligned=False``, sampling ratio 2) instead of ROIAlignV2; the box losses are torchvision's
smooth-L1 (beta 1/9) instead of detectron2's L1.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..augment import IMAGENET_MEAN, IMAGENET_STD
from ..backbones import FeatureMap
from ..bootstrap import Predictions
from ..data.dense import Boxes, DenseSet
from ..metrics import detector_ap

BACKENDS = ("torchvision", "detectron2")
BN_MODES = ("frozen", "batch")
VOC_TRAIN_SIZES = tuple(range(480, 801, 32))  # MoCo's VOC config: MIN_SIZE_TRAIN (480, 512, ..., 800)
IOU_THRESHOLDS = np.arange(0.5, 0.96, 0.05)  # detectron2: range(50, 100, 5) / 100


@dataclass
class DetectionParams:
    """The VOC detection recipe; defaults are MoCo's ``pascal_voc_R_50_C4_24k`` solver with detectron2's
    DC5 model values (24k iterations, batch 16, lr 0.02, x0.1 at 18k/22k, 100 warm-up iterations)."""

    iterations: int = 24000
    batch_size: int = 16
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4  # detectron2: none on normalisation layers (WEIGHT_DECAY_NORM 0)
    steps: tuple[int, ...] = (18000, 22000)
    gamma: float = 0.1
    warmup_iters: int = 100
    warmup_factor: float = 0.001  # linear warm-up from lr x warmup_factor to lr
    min_sizes: tuple[int, ...] = VOC_TRAIN_SIZES  # shorter side, one drawn per image
    test_size: int = 800
    max_size: int = 1333  # longer side cap, train and test
    anchor_sizes: tuple = ((32, 64, 128, 256, 512),)  # one tuple: the single C5 feature map
    aspect_ratios: tuple = ((0.5, 1.0, 2.0),)
    roi_resolution: int = 7
    fc_dim: int = 1024  # the box head's two FC layers
    rpn_pre_nms_topk: tuple[int, int] = (12000, 6000)  # (train, test), detectron2's DC5 values
    rpn_post_nms_topk: tuple[int, int] = (2000, 1000)
    bn: str = "batch"  # torchvision backend: "batch" (MoCo's SyncBN, in one process) or "frozen" (see the top)
    seed: int = 0
    workers: int = 0

    def __post_init__(self):
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError(f"iterations ({self.iterations}) and batch_size ({self.batch_size}) must be >= 1")
        if list(self.steps) != sorted(self.steps):
            raise ValueError(f"lr steps {self.steps} must be increasing")
        if self.bn not in BN_MODES:
            raise ValueError(f"bn must be one of {BN_MODES}, got {self.bn!r}")
        if len(self.anchor_sizes) != 1 or len(self.aspect_ratios) != 1:
            raise ValueError("anchor_sizes and aspect_ratios need exactly one tuple each: the detector has one "
                             f"feature map (dilated C5); got {self.anchor_sizes} and {self.aspect_ratios}")


@dataclass
class DetectionResult:
    """VOC07-style scores in percent, as Table 3 prints them."""

    backend: str
    AP: float  # mean over IoU 0.50:0.95 of the mean over classes
    AP50: float
    AP75: float
    per_class_AP50: dict[str, float]
    n_train: int  # training images used (readable, with at least one box)
    n_test: int  # test images scored
    train_loss: list[float] = field(default_factory=list)  # total training loss per iteration
    predictions: Predictions | None = field(default=None, repr=False)  # the matched detections, for the bootstrap


@dataclass
class Detections:
    """A detector's output for one image: ``boxes`` (N, 4) xyxy pixels, ``scores`` (N,), 0-based ``labels`` (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


def detect(backbone: nn.Module, train: DenseSet, test: DenseSet, params: DetectionParams | None = None,
           backend: str = "torchvision", device="cpu", progress: bool = True) -> DetectionResult:
    """Finetune Faster R-CNN (R50-dilated-C5, all layers) from ``backbone`` on ``train``, score VOC AP on ``test``.

    ``backbone`` comes from ``revisit.backbones.build_backbone`` with its pretrained weights loaded; it is
    copied, never modified. The detectron2 backend needs the ResNet-50 and an installed detectron2.
    """
    params = params or DetectionParams()
    if backend not in BACKENDS:
        raise ValueError(f"unknown detection backend {backend!r}; choose one of {BACKENDS}")
    for data in (train, test):
        if data.task != "detection":
            raise ValueError(f"{data.name}: task is {data.task!r}, detection needs a 'detection' DenseSet")
    if list(train.classes) != list(test.classes):
        raise ValueError(f"{train.name} and {test.name} have different classes")
    if backend == "torchvision":
        return _torchvision_backend(backbone, train, test, params, device, progress)
    from .detectron2_backend import detect_with_detectron2  # imported here: that module builds on this one

    return detect_with_detectron2(backbone, train, test, params, device, progress)


# ---------------------------------------------------------------- VOC AP (detectron2's evaluator)

def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each of ``boxes``, in continuous coordinates.

    detectron2's ``voc_eval`` adds 1 to every width and height, but it compares predictions shifted by
    +1 on xmin/ymin with the raw 1-based XML boxes; with ground truth stored as detectron2's loader (and
    ``dense_loaders.read_voc_boxes``) stores it, ``(xmin - 1, ymin - 1, xmax, ymax)``, the two are identical.
    """
    iw = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    ih = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    inter = iw * ih
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, np.finfo(np.float64).eps)


def _class_matches(detections: list[Detections], targets: list[Boxes], c: int, thresholds):
    """Class ``c``'s detections matched to the ground truth: ``(image, flags, positives)``.

    ``image`` (D,): each detection's image, highest score first; ``flags`` (D, thresholds): 1 a true positive,
    0 a false positive, -1 neither (its box is "difficult"); ``positives`` (images,): non-difficult boxes of ``c``.
    Resampling whole test images changes none of the flags: the bootstrap (``revisit.bootstrap``) reuses them.
    """
    gt = [(t.boxes[t.labels == c].astype(np.float64), t.difficult[t.labels == c].astype(bool)) for t in targets]
    positives = np.array([int((~d).sum()) for _, d in gt], np.int64)
    image, scores, boxes = [], [], []
    for i, d in enumerate(detections):
        keep = d.labels == c
        image += [i] * int(keep.sum())
        scores.append(d.scores[keep])
        boxes.append(d.boxes[keep].reshape(-1, 4))
    order = np.argsort(-np.concatenate(scores), kind="stable")
    image, boxes = np.asarray(image, np.int64)[order], np.concatenate(boxes).astype(np.float64)[order]
    # each detection's best-overlapping ground truth of its image (matched or not, difficult or not)
    best, overlap = np.zeros(len(order), np.int64), np.full(len(order), -np.inf)
    for k, (i, box) in enumerate(zip(image, boxes)):
        if len(gt[i][0]):
            ious = box_iou(box, gt[i][0])
            best[k], overlap[k] = ious.argmax(), ious.max()
    flags = np.zeros((len(order), len(thresholds)), np.int8)
    for column, threshold in enumerate(thresholds):
        taken = [np.zeros(len(g), bool) for g, _ in gt]
        for k, (i, j) in enumerate(zip(image, best)):
            if overlap[k] <= threshold:
                flags[k, column] = 0
            elif gt[i][1][j]:
                flags[k, column] = -1  # difficult: neither true nor false positive
            elif taken[i][j]:
                flags[k, column] = 0  # duplicate
            else:
                flags[k, column], taken[i][j] = 1, True
    return image, flags, positives


def _class_ap(image, flags, positives, use_07_metric) -> list[float]:
    """AP of one class at each IoU threshold from its ``_class_matches``; NaN without non-difficult ground truth."""
    if positives.sum() == 0:
        return [float("nan")] * flags.shape[1]
    aps = []
    for column in range(flags.shape[1]):
        tp, fp = np.cumsum(flags[:, column] == 1), np.cumsum(flags[:, column] == 0)
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        aps.append(detector_ap(tp / positives.sum(), precision, "11-point" if use_07_metric else "all-point"))
    return aps



def voc_ap(detections: list[Detections], test_targets: list[Boxes], classes, iou_thresholds=IOU_THRESHOLDS,
           use_07_metric: bool = True) -> dict:
    """detectron2's ``PascalVOCDetectionEvaluator`` on in-memory results, scores in percent.

    Per class, detections are sorted by score; each is matched to its best-overlapping ground truth
    of the same image and is a true positive when IoU > threshold and that box is not yet taken (a
    duplicate is a false positive), ignored when the box is "difficult". Returns ``{"AP", "AP50",
    "AP75"}`` (AP = mean over thresholds of the mean over classes, as detectron2's ``ret["bbox"]``)
    plus ``"per_class_AP50"`` (name -> AP50) and ``"per_threshold"`` (IoU in percent -> mean AP).

    One deliberate difference: a class without non-difficult ground truth gets NaN and is left out of
    the mean (detectron2 would count it as 0); every class of VOC07 test has positives.
    detectron2 also rounds scores to 3 decimals when it writes its result files; here they are not.
    """
    if len(detections) != len(test_targets):
        raise ValueError(f"{len(detections)} detection lists for {len(test_targets)} test images")
    thresholds = np.round(np.asarray(iou_thresholds, np.float64), 2)  # 0.7000000000000002 -> 0.7 = 70 / 100
    matches = [_class_matches(detections, test_targets, c, thresholds) for c in range(len(classes))]
    per_class = np.array([_class_ap(*m, use_07_metric) for m in matches]).reshape(len(classes), len(thresholds)) * 100
    with np.errstate(invalid="ignore"):
        means = {int(round(t * 100)): float(np.nanmean(per_class[:, k])) if np.isfinite(per_class[:, k]).any()
                 else float("nan") for k, t in enumerate(thresholds)}
    column = {int(round(t * 100)): k for k, t in enumerate(thresholds)}
    return {"AP": float(np.mean(list(means.values()))), "AP50": means.get(50, float("nan")),
            "AP75": means.get(75, float("nan")),
            "per_class_AP50": {name: float(per_class[c, column[50]]) if 50 in column else float("nan")
                               for c, name in enumerate(classes)},
            "per_threshold": means,
            "predictions": Predictions(
                "det_ap11" if use_07_metric else "det_ap", np.stack([m[2] for m in matches], axis=1),
                np.concatenate([np.column_stack([m[0], np.full(len(m[0]), c), m[1]]) for c, m in enumerate(matches)])
                .astype(np.int64).reshape(-1, 2 + len(thresholds)))}



# ---------------------------------------------------------------- torchvision backend

def valid_boxes(target: Boxes) -> np.ndarray:
    """Boxes with a positive width and height (torchvision rejects degenerate ones)."""
    b = np.asarray(target.boxes).reshape(-1, 4)
    return (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])


class TrainImages(Dataset):
    """Training pairs for torchvision: float [0, 1] image, ``{"boxes", "labels"}`` (labels + 1, 0 is the
    background), with detectron2's random horizontal flip. Difficult boxes are kept, as detectron2's VOC loader
    does; images without a box are left out (detectron2's FILTER_EMPTY_ANNOTATIONS)."""

    def __init__(self, data: DenseSet):
        self.data = data
        self.index = [i for i in range(len(data)) if valid_boxes(data.target(i)).any()]

    def __len__(self):
        return len(self.index)

    def __getitem__(self, k):
        image, target = self.data[self.index[k]]
        if image is None:
            return None
        keep = valid_boxes(target)
        boxes = torch.as_tensor(np.asarray(target.boxes, np.float32).reshape(-1, 4)[keep])
        labels = torch.as_tensor(np.asarray(target.labels, np.int64)[keep]) + 1
        image = image.float() / 255
        if torch.rand(()) < 0.5:
            w = image.shape[-1]
            image, boxes = image.flip(-1), torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        return image, {"boxes": boxes, "labels": labels}


def _as_list(batch):
    return [b for b in batch if b is not None]


def _first(batch):
    return batch[0]


def faster_rcnn(backbone: nn.Module, num_classes: int, params: DetectionParams) -> nn.Module:
    """torchvision Faster R-CNN on the dilated C5 map (stride 16 for ResNet-50), ImageNet normalisation."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    features = FeatureMap(backbone, depth=4, dilate=(4,)).requires_grad_(True)
    features.out_channels = features.channels
    p = params
    return FasterRCNN(
        features, num_classes=None, min_size=tuple(p.min_sizes), max_size=p.max_size,
        image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD),
        rpn_anchor_generator=AnchorGenerator(p.anchor_sizes, p.aspect_ratios),
        rpn_pre_nms_top_n_train=p.rpn_pre_nms_topk[0], rpn_pre_nms_top_n_test=p.rpn_pre_nms_topk[1],
        rpn_post_nms_top_n_train=p.rpn_post_nms_topk[0], rpn_post_nms_top_n_test=p.rpn_post_nms_topk[1],
        box_roi_pool=MultiScaleRoIAlign(["0"], p.roi_resolution, 2),
        box_head=TwoMLPHead(features.channels * p.roi_resolution ** 2, p.fc_dim),
        box_predictor=FastRCNNPredictor(p.fc_dim, num_classes + 1))


def freeze_bn_statistics(model: nn.Module) -> None:
    """BN layers in eval mode: pretrained running statistics kept, affine parameters still trained.

    The ``bn="frozen"`` option: with one or two images per step batch statistics are noisy, so the
    pretrained ones are kept (as detectron2's FrozenBN, but with trainable scale and shift).
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def lr_factor(iteration: int, params: DetectionParams) -> float:
    """detectron2's WarmupMultiStepLR: linear warm-up, then x gamma at each step."""
    warm = 1.0
    if iteration < params.warmup_iters:
        alpha = iteration / params.warmup_iters
        warm = params.warmup_factor * (1 - alpha) + alpha
    return warm * params.gamma ** bisect.bisect_right(list(params.steps), iteration)


def _optimizer(model: nn.Module, params: DetectionParams) -> torch.optim.SGD:
    """SGD with momentum; no weight decay on BN parameters (detectron2's WEIGHT_DECAY_NORM = 0)."""
    norm = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) not in norm]},
              {"params": [p for p in trainable if id(p) in norm], "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=params.lr, momentum=params.momentum, weight_decay=params.weight_decay)


def _batches(data: Dataset, params: DetectionParams, generator: torch.Generator):
    """Shuffled batches forever (detectron2's TrainingSampler), unreadable images dropped."""
    loader = DataLoader(data, batch_size=params.batch_size, shuffle=True, num_workers=params.workers,
                        collate_fn=_as_list, generator=generator)
    while True:
        for batch in loader:
            if batch:
                yield batch


def train_faster_rcnn(model: nn.Module, train: DenseSet, params: DetectionParams, device="cpu",
                      progress: bool = True) -> tuple[int, list[float]]:
    """``params.iterations`` SGD steps on ``train``; returns (training images used, loss per iteration)."""
    data = TrainImages(train)
    if not len(data):
        raise ValueError(f"{train.name}: no training image has a box; detection needs annotated images")
    model.to(device).train()
    if params.bn == "frozen":
        freeze_bn_statistics(model)
    optimizer = _optimizer(model, params)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, params))
    batches = _batches(data, params, torch.Generator().manual_seed(params.seed))
    curve = []
    for _ in tqdm(range(params.iterations), desc="Faster R-CNN", disable=not progress, leave=False):
        batch = next(batches)
        images = [x.to(device) for x, _ in batch]
        targets = [{k: v.to(device) for k, v in t.items()} for _, t in batch]
        loss = sum(model(images, targets).values())
        if not torch.isfinite(loss):  # as detectron2's trainer, stop rather than train on NaN
            raise FloatingPointError(f"detection loss became {loss.item()} at iteration {len(curve)}; lower the "
                                     "lr, or check the backbone's BN statistics (bn='frozen' needs pretrained ones)")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        curve.append(loss.item())
    return len(data), curve


@torch.no_grad()
def predict(model: nn.Module, test: DenseSet, params: DetectionParams, device="cpu",
            progress: bool = True) -> tuple[list[Detections], list[Boxes]]:
    """Detections (in original-image pixels, 0-based labels) and ground truth of every readable test image."""
    model.to(device).eval()
    model.transform.min_size, model.transform.max_size = (params.test_size,), params.max_size
    loader = DataLoader(test, batch_size=1, num_workers=params.workers, collate_fn=_first)
    detections, targets = [], []
    for image, target in tqdm(loader, desc="VOC test", disable=not progress, leave=False):
        if image is None:
            continue  # unreadable file, warned about by read_image
        out = model([image.float().div(255).to(device)])[0]
        detections.append(Detections(out["boxes"].cpu().numpy(), out["scores"].cpu().numpy(),
                                     out["labels"].cpu().numpy() - 1))
        targets.append(target)
    return detections, targets


def _torchvision_backend(backbone, train, test, params, device, progress) -> DetectionResult:
    torch.manual_seed(params.seed)
    model = faster_rcnn(backbone, len(train.classes), params)
    n_train, curve = train_faster_rcnn(model, train, params, device, progress)
    detections, targets = predict(model, test, params, device, progress)
    return detection_result("torchvision", voc_ap(detections, targets, test.classes), n_train, len(targets), curve)


def detection_result(backend, scores: dict, n_train, n_test, curve) -> DetectionResult:
    """A backend's ``DetectionResult`` from its ``voc_ap`` scores."""
    return DetectionResult(backend, scores["AP"], scores["AP50"], scores["AP75"], scores["per_class_AP50"],
                           n_train, n_test, list(curve), scores.get("predictions"))
