"""DAVIS-2017 label propagation with frozen features (App. A.6, Table 5, Table 9, Figure S3).

The protocol of Jabri et al. ("Space-Time Correspondence as a Contrastive Random Walk", their
``code/test.py`` with ``--topk 10 --videoLen 20 --radius 12 --temperature 0.05 --cropSize -1``):

* features: stride-8 res4 maps (``FeatureMap(backbone, depth=3, dilate=(3, 4))``) of ImageNet-normalised
  frames at native resolution, L2-normalised per position;
* each target frame attends to the first frame (its annotation) and the previous ``context`` frames
  (their propagated soft labels); before frame ``context`` the missing frames are copies of the
  first one, as Jabri's loader pads the video with ``context`` copies of frame 0;
* affinity = dot product, keys of the short-term frames restricted to a spatial radius (Euclidean,
  ``distance < radius`` feature cells; the first frame unrestricted), divided by the temperature;
  the top-k over all context positions, softmax over those k, weighted sum of their soft labels;
* labels are one-hot maps bilinearly resized to the feature grid; the prediction is upsampled
  bilinearly to the frame, argmax over (background, objects of frame 0), saved as indexed PNGs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from ..augment import IMAGENET_MEAN, IMAGENET_STD
from ..data.dense import Video
from ..metrics import davis_sequence, davis_summary



@dataclass
class PropagationParams:
    """Jabri et al.'s DAVIS settings; ``frame_size`` (short side in pixels) None = native 480p."""

    context: int = 20  # previous frames attended to, besides the first
    radius: float = 12  # spatial radius in feature cells, short-term frames only
    topk: int = 10
    temperature: float = 0.05
    frame_size: int | None = None
    chunk: int = 512  # query positions per affinity block: memory only, the result does not change

    def __post_init__(self):
        if self.context < 1 or self.topk < 1 or self.temperature <= 0 or self.radius <= 0 or self.chunk < 1:
            raise ValueError(f"need context, topk, chunk >= 1 and radius, temperature > 0, got {self}")


def davis_palette() -> list[int]:
    """The DAVIS / PASCAL VOC colour map (768 values): object ``k``'s colour from the bits of ``k``."""
    palette = []
    for k in range(256):
        r = g = b = 0
        for bit in range(8):
            r |= ((k >> 3 * bit) & 1) << (7 - bit)
            g |= ((k >> 3 * bit + 1) & 1) << (7 - bit)
            b |= ((k >> 3 * bit + 2) & 1) << (7 - bit)
        palette += [r, g, b]
    return palette


