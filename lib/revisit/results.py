"""The results store: what section notebooks read.

Each function takes the experiments a table needs and returns what exists at a profile; a run
that has not finished gives NaN (shown as missing), never a number from elsewhere. So does a value
that is not a finite number (``null`` in strict JSON, or a bare NaN in an older file).
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .bootstrap import DRAWS, LEVEL, Interval, Predictions, bootstrap_scores, paired_difference
from .config import Profile
from .rundir import predictions_file, read_log
from .runs import plan, replicas

TARGET_COLUMNS = {"cifar10": "CIFAR10", "cars": "Cars", "food": "Food", "pets": "Pets", "places": "Places (logistic)",
                  "sun": "SUN", "voc": "VOC", "voc_svm": "VOC SVM", "imagenet_sgd": "ImageNet",
                  "places_sgd": "Places"}  # evaluation name -> column label
# Table 2's evaluations: logistic regression (Ericsson et al.), but Places with He et al.'s SGD layer (App. A.2)
TABLE2 = ("cifar10", "cars", "food", "pets", "places_sgd", "sun", "voc")
TASK_COLUMNS = {"voc_seg": "VOC_seg", "cityscapes_seg": "Cityscapes_seg", "nyud_seg": "NYUD_seg", "voc_det": "VOC_det_AP",
                "davis": "DAVIS_JF", "nyud_depth": "NYUD_depth_rmse"}  # dense task -> tables.yaml column
FROZEN_COLUMNS = {"voc_retrieval": "classes_7"}  # dense tasks on frozen features beside DAVIS (Table 6's main column)
COLUMNS = TARGET_COLUMNS | TASK_COLUMNS | FROZEN_COLUMNS


def number(value) -> float:
    """``value`` as a float, or NaN (shown as missing) when it is absent or not a finite number."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return np.nan
    return value if np.isfinite(value) else np.nan


def _found(run) -> dict:
    """A run's finished evaluations: linear targets (``metrics.json``) and dense tasks (``tasks/*.json``)."""
    return {**(run.metrics() or {}).get("targets", {}), **transfer_results(run)}


def _cells(experiments: dict, profile: Profile, evaluations, cell) -> pd.DataFrame:
    return _table({label: _found(plan(name, profile)) for label, name in experiments.items()}, evaluations, cell)


def _table(found: dict, evaluations, cell) -> pd.DataFrame:
    """A row per label of ``found`` (its run's finished evaluations), a column per evaluation: ``cell`` of the
    result, NaN where it has not finished."""
    rows = {label: {COLUMNS[key]: cell(results[key]) if key in results else np.nan for key in evaluations}
            for label, results in found.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[COLUMNS[key] for key in evaluations])


def scores(experiments: dict, profile: Profile, evaluations=TABLE2) -> pd.DataFrame:
    """Test scores: rows = ``experiments`` labels, columns = ``evaluations`` (linear evaluations and dense tasks) by
    their paper names. A linear run counts once done, a dense task as soon as its ``tasks/<task>.json`` exists."""
    return _cells(experiments, profile, evaluations, _score)


def _score(result: dict) -> float:
    """The test score of one finished evaluation (a linear target's ``test``, a dense task's ``value``)."""
    return number(result["test"] if "test" in result else result["value"])


def linear_scores(experiments: dict, profile: Profile, evaluations=TABLE2) -> pd.DataFrame:
    """``scores`` of linear runs (default: Table 2's targets)."""
    return scores(experiments, profile, evaluations)


def margins(experiments: dict, profile: Profile, evaluations=TABLE2) -> pd.DataFrame:
    """Half the 95% bootstrap interval over test images of each cell of ``scores``; NaN where unknown."""
    def half_width(result):
        interval = result.get("interval")
        return (number(interval[1]) - number(interval[0])) / 2 if interval and len(interval) == 2 else np.nan

    return _cells(experiments, profile, evaluations, half_width)


