"""Dense transfer tasks by name (Tables 3-6, 9, S1; Figures 6, S2-S4): which data, which protocol.

The protocols: finetuned segmentation and depth (``finetune``, App. A.3-A.5), VOC detection (``detection``, App.
A.4, with ``detectron2_backend``), DAVIS label propagation (``propagation``, App. A.6), segment retrieval
(``retrieval``, App. A.7) and class activation maps (``cams``, Figure 6).

``evaluate_tasks`` runs the tasks of a ``TransferParams`` one after the other and saves each result
as ``tasks/<task>.json`` in the run folder as soon as it is known, so an interrupted run resumes
with the next task. The figures' raw material (CAMs, propagated masks, retrieved regions) is saved
beside it as ``.npz``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..bootstrap import Predictions, bounds
from ..config import DENSE_TASKS, TransferParams
from ..rundir import CAMS, DAVIS_EXAMPLE, RETRIEVAL_EXAMPLES, TASKS, predictions_file, save_arrays, write_json

METRICS = {"voc_seg": "mIoU", "cityscapes_seg": "mIoU", "nyud_seg": "mIoU", "nyud_depth": "rmse", "voc_det": "AP",
           "davis": "J&F", "voc_retrieval": "mIoU (7 classes)", "cams": "top-1"}


@dataclass
class TaskResult:
    """One task's score (percent, or metres for depth) with the protocol's other numbers in ``details``."""

    task: str
    metric: str
    value: float
    n_train: int
    n_test: int
    seconds: float
    details: dict = field(default_factory=dict)
    interval: list = field(default_factory=list)  # [low, high]: 95% bootstrap interval over test images (videos)
    predictions: Predictions | None = field(default=None, repr=False)  # per test item, for the bootstrap

    def __post_init__(self):
        if self.predictions is not None and not self.interval:
            self.interval = bounds(self.predictions)

    def to_json(self) -> dict:
        """The JSON of ``tasks/<task>.json``; the predictions are kept apart, in ``predictions/<task>.npz``."""
        fields = {k: v for k, v in vars(self).items() if k != "predictions"}
        return json.loads(json.dumps(fields, default=_plain))


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


def input_size(p: TransferParams, paper_size: int) -> int:
    """A recipe's input size (``paper_size`` at paper scale) at the profile's ``resolution``."""
    return max(8, round(paper_size * p.resolution))


def _finetuned(task, backbone, p: TransferParams, device, progress):
    from ..data import dense_splits
    from .finetune import PROTOCOLS, finetune_and_score, scaled

    train, test = dense_splits(task, p)
    protocol = scaled(PROTOCOLS[task], p.schedule, p.resolution, p.lr_scale, p.head_channels, len(train),
                      p.max_crop)
    r = finetune_and_score(backbone, train, test, protocol, p.resize, p.workers, device, p.seed, progress,
                           p.finetune_runs, p.finetune_epoch)
    details = {"per_class": dict(zip(test.classes, r.per_class)), "train_loss": r.train_loss, "epochs": protocol.epochs,
               "crop": protocol.crop, "lr": protocol.lr, "skipped_images": r.skipped, "constant": r.constant,
               "runs": r.runs, "kept_epoch": p.finetune_epoch}
    return TaskResult(task, METRICS[task], r.value, r.n_train, r.n_test, r.seconds, details, predictions=r.predictions)


def detection_backend(choice: str) -> str:
    """``auto`` -> detectron2 where it can be imported (the paper's tool), else torchvision's Faster R-CNN."""
    if choice != "auto":
        return choice
    import importlib.util

    return "detectron2" if importlib.util.find_spec("detectron2") else "torchvision"


def detection_params(p: TransferParams):
    """The paper's VOC detection recipe (App. A.5, ``detection.DetectionParams``) at the profile's ``schedule``,
    ``resolution``, ``lr_scale`` and ``det_batch_size``: iterations and steps scaled, lr by the linear scaling rule,
    input and anchor sizes with the resolution, proposal counts with the image area."""
    from .detection import DetectionParams

    paper, area = DetectionParams(), p.resolution ** 2
    return DetectionParams(iterations=max(1, round(paper.iterations * p.schedule)),
                           batch_size=p.det_batch_size,
                           lr=paper.lr * p.lr_scale * p.det_batch_size / paper.batch_size,
                           steps=tuple(max(1, round(s * p.schedule)) for s in paper.steps),
                           warmup_iters=max(1, round(paper.warmup_iters * p.schedule)),
                           min_sizes=tuple(input_size(p, s) for s in paper.min_sizes),
                           max_size=input_size(p, paper.max_size), test_size=input_size(p, paper.test_size),
                           anchor_sizes=(tuple(max(2, round(a * p.resolution)) for a in paper.anchor_sizes[0]),),
                           rpn_pre_nms_topk=tuple(max(100, round(k * area)) for k in paper.rpn_pre_nms_topk),
                           rpn_post_nms_topk=tuple(max(50, round(k * area)) for k in paper.rpn_post_nms_topk),
                           seed=p.seed, workers=p.workers)


def _detection(backbone, p: TransferParams, device, progress):
    from ..data import dense_splits
    from .detection import detect

    train, test = dense_splits("voc_det", p)
    params = detection_params(p)
    start = time.perf_counter()
    r = detect(backbone, train, test, params, backend=detection_backend(p.det_backend), device=device,
               progress=progress)
    details = {"AP50": r.AP50, "AP75": r.AP75, "backend": r.backend, "per_class_AP50": r.per_class_AP50,
               "train_loss": r.train_loss, "iterations": params.iterations}
    return TaskResult("voc_det", "AP", r.AP, r.n_train, r.n_test, time.perf_counter() - start, details,
                      predictions=r.predictions)



def _davis(backbone, p: TransferParams, run_dir: Path, device, progress):
    from ..backbones import FeatureMap
    from ..data import davis_videos
    from ..data.dense import read_label_png
    from .propagation import PropagationParams, evaluate_davis

    videos = davis_videos(p)
    start = time.perf_counter()
    features = FeatureMap(backbone, depth=3, dilate=(3, 4), atrous=False).to(device).eval()  # Jabri et al.: strides 1
    params = PropagationParams(frame_size=p.resize)
    r = evaluate_davis(features, videos, params, run_dir / "davis", device, progress)
    seconds = time.perf_counter() - start
    video = videos[0]  # Figure S3's material: one video, its annotation and what was propagated
    predicted = np.stack([read_label_png(f) for f in sorted((run_dir / "davis" / video.name).glob("*.png"))])
    save_arrays(run_dir / DAVIS_EXAMPLE, frames=np.stack([video.frame(t) for t in range(len(video))]),
                masks=np.stack([video.mask(t) for t in range(len(video))]), predicted=predicted, name=video.name)
    sequences = {name: {"J_mean": 100 * float(np.mean(s.J)), "F_mean": 100 * float(np.mean(s.F))}
                 for name, s in r["sequences"].items()}
    details = {"J_mean": 100 * r["J_mean"], "F_mean": 100 * r["F_mean"], "sequences": sequences}
    # J&F is a mean over objects: per video, its objects and the sum of their (J + F) / 2, so videos can be resampled
    objects = np.array([len(s.J) for s in r["sequences"].values()])
    sums = np.array([float(np.sum((np.nanmean(s.J, axis=1) + np.nanmean(s.F, axis=1)) / 2)) if len(s.J) else 0.0
                     for s in r["sequences"].values()])
    return TaskResult("davis", "J&F", 100 * r["JF"], 0, len(videos), seconds, details,
                      predictions=Predictions("ratio", objects, sums))


def _retrieval(backbone, p: TransferParams, run_dir: Path, device, progress):
    from ..data import dense_splits
    from .retrieval import RetrievalParams, examples, feature_map, segment_retrieval

    train, val = dense_splits("voc_seg", p)
    features = feature_map(backbone).to(device).eval()
    start = time.perf_counter()
    r = segment_retrieval(features, train, val, RetrievalParams(image_size=input_size(p, 512), seed=p.seed), device,
                          progress)
    _save_retrievals(run_dir / RETRIEVAL_EXAMPLES, examples(r, count=4, neighbours=3), train, val)
    details = {"mIoU_21": r.miou_21, "per_class_21": dict(zip(r.classes, r.per_class_21))}
    return TaskResult("voc_retrieval", METRICS["voc_retrieval"], r.miou_7, r.n_train, r.n_val,
                      time.perf_counter() - start, details, predictions=r.predictions)


def _square(image: torch.Tensor, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8 of a ``(3, H, W)`` uint8 image: figures stack images of any size."""
    resized = torch.nn.functional.interpolate(image[None].float(), size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False)
    return resized[0].round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def _save_retrievals(path: Path, found, train, val, size=128):
    """Figure S4's material: each query image and region, and its retrieved train images and regions."""
    if not found:
        return
    save_arrays(path, queries=np.stack([_square(val.image(e.val_image), size) for e in found]),
                        query_masks=np.stack([e.val_mask for e in found]),
                        query_labels=np.array([e.val_label for e in found]),
                        retrieved=np.stack([np.stack([_square(train.image(i), size) for i in e.train_images])
                                            for e in found]),
                        retrieved_masks=np.stack([np.stack(e.train_masks) for e in found]),
                        retrieved_labels=np.array([e.train_labels for e in found]),
                        classes=np.array(val.classes, dtype=str))


def _cams(backbone, p: TransferParams, run_dir: Path, device, progress):
    from ..data import cam_images
    from ..linear.features import extract_features, resize_square
    from .cams import class_activation_maps, fit_classifier

    train, shown = cam_images(p)
    start = time.perf_counter()
    head = fit_classifier(backbone, train, p.cam_size, device=device, progress=progress)
    row = {name: k for k, name in enumerate(head.classes)}  # the classifier's rows: classes present in train
    features, index, _ = extract_features(backbone, shown, resize_square(p.cam_size), device=device, progress=progress)
    predicted = np.array(head.classes)[(features @ head.weight.T + head.bias).argmax(1)]
    accuracy = 100 * float((predicted == np.array(shown.classes)[shown.labels[index]]).mean())
    picks = [i for i in index if shown.classes[shown.labels[i]] in row][:p.cam_images]
    images = torch.stack([torch.from_numpy(_square(shown[i], p.cam_size)).permute(2, 0, 1) for i in picks])
    labels = shown.labels[picks]
    maps = class_activation_maps(backbone, head.weight, images, [row[shown.classes[y]] for y in labels], p.cam_size,
                                 device=device)
    save_arrays(run_dir / CAMS, images=images.permute(0, 2, 3, 1).numpy(), cams=maps, labels=labels,
                        classes=np.array(shown.classes, dtype=str))
    return TaskResult("cams", "top-1", accuracy, len(train), len(shown), time.perf_counter() - start,
                      {"note": "linear classifier on pooled features; CAMs of the ground-truth class"})


def evaluate_task(task: str, backbone, p: TransferParams, run_dir: Path, device="cpu", progress=True) -> TaskResult:
    """One dense task of Section 5 / App. A on ``backbone`` at the params' scale."""
    if task not in DENSE_TASKS:
        raise ValueError(f"unknown dense task {task!r}; known: {list(DENSE_TASKS)}")
    if task in ("voc_seg", "cityscapes_seg", "nyud_seg", "nyud_depth"):
        return _finetuned(task, backbone, p, device, progress)
    if task == "voc_det":
        return _detection(backbone, p, device, progress)
    if task == "davis":
        return _davis(backbone, p, run_dir, device, progress)
    if task == "voc_retrieval":
        return _retrieval(backbone, p, run_dir, device, progress)
    return _cams(backbone, p, run_dir, device, progress)


def evaluate_tasks(tasks, backbone, p: TransferParams, run_dir, device="cpu", progress=True) -> dict[str, TaskResult]:
    """Every task in ``tasks``; finished ones (``tasks/<task>.json``) are read back, not recomputed."""
    folder = Path(run_dir) / TASKS
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for task in tasks:
        path = folder / f"{task}.json"
        if path.is_file():
            results[task] = TaskResult(**json.loads(path.read_text()))
            print(f"{task:15s} done earlier: {results[task].metric} {results[task].value:.3f}")
            continue
        torch.manual_seed(p.seed)
        results[task] = evaluate_task(task, backbone, p, Path(run_dir), device, progress)
        if results[task].predictions is not None:  # first: a task counts as done once its json exists
            results[task].predictions.save(predictions_file(run_dir, task))
        write_json(path, results[task].to_json())
        print(f"{task:15s} {results[task].metric} {results[task].value:.3f} ({results[task].seconds:.0f} s)")
    return results
