"""Scores of the evaluations: VOC average precision (App. A.2, A.4), mIoU from a dataset-level confusion matrix
(App. A.3, A.7) and DAVIS J and F (App. A.6).

Scores are fractions in [0, 1]; runs store them in percent as the paper prints them.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import precision_recall_curve


def _numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def confusion_matrix(pred, target, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """``(C, C)`` int64 counts, rows = ground truth, columns = prediction; ``ignore_index`` pixels skipped.

    Accumulate over a dataset by summing the matrices of its images (mIoU is dataset-level, not a
    mean of per-image scores). A ground-truth label outside ``[0, C)`` that is not ignored is an error.
    """
    pred, target = _numpy(pred).ravel().astype(np.int64), _numpy(target).ravel().astype(np.int64)
    if pred.shape != target.shape:
        raise ValueError(f"prediction has {pred.size} pixels, target {target.size}")
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    if target.size and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target labels outside [0, {num_classes}) other than ignore_index={ignore_index}")
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"predicted labels outside [0, {num_classes})")
    return np.bincount(target * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def mean_iou(confusion) -> tuple[float, np.ndarray]:
    """``(mean IoU, per-class IoU)`` with IoU = TP / (TP + FP + FN); classes absent from both the
    ground truth and the predictions get NaN and are left out of the mean."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    return (float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")), iou


# VOC average precision, interpolated at VOC2007's 11 recall points or over all points (VOC2010 onwards). Two
# functions, named by the curve they read: a classifier's scores (scikit-learn's curve, tied scores one point) or a
# detector's ranked detections (one point per detection, summed as detectron2's voc_eval sums it). The same
# interpolation summed in another order differs in the last bits, and each keeps the numbers its evaluation reports.

INTERPOLATIONS = ("11-point", "all-point")
ELEVEN_POINTS = np.arange(0.0, 1.1, 0.1)  # detectron2's recall points; bit for bit np.linspace(0, 1, 11)


def _check(interpolation: str):
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown AP interpolation {interpolation!r}; choose one of {INTERPOLATIONS}")


def _eleven_point_precisions(recall: np.ndarray, precision: np.ndarray) -> list:
    """VOC2007's interpolated precision at recall 0, 0.1, ..., 1: the best precision at that recall or a higher one,
    0 where the curve never reaches it. ``0.30000000000000004`` decides exact-edge cases as detectron2 does."""
    return [precision[recall >= t].max() if (recall >= t).any() else 0.0 for t in ELEVEN_POINTS]


def classifier_ap(y_true, scores, interpolation: str) -> float:
    """AP of one class from 0/1 labels and classifier scores (App. A.2: the logistic regression's VOC07 mAP is
    ``"11-point"``, the VOC SVM's ``"all-point"``), on scikit-learn's precision-recall curve: one point per distinct
    score, ending at recall 0, precision 1. 11-point: ``np.mean`` of the 11 precisions; all-point: the area under
    the precision envelope, summed from recall 1 down."""
    _check(interpolation)
    precision, recall, _ = precision_recall_curve(y_true, scores)  # recall runs from 1 down to 0
    if interpolation == "11-point":
        return float(np.mean(_eleven_point_precisions(recall, precision)))
    envelope = np.maximum.accumulate(precision)  # best precision at this recall or any higher one
    return float(np.sum((recall[:-1] - recall[1:]) * envelope[:-1]))


