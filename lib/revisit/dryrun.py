"""Dry run of a profile before its first GPU-hour: every kind of run the book makes at that profile, trained for a
few steps at the profile's shapes, timed, and its hours projected for each run and for the book.

Pretraining: a *kind* is what sets the cost of a step: the trainer (MoCo or the supervised ceiling), the crops
(224 px, or 160 px with small 96 px positives), the crop constraint, the augmentation policy and the kNN positives.
One run of each kind is trained for ``steps`` steps at batch ``batch`` on twin images (the loaders of the real
datasets are tested on fixture folders elsewhere) through ``train.pretrain``, the code the runs use. A step at the
profile's batch is projected as the measured step times batch / ``batch`` (per-image cost constant: at a small
batch on a GPU this over-estimates), and a run's hours as its steps (epochs x images / batch) times that.

Evaluations (``evaluation_dry_run``): a linear evaluation or a dense transfer is a sum of *work*: images through
the frozen backbone at a size (features of the linear protocols, the SGD layer's epochs, retrieval, CAMs, DAVIS
frames), and training steps of each finetuning recipe and of Faster R-CNN, measured through ``dense.finetune`` and
``dense.detection.detect`` at the recipe's crop. Image counts are the profile's, else the official splits'
(``TARGET_SIZES``, ``DENSE_SIZES``). Not counted: scikit-learn's fits (CPU), the label propagation's affinities.
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
# (train, test) of the official splits the evaluations read at paper scale: Table 2's targets (Pets trainval, SUN397
# partition 01, VOC2007 trainval), Places365-Standard and ImageNet (train, val); the dense tasks' (App. A.3-A.7:
# VOC train_aug / val, Cityscapes fine, NYUD-v2, VOC07+12 trainval / VOC07 test) and DAVIS-2017 val's frames.
TARGET_SIZES = {"cifar10": (50_000, 10_000), "cars": (8_144, 8_041), "food": (75_750, 25_250), "pets": (3_680, 3_669),
                "sun": (19_850, 19_850), "voc": (5_011, 4_952), "places": (1_803_460, 36_500),
                "imagenet": (1_281_167, 50_000)}
DENSE_SIZES = {"voc_seg": (10_582, 1_449), "cityscapes_seg": (2_975, 500), "nyud_seg": (795, 654),
               "nyud_depth": (795, 654), "voc_det": (16_551, 4_952), "voc_retrieval": (10_582, 1_449)}
DAVIS_FRAMES = 1_999  # 30 videos


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


def report(table: pd.DataFrame, evaluations: pd.DataFrame | None = None) -> str:
    """The dry run as text: per kind, runs and hours (pretraining, then evaluations if given); then the book's."""
    unit = "GPU-hours" if table.attrs["device"].startswith("cuda") else "hours on this CPU"
    kinds = table.groupby("kind").agg(runs=("hours", "size"), step=("s/step", "first"), hours=("hours", "sum"))
    lines = [f"{'pretraining kind':58s} {'runs':>4s} {'s/step':>8s} {unit:>18s}"]
    lines += [f"{row.Index:58s} {row.runs:4d} {row.step:8.2f} {row.hours:18,.0f}" for row in kinds.itertuples()]
    unknown = table["hours"].isna().sum()
    lines.append(f"{'pretraining, all runs':58s} {len(table):4d} {'':8s} {table['hours'].sum():18,.0f}"
                 + (f"  ({unknown} run(s) of unknown size left out)" if unknown else ""))
    if evaluations is None:
        return "\n".join(lines)
    work = evaluations.groupby("kind").agg(runs=("run", "nunique"), each=("s/unit", "first"), unit=("unit", "first"),
                                           hours=("hours", "sum"))
    lines += ["", f"{'evaluation work':58s} {'runs':>4s} {'s/unit':>8s} {unit:>18s}"]
    lines += [f"{row.Index:58s} {row.runs:4d} {row.each:8.3f} {row.hours:18,.0f}  (per {row.unit[:-1]})"
              for row in work.itertuples()]
    evaluated = evaluations["hours"].sum()
    lines.append(f"{'evaluations, all runs':58s} {evaluations['run'].nunique():4d} {'':8s} {evaluated:18,.0f}")
    lines.append(f"{'the book':58s} {len(table) + evaluations['run'].nunique():4d} {'':8s} "
                 f"{table['hours'].sum() + evaluated:18,.0f}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Work:
    """One part of an evaluation's cost: images through the frozen backbone at ``size`` px (``task="features"``),
    or training steps of a dense task's recipe at ``size`` px crops (its test images at that size as features)."""

    task: str
    arch: str
    width: int
    size: int
    batch: int = 1
    channels: int = 256  # the finetuning head's width

    @property
    def kind(self) -> str:
        if self.task == "features":
            return f"frozen {self.arch} features, {self.size} px"
        return f"{self.task} training {self.arch}, {self.size} px, batch {self.batch}"


def _target_sizes(target: str, p) -> tuple[int, int]:
    from .data import TWIN_DEFAULTS

    train, test = (TWIN_DEFAULTS["train"], TWIN_DEFAULTS["test"]) if p.source == "twin" else TARGET_SIZES[target]
    return p.train_images or train, p.test_images or test


def evaluation_work(run) -> list[tuple[Work, int]]:
    """What a linear or transfer run computes, as ``(work, count)``: images for features, steps for training."""
    from .data import DENSE_TWIN_DEFAULTS
    from .dense import detection_params, input_size
    from .dense.finetune import PROTOCOLS, scaled
    from .linear import protocol

    p, work = run.params, []
    if run.experiment.kind == "linear":
        pretrained = run.needs.params if run.needs is not None else None
        snapshots = pretrained.epochs // pretrained.snapshot_every if pretrained and pretrained.snapshot_every else 0
        for name, times in [(n, 1) for n in p.targets] + [(n, snapshots) for n in p.snapshot_targets]:
            target, how = protocol(name)
            train, test = _target_sizes(target, p)
            passes = train * (p.sgd_epochs if how == "sgd" else 1) + test  # the SGD layer sees every epoch's views
            work.append((Work("features", p.arch, p.width, p.image_size), passes * times))
        return work
    twin = p.source == "twin"
    for task in p.tasks:
        train, test = ((DENSE_TWIN_DEFAULTS["train"], DENSE_TWIN_DEFAULTS["test"]) if twin
                       else DENSE_SIZES.get(task, (0, 0)))
        train, test = p.train_images or train, p.test_images or test
        if task in PROTOCOLS:
            recipe = scaled(PROTOCOLS[task], p.schedule, p.resolution, p.lr_scale, p.head_channels, train, p.max_crop)
            scorings = recipe.epochs if p.finetune_epoch == "best" else 1  # the best epoch: every one is scored
            work.append((Work(task, p.arch, p.width, recipe.crop, recipe.batch_size, recipe.head_channels),
                         p.finetune_runs * recipe.epochs * max(train // recipe.batch_size, 1)))
            work.append((Work("features", p.arch, p.width, recipe.crop), p.finetune_runs * scorings * test))
        elif task == "voc_det":
            d = detection_params(p)
            work.append((Work(task, p.arch, p.width, d.test_size, d.batch_size), d.iterations))
        elif task == "davis":
            frames = (p.videos or DENSE_TWIN_DEFAULTS["videos"]) * p.video_frames if twin else DAVIS_FRAMES
            work.append((Work("features", p.arch, p.width, p.resize or 480), frames))
        elif task == "voc_retrieval":
            work.append((Work("features", p.arch, p.width, input_size(p, 512)), train + test))
        else:  # cams: the linear classifier's train set, then the images shown
            work.append((Work("features", p.arch, p.width, p.cam_size), p.cam_train_images + p.cam_images))
    return work


def measure_work(work: Work, batch: int, steps: int, device: str) -> float:
    """Seconds per image (features) or per training step at ``work.batch`` (measured at ``batch``, scaled)."""
    import torch

    from .backbones import build_backbone
    from .config import TransferParams
    from .data import dense_splits

    backbone = build_backbone(work.arch, work.width).to(device)
    if work.task == "features":
        backbone.eval()
        x = torch.randn(batch, 3, work.size, work.size, device=device)
        with torch.no_grad():
            backbone(x)  # warm-up
            _sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                backbone(x)
            _sync(device)
        return (time.perf_counter() - start) / (steps * batch)
    batch = max(batch, 2)  # training BN (DeepLabv3's image pooling) needs two images
    data = TransferParams(source="twin", train_images=batch * steps, test_images=1, arch=work.arch, width=work.width,
                          workers=0)
    train, test = dense_splits(work.task, data)
    start = time.perf_counter()
    if work.task == "voc_det":
        from .dense import detection_params
        from .dense.detection import detect

        params = dataclasses.replace(detection_params(dataclasses.replace(data, det_batch_size=batch)),
                                     iterations=steps, steps=(steps,), warmup_iters=1)
        detect(backbone, train, test, params, device=device, progress=False)
    else:
        from .dense.finetune import PROTOCOLS, finetune

        recipe = dataclasses.replace(PROTOCOLS[work.task], crop=work.size, batch_size=batch, epochs=1, milestones=(),
                                     images=batch * steps, head_channels=work.channels)
        finetune(backbone, train, recipe, device=device, progress=False)
    _sync(device)
    return (time.perf_counter() - start) / steps * work.batch / batch


def _sync(device: str):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def evaluation_dry_run(profile: Profile, batch: int | None = None, steps: int = 3, device: str | None = None,
                       echo=print) -> pd.DataFrame:
    """One row per (linear or transfer run of the book, work): its kind, count, unit, measured seconds per unit, peak
    accelerator memory at the measured batch (None on a CPU) and projected hours. ``batch`` defaults to 16 on a GPU
    and to 1 on a CPU."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    batch = batch or (16 if device.startswith("cuda") else 1)
    runs = [run for run in book_runs(profile) if run.experiment.kind in ("linear", "transfer")]
    cuda, seconds, peaks, rows = device.startswith("cuda"), {}, {}, []
    for run in runs:
        for work, count in evaluation_work(run):
            if work not in seconds:
                start = time.perf_counter()
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                seconds[work] = measure_work(work, batch, steps, device)
                peaks[work] = torch.cuda.max_memory_allocated() / 2**30 if cuda else None  # at the measured batch
                unit = "image" if work.task == "features" else "step"
                echo(f"{work.kind}: {seconds[work]:.3f} s/{unit}"
                     + (f", peak {peaks[work]:.1f} GiB" if cuda else "") + f" ({time.perf_counter() - start:.0f} s)")
            rows.append({"run": run.name, "kind": work.kind, "count": count,
                         "unit": "images" if work.task == "features" else "steps", "s/unit": seconds[work],
                         "peak GiB": peaks[work], "hours": count * seconds[work] / 3600})
    table = pd.DataFrame(rows)
    table.attrs["device"] = device
    return table
