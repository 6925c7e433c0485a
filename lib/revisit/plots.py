"""Figures of the book (seaborn / matplotlib); each function returns its ``Axes`` or ``Figure``."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

sns.set_theme(context="notebook", style="whitegrid")


def loss_curves(logs: dict, ax=None):
    """Training loss and instance accuracy per step, one line per run (``{label: records}``)."""
    rows = [{"run": label, "step": r["step"], "epoch": r["epoch"], "InfoNCE loss": r["loss"], "instance acc.": r["acc"]}
            for label, records in logs.items() for r in records]
    if not rows:
        raise ValueError("no logged steps to plot")
    df = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6)) if ax is None else (ax[0].figure, ax)
    for a, metric in zip(axes, ["InfoNCE loss", "instance acc."]):
        smooth = df.groupby("run")[metric].transform(lambda s: s.rolling(5, min_periods=1).mean())
        sns.lineplot(df.assign(**{metric: smooth}), x="step", y=metric, hue="run", ax=a, linewidth=1.6)
        a.set_xlabel("training step")
    axes[1].get_legend().remove() if len(logs) > 1 else None
    fig.tight_layout()
    return fig


def iou_histogram(ious, bins=50, ax=None):
    """Figure 1: histogram of IoU between the two default crops, non-overlapping pairs marked."""
    ax = ax or plt.subplots(figsize=(6.5, 3.6))[1]
    ious = np.asarray(ious)
    zero = float(np.mean(ious == 0))
    sns.histplot(ious, bins=bins, stat="percent", ax=ax, color="#3b75af", edgecolor="white")
    ax.set_xlabel("IoU between the two views")
    ax.set_ylabel("% of pairs")
    ax.set_title(f"{len(ious):,} pairs of default crops: {100 * zero:.2f}% do not overlap (IoU = 0)")
    return ax


def class_sizes(sizes, ax=None, label=None):
    """Figure S1: class frequencies of a long-tailed set, sorted by size."""
    ax = ax or plt.subplots(figsize=(6.5, 3.4))[1]
    sizes = np.sort(np.asarray(sizes))[::-1]
    ax.fill_between(np.arange(len(sizes)), sizes / sizes.sum(), step="mid", alpha=0.35, color="#c44e52")
    ax.plot(np.arange(len(sizes)), sizes / sizes.sum(), drawstyle="steps-mid", color="#c44e52", label=label)
    ax.set_xlabel("sorted class ids w.r.t. occurrences")
    ax.set_ylabel("fraction of images")
    if label:
        ax.legend()
    return ax


def delta_heatmap(deltas: pd.DataFrame, title: str, ax=None):
    """Differences against a reference row as a diverging heatmap (rows = models, columns = targets)."""
    ax = ax or plt.subplots(figsize=(1.0 * deltas.shape[1] + 2.5, 0.55 * deltas.shape[0] + 1.2))[1]
    values = np.abs(deltas.to_numpy(dtype=float))
    lim = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0  # all missing: an empty map
    sns.heatmap(deltas.astype(float), annot=True, fmt="+.1f", cmap="RdBu", vmin=-lim, vmax=lim, center=0, ax=ax,
                cbar_kws={"label": "points"})
    ax.set_title(title)
    return ax
