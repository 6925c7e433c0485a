"""How sure a score is: bootstrap intervals over test items, and the paired test between two models.

A bootstrap resample of N test items is the same as weighting each item by how often it was drawn,
so every score here is computed from ``weights`` of shape ``(draws, N)`` for all draws at once (a
1000-draw interval of a 20-class mAP on 600 images takes under a second). With weights of
ones each function gives exactly the score the evaluation reports (``linear.logistic.score``,
``metrics.classifier_ap``, ``dense.detection.voc_ap``). The interval is the percentile interval (Efron &
Tibshirani, ch. 13); two models are compared on the *same* resamples of the same test items (a paired
bootstrap), so the noise they share, which items happen to be in the test set, cancels from their difference.
"""
from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass

import numpy as np

from . import rundir

DRAWS = 1000  # resamples per interval: the ends of a 95% interval move by about 0.3 points between resampling seeds
LEVEL = 0.95
SCORES = ("accuracy", "balanced_accuracy", "ap11", "ap",  # top-1, mean per-class accuracy, VOC07 11-point / all-point mAP
          "miou", "miou_fg", "rmse", "ratio",  # dense tasks: mIoU (miou_fg: class 0, background, left out of the
          # mean, as Table 6's 7-class mIoU), depth rmse (metres), a ratio of sums (DAVIS J&F over objects)
          "det_ap11", "det_ap")  # VOC detection AP over IoU thresholds, 11-point or all-point
          # (``dense.detection.voc_ap``)
RUN_NDIM = {"miou": 3, "miou_fg": 3, "rmse": 1}  # one run's decision dimensions, where runs can be stacked


