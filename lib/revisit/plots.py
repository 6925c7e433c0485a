"""Figures of the book (seaborn / matplotlib); each function returns its ``Axes`` or ``Figure``."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

sns.set_theme(context="notebook", style="whitegrid")


def loss_curves(logs: dict, ax=None):
    """Training loss and instance accuracy per step, one line per run (``{label: records}``).
    Drawn on the Section 3 and Section 4.1 pages."""
    rows = [{"run": label, "step": r["step"], "epoch": r["epoch"], "loss": r["loss"], "instance acc.": r["acc"]}
            for label, records in logs.items() for r in records]
    if not rows:
        raise ValueError("no logged steps to plot")
    df = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6)) if ax is None else (ax[0].figure, ax)
    for a, metric in zip(axes, ["loss", "instance acc."]):
        smooth = df.groupby("run")[metric].transform(lambda s: s.rolling(5, min_periods=1).mean())
        sns.lineplot(df.assign(**{metric: smooth}), x="step", y=metric, hue="run", ax=a, linewidth=1.6, legend=a is axes[0])
        a.set_xlabel("training step")
    if len(logs) > 1:  # one legend for both panels, under them, so no curve hides behind it
        handles, labels = axes[0].get_legend_handles_labels()
        axes[0].get_legend().remove()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(3, len(labels)),
                   frameon=False)
    fig.tight_layout()
    return fig


def iou_histogram(ious, bins=50, ax=None):
    """Figure 1: histogram of IoU between the two default crops, non-overlapping pairs marked.
    Drawn on the Section 3 page."""
    ax = ax or plt.subplots(figsize=(6.5, 3.6))[1]
    ious = np.asarray(ious)
    zero = float(np.mean(ious == 0))
    sns.histplot(ious, bins=bins, stat="percent", ax=ax, color="#3b75af", edgecolor="white")
    ax.set_xlabel("IoU between the two views")
    ax.set_ylabel("% of pairs")
    ax.set_title(f"{len(ious):,} pairs of default crops: {100 * zero:.2f}% do not overlap (IoU = 0)")
    return ax


def class_sizes(sizes, ax=None, label=None):
    """Figure S1: class frequencies of a long-tailed set, sorted by size. Drawn on the Section 3 page."""
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
    """Differences against a reference row as a diverging heatmap (rows = models, columns = targets).
    Drawn on the Section 3 page."""
    ax = ax or plt.subplots(figsize=(1.0 * deltas.shape[1] + 2.5, 0.55 * deltas.shape[0] + 1.2))[1]
    values = np.abs(deltas.to_numpy(dtype=float))
    lim = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0  # all missing: an empty map
    sns.heatmap(deltas.astype(float), annot=True, fmt="+.1f", cmap="RdBu", vmin=-lim, vmax=lim, center=0, ax=ax,
                cbar_kws={"label": "points"})
    ax.set_title(title)
    return ax


def seed_strips(seeds: pd.DataFrame, bounds: pd.DataFrame | None = None, columns: int = 4):
    """Each model's score at every training seed (dots) and their mean (red bar), one panel per column of
    ``results.seed_scores``; ``bounds`` (``results.column_ranges``) draws each column's random init. and ceiling.
    Drawn on the Section 3 and Section 4.1 pages."""
    cols = list(seeds.columns)
    rows = -(-len(cols) // columns)
    fig, axes = plt.subplots(rows, min(columns, len(cols)), figsize=(3.6 * min(columns, len(cols)), 3.2 * rows),
                             squeeze=False)
    long = seeds.reset_index().melt(id_vars=["model", "seed"], var_name="column", value_name="score")
    models = list(dict.fromkeys(seeds.index.get_level_values("model")))
    for ax, col in zip(axes.flat, cols):
        part = long[long["column"] == col]
        sns.stripplot(part, x="model", y="score", order=models, ax=ax, color="#27466e", size=6, jitter=0.12)
        means = part.groupby("model")["score"].mean().reindex(models)
        ax.hlines(means, np.arange(len(models)) - 0.3, np.arange(len(models)) + 0.3, color="#c44e52", lw=2.2,
                  label="mean over seeds")
        if bounds is not None and col in bounds.index:
            for key, style in (("random init.", "--"), ("ceiling", ":")):
                if np.isfinite(bounds.at[col, key]):
                    ax.axhline(bounds.at[col, key], color="#555555", ls=style, lw=1.3, label=key)
        ax.set_title(col)
        ax.set_xlabel("")
        ax.set_ylabel("score" if ax in axes[:, 0] else "")
        plt.setp(ax.get_xticklabels(), rotation=25, ha="right", rotation_mode="anchor")
    for ax in axes.flat[len(cols):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)
    fig.tight_layout()
    return fig


def constrained_crops(images, anchors, candidates, min_overlap, axes=None):
    """Figure 4: each image with its anchor crop (white), valid small crops (green) and rejected ones (red).

    ``images`` are ``(H, W, 3)`` uint8 arrays, ``anchors`` one box per image, ``candidates`` a list of
    boxes per image; boxes are ``(top, left, h, w)``. A candidate is valid when at least
    ``min_overlap`` of its area lies inside the anchor.
    Drawn on the Section 4.1 page."""
    from matplotlib.patches import Rectangle

    from .crops import overlap_fraction

    if axes is None:
        _, axes = plt.subplots(1, len(images), figsize=(3.2 * len(images), 3.4))
    for ax, img, anchor, boxes in zip(np.atleast_1d(axes), images, anchors, candidates):
        ax.imshow(img, interpolation="nearest")
        ax.add_patch(Rectangle((anchor[1] - 0.5, anchor[0] - 0.5), anchor[3], anchor[2], fill=False, lw=2.5,
                               ec="white", ls="--"))
        for box in boxes:
            ok = overlap_fraction(box, anchor) >= min_overlap
            ax.add_patch(Rectangle((box[1] - 0.5, box[0] - 0.5), box[3], box[2], fill=False, lw=1.8,
                                   ec="#2ca02c" if ok else "#d62728"))
        ax.set_axis_off()
    return axes


def smoothed_lines(logs: dict, key: str = "loss", window: int = 5, ax=None):
    """One line per run of a logged value against the training step (``{label: records}``), a rolling mean over
    ``window`` log points."""
    ax = ax or plt.subplots(figsize=(6.5, 3.6))[1]
    for label, records in logs.items():
        values = pd.Series([r[key] for r in records]).rolling(window, min_periods=1).mean()
        ax.plot([r["step"] for r in records], values, label=label, lw=1.6)
    ax.set_xlabel("training step")
    if logs:
        ax.legend(fontsize=8)
    return ax


def iou_sweep(thresholds, scores: pd.Series, margins: pd.Series, logs: dict):
    """Figures 2-3 (Sec. 3.3): VOC SVM mAP against the views' IoU ceiling (1.0: none) with 95% intervals, and the
    training loss of each ceiling. Drawn on the Section 3 page."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    axes[0].errorbar(thresholds, scores.to_numpy(), yerr=margins.to_numpy(), fmt="o-", lw=2, capsize=4)
    axes[0].set_xticks(thresholds, [f"{t:g}" if t < 1 else "none" for t in thresholds])
    axes[0].set_xlabel("maximum IoU between the two views")
    axes[0].set_ylabel("VOC07 SVM mAP")
    axes[0].set_title("Figure 2: transfer versus the IoU ceiling")
    smoothed_lines(logs, ax=axes[1])
    axes[1].set_ylabel("InfoNCE loss")
    axes[1].set_title("Figure 3: training loss per IoU ceiling")
    fig.tight_layout()
    return fig