def detector_ap(recall: np.ndarray, precision: np.ndarray, interpolation: str) -> float:
    """AP of one class's detections (App. A.4) from their precision and recall, one point per detection in score
    order, as detectron2's ``voc_ap``: 11-point, the sum of the 11 precisions / 11; all-point, the area under the
    precision envelope between sentinels at recall 0 and 1, summed from recall 0 up."""
    _check(interpolation)
    if interpolation == "11-point":
        return float(sum(_eleven_point_precisions(recall, precision)) / 11)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.maximum.accumulate(np.concatenate(([0.0], precision, [0.0]))[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


# DAVIS-2017 semi-supervised evaluation (App. A.6), as the official davis2017-evaluation code
# (davis2017/metrics.py, evaluation.py) defines it: J = region IoU, F = boundary F-measure.


def davis_j(pred_mask, gt_mask) -> float:
    """Region similarity ``|S n G| / |S u G|`` of two binary ``(H, W)`` masks; 1 when both are empty."""
    pred, gt = _numpy(pred_mask).astype(bool), _numpy(gt_mask).astype(bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction mask {pred.shape} and ground-truth mask {gt.shape} differ in shape")
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def davis_boundary(mask) -> np.ndarray:
    """1-pixel boundary map of a binary mask, the official ``_seg2bmap``: a pixel is on the boundary
    when it differs from its east, south or south-east neighbour (last row: east only, last column:
    south only, the corner never), so boundaries sit half a pixel towards the origin."""
    seg = _numpy(mask).astype(bool)
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[:, :-1], s[:-1, :], se[:-1, :-1] = seg[:, 1:], seg[1:, :], seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def _near(boundary: np.ndarray, radius: float) -> np.ndarray:
    """``boundary`` dilated by a disk ``x^2 + y^2 <= radius^2`` (skimage's ``disk``, as the official
    code uses); computed as "Euclidean distance to the boundary <= radius", the same set, faster."""
    from scipy.ndimage import distance_transform_edt

    if not boundary.any():
        return np.zeros_like(boundary)
    return distance_transform_edt(~boundary) <= radius


def davis_f(pred_mask, gt_mask, bound_th: float = 0.008) -> float:
    """Boundary F-measure of two binary ``(H, W)`` masks (official ``f_measure``, no void pixels).

    Boundary pixels match when within ``ceil(bound_th * image diagonal)`` pixels of the other
    boundary (``bound_th`` pixels when ``bound_th >= 1``); F = 2PR / (P + R), 0 when P + R = 0.
    An empty boundary counts as in the official code: (pred empty, gt not) P=1 R=0,
    (pred not, gt empty) P=0 R=1, both empty P=R=1.
    """
    pred, gt = _numpy(pred_mask).astype(bool), _numpy(gt_mask).astype(bool)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"need two 2-D masks of one shape, got {pred.shape} and {gt.shape}")
    radius = bound_th if bound_th >= 1 else float(np.ceil(bound_th * np.linalg.norm(pred.shape)))
    pred_b, gt_b = davis_boundary(pred), davis_boundary(gt)
    n_pred, n_gt = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    if n_pred == 0 or n_gt == 0:
        precision, recall = (1.0 if n_pred == 0 else 0.0), (1.0 if n_gt == 0 else 0.0)
    else:
        precision = np.count_nonzero(pred_b & _near(gt_b, radius)) / n_pred
        recall = np.count_nonzero(gt_b & _near(pred_b, radius)) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def davis_sequence(pred, gt, objects) -> tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame ``(J, F)``, each ``(n_objects, T - 2)``, of one sequence.

    ``pred`` and ``gt`` are ``(T, H, W)`` label maps (pixel = object id); object ``k`` is the binary
    mask ``== k``. The first frame (the given annotation) and the last are excluded, as the official
    semi-supervised evaluation does; ground-truth void (255) counts as background, as its loader does.
    """
    pred, gt = _numpy(pred), _numpy(gt)
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f"need (T, H, W) predictions and ground truth of one shape, got {pred.shape} and {gt.shape}")
    if pred.shape[0] < 3:
        raise ValueError(f"a sequence needs at least 3 frames (first and last are not scored), got {pred.shape[0]}")
    gt = np.where(gt == 255, 0, gt)
    frames = range(1, pred.shape[0] - 1)
    j = np.array([[davis_j(pred[t] == k, gt[t] == k) for t in frames] for k in objects], dtype=np.float64)
    f = np.array([[davis_f(pred[t] == k, gt[t] == k) for t in frames] for k in objects], dtype=np.float64)
    return j.reshape(len(objects), -1), f.reshape(len(objects), -1)


def davis_summary(per_sequence: dict) -> dict:
    """``J_mean``, ``F_mean`` and ``JF`` (their average) over all objects of all sequences.

    ``per_sequence`` maps a sequence name to its ``davis_sequence`` ``(J, F)``. As the official
    code: each object's score is its mean over frames (NaN-aware), the benchmark score the mean over
    objects (not over sequences). ``J_per_object`` / ``F_per_object`` map ``"<seq>_<i>"`` (``i`` from 1,
    the official naming) to the object's mean. Fractions in [0, 1].
    """
    j_obj, f_obj = {}, {}
    for name, (j, f) in per_sequence.items():
        for i, (jo, fo) in enumerate(zip(np.asarray(j), np.asarray(f))):
            j_obj[f"{name}_{i + 1}"], f_obj[f"{name}_{i + 1}"] = float(np.nanmean(jo)), float(np.nanmean(fo))
    if not j_obj:
        raise ValueError("no objects to average: every sequence has zero annotated objects")
    j_mean, f_mean = float(np.mean(list(j_obj.values()))), float(np.mean(list(f_obj.values())))
    return {"J_mean": j_mean, "F_mean": f_mean, "JF": (j_mean + f_mean) / 2,
            "J_per_object": j_obj, "F_per_object": f_obj}
