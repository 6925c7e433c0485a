"""The results store: what section notebooks read.

Each function takes the experiments a table needs and returns what exists at a profile; a run
that has not finished gives NaN (shown as missing), never a number from elsewhere. So does a value
that is not a finite number (``null`` in strict JSON, or a bare NaN in an older file).
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


def number(value) -> float:
    """``value`` as a float, or NaN (shown as missing) when it is absent or not a finite number."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return np.nan
    return value if np.isfinite(value) else np.nan


def linear_scores(experiments: dict, profile: Profile, evaluations=TABLE2) -> pd.DataFrame:
    """Test scores of linear runs: rows = ``experiments`` labels, columns = ``evaluations`` (paper names)."""
    rows = {}
    for label, name in experiments.items():
        metrics = plan(name, profile).metrics() or {}
        targets = metrics.get("targets", {})
        rows[label] = {TARGET_COLUMNS[key]: number(targets.get(key, {}).get("test")) for key in evaluations}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[TARGET_COLUMNS[key] for key in evaluations])


def pretrain_logs(experiments: dict, profile: Profile) -> dict:
    """Per-step logs of pretraining runs that have any, keyed by label."""
    logs = {label: read_log(plan(name, profile).dir) for label, name in experiments.items()}
    return {label: records for label, records in logs.items() if records}


def pretrain_metrics(experiments: dict, profile: Profile) -> pd.DataFrame:
    """Summary metrics (final loss, accuracy, throughput) of finished pretraining runs."""
    rows = {label: plan(name, profile).metrics() for label, name in experiments.items()}
    return pd.DataFrame.from_dict({k: v for k, v in rows.items() if v}, orient="index")


def with_deltas(scores: pd.DataFrame, reference: str, digits: dict | None = None) -> pd.DataFrame:
    """Cells as the paper prints them: the score, and in brackets its difference to ``reference``
    (``digits``: decimals per column, default 1; e.g. 3 for depth rmse in metres)."""
    def cell(value, ref, is_ref, d):
        if pd.isna(value):
            return "missing"
        return f"{value:.{d}f}" if is_ref or pd.isna(ref) else f"{value:.{d}f} ({value - ref:+.{d}f})"

    digits = digits or {}
    return pd.DataFrame({col: [cell(scores.at[row, col], scores.at[reference, col] if reference in scores.index else np.nan,
                                    row == reference, digits.get(col, 1)) for row in scores.index]
                         for col in scores.columns}, index=scores.index)


def beside(ours: pd.DataFrame, paper: pd.DataFrame, reference: str, digits: dict | None = None) -> pd.DataFrame:
    """Our rows interleaved with the paper's (``(row, "ours" | "paper")``), each with deltas to ``reference``;
    a cell or row the paper lacks reads "-"."""
    theirs = with_deltas(paper.reindex(index=ours.index, columns=ours.columns), reference, digits)
    both = pd.concat({"ours": with_deltas(ours, reference, digits), "paper": theirs.replace("missing", "-")})
    return both.swaplevel().reindex(pd.MultiIndex.from_product([ours.index, ["ours", "paper"]]))


def snapshot_scores(experiments: dict, profile: Profile, evaluation: str = "voc_svm") -> pd.DataFrame:
    """Scores of the backbones kept along pretraining (Figure 5): one row per run and snapshot."""
    rows = []
    for label, name in experiments.items():
        for snap in (plan(name, profile).metrics() or {}).get("snapshots", []):
            rows.append({"run": label, "epoch": snap["epoch"], "train_seconds": number(snap["train_seconds"]),
                         "score": number(snap.get(evaluation))})
    return pd.DataFrame(rows, columns=["run", "epoch", "train_seconds", "score"])


TASK_COLUMNS = {"voc_seg": "VOC_seg", "cityscapes_seg": "Cityscapes_seg", "nyud_seg": "NYUD_seg", "voc_det": "VOC_det_AP",
                "davis": "DAVIS_JF", "nyud_depth": "NYUD_depth_rmse"}  # dense task -> tables.yaml column


def transfer_scores(experiments: dict, profile: Profile, tasks=tuple(TASK_COLUMNS)) -> pd.DataFrame:
    """Dense-transfer scores (Tables 3, 4, 9, S1): rows = ``experiments`` labels, columns = paper names.

    A task counts as soon as its ``tasks/<task>.json`` exists, so a page fills while a run goes on.
    """
    rows = {}
    for label, name in experiments.items():
        done = transfer_results(plan(name, profile))
        rows[label] = {TASK_COLUMNS[t]: number(done[t]["value"]) if t in done else np.nan for t in tasks}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[TASK_COLUMNS[t] for t in tasks])


def transfer_results(run) -> dict:
    """Every finished task of a transfer run: ``{task: TaskResult as a dict}``."""
    import json

    folder = run.dir / "tasks"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def transfer_details(experiments: dict, profile: Profile, task: str, keys: dict) -> pd.DataFrame:
    """Other numbers of one task (e.g. DAVIS ``J_mean`` / ``F_mean``): ``keys`` maps detail key -> column."""
    rows = {}
    for label, name in experiments.items():
        found = transfer_results(plan(name, profile)).get(task)
        rows[label] = {col: number(found["value"] if key == "value" else found["details"].get(key)) if found else np.nan
                       for key, col in keys.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(keys.values()))


def constant_floors(experiments: dict, profile: Profile, tasks=tuple(TASK_COLUMNS)) -> pd.Series:
    """Per column, the score of a constant prediction (the train set's most frequent class or mean depth):
    the floor a finetuned model must clear. It depends on the data only, so any finished run gives it."""
    floors = {}
    for name in experiments.values():
        for task, result in transfer_results(plan(name, profile)).items():
            if task in tasks and "constant" in result["details"]:
                floors.setdefault(TASK_COLUMNS[task], number(result["details"]["constant"]))
    return pd.Series(floors, dtype=float)


def floor_summary(scores: pd.DataFrame, floors: pd.Series) -> str:
    """One sentence: each column's constant-prediction floor and how many rows clear it (rmse: lower)."""
    parts = []
    for col in scores.columns:
        if col in floors:
            beat = scores[col].lt(floors[col]) if col.endswith("rmse") else scores[col].gt(floors[col])
            parts.append(f"{col} {floors[col]:.{3 if col.endswith('rmse') else 1}f} "
                         f"({int(beat.sum())}/{int(scores[col].notna().sum())} rows clear it)")
    return ("A constant prediction (the most frequent class, or the mean depth, everywhere) scores: " + "; ".join(parts)
            + ".") if parts else ""