def sweeps(frames: dict):
    """Table 8 (Sec. 4.3): our score with its 95% interval against each swept value, the paper's on a second axis
    (the levels differ, the shapes compare). ``frames``: ``{name: DataFrame of columns ours, ours ±, paper}``.
    Drawn on the Section 4.3 page."""
    fig, axes = plt.subplots(1, len(frames), figsize=(5.5 * len(frames), 3.4), squeeze=False)
    for ax, (name, frame) in zip(axes.flat, frames.items()):
        x = np.arange(len(frame))
        ax.errorbar(x, frame.iloc[:, 0], yerr=frame.iloc[:, 1], fmt="o-", label="ours", lw=2, capsize=4)
        twin = ax.twinx()
        twin.plot(x, frame.iloc[:, 2], "s--", color="0.35", label="paper")
        twin.set_ylabel("paper mAP", color="0.35")
        twin.grid(False)
        ax.set_xticks(x, [f"{float(v):g}" for v in frame.index])
        ax.set_xlabel(name)
        ax.set_ylabel("our VOC SVM mAP")
        ax.set_title(f"Table 8: {name} sweep (ours solid, 95% intervals; paper dashed)")
    fig.tight_layout()
    return fig


def neighbour_losses(logs: dict):
    """Sec. 4.3: the neighbour loss (Eq. 2; 0 during the warm-up) and the total loss of each kNN-MoCo run.
    Drawn on the Section 4.3 page."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
    smoothed_lines(logs, "loss_nn", 3, axes[0]).set_title("neighbour loss $\\mathcal{L}_{nn}$ (0 during the warm-up)")
    smoothed_lines(logs, "loss", 3, axes[1]).set_title("total loss")
    if logs:
        axes[1].get_legend().remove()
    fig.tight_layout()
    return fig


def snapshot_curves(along: pd.DataFrame):
    """Figure 5 (Sec. 4.1): each snapshot's score against the training time it took, one line per run (``along``:
    rows of run, train_seconds, score). Drawn on the Section 4.1 page."""
    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    for label, frame in along.groupby("run", sort=False):
        ax.plot(frame["train_seconds"] / 60, frame["score"], "o-", label=label, lw=2)
    ax.set_xlabel("training time (minutes, this machine)")
    ax.set_ylabel("VOC07 SVM mAP")
    ax.set_title("Figure 5: transfer versus training time")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return fig


def _gain(values: np.ndarray, reference: float, col: str) -> np.ndarray:
    """``values`` minus ``reference``; for an ``rmse`` column (lower is better) the reduction, so up is a gain."""
    return reference - values if col.endswith("rmse") else values - reference


def _gain_title(col: str) -> str:
    return f"{col} (reduction)" if col.endswith("rmse") else col


def ablation_steps(ours: pd.DataFrame, paper: pd.DataFrame, reference: str, axes=None):
    """Gain over the ``reference`` row after each ablation step, ours beside the paper's, one panel per column.

    Rows are the steps in order (e.g. MoCo, +MC, +CC, ...); a rising line means each addition helped
    (for an ``rmse`` column the reduction is plotted).
    Drawn on the Section 4.1 and Section 4.4 pages."""
    cols = list(ours.columns)
    if axes is None:  # three panels a row
        rows, per_row = -(-len(cols) // 3), min(3, len(cols))
        _, axes = plt.subplots(rows, per_row, figsize=(4.6 * per_row, 3.9 * rows), sharey=False, squeeze=False)
        for extra in axes.flat[len(cols):]:
            extra.remove()
        axes = axes.flat[:len(cols)]
    steps = list(ours.index)
    short = [steps[0]] + [f"+{s[len(prev) + 1:]}" if s.startswith(prev + "+") else s for prev, s in zip(steps, steps[1:])]
    for ax, col in zip(np.atleast_1d(axes), cols):
        for label, table, style in (("ours", ours, "-o"), ("paper", paper, "--s")):
            if col in table and reference in table.index:
                gain = _gain(table[col].reindex(steps).to_numpy(float), float(table.at[reference, col]), col)
                ax.plot(range(len(steps)), gain, style, label=label, lw=1.8, ms=6)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xticks(range(len(steps)), short, rotation=30, ha="right")
        ax.set_title(_gain_title(col))
        ax.set_ylabel(f"gain over {reference}")
    np.atleast_1d(axes)[0].legend()
    np.atleast_1d(axes)[0].figure.tight_layout()
    return axes


def size_series(ours: pd.DataFrame, paper: pd.DataFrame, sets, factors, axes=None):
    """Table S1 against dataset size: each column's gain over the x1 model, ours (solid) beside the paper's (dashed).

    Rows are named ``{set}_x{factor}``. Gains rather than values put ours and the paper's on one scale
    (the twins' numbers sit far below the paper's); for an ``rmse`` column the reduction is plotted.
    """
    cols = list(ours.columns)
    if axes is None:
        _, axes = plt.subplots(1, len(cols), figsize=(3.4 * len(cols), 3.4), squeeze=False)
        axes = axes.flat
    colours = dict(zip(sets, sns.color_palette("deep", len(sets))))
    for ax, col in zip(axes, cols):
        for name in sets:
            rows = [f"{name}_x{f}" for f in factors]
            for label, table, style in (("ours", ours, "o-"), ("paper", paper, "s--")):
                if col in table and set(rows) <= set(table.index):
                    values = table.loc[rows, col].to_numpy(float)
                    ax.plot(factors, _gain(values, values[0], col), style, color=colours[name], alpha=1.0 if label == "ours" else 0.55,
                            label=f"{name} ({label})")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(factors), [f"x{f}" for f in factors])
        ax.set_title(_gain_title(col))
    axes[0].set_ylabel("gain over x1")
    axes[0].legend(fontsize=7)
    axes[0].figure.tight_layout()
    return axes


def class_activation_maps(rows: dict, columns: int = 8):
    """Figures 6 / S2: each row one model's CAMs over the same images (``{label: cams.npz contents}``).
    Drawn on the Section 4.1 page."""
    from .dense.cams import overlay

    rows = {label: data for label, data in rows.items() if data is not None}
    if not rows:
        raise ValueError("no CAMs to plot")
    first = next(iter(rows.values()))
    n = min(columns, len(first["images"]))
    fig, axes = plt.subplots(len(rows) + 1, n, figsize=(1.6 * n, 1.7 * (len(rows) + 1)), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(first["images"][j])
        axes[0, j].set_title(str(first["classes"][first["labels"][j]]), fontsize=7)
        for i, data in enumerate(rows.values(), start=1):
            axes[i, j].imshow(overlay(data["images"][j], data["cams"][j]))
    for i, label in enumerate(["input", *rows], start=0):
        axes[i, 0].set_ylabel(label, fontsize=9)
    _bare(axes)
    fig.tight_layout()
    return fig


def _label_colours(labels: np.ndarray, classes: int):
    palette = np.array(sns.color_palette("tab20", 20) + sns.color_palette("Set3", 12))
    colours = np.concatenate([[[0, 0, 0]], palette[:max(classes, 1)]])
    return colours[np.clip(labels, 0, len(colours) - 1)]


def propagated_masks(example, frames: int = 6):
    """Figure S3: a video's first-frame annotation propagated by nearest neighbours (top: truth, bottom: ours).
    Drawn on the Section 4.1 page."""
    video, truth, found = example["frames"], example["masks"], example["predicted"]
    picks = np.unique(np.linspace(0, len(video) - 1, frames).round().astype(int))
    objects = int(max(truth.max(), found.max()))
    fig, axes = plt.subplots(2, len(picks), figsize=(1.9 * len(picks), 4.0), squeeze=False)
    for j, t in enumerate(picks):
        for i, masks in enumerate([truth, found]):
            shown = np.where((masks[t] > 0)[..., None], 0.45 * video[t] / 255 + 0.55 * _label_colours(masks[t], objects),
                             video[t] / 255)
            axes[i, j].imshow(shown.clip(0, 1))
        axes[0, j].set_title("annotated" if t == 0 else f"frame {t}", fontsize=8)
    axes[0, 0].set_ylabel("ground truth"), axes[1, 0].set_ylabel("propagated")
    _bare(axes)
    fig.tight_layout()
    return fig


def retrieved_segments(examples):
    """Figure S4: each query region (left, outlined in white) and its nearest train regions.
    Drawn on the Section 4.1 page."""
    queries, k = examples["queries"], examples["retrieved"].shape[1]
    classes = [str(c) for c in examples["classes"]]
    fig, axes = plt.subplots(len(queries), k + 1, figsize=(1.9 * (k + 1), 1.9 * len(queries)), squeeze=False)

    def show(ax, image, mask, title):
        h, w = image.shape[:2]
        big = np.kron(mask, np.ones((int(np.ceil(h / mask.shape[0])), int(np.ceil(w / mask.shape[1]))), bool))[:h, :w]
        ax.imshow(np.where(big[..., None], image / 255, 0.3 * image / 255))
        ax.contour(big, levels=[0.5], colors="white", linewidths=0.8)
        ax.set_title(title, fontsize=8)

    for i in range(len(queries)):
        show(axes[i, 0], queries[i], examples["query_masks"][i], f"query: {classes[examples['query_labels'][i]]}")
        for j in range(k):
            show(axes[i, j + 1], examples["retrieved"][i, j], examples["retrieved_masks"][i, j],
                 classes[examples["retrieved_labels"][i, j]])
    _bare(axes)
    fig.tight_layout()
    return fig


def image_rows(rows: dict, columns: int = 8):
    """Twins page: a row of ``columns`` images per entry of ``rows`` (``{title: (N, H, W, 3) uint8}``), titled on the
    left; each row's images are its first ``columns``. Drawn on the Section 4.2 and twins pages."""
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.35 * columns + 1.2, 1.45 * len(rows)), squeeze=False)
    for i, (title, images) in enumerate(rows.items()):
        for j in range(columns):
            if j < len(images):
                axes[i, j].imshow(images[j])
        axes[i, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=9)
    for side in (side for a in axes.flat for side in a.spines.values()):
        side.set_visible(False)
    _bare(axes)
    fig.tight_layout()
    return fig