@functools.lru_cache(maxsize=256)
def _bootstrapped(path: Path, modified: float):
    predictions = Predictions.load(path)
    return predictions, bootstrap_scores(predictions)


def difference(a: str, b: str, profile: Profile, evaluation: str) -> Interval | None:
    """Run ``a``'s score minus run ``b``'s on ``evaluation`` (a linear evaluation or a dense task), with its paired
    bootstrap interval over the same test images; ``None`` when either run has not saved its predictions."""
    found = []
    for name in (a, b):
        path = predictions_file(plan(name, profile).dir, evaluation)
        if not path.is_file():
            return None
        found.append(_bootstrapped(path, path.stat().st_mtime))
    (pa, da), (pb, db) = found
    return paired_difference(pa, pb, scores=(da, db))


def differences(experiments: dict, profile: Profile, reference: str | None = None, evaluations=TABLE2) -> pd.DataFrame:
    """Paired differences (``Interval`` cells, ``None`` where unknown) of each row to the row labelled ``reference``;
    without one, of each row to the row before it (the steps of an ablation). Rows and columns as ``margins``."""
    labels = list(experiments)
    against = {label: reference if reference is not None else (labels[i - 1] if i else None)
               for i, label in enumerate(labels)}
    rows = {label: {COLUMNS[key]: difference(experiments[label], experiments[other], profile, key)
                    if other is not None and other != label else None for key in evaluations}
            for label, other in against.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[COLUMNS[key] for key in evaluations])


def seed_differences(experiments: dict, profile: Profile, reference: str, evaluations=TABLE2) -> pd.DataFrame:
    """``seed_difference`` of each row to the row labelled ``reference`` (``Interval`` cells, ``None`` where either
    has fewer than 2 finished seeds); rows and columns as ``differences``. Reads every replica once."""
    table = seed_scores(experiments, profile, evaluations)
    rows = {label: {col: _welch(table.loc[label, col], table.loc[reference, col]) if label != reference else None
                    for col in table.columns} for label in experiments}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(table.columns))


def seed_scores(experiments: dict, profile: Profile, evaluations=TABLE2) -> pd.DataFrame:
    """``scores`` of each run at every training seed of the profile (``runs.replicas``): rows ``(label, seed)``; a
    replica not run (not listed under ``seeds`` in ``params/book.yaml``) or unfinished gives NaN."""
    frames = {label: scores(dict(enumerate(replicas(name, profile.seeds))), profile, evaluations)
              for label, name in experiments.items()}
    return pd.concat(frames, names=["model", "seed"])


def seed_difference(a: str, b: str, profile: Profile, evaluation: str) -> Interval | None:
    """Run ``a``'s mean score over its training seeds minus run ``b``'s, with the 95% interval of Welch's t-test over
    the seeds (``scipy.stats.ttest_ind``, unequal variances): the noise of training, where ``difference`` measures
    the noise of the test images. ``None`` unless each has at least 2 finished seeds."""
    return _welch(*(seed_scores({"run": name}, profile, (evaluation,)).iloc[:, 0] for name in (a, b)))


def _welch(a: pd.Series, b: pd.Series) -> Interval | None:
    """Mean of ``a`` minus mean of ``b`` (scores over seeds, NaN = unfinished) with Welch's 95% interval."""
    from scipy.stats import ttest_ind

    found = [a.dropna().to_numpy(), b.dropna().to_numpy()]
    if min(len(x) for x in found) < 2:
        return None
    with warnings.catch_warnings():  # scipy warns when one side's seeds score alike; its interval is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        interval = ttest_ind(*found, equal_var=False).confidence_interval(LEVEL)
    if not (np.isfinite(interval.low) and np.isfinite(interval.high)):  # no spread on either side: no t-test
        return None
    return Interval(float(found[0].mean() - found[1].mean()), float(interval.low), float(interval.high))


