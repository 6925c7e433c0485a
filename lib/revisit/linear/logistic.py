"""Logistic regression on frozen features (paper App. A.2, Table 2; protocol of Ericsson et al., 2021).

Features (``revisit.linear.features``): the frozen backbone in eval mode (weights and BN statistics), pooled,
images resized to a square (224 px at paper scale, App. A.2; ``view: short_side_crop`` for Ericsson et al.'s short
side and centre crop), no augmentation. Classifier: scikit-learn
multinomial ``LogisticRegression`` (L-BFGS) on the raw features as their code (``standardize`` at the book
profiles: L-BFGS converges far faster); the L2 constant is picked
on a validation split among 45 log-spaced values (swept from large C down with warm starts, as Ericsson et al.'s
code), then the model is refit on train + val and scored on test; each fit stops after ``max_iter`` L-BFGS
iterations (100, scikit-learn's default, as their code). VOC2007 (multi-label): one binary classifier per class,
one C for all (the best mean validation AP, as their code), 11-point interpolated AP (``metrics.classifier_ap``),
"difficult" counted as negative.
Pets: mean per-class accuracy.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.preprocessing import StandardScaler

from ..bootstrap import Predictions, bounds
from ..config import LinearParams
from ..metrics import classifier_ap
from .features import LOGISTIC_VIEWS, extract_features

METRICS = {"pets": "mean_per_class_acc", "voc": "mAP"}  # every other target: top-1 accuracy


def c_grid(grid: str = "paper", size: int = 45) -> np.ndarray:
    """Inverse L2 constants, increasing: paper ``1/logspace(-5, 5)``; Ericsson's code ``1/logspace(-6, 5)``."""
    lo, hi = {"paper": (-5, 5), "ericsson": (-6, 5)}[grid]
    return np.sort(1.0 / np.logspace(lo, hi, size))


def score(metric: str, y_true, decision) -> float:
    """The target's metric in percent, from labels and classifier outputs."""
    if metric == "mAP":
        return 100.0 * float(np.mean([classifier_ap(y_true[:, c], decision[:, c], "11-point")
                                      for c in range(y_true.shape[1])]))
    pred = decision if decision.ndim == 1 else decision.argmax(1)
    fn = balanced_accuracy_score if metric == "mean_per_class_acc" else accuracy_score
    return 100.0 * float(fn(y_true, pred))


def _classifier(C, max_iter, warm_start=False):
    return LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter, warm_start=warm_start)


def _sweep(Xtr, ytr, Xval, yval, Cs, max_iter, metric):
    """Validation score at each C of ``Cs`` (increasing) for one classification problem, fitted from the largest C
    down, each fit warm-started from the one before, as Ericsson et al.'s code."""
    clf, curve = _classifier(Cs[-1], max_iter, warm_start=True), []
    for C in Cs[::-1]:
        clf.set_params(C=C)
        clf.fit(Xtr, ytr)
        out = clf.decision_function(Xval) if metric == "AP" else clf.predict(Xval)
        curve.append(100.0 * classifier_ap(yval, out, "11-point") if metric == "AP" else score(metric, yval, out))
    return np.array(curve[::-1])


def best_c(Cs, curve) -> float:
    """The C of the best validation score; on a tie the largest (the first reached from large C down)."""
    return float(Cs[len(curve) - 1 - int(np.argmax(np.asarray(curve)[::-1]))])


@dataclass
class LinearResult:
    """One target's test score, the chosen C(s) and the validation curve(s)."""

    target: str
    metric: str
    test: float
    best_C: list
    val_curve: list
    n_train: int
    n_val: int
    n_test: int
    skipped_images: int
    per_class: list = field(default_factory=list)  # VOC: AP of each class
    train_loss: list = field(default_factory=list)  # SGD protocol: mean loss of each epoch
    interval: list = field(default_factory=list)  # [low, high]: 95% bootstrap interval over test images
    predictions: Predictions | None = field(default=None, repr=False)  # test labels and predictions, for the bootstrap

    def record(self) -> dict:
        """The result as JSON-ready fields, with its interval (bootstrapped here, on first use: Figure 5's snapshot
        scores never need one); the predictions are kept apart, in ``predictions/<target>.npz``."""
        if self.predictions is not None and not self.interval:
            self.interval = bounds(self.predictions)
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "predictions"}


def evaluate(features: dict, labels: dict, target: str, Cs, max_iter=LinearParams.max_iter, skipped=0,
             standardize=LinearParams.standardize) -> LinearResult:
    """Select C on val, refit on train + val, score on test; ``features``/``labels`` keyed by split; ``standardize``
    the features first (on the split each fit sees) or not (Ericsson et al.'s code).

    BLAS and OpenMP run single-threaded here: for problems this size, their threads contend
    and make L-BFGS over ten times slower.
    """
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the weakly regularised end of the grid
        return _evaluate(features, labels, target, Cs, max_iter, skipped, standardize)


def _standardized(fit, *arrays) -> list:
    """``arrays`` standardised with the mean and variance of ``fit``."""
    scaler = StandardScaler().fit(fit)
    return [scaler.transform(a) for a in arrays]


def _evaluate(features, labels, target, Cs, max_iter, skipped, standardize):
    metric = METRICS.get(target, "top1_acc")
    prepare = _standardized if standardize else lambda fit, *arrays: list(arrays)
    Xtr, Xval = prepare(features["train"], features["train"], features["val"])
    ytr, yval = labels["train"], labels["val"]
    Xall = np.concatenate([features["train"], features["val"]])
    yall = np.concatenate([ytr, yval])
    Xall, Xte = prepare(Xall, Xall, features["test"])
    if metric == "mAP":  # one binary problem per class, one C for all: the best mean validation AP (their code)
        curves = np.stack([_sweep(Xtr, ytr[:, c], Xval, yval[:, c], Cs, max_iter, "AP") for c in range(ytr.shape[1])])
        best = [best_c(Cs, curves.mean(0))]
        decision = np.stack([_classifier(best[0], max_iter).fit(Xall, yall[:, c]).decision_function(Xte)
                             for c in range(ytr.shape[1])], axis=1)
    else:
        curves = _sweep(Xtr, ytr, Xval, yval, Cs, max_iter, metric)[None]
        best = [best_c(Cs, curves[0])]
        decision = _classifier(best[0], max_iter).fit(Xall, yall).predict(Xte)
    test = score(metric, labels["test"], decision)
    kind = {"mAP": "ap11", "mean_per_class_acc": "balanced_accuracy"}.get(metric, "accuracy")
    return LinearResult(target, metric, test, best, curves.tolist(), len(ytr), len(yval), len(labels["test"]), skipped,
                        predictions=Predictions(kind, labels["test"], decision))


def evaluate_backbone(backbone, splits: dict, target: str, image_size, Cs, max_iter=LinearParams.max_iter,
                      batch_size=256, workers=0, device="cpu", progress=True, view=LinearParams.view,
                      standardize=LinearParams.standardize) -> LinearResult:
    """Extract features of every split of ``target`` with ``backbone`` (``view``: ``features.LOGISTIC_VIEWS``),
    then ``evaluate``."""
    features, labels, skipped = {}, {}, 0
    for split, images in splits.items():
        X, index, n_skipped = extract_features(backbone, images, LOGISTIC_VIEWS[view](image_size), batch_size, workers,
                                               device, progress)
        features[split], labels[split], skipped = X, images.labels[index], skipped + n_skipped
    return evaluate(features, labels, target, Cs, max_iter, skipped, standardize)