@dataclass(frozen=True)
class Interval:
    """A score (or a difference of scores) and its bootstrap interval at ``LEVEL``."""

    value: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of 0 (a difference larger than its noise)."""
        return bool(self.low > 0 or self.high < 0)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


@dataclass
class Predictions:
    """What a model predicted on each test item, enough to recompute its score on any resample.

    ``score``: one of ``SCORES``. ``labels``: what the ground truth fixes, so two models are paired only on
    equal labels; ``decision``: what the model's output gives, per item:

    - ``accuracy``, ``balanced_accuracy``: ``(N,)`` classes and ``(N,)`` predicted classes;
    - ``ap11``, ``ap``: ``(N, C)`` 0/1 labels and ``(N, C)`` classifier scores;
    - ``miou``, ``miou_fg``: ``(N, K)`` ground-truth pixels per class and ``(N, K, K)`` confusion matrices (rows: truth);
    - ``rmse``: ``(N,)`` measured pixels and ``(N,)`` sums of squared errors;
    - ``ratio``: ``(N,)`` denominators and ``(N,)`` numerators (DAVIS: objects, and the sum of their J&F);
    - ``det_ap11``, ``det_ap``: ``(N, C)`` non-difficult boxes per image and class, and one row per detection,
      highest score first within its class: ``[image, class, flag at each IoU threshold]`` (1 true positive,
      0 false positive, -1 neither), as ``dense.detection.voc_ap`` matched them. Here ``decision`` has a row per
      detection, not per image.

    Several finetuning runs scored on the same test items (``miou``, ``miou_fg``, ``rmse``) stack their decisions
    on a leading axis, ``(R, N, ...)``: the score is then the mean of the runs' scores, as the authors report five.
    """

    score: str
    labels: np.ndarray
    decision: np.ndarray

    def __post_init__(self):
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; known: {SCORES}")
        self.labels, self.decision = np.asarray(self.labels), np.asarray(self.decision)
        if self.score.startswith("det_"):
            if len(self.decision) and not 0 <= self.decision[:, 0].min() <= self.decision[:, 0].max() < len(self.labels):
                raise ValueError(f"detections refer to images outside the {len(self.labels)} test images")
        elif len(self.labels) != self.decision.shape[int(self.stacked)]:
            raise ValueError(f"{len(self.labels)} labels but {self.decision.shape[int(self.stacked)]} predictions")

    def __len__(self):
        return len(self.labels)

    @property
    def stacked(self) -> bool:
        """Whether ``decision`` holds several runs' decisions on a leading axis."""
        return self.decision.ndim == RUN_NDIM.get(self.score, -1) + 1

    def scores(self, weights: np.ndarray) -> np.ndarray:
        """The score (percent) under each row of ``weights`` ``(draws, N)``: ``(draws,)``."""
        weights = np.atleast_2d(weights).astype(float)
        if self.stacked:
            return np.mean([Predictions(self.score, self.labels, run).scores(weights) for run in self.decision], axis=0)
        if self.score in ("rmse", "ratio"):
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = (weights @ self.decision) / (weights @ self.labels)
            return np.sqrt(ratio) if self.score == "rmse" else 100.0 * ratio
        if self.score in ("miou", "miou_fg"):
            return 100.0 * mean_iou(np.tensordot(weights, self.decision, axes=1), first=int(self.score == "miou_fg"))
        if self.score.startswith("det_"):
            return 100.0 * detection_ap(self.labels, self.decision, weights, eleven_point=self.score == "det_ap11")
        if self.score == "accuracy":
            return 100.0 * (weights @ (self.labels == self.decision)) / weights.sum(1)
        if self.score == "balanced_accuracy":
            return 100.0 * balanced_accuracy(self.labels, self.decision, weights)
        ap = average_precision_11 if self.score == "ap11" else average_precision
        with np.errstate(invalid="ignore"):
            per_class = np.stack([ap(self.labels[:, c], self.decision[:, c], weights)
                                  for c in range(self.labels.shape[1])], axis=1)
            return 100.0 * np.nanmean(per_class, axis=1)  # a class drawn without positives has no AP

    def value(self) -> float:
        """The score on the test set as it is (every item once)."""
        return float(self.scores(np.ones((1, len(self))))[0])

    def save(self, path):
        rundir.save_arrays(path, score=np.array(self.score), labels=self.labels, decision=self.decision)

    @classmethod
    def load(cls, path) -> Predictions:
        """Predictions saved by ``save``; a file that does not read is a ``ValueError`` naming it."""
        try:
            with np.load(path) as saved:
                return cls(str(saved["score"]), saved["labels"], saved["decision"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: unreadable predictions ({rundir.brief(err)}); delete it and rerun the run "
                             "to write it again") from err


def resample_weights(n: int, draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    """``(draws, n)`` counts: how often each of ``n`` items is drawn in each resample with replacement."""
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=draws)


def percentile_interval(value: float, draws: np.ndarray, level: float = LEVEL) -> Interval:
    """``value`` with the central ``level`` interval of its bootstrap ``draws``."""
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return Interval(float(value), float(low), float(high))


def bootstrap_scores(predictions: Predictions, draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    """The score on ``draws`` resamples of the test items; the same ``seed`` and size give the same resamples."""
    return predictions.scores(resample_weights(len(predictions), draws, seed))


def interval(predictions: Predictions, draws: int = DRAWS, seed: int = 0) -> Interval:
    """The score of ``predictions`` and its bootstrap interval over test items (NaN without any item)."""
    if not len(predictions):
        return Interval(np.nan, np.nan, np.nan)
    return percentile_interval(predictions.value(), bootstrap_scores(predictions, draws, seed))



def bounds(predictions: Predictions) -> list:
    """``[low, high]`` of ``interval``: what a result record stores beside its score."""
    found = interval(predictions)
    return [found.low, found.high]


def paired_difference(a: Predictions, b: Predictions, draws: int = DRAWS, seed: int = 0,
                      scores: tuple | None = None) -> Interval:
    """Score of ``a`` minus score of ``b`` with its paired bootstrap interval: both scored on the same resamples.

    Both must be predictions on the same test items in the same order (same labels). ``scores``: their
    ``bootstrap_scores`` at the same ``draws`` and ``seed``, when already computed."""
    if a.score != b.score or a.labels.shape != b.labels.shape or not np.array_equal(a.labels, b.labels):
        raise ValueError("a paired comparison needs predictions on the same test items (same labels, same score)")
    draws_a, draws_b = scores or (bootstrap_scores(a, draws, seed), bootstrap_scores(b, draws, seed))
    return percentile_interval(a.value() - b.value(), draws_a - draws_b)


def mean_iou(confusions: np.ndarray, first: int = 0) -> np.ndarray:
    """``metrics.mean_iou`` of each ``(K, K)`` matrix of ``(draws, K, K)``: classes with no pixel in truth or
    prediction are left out of the mean, and so are classes below ``first``. In [0, 1]."""
    tp = np.diagonal(confusions, axis1=1, axis2=2)
    union = confusions.sum(1) + confusions.sum(2) - tp
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw without any scored class
        return np.nanmean(np.where(union > 0, tp / union, np.nan)[:, first:], axis=1)


def detection_ap(positives, rows, weights, eleven_point=True) -> np.ndarray:
    """``dense.detection.voc_ap``'s AP (mean over IoU thresholds of the mean over classes) under each row of weights.

    A resampled image brings its detections with their true / false positive flags unchanged, so the
    curve of class c is a weighted one: cumulative weights of true and of false positives in score order,
    recall over the weighted count of its boxes. In [0, 1]; NaN where no class has a box."""
    thresholds = rows.shape[1] - 2
    boxes = weights @ positives  # (draws, classes)
    per_class = np.full((len(weights), positives.shape[1], thresholds), np.nan)
    for c in range(positives.shape[1]):
        mine = rows[rows[:, 1] == c]
        w = weights[:, mine[:, 0]]
        for k in range(thresholds):
            tp = np.cumsum(w * (mine[:, 2 + k] == 1), axis=1)
            fp = np.cumsum(w * (mine[:, 2 + k] == 0), axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                recall = tp / boxes[:, c:c + 1]
            precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
            # best precision at this recall or any higher one (recall only grows along a row), 0 past the end
            envelope = np.flip(np.maximum.accumulate(np.flip(precision, 1), axis=1), 1)
            envelope = np.concatenate([envelope, np.zeros((len(w), 1))], axis=1)
            if eleven_point:  # np.arange as detectron2 (its 0.30000000000000004 decides edge cases alike)
                first = [np.sum(recall < t, axis=1) for t in np.arange(0.0, 1.1, 0.1)]  # first point at recall >= t
                ap = np.mean([np.take_along_axis(envelope, f[:, None], axis=1)[:, 0] for f in first], axis=0)
            else:
                ap = np.sum(np.diff(recall, axis=1, prepend=0.0) * envelope[:, :-1], axis=1)

            per_class[:, c, k] = np.where(boxes[:, c] > 0, ap, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw whose classes all lack boxes
        return np.nanmean(per_class, axis=1).mean(axis=1)


def balanced_accuracy(labels, predicted, weights) -> np.ndarray:

    """Mean over the classes present of the weighted recall (sklearn's ``balanced_accuracy_score``), in [0, 1]."""
    recalls = []
    for c in np.unique(labels):
        mine = labels == c
        total = weights[:, mine].sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls.append(np.where(total > 0, weights[:, mine] @ (predicted[mine] == c) / total, np.nan))
    return np.nanmean(np.stack(recalls, axis=1), axis=1)


def _precision_recall(y, scores, weights):
    """Weighted precision and recall at every distinct threshold, highest threshold first: ``(draws, T)`` each."""
    order = np.argsort(-np.asarray(scores, float), kind="mergesort")
    y, s, w = np.asarray(y)[order].astype(float), np.asarray(scores, float)[order], weights[:, order]
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last item of each group of tied scores
    tp, fp = np.cumsum(w * y, axis=1)[:, ends], np.cumsum(w * (1 - y), axis=1)[:, ends]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)  # a threshold no drawn item reaches adds nothing
        recall = tp / tp[:, -1:]  # NaN in a draw without positives
    return precision, recall


def average_precision_11(y, scores, weights) -> np.ndarray:
    """``metrics.classifier_ap(..., "11-point")`` under each row of weights: VOC2007's 11-point AP, in [0, 1].

    (sklearn's curve ends at recall 0, precision 1, so the point at recall 0 always counts 1.)"""
    precision, recall = _precision_recall(y, scores, weights)
    points = [np.ones(len(weights))] + [np.where(recall >= t, precision, 0.0).max(1) for t in np.linspace(0, 1, 11)[1:]]
    ap = np.mean(points, axis=0)
    return np.where(np.isnan(recall[:, -1]), np.nan, ap)


def average_precision(y, scores, weights) -> np.ndarray:
    """``metrics.classifier_ap(..., "all-point")`` under each row of weights: area under the precision envelope,
    in [0, 1]."""
    precision, recall = _precision_recall(y, scores, weights)
    envelope = np.flip(np.maximum.accumulate(np.flip(precision, 1), axis=1), 1)  # best precision at this recall or higher
    steps = np.diff(recall, axis=1, prepend=0.0)
    return np.sum(steps * envelope, axis=1)