def seed_spread(seeds: pd.DataFrame, digits: dict | None = None) -> pd.DataFrame:
    """Per model and column of ``seed_scores``: "mean [lowest, highest] (n)" over its finished seeds; "" for a model
    with fewer than 2."""
    def cell(values, d):
        values = values.dropna()
        return "" if len(values) < 2 else f"{values.mean():.{d}f} [{values.min():.{d}f}, {values.max():.{d}f}] ({len(values)})"

    digits = digits or {}
    grouped = seeds.groupby(level="model", sort=False)
    return pd.DataFrame({col: grouped[col].agg(lambda v, d=digits.get(col, 1): cell(v, d)) for col in seeds.columns})


LOWER_IS_BETTER = ("nyud_depth", "NYUD_depth_rmse")  # the depth rmse, as evaluation and as column


def significant(differences: pd.DataFrame, seeds: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per cell: +1 (better beyond the noise: the interval excludes 0 on the good side), -1 (worse), 0 (the interval
    holds 0), NaN (no test). For the depth rmse a negative difference is better. With ``seeds``
    (``seed_differences``), a cell whose Welch interval over seeds does not give the same sign counts 0."""
    def sign(d, col):
        return np.nan if d is None else (np.sign(d.value) * (-1 if col in LOWER_IS_BETTER else 1) if d.excludes_zero else 0.0)

    def signs_of(frame):
        return pd.DataFrame({col: [sign(d, col) for d in frame[col]] for col in frame.columns}, index=frame.index,
                            dtype=float)

    signs = signs_of(differences)
    if seeds is None:
        return signs
    across = signs_of(seeds).reindex_like(signs)
    return signs.where(across.isna() | (across == signs) | signs.isna(), 0.0)


def tally(signs: pd.DataFrame) -> pd.DataFrame:
    """Per row of ``significant`` signs: in how many columns the row is better, level (within the noise), worse,
    or untested (no interval)."""
    return pd.DataFrame({"better": (signs > 0).sum(axis=1), "level": (signs == 0).sum(axis=1),
                         "worse": (signs < 0).sum(axis=1), "untested": signs.isna().sum(axis=1)})


def pretrain_logs(experiments: dict, profile: Profile) -> dict:
    """Per-step logs of pretraining runs that have any, keyed by label."""
    logs = {label: read_log(plan(name, profile).dir) for label, name in experiments.items()}
    return {label: records for label, records in logs.items() if records}


def pretrain_metrics(experiments: dict, profile: Profile) -> pd.DataFrame:
    """Summary metrics (final loss, accuracy, throughput) of finished pretraining runs."""
    rows = {label: plan(name, profile).metrics() for label, name in experiments.items()}
    return pd.DataFrame.from_dict({k: v for k, v in rows.items() if v}, orient="index")


SIGNIFICANT = "*"  # marks a difference whose paired 95% interval excludes 0


def sweep(experiments: dict, profile: Profile, evaluation: str, paper: dict, name: str, title: str) -> pd.DataFrame:
    """A swept setting ``name`` (Table 8's k or lambda, page 4.3): per value (the labels of ``experiments``,
    sorted), our score, its 95% half-width and the paper's score (NaN where the paper did not train that value),
    under columns ``(title, "ours")``, ``(title, "ours ±")``, ``(title, "paper")``."""
    ours = scores(experiments, profile, (evaluation,)).iloc[:, 0]
    margin = margins(experiments, profile, (evaluation,)).iloc[:, 0]
    frame = pd.DataFrame({(title, "ours"): ours.to_numpy(), (title, "ours ±"): margin.to_numpy(),
                          (title, "paper"): pd.Series(paper, dtype=float).reindex(list(experiments)).to_numpy()},
                         index=pd.Index(list(experiments), name=name))
    return frame.sort_index()


def gains_text(scores: pd.DataFrame, reference: str) -> str:
    """Each row's differences to the ``reference`` row, in prose: "MoCo+CC +1.2, -0.004; ..." (rmse columns to
    three decimals, the others to one)."""
    gains = scores.drop(index=reference) - scores.loc[reference]
    def signed(column, value):
        return f"{value:+.3f}" if column.endswith("rmse") else f"{value:+.1f}"
    return "; ".join(f"{row} " + ", ".join(signed(c, v) for c, v in values.items()) for row, values in gains.iterrows())


def with_deltas(scores: pd.DataFrame, reference: str, digits: dict | None = None, margins: pd.DataFrame | None = None,
                differences: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cells as the paper prints them: the score, and in brackets its difference to ``reference``
    (``digits``: decimals per column, default 1; e.g. 3 for depth rmse in metres). With ``margins`` (from the
    function ``margins``) the score reads "62.3 ±2.1"; with ``differences`` (from ``differences``, to the same
    reference) a difference larger than its noise is marked ``SIGNIFICANT``: "(+3.2*)"."""
    def cell(row, col, d):
        value = scores.at[row, col]
        if pd.isna(value):
            return "missing"
        margin = margins.at[row, col] if margins is not None and row in margins.index and col in margins else np.nan
        text = f"{value:.{d}f}" + ("" if pd.isna(margin) else f" ±{margin:.{d}f}")
        ref = scores.at[reference, col] if reference in scores.index else np.nan
        if row == reference or pd.isna(ref):
            return text
        test = differences.at[row, col] if differences is not None and row in differences.index and col in differences else None
        mark = SIGNIFICANT if test is not None and test.excludes_zero else ""
        return f"{text} ({value - ref:+.{d}f}{mark})"

    digits = digits or {}
    return pd.DataFrame({col: [cell(row, col, digits.get(col, 1)) for row in scores.index] for col in scores.columns},
                        index=scores.index)


