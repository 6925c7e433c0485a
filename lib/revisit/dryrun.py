"""Dry run of a profile before its first GPU-hour: every kind of pretraining the book runs at that profile, trained
for a few steps at the profile's shapes (backbone, crops, queue, precision, BN groups, kNN), timed, and its hours
projected for each run and for the book.

A *kind* is what sets the cost of a step: the trainer (MoCo or the supervised ceiling), the crops (224 px, or
160 px with small 96 px positives), the crop constraint, the augmentation policy and the kNN positives. One run of
each kind is trained for ``steps`` steps at batch ``batch`` on twin images (the loaders of the real datasets are
tested on fixture folders elsewhere) through ``train.pretrain``, the code the runs use. A step at the profile's
batch is projected as the measured step times batch / ``batch`` (per-image cost constant: at a small batch on a GPU
this over-estimates), and a run's hours as its steps (epochs x images / batch) times that. Linear evaluations and
dense transfers are not measured yet; at the paper profile they are a small part of the book's GPU time.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass

import pandas as pd

from .batch import book_runs
from .config import PRETRAINING, Profile

# Official train-split sizes of the sets that the book pretrains on whole (``images: null``), for projections on a
# machine without the data: COCO train2017, the BDD100K 100k-image set's train split.
FULL_SPLITS = {"coco": 118_287, "bdd100k": 70_000}


def kind(run) -> str:
    """The step-cost signature of a pretraining run, e.g. ``MoCo 160 px + 4 x 96 px, CC, mixed, kNN``."""
    p = run.params
    crops = f"{p.crop_size} px" + (f" + {p.small_crops} x {p.small_crop_size} px" if p.small_crops else "")
    options = [crops] + (["CC"] if p.small_crops and p.min_overlap > 0 else []) + [p.policy]
    options += ["kNN"] if p.nn_lambda > 0 else []
    trainer = "supervised" if run.experiment.kind == "supervised" else "MoCo"
    return f"{trainer} {p.arch} " + ", ".join(options)


def run_images(p) -> int | None:
    """The images a run trains on at its profile: its subset size, or the full split's."""
    return p.images or FULL_SPLITS.get(p.dataset)


@dataclass
class Measured:
    """One kind's trial: the batch it ran at, seconds per step there, peak accelerator memory (None on a CPU)."""

    kind: str
    batch: int
    seconds_per_step: float
    peak_gib: float | None


def measure(run, batch: int, steps: int, device: str) -> Measured:
    """Train ``run``'s params for ``steps`` steps of ``batch`` on twin images and time a step (the median over the
    steps, so the first one's warm-up does not count)."""
    import torch

    from .data import twins
    from .train import pretrain

    p = dataclasses.replace(run.params, source="twin", epochs=1, batch_size=batch, log_every=1, snapshot_every=0,
                            nn_warmup_epochs=0.0, images=batch * steps,  # kNN from the first step
                            workers=min(run.params.workers, os.cpu_count() or 1))
    images = twins.generate_pretrain(p.dataset, batch * steps, seed=0)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as folder:
        summary = pretrain(p, images, folder, device, progress=False)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return Measured(kind(run), batch, batch / summary["images_per_s"], peak)


def largest_batch(run, start: int, steps: int, device: str) -> Measured:
    """``measure`` at the largest batch, halving from ``start``, that fits in the device's memory."""
    import torch

    batch = start
    while True:
        try:
            return measure(run, batch, steps, device)
        except torch.OutOfMemoryError:
            if batch <= 2:
                raise
            torch.cuda.empty_cache()
            batch //= 2


def dry_run(profile: Profile, batch: int | None = None, steps: int = 3, device: str | None = None,
            echo=print) -> pd.DataFrame:
    """One row per pretraining run of the book at ``profile``: its kind, images, epochs, the measured step and the
    projected hours (``attrs["device"]``: where it was measured). ``batch`` defaults to the profile's on a GPU
    (halved until it fits) and to 4 on a CPU."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    runs = [run for run in book_runs(profile) if run.experiment.kind in PRETRAINING]
    trials = {}
    for run in runs:
        if kind(run) in trials:
            continue
        start = time.perf_counter()
        first = batch or (run.params.batch_size if device.startswith("cuda") else 4)
        trials[kind(run)] = trial = largest_batch(run, first, steps, device)
        echo(f"{trial.kind}: {trial.seconds_per_step:.2f} s/step at batch {trial.batch}"
             + (f", peak {trial.peak_gib:.1f} GiB" if trial.peak_gib is not None else "")
             + f" ({time.perf_counter() - start:.0f} s)")
    rows = []
    for run in runs:
        p, trial = run.params, trials[kind(run)]
        images = run_images(p)
        step = trial.seconds_per_step * p.batch_size / trial.batch
        total = p.epochs * (images // p.batch_size) if images else None
        rows.append({"run": run.name, "kind": trial.kind, "images": images, "epochs": p.epochs,
                     "batch": p.batch_size, "measured at batch": trial.batch, "s/step": step,
                     "peak GiB": trial.peak_gib, "steps": total, "hours": total * step / 3600 if total else None})
    table = pd.DataFrame(rows).set_index("run")
    table.attrs["device"] = device
    return table


def report(table: pd.DataFrame, device: str) -> str:
    """The dry run as text: per kind, runs and hours; then the book's total."""
    unit = "GPU-hours" if device.startswith("cuda") else "hours on this CPU"
    kinds = table.groupby("kind").agg(runs=("hours", "size"), step=("s/step", "first"), hours=("hours", "sum"))
    lines = [f"{'kind':58s} {'runs':>4s} {'s/step':>8s} {unit:>18s}"]
    lines += [f"{row.Index:58s} {row.runs:4d} {row.step:8.2f} {row.hours:18,.0f}" for row in kinds.itertuples()]
    unknown = table["hours"].isna().sum()
    lines.append(f"{'pretraining, all runs':58s} {len(table):4d} {'':8s} {table['hours'].sum():18,.0f}"
                 + (f"  ({unknown} run(s) of unknown size left out)" if unknown else ""))
    return "\n".join(lines)
