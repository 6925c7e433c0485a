"""VOC07 linear SVM on frozen features (Tables 4, 7, 8 and 9 "VOC SVM", App. A.2).

One ``LinearSVC`` per class (C = 0.5, positives weighted 2 : 1) on L2-normalised features of
Resize(256) + CenterCrop(224) views, trained on trainval and scored on test; AP is the area
under the interpolated precision-recall curve over all points (VOC2010 onwards, ``metrics.classifier_ap``),
mAP the mean.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import normalize as l2_normalize
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from ..metrics import classifier_ap

MAX_ITER = 2000  # the authors' VOC07 SVM code (issue 14); scikit-learn's default is 1000


def svm_map(train_features, train_labels, test_features, test_labels, C=0.5, seed=0):
    """Mean AP (percent) of one-vs-rest linear SVMs, each class's AP, and their test scores ``(N, classes)``;
    labels are multi-hot ``(N, classes)``."""
    Xtr, Xte = l2_normalize(train_features), l2_normalize(test_features)
    aps, decisions = [], []
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in range(train_labels.shape[1]):
            if train_labels[:, c].min() == train_labels[:, c].max():
                only = "positives" if train_labels[0, c] else "negatives"
                raise ValueError(f"class {c} has only {only} in trainval; an SVM needs both (use more train_images)")
            svm = LinearSVC(C=C, class_weight={1: 2, 0: 1}, max_iter=MAX_ITER, random_state=seed)
            svm.fit(Xtr, train_labels[:, c])
            decisions.append(svm.decision_function(Xte))
            aps.append(100.0 * classifier_ap(test_labels[:, c], decisions[-1], "all-point"))
    return float(np.mean(aps)), aps, np.stack(decisions, axis=1)