SEEDS_ROW = "ours, seeds"  # the line of a model trained at several seeds: "mean [lowest, highest] (n)"


def beside(ours: pd.DataFrame, paper: pd.DataFrame, reference: str, digits: dict | None = None,
           margins: pd.DataFrame | None = None, differences: pd.DataFrame | None = None,
           spread: pd.DataFrame | None = None) -> pd.DataFrame:
    """Our rows interleaved with the paper's (``(row, "ours" | "paper")``), each with deltas to ``reference``
    (ours with ``margins`` and ``differences`` as in ``with_deltas``); a cell or row the paper lacks reads "-". With
    ``spread`` (``seed_spread``), a model trained at several seeds gets a third line, ``SEEDS_ROW``."""
    parts = {"ours": with_deltas(ours, reference, digits, margins, differences),
             "paper": with_deltas(paper.reindex(index=ours.index, columns=ours.columns), reference,
                                  digits).replace("missing", "-")}
    if spread is not None:
        parts[SEEDS_ROW] = spread.reindex(index=ours.index, columns=ours.columns).fillna("")
    both = pd.concat(parts).swaplevel().reindex(pd.MultiIndex.from_product([ours.index, list(parts)]))
    return both[[kind != SEEDS_ROW or (row != "").any() for (_, kind), row in both.iterrows()]]


def uncertainty_note(reference: str) -> str:
    """The legend of a table whose cells carry ``with_deltas``' margins and marks."""
    return (f"± is half the 95% bootstrap interval over the test images ({DRAWS} resamples). A difference to {reference} "
            f"marked {SIGNIFICANT} is larger than its noise: its 95% interval from a paired bootstrap (both models scored "
            "on the same resamples of the same test images) excludes 0. Cells without ± have no interval yet.")


def snapshot_scores(experiments: dict, profile: Profile, evaluation: str = "voc_svm") -> pd.DataFrame:
    """Scores of the backbones kept along pretraining (Figure 5): one row per run and snapshot."""
    rows = []
    for label, name in experiments.items():
        for snap in (plan(name, profile).metrics() or {}).get("snapshots", []):
            rows.append({"run": label, "epoch": snap["epoch"], "train_seconds": number(snap["train_seconds"]),
                         "score": number(snap.get(evaluation))})
    return pd.DataFrame(rows, columns=["run", "epoch", "train_seconds", "score"])