def dense_examples(examples: dict, columns: int = 4):
    """Twins page: each dense twin's images over their ground truth (``{title: (images, targets)}``: label maps are
    coloured per class, depth maps shaded, boxes drawn). Drawn on the twins page."""
    fig, axes = plt.subplots(2 * len(examples), columns, figsize=(1.6 * columns + 1.2, 3.1 * len(examples)),
                             squeeze=False)
    for i, (title, (images, targets)) in enumerate(examples.items()):
        for j in range(min(columns, len(images))):
            top, bottom = axes[2 * i, j], axes[2 * i + 1, j]
            top.imshow(images[j])
            target = targets[j]
            if hasattr(target, "boxes"):  # detection: boxes on the image
                bottom.imshow(images[j])
                for x0, y0, x1, y1 in np.asarray(target.boxes):
                    bottom.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="#ffcc00", lw=1.2))
            elif np.issubdtype(np.asarray(target).dtype, np.floating):
                bottom.imshow(np.asarray(target), cmap="magma_r")
            else:
                labels = np.asarray(target).astype(np.int64)
                bottom.imshow(_label_colours(np.where(labels == 255, 0, labels), int(labels[labels != 255].max(initial=0))))
        axes[2 * i, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=9)
        axes[2 * i + 1, 0].set_ylabel("ground truth", rotation=0, ha="right", va="center", fontsize=8)
    _bare(axes)
    fig.tight_layout()
    return fig


def _bare(axes):
    """Picture grids: no ticks and no grid on any of ``axes``."""
    for a in axes.flat:
        a.set_xticks([]), a.set_yticks([])
        a.grid(False)
