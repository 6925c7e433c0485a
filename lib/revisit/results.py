"""The results store: what section notebooks read (DESIGN.md "Runs, profiles, results").

Each function takes the experiments a table needs and returns what exists at a profile; a run
that has not finished gives NaN (shown as missing), never a number from elsewhere.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .config import Profile
from .runs import plan
from .train import read_log

TARGET_COLUMNS = {"cifar10": "CIFAR10", "cars": "Cars", "food": "Food", "pets": "Pets", "places": "Places",
                  "sun": "SUN", "voc": "VOC", "voc_svm": "VOC SVM", "imagenet_sgd": "ImageNet",
                  "places_sgd": "Places (SGD)"}  # evaluation name -> column label
TABLE2 = ("cifar10", "cars", "food", "pets", "places", "sun", "voc")


def linear_scores(experiments: dict, profile: Profile, evaluations=TABLE2) -> pd.DataFrame:
    """Test scores of linear runs: rows = ``experiments`` labels, columns = ``evaluations`` (paper names)."""
    rows = {}
    for label, name in experiments.items():
        metrics = plan(name, profile).metrics() or {}
        targets = metrics.get("targets", {})
        rows[label] = {TARGET_COLUMNS[key]: targets.get(key, {}).get("test", np.nan) for key in evaluations}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[TARGET_COLUMNS[key] for key in evaluations])


def pretrain_logs(experiments: dict, profile: Profile) -> dict:
    """Per-step logs of pretraining runs that have any, keyed by label."""
    logs = {label: read_log(plan(name, profile).dir) for label, name in experiments.items()}
    return {label: records for label, records in logs.items() if records}


def pretrain_metrics(experiments: dict, profile: Profile) -> pd.DataFrame:
    """Summary metrics (final loss, accuracy, throughput) of finished pretraining runs."""
    rows = {label: plan(name, profile).metrics() for label, name in experiments.items()}
    return pd.DataFrame.from_dict({k: v for k, v in rows.items() if v}, orient="index")


def with_deltas(scores: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Cells as the paper prints them: the score, and in brackets its difference to ``reference``."""
    def cell(value, ref, is_ref):
        if pd.isna(value):
            return "missing"
        return f"{value:.1f}" if is_ref or pd.isna(ref) else f"{value:.1f} ({value - ref:+.1f})"

    return pd.DataFrame({col: [cell(scores.at[row, col], scores.at[reference, col] if reference in scores.index else np.nan,
                                    row == reference) for row in scores.index] for col in scores.columns},
                        index=scores.index)


def snapshot_scores(experiments: dict, profile: Profile, evaluation: str = "voc_svm") -> pd.DataFrame:
    """Scores of the backbones kept along pretraining (Figure 5): one row per run and snapshot."""
    rows = []
    for label, name in experiments.items():
        for snap in (plan(name, profile).metrics() or {}).get("snapshots", []):
            rows.append({"run": label, "epoch": snap["epoch"], "train_seconds": snap["train_seconds"],
                         "score": snap.get(evaluation, np.nan)})
    return pd.DataFrame(rows, columns=["run", "epoch", "train_seconds", "score"])