def transfer_scores(experiments: dict, profile: Profile, tasks=tuple(TASK_COLUMNS)) -> pd.DataFrame:
    """``scores`` of dense-transfer runs (Tables 3, 4, 9, S1; default: every task), filled while a run goes on."""
    return scores(experiments, profile, tasks)


RELEASED = {"MoCo_200": "moco_coco_200ep", "Ours_200": "ours_coco_200ep", "MoCo_800": "moco_coco_800ep",
            "Ours_800": "ours_coco_800ep"}  # the model zoo of the authors' README (its row -> the released params:
# params/linear/released/<name> and params/transfer/released/<name> evaluate each checkpoint)
ZOO_COLUMNS = {"VOC_SVM": "VOC SVM"}  # the README's columns by our names (the others are the same)


def released(profile: Profile, epochs: int, evaluations) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The authors' released models of ``epochs`` evaluated here, and the same models in their README's model zoo:
    two tables, the rows whose linear or transfer runs have finished at ``profile`` (none at the book profiles:
    those runs need the ResNet-50 checkpoints, ``pretrain: external:PATH``). Separates evaluation differences from
    pretraining ones (see the README, "The authors' released models")."""
    from . import paper
    from .runs import ExternalArchError

    found = {}
    for label, name in RELEASED.items():
        if not label.endswith(f"_{epochs}"):
            continue
        for kind in ("linear", "transfer"):
            try:
                found.setdefault(label, {}).update(_found(plan(f"{kind}/released/{name}", profile)))
            except ExternalArchError:  # a book profile: not a ResNet-50
                continue
    ours = _table({label: results for label, results in found.items() if results}, evaluations, _score)
    zoo = paper.table("official_code_model_zoo").rename(columns=ZOO_COLUMNS)
    return ours, zoo.loc[list(ours.index), [c for c in zoo.columns if c in ours.columns]]


@dataclass
class Measured:
    """A table of ours: each cell's score, its margin (half its 95% interval) and its paired difference to a
    reference row (``Interval`` cells)."""

    scores: pd.DataFrame
    margins: pd.DataFrame
    differences: pd.DataFrame


def measure(groups: list, profile: Profile, reference: str) -> Measured:
    """``Measured`` for a table whose column groups come from different runs with the same row labels:
    ``groups`` = ``[(TRANSFER, DENSE), (LINEAR, EVALUATIONS)]`` (experiments by label, evaluations)."""
    parts = [(scores(runs, profile, evaluations), margins(runs, profile, evaluations),
              differences(runs, profile, reference, evaluations)) for runs, evaluations in groups]
    return Measured(*(pd.concat(frames, axis=1) for frames in zip(*parts)))


def transfer_results(run) -> dict:
    """Every finished task of a transfer run: ``{task: TaskResult as a dict}``."""
    import json

    folder = run.dir / "tasks"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def saved_arrays(name: str, profile: Profile, file: str) -> dict | None:
    """The arrays a transfer run saved for a figure (``cams.npz``, ``davis_example.npz``, ...), or ``None`` before
    the run has written them."""
    path = plan(name, profile).dir / file
    return dict(np.load(path)) if path.is_file() else None


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


CANNOT_DISCRIMINATE = "cannot discriminate at this profile"


def column_ranges(ceiling: str, floor: str, profile: Profile, evaluations, constants: pd.Series | None = None
                  ) -> pd.DataFrame:
    """Per column (rows of the result, by label): the range a model can move in at this profile.

    ``floor`` is the random-init. run and ``ceiling`` the supervised one; ``constants`` the constant-prediction scores
    of the dense columns (``constant_floors``). A column discriminates when the ceiling beats the random init.
    beyond the noise (paired bootstrap over the same test images, 95%) and its interval clears the constant
    prediction; ``range`` is the ceiling's margin over the better floor (for the depth rmse, the floor's excess)."""
    constants = pd.Series(dtype=float) if constants is None else constants
    top = scores({"ceiling": ceiling, "floor": floor}, profile, evaluations)
    found = _found(plan(ceiling, profile))  # the ceiling's records, read once for every column's interval
    rows = {}
    for key in evaluations:
        col = COLUMNS[key]
        lower = key in LOWER_IS_BETTER
        ceil, rand, const = top.at["ceiling", col], top.at["floor", col], constants.get(col, np.nan)
        best_floor = pd.Series([rand, const]).min() if lower else pd.Series([rand, const]).max()  # NaN: none known
        gain = difference(ceiling, floor, profile, key)
        low, high = (found.get(key, {}).get("interval") or [np.nan, np.nan])
        if gain is None or pd.isna(ceil):
            verdict = "untested"
        else:
            beats_random = gain.high < 0 if lower else gain.low > 0
            beats_constant = pd.isna(const) or (number(high) < const if lower else number(low) > const)
            verdict = "discriminates" if beats_random and beats_constant else CANNOT_DISCRIMINATE
        rows[col] = {"constant": const, "random init.": rand, "ceiling": ceil,
                     "range": (best_floor - ceil) if lower else (ceil - best_floor), "verdict": verdict}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["constant", "random init.", "ceiling", "range", "verdict"])


CEILING = "Supervised (ceiling)"  # the row label of a table's ceiling


def table_ranges(groups: list, profile: Profile, floor: str, ceiling: str = CEILING) -> pd.DataFrame:
    """``column_ranges`` of a table whose column groups come from different runs (as ``measure``'s ``groups``), with
    the rows labelled ``floor`` (random init.) and ``ceiling`` in each group; dense columns get their constant floor."""
    return pd.concat([column_ranges(runs[ceiling], runs[floor], profile, evaluations,
                                    constant_floors(runs, profile, evaluations)) for runs, evaluations in groups])


def blind(ranges: pd.DataFrame) -> list[str]:
    """The columns of ``column_ranges`` that no model could move at this profile."""
    return [col for col in ranges.index if ranges.at[col, "verdict"] == CANNOT_DISCRIMINATE]


def styled(table: pd.DataFrame, blind_columns=(), caption: str = ""):
    """``table`` as a Styler whose columns that cannot discriminate are greyed and headed "<column> (blind)":
    a number no model could move is shown, never presented as a result."""
    names = {col: f"{col} (blind)" for col in blind_columns if col in table.columns}
    shown = table.rename(columns=names)
    style = shown.style.set_caption(caption)
    if names:
        ours = (shown.index.get_level_values(-1).str.startswith("ours") if shown.index.nlevels > 1
                else np.ones(len(shown), bool))
        style = style.set_properties(subset=pd.IndexSlice[shown.index[ours], list(names.values())],
                                     **{"color": "#9a9a9a", "background-color": "#f3f3f3"})
    return style


def blind_note(ranges: pd.DataFrame) -> str:
    """The legend of ``styled``: which columns cannot discriminate and why, or that every column can."""
    cols = blind(ranges)
    untested = [col for col in ranges.index if ranges.at[col, "verdict"] == "untested"]
    text = ("Every column discriminates: the supervised ceiling beats random init. beyond the noise." if not cols else
            f"**{', '.join(cols)}: {CANNOT_DISCRIMINATE}** (greyed, marked *blind*): the backbone trained with labels "
            "under the same budget does not beat random init. beyond the noise (paired bootstrap over the test "
            "images, 95%) or does not clear the constant prediction, so no model's number there is a result.")
    if untested:
        text += f" Not yet tested (ceiling or floor missing): {', '.join(untested)}."
    return text


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
