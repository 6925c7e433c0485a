"""Datasets: real loaders for the official layouts, the subsets of Table 1, and synthetic twins.

``pretrain_images`` and ``target_splits`` are what runs call: they read ``source`` from the
params and return the real dataset (under ``DATA_ROOT``) or its twin.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import twins
from .images import DatasetNotFoundError, ImageSet
from .subsets import (LT_MIN_PER_CLASS, long_tailed_class_sizes, long_tailed_subset, random_subset, save_file_list,
                      uniform_subset)

__all__ = ["DatasetNotFoundError", "ImageSet", "cam_images", "data_root", "davis_videos", "dense_splits",
           "LT_MIN_PER_CLASS", "long_tailed_class_sizes", "pretrain_images",
           "target_splits", "twins"]

TWIN_DEFAULTS = {"pretrain": 4000, "train": 1200, "test": 600}
VAL_FRACTION = 0.2  # of train, where a target has no official val split (Ericsson et al.)


def data_root() -> Path:
    """Folder holding the real datasets: ``$DATA_ROOT``, else ``./data``."""
    return Path(os.environ.get("DATA_ROOT", "data")).expanduser().resolve()


def pretrain_images(p, run_dir=None) -> ImageSet:
    """The pretraining set of ``p`` (a ``PretrainParams``); the chosen files are saved in ``run_dir``."""
    if p.source == "twin":
        return twins.cached(twins.generate_pretrain, p.dataset, p.images or TWIN_DEFAULTS["pretrain"], seed=p.seed)
    from .loaders import PRETRAIN_LOADERS

    full = PRETRAIN_LOADERS[p.dataset](data_root())
    if p.images is None or p.images >= len(full):
        index = np.arange(len(full))
    elif p.dataset == "in118k":
        index = uniform_subset(full.labels, p.images, p.seed)
    elif p.dataset == "in118k_lt":
        index = long_tailed_subset(full.labels, p.images, alpha=6.0, seed=p.seed)
    else:
        index = random_subset(len(full), p.images, p.seed)
    images = full.subset(index)
    if run_dir is not None:
        save_file_list(Path(run_dir) / "subset_files.txt", images.files)
    return images


def _carve_val(train: ImageSet, seed: int):
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = int(round(VAL_FRACTION * len(train)))
    return train.subset(np.sort(order[n_val:])), train.subset(np.sort(order[:n_val]))


def _limit(images: ImageSet, n, seed):
    if n is None or n >= len(images):
        return images
    return images.subset(np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False)))


def target_splits(name: str, p) -> dict:
    """``{"train", "val", "test"}`` of classification target ``name`` for ``p`` (a ``LinearParams``)."""
    if p.source == "twin":
        n_train = p.train_images or TWIN_DEFAULTS["train"]
        n_test = p.test_images or TWIN_DEFAULTS["test"]
        train = twins.cached(twins.generate_target, name, "train", n_train, seed=p.seed)
        test = twins.cached(twins.generate_target, name, "test", n_test, seed=p.seed)
        if name == "voc":  # VOC2007 has an official val split
            val = twins.cached(twins.generate_target, name, "val", n_train // 4, seed=p.seed)
        else:
            train, val = _carve_val(train, p.seed)
        return {"train": train, "val": val, "test": test}
    from .loaders import TARGET_LOADERS, TARGET_SPLITS

    load, (train_split, val_split, test_split) = TARGET_LOADERS[name], TARGET_SPLITS[name]
    train = _limit(load(data_root(), train_split), p.train_images, p.seed)
    val = load(data_root(), val_split) if val_split else None
    if val is None:
        train, val = _carve_val(train, p.seed)
    return {"train": train, "val": val, "test": _limit(load(data_root(), test_split), p.test_images, p.seed)}


DENSE_TWIN_DEFAULTS = {"train": 300, "test": 100, "videos": 6}


def _dense_twin(task: str, split: str, n: int, seed: int):
    from . import dense_twins

    if task in ("nyud_seg", "nyud_depth"):
        seg, depth = dense_twins.cached_dense(dense_twins.nyud, split, n, seed=seed)
        return seg if task == "nyud_seg" else depth
    make = {"voc_seg": dense_twins.voc_segmentation, "cityscapes_seg": dense_twins.cityscapes_segmentation,
            "voc_det": dense_twins.voc_detection}[task]
    return dense_twins.cached_dense(make, split, n, seed=seed)


def dense_splits(task: str, p) -> tuple:
    """``(train, test)`` ``DenseSet``s of dense task ``task`` (``voc_seg``, ``nyud_depth``, ...) for ``p``
    (a ``TransferParams``): the official splits under ``DATA_ROOT`` (subsampled to ``train_images`` /
    ``test_images`` if set), or the twins."""
    if p.source == "twin":
        n_train = p.train_images or DENSE_TWIN_DEFAULTS["train"]
        n_test = p.test_images or DENSE_TWIN_DEFAULTS["test"]
        return _dense_twin(task, "train", n_train, p.seed), _dense_twin(task, "test", n_test, p.seed)
    from .dense_loaders import DENSE_LOADERS

    source = DENSE_LOADERS[task]
    train, test = source.load(data_root(), source.train), source.load(data_root(), source.test)
    return _limit(train, p.train_images, p.seed), _limit(test, p.test_images, p.seed)


def davis_videos(p) -> list:
    """DAVIS-2017 val (the first ``videos`` sequences if set) or its twin: short videos with instance tracks."""
    if p.source == "twin":
        from . import dense_twins

        return dense_twins.cached_dense(dense_twins.davis_videos, p.videos or DENSE_TWIN_DEFAULTS["videos"],
                                        p.video_frames, seed=p.seed)
    from .dense_loaders import DENSE_LOADERS

    source = DENSE_LOADERS["davis"]
    videos = source.load(data_root(), source.test)
    return videos[:p.videos] if p.videos else videos


def cam_images(p) -> tuple:
    """``(train, shown)`` for the CAMs of Figures 6 / S2: ImageNet train (+ val) for the linear classifier,
    ImageNet val (or the object-centric twin's test split) for the maps."""
    splits = target_splits("imagenet", p)
    train = _limit(splits["train"], p.cam_train_images, p.seed)
    both = ImageSet(train.name, train.files + splits["val"].files if train.files else [],
                    None if train.array is None else np.concatenate([train.array, splits["val"].array]),
                    np.concatenate([train.labels, splits["val"].labels]), train.classes)
    return both, splits["test"]