def _frame_tensor(frame: np.ndarray, frame_size: int | None) -> torch.Tensor:
    """``(1, 3, h, w)`` float frame in [0, 1], ImageNet-normalised, short side resized to ``frame_size``."""
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float() / 255.0
    if frame_size is not None:
        h, w = x.shape[-2:]
        scale = frame_size / min(h, w)
        x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear", align_corners=False,
                          antialias=True)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _short_term_bias(h: int, w: int, radius: float, queries: slice, device) -> torch.Tensor:
    """``(h*w, n_queries)`` additive mask: 0 where key and query cells are closer than ``radius``,
    -1e10 elsewhere (Jabri's ``MaskedAttention``: ``distance < radius``, added before the temperature)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    cells = torch.stack([ys.flatten(), xs.flatten()], 1).float()
    near = torch.cdist(cells, cells[queries]) < radius
    return torch.where(near, 0.0, -1e10)


def _attend(query: torch.Tensor, keys: torch.Tensor, labels: torch.Tensor, hw: tuple[int, int],
            params: PropagationParams) -> torch.Tensor:
    """Soft labels ``(K, P)`` of one target frame from its context.

    ``query`` ``(C, P)``; ``keys`` ``(N, C, P)`` with the first frame first (unrestricted), then the
    short-term frames (radius-restricted); ``labels`` ``(N, K, P)`` their soft labels.
    """
    n, k, p = labels.shape
    flat_labels = labels.permute(1, 0, 2).reshape(k, n * p)
    out = []
    for start in range(0, p, params.chunk):
        queries = slice(start, min(start + params.chunk, p))
        affinity = torch.einsum("ncp,cq->npq", keys, query[:, queries])
        affinity[1:] += _short_term_bias(*hw, params.radius, queries, query.device)
        affinity = affinity.reshape(n * p, -1) / params.temperature
        weights, index = torch.topk(affinity, min(params.topk, n * p), dim=0)
        weights = F.softmax(weights, dim=0)
        out.append((flat_labels[:, index] * weights[None]).sum(1))
    return torch.cat(out, 1)


def _features(feature_map: nn.Module, frame: np.ndarray, params: PropagationParams, device) -> torch.Tensor:
    """``(C, h, w)`` L2-normalised features of one frame."""
    return F.normalize(feature_map(_frame_tensor(frame, params.frame_size).to(device))[0], dim=0)


@torch.no_grad()
def propagate(feature_map: nn.Module, video: Video, params: PropagationParams | None = None,
              device="cpu") -> np.ndarray:
    """Predicted label maps ``(T, H, W)`` int64 of ``video`` from its first-frame annotation.

    Frame 0 of the output is the annotation itself (the evaluation does not score it). Features and
    soft labels are kept only for the first frame and the last ``context`` frames.
    """
    params = params or PropagationParams()
    if len(video) == 0:
        raise ValueError(f"video {video.name!r} has no frames")
    first = video.mask(0)
    first = np.where(first == 255, 0, first)  # void counts as background, as in the official evaluation
    ids = [0] + video.objects()
    height, width = first.shape
    if video.frame(0).shape[:2] != first.shape:
        raise ValueError(f"video {video.name!r}: frame 0 is {video.frame(0).shape[:2]}, "
                         f"its annotation {first.shape}")
    was_training = feature_map.training
    feature_map.to(device).eval()
    try:
        feats = {0: _features(feature_map, video.frame(0), params, device)}
        hw = tuple(feats[0].shape[-2:])
        onehot = torch.from_numpy(np.stack([first == i for i in ids])).float()[None]
        labels = {0: F.interpolate(onehot, size=hw, mode="bilinear", align_corners=False)[0].flatten(1).to(device)}
        out = np.zeros((len(video), height, width), dtype=np.int64)
        out[0] = first
        lookup = torch.tensor(ids)
        for t in range(1, len(video)):
            feats[t] = _features(feature_map, video.frame(t), params, device)
            context = [0] + [max(s, 0) for s in range(t - params.context, t)]
            keys = torch.stack([feats[s].flatten(1) for s in context])
            soft = _attend(feats[t].flatten(1), keys, torch.stack([labels[s] for s in context]), hw, params)
            labels[t] = soft
            up = F.interpolate(soft.view(1, -1, *hw), size=(height, width), mode="bilinear", align_corners=False)
            out[t] = lookup[up[0].argmax(0).cpu()].numpy()
            for old in [s for s in feats if 0 < s <= t - params.context]:
                del feats[old], labels[old]
    finally:
        feature_map.train(was_training)
    return out


def frame_names(video: Video) -> list[str]:
    """Result file stems: the frames' file names when they are paths, else ``00000``, ``00001``, ..."""
    if isinstance(video.frames, np.ndarray):
        return [f"{t:05d}" for t in range(len(video))]
    return [Path(f).stem for f in video.frames]


def write_davis_results(out_dir, video_name: str, labels, names: list[str] | None = None) -> list[Path]:
    """Indexed PNGs with the DAVIS palette, ``<out_dir>/<video_name>/<name>.png``: the layout the
    official evaluation reads. ``names`` default to zero-padded frame indices."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be (T, H, W), got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"labels must be object ids in [0, 255] for a palette PNG, "
                         f"got [{labels.min()}, {labels.max()}]")
    names = names or [f"{t:05d}" for t in range(len(labels))]
    if len(names) != len(labels):
        raise ValueError(f"{len(names)} frame names for {len(labels)} label maps")
    folder = Path(out_dir) / video_name
    folder.mkdir(parents=True, exist_ok=True)
    palette, paths = davis_palette(), []
    for name, lab in zip(names, labels):
        img = Image.fromarray(lab.astype(np.uint8), mode="P")
        img.putpalette(palette)
        img.save(folder / f"{name}.png")
        paths.append(folder / f"{name}.png")
    return paths


@dataclass
class SequenceScore:
    """One sequence's per-object, per-frame scores (frames 1..T-2), as ``davis_sequence`` returns them."""

    J: np.ndarray
    F: np.ndarray


def evaluate_davis(feature_map: nn.Module, videos, params: PropagationParams | None = None, out_dir=None,
                   device="cpu", progress: bool = True) -> dict:
    """Propagate every video's first-frame labels and score them: ``davis_summary`` (``J_mean``,
    ``F_mean``, ``JF``, per object) plus ``sequences``: name -> ``SequenceScore``. Writes the
    predictions as DAVIS result PNGs under ``out_dir`` when given."""
    params = params or PropagationParams()
    scores = {}
    for video in tqdm(list(videos), desc="DAVIS propagation", disable=not progress):
        if len(video.masks) != len(video.frames):
            raise ValueError(f"video {video.name!r}: {len(video.frames)} frames but {len(video.masks)} masks; "
                             "evaluation needs the annotation of every frame (DAVIS train/val)")
        pred = propagate(feature_map, video, params, device)
        if out_dir is not None:
            write_davis_results(out_dir, video.name, pred, frame_names(video))
        gt = np.stack([video.mask(t) for t in range(len(video))])
        scores[video.name] = SequenceScore(*davis_sequence(pred, gt, video.objects()))
    summary = davis_summary({name: (s.J, s.F) for name, s in scores.items()})
    return {**summary, "sequences": scores}
