"""End-to-end finetuning for semantic segmentation and depth (App. A.3-A.5; Tables 3, 4, 9, S1).

The backbone's layer4 runs at stride 1 with dilation 2 (``FeatureMap``). VOC and Cityscapes get
the FCN head of App. A.3 (2 x [3x3 conv, BN, ReLU] with dilation 6 or 1, then a 1x1 conv); NYUD
gets torchvision's DeepLab-v3 ASPP decoder (rates 6/12/18 at output stride 16). Logits are
upsampled bilinearly to the input. Segmentation trains with cross-entropy ignoring 255 and scores
mIoU from a dataset-level confusion matrix; depth trains with MSE on measured pixels and scores
the dataset-level rmse in metres.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.models.segmentation.deeplabv3 import ASPP
from tqdm.auto import tqdm

from ..augment import IMAGENET_MEAN, IMAGENET_STD
from ..backbones import FeatureMap
from ..bootstrap import Predictions
from ..metrics import confusion_matrix, mean_iou

IGNORE = 255
MEAN, STD = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)


@dataclass(frozen=True)
class Protocol:
    """One dataset's finetuning recipe, at the paper's values (App. A.3-A.5)."""

    task: str  # "segmentation" or "depth"
    head: str  # "fcn" or "deeplabv3"
    head_dilation: int
    epochs: int
    batch_size: int
    optimizer: str  # "sgd" (momentum 0.9) or "adam"
    lr: float
    schedule: str  # "step" (x0.1 at milestones) or "poly" (power 0.9, per iteration)
    milestones: tuple = ()
    weight_decay: float = 1e-4
    crop: int = 512
    images: int = 10582  # the official train split's size: with ``epochs``, the paper's number of iterations
    scale_range: tuple = (0.5, 2.0)  # random rescaling before the crop, with a horizontal flip
    head_channels: int = 256


PROTOCOLS = {
    "voc_seg": Protocol("segmentation", "fcn", 6, 45, 16, "sgd", 0.003, "step", (30, 40), crop=513, images=10582),
    "cityscapes_seg": Protocol("segmentation", "fcn", 1, 150, 16, "adam", 1e-4, "poly", crop=768, images=2975),
    "nyud_seg": Protocol("segmentation", "deeplabv3", 1, 100, 8, "adam", 1e-4, "poly", crop=512, images=795),
    "nyud_depth": Protocol("depth", "deeplabv3", 1, 100, 8, "adam", 1e-4, "poly", crop=512, images=795),
}


def scaled(protocol: Protocol, schedule=1.0, crop_scale=1.0, lr_scale=1.0, head_channels=None,
           train_images=None, max_crop=None) -> Protocol:
    """The recipe at a profile's scale: ``schedule`` x the paper's *iterations* (on a train set of
    ``train_images``, the epochs that make them), crop x ``crop_scale`` (at most ``max_crop``), lr x ``lr_scale``.

    Counting iterations keeps the datasets' relative training lengths: VOC's 45 epochs of 10582
    images are 30k steps, NYUD's 100 epochs of 795 images 10k, whatever the twins' sizes.
    """
    factor = schedule * protocol.images / (train_images or protocol.images)
    crop = max(8, round(protocol.crop * crop_scale))
    return replace(protocol, epochs=max(1, round(protocol.epochs * factor)),
                   milestones=tuple(max(1, round(m * factor)) for m in protocol.milestones),
                   crop=min(crop, max_crop) if max_crop else crop, lr=protocol.lr * lr_scale,
                   head_channels=head_channels or protocol.head_channels, images=train_images or protocol.images)


def fcn_head(in_channels: int, classes: int, dilation: int, channels: int = 256) -> nn.Sequential:
    """App. A.3: two dilated 3x3 conv-BN-ReLU blocks and a 1x1 classifier."""
    block = lambda i: [nn.Conv2d(i, channels, 3, padding=dilation, dilation=dilation, bias=False),  # noqa: E731
                       nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*block(in_channels), *block(channels), nn.Conv2d(channels, classes, 1))


def deeplabv3_head(in_channels: int, outputs: int, channels: int = 256) -> nn.Sequential:
    """DeepLab-v3's decoder (torchvision's ASPP) with the atrous rates of output stride 16."""
    return nn.Sequential(ASPP(in_channels, (6, 12, 18), channels),
                         nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.Conv2d(channels, outputs, 1))


class DenseModel(nn.Module):
    """Dilated backbone + head; the output is upsampled to the input size."""

    def __init__(self, backbone: nn.Module, protocol: Protocol, outputs: int):
        super().__init__()
        self.features = FeatureMap(backbone, depth=4, dilate=(4,))
        make = fcn_head if protocol.head == "fcn" else deeplabv3_head
        args = (protocol.head_dilation,) if protocol.head == "fcn" else ()
        self.head = make(self.features.channels, outputs, *args, channels=protocol.head_channels)

    def forward(self, x):
        return F.interpolate(self.head(self.features(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


def _resize(image: torch.Tensor, target: torch.Tensor, short_side: int | None):
    if short_side is None:
        return image, target
    h, w = image.shape[-2:]
    size = (max(1, round(h * short_side / min(h, w))), max(1, round(w * short_side / min(h, w))))
    image = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False)[0]
    target = F.interpolate(target[None, None].float(), size=size, mode="nearest")[0, 0].to(target.dtype)
    return image, target


class Augmented(Dataset):
    """Training pairs: optional resize, random scale, pad (ignore / no depth), random crop, flip."""

    def __init__(self, data, protocol: Protocol, resize: int | None, seed: int):
        self.data, self.protocol, self.resize, self.seed = data, protocol, resize, seed
        self.epoch = 0

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        image, target = self.data[i]
        if image is None:
            return None
        g = torch.Generator().manual_seed(hash((self.seed, self.epoch, i)) % 2 ** 31)
        image, target = _resize(image.float(), target, self.resize)
        lo, hi = self.protocol.scale_range
        s = lo + (hi - lo) * float(torch.rand((), generator=g))
        h, w = image.shape[-2:]
        image, target = _resize(image, target, max(1, round(min(h, w) * s)))
        if self.protocol.task == "depth":  # zooming in by s brings the scene s times closer (0 = no measurement)
            target = target / s
        crop = self.protocol.crop
        pad_h, pad_w = max(0, crop - image.shape[1]), max(0, crop - image.shape[2])
        fill = IGNORE if self.protocol.task == "segmentation" else 0
        image = F.pad(image, (0, pad_w, 0, pad_h), value=0.0)
        target = F.pad(target, (0, pad_w, 0, pad_h), value=fill)
        y = int(torch.randint(image.shape[1] - crop + 1, (), generator=g))
        x = int(torch.randint(image.shape[2] - crop + 1, (), generator=g))
        image, target = image[:, y:y + crop, x:x + crop], target[y:y + crop, x:x + crop]
        if torch.rand((), generator=g) < 0.5:
            image, target = image.flip(-1), target.flip(-1)
        return (image / 255.0 - MEAN) / STD, target


def _collate(batch):
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    return torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])


@dataclass
class FinetuneResult:
    """One cell's finetuning: the score (mIoU % or rmse m) and per-class IoU over its runs, each run's score, the
    first run's loss curve and skipped images."""

    task: str
    metric: str
    value: float
    per_class: list
    train_loss: list
    n_train: int
    n_test: int
    skipped: int
    seconds: float
    constant: float  # the same score for a constant prediction: the train set's most frequent class / mean depth
    predictions: Predictions | None = field(default=None, repr=False)  # per test image, for the bootstrap
    runs: list = field(default_factory=list)  # each finetuning run's score; ``value`` is their mean


def _optimizer(model, protocol: Protocol):
    if protocol.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), protocol.lr, momentum=0.9, weight_decay=protocol.weight_decay)
    return torch.optim.Adam(model.parameters(), protocol.lr, weight_decay=protocol.weight_decay)


def _lr_factor(protocol: Protocol, step: int, steps_per_epoch: int, total: int) -> float:
    if protocol.schedule == "poly":
        return (1 - step / total) ** 0.9
    epoch = step // steps_per_epoch
    return 0.1 ** sum(epoch >= m for m in protocol.milestones)


def finetune(backbone, train, protocol: Protocol, resize=None, workers=0, device="cpu", seed=0, progress=True,
             depth_bias: float = 0.0, after_epoch=None) -> tuple[DenseModel, list]:
    """Train ``DenseModel`` end to end on ``train`` (a ``DenseSet``) with ``protocol``; returns it and the losses.

    ``depth_bias`` starts the depth output at that value (the train set's mean depth), so training fits
    the scene's relief rather than first the mean, which matters only for short schedules. ``after_epoch(model,
    epoch)`` is called at the end of every epoch (to score it)."""
    torch.manual_seed(seed)
    outputs = len(train.classes) if protocol.task == "segmentation" else 1
    model = DenseModel(backbone, protocol, outputs)
    if protocol.task == "depth":
        nn.init.constant_(model.head[-1].bias, depth_bias)
    model = model.to(device).train()
    data = Augmented(train, protocol, resize, seed)
    loader = DataLoader(data, protocol.batch_size, shuffle=True, num_workers=workers, collate_fn=_collate,
                        drop_last=len(data) > protocol.batch_size, generator=torch.Generator().manual_seed(seed))
    optimizer = _optimizer(model, protocol)
    total = protocol.epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(protocol, s, len(loader), total))
    losses = []
    bar = tqdm(total=total, desc=f"finetune {train.name}", disable=not progress)
    for epoch in range(protocol.epochs):
        data.epoch = epoch
        for batch in loader:
            bar.update()
            if batch is None:
                continue
            images, targets = batch[0].to(device), batch[1].to(device)
            out = model(images)
            if protocol.task == "segmentation":
                loss = F.cross_entropy(out, targets, ignore_index=IGNORE)
            else:
                valid = targets > 0
                loss = F.mse_loss(out[:, 0][valid], targets[valid]) if valid.any() else out.sum() * 0
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if after_epoch is not None:
            after_epoch(model, epoch)
            model.train()
    bar.close()
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError(f"finetuning on {train.name} diverged (loss {losses[-1]}); lower the lr")
    return model, losses


@torch.no_grad()
def predict(model: DenseModel, image: torch.Tensor, resize=None, device="cpu") -> torch.Tensor:
    """Outputs ``(K, H, W)`` of one uint8 image at its original resolution (resized for the model if asked)."""
    h, w = image.shape[-2:]
    x, _ = _resize(image.float(), torch.zeros(h, w), resize)
    x = ((x / 255.0 - MEAN) / STD)[None].to(device)
    out = model.eval()(x)
    return F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)[0].cpu()


def score(model: DenseModel, test, task: str, resize=None, device="cpu", progress=True):
    """``(mIoU %, per-class IoU %, skipped, predictions)`` for segmentation or ``(rmse, [], skipped, predictions)``
    for depth; ``predictions`` holds each image's confusion matrix (or squared errors), for the bootstrap."""
    classes = len(test.classes)
    confusions, squared, measured, skipped = [], [], [], 0
    for i in tqdm(range(len(test)), desc=f"evaluate {test.name}", disable=not progress):
        image, target = test[i]
        if image is None:
            skipped += 1
            continue
        out = predict(model, image, resize, device)
        if task == "segmentation":
            confusions.append(confusion_matrix(out.argmax(0), target, classes))
        else:
            valid = target > 0
            squared.append(float(((out[0][valid] - target[valid]) ** 2).sum()))
            measured.append(int(valid.sum()))
    if task == "segmentation":
        confusions = np.stack(confusions) if confusions else np.zeros((0, classes, classes), np.int64)
        miou, per_class = mean_iou(confusions.sum(0))
        return 100 * miou, [100 * v for v in per_class], skipped, Predictions("miou", confusions.sum(2), confusions)
    rmse = math.sqrt(sum(squared) / max(sum(measured), 1))
    return rmse, [], skipped, Predictions("rmse", np.array(measured), np.array(squared))


def constant_prediction(train, task: str):
    """What one value everywhere would be, from ``train``'s targets (one pass, no images): its most frequent
    class, or its mean measured depth."""
    if task == "segmentation":
        classes = len(train.classes)
        counts = np.zeros(classes, np.int64)
        for i in range(len(train)):
            t = train.target(i)
            counts += np.bincount(t[t != IGNORE].flatten().numpy(), minlength=classes)[:classes]
        return int(counts.argmax())
    total, measured = 0.0, 0
    for i in range(len(train)):
        t = train.target(i)
        total, measured = total + float(t[t > 0].sum()), measured + int((t > 0).sum())
    return total / max(measured, 1)


def constant_score(train, test, task: str, value=None) -> float:
    """The score of ``constant_prediction`` on ``test`` (mIoU % or rmse): the floor a finetuned model must clear.
    ``value``: that prediction when already known."""
    value = constant_prediction(train, task) if value is None else value
    if task == "segmentation":
        classes = len(test.classes)
        confusion = np.zeros((classes, classes), np.int64)
        for i in range(len(test)):
            t = test.target(i)
            confusion += confusion_matrix(torch.full_like(t, value), t, classes)
        return 100 * mean_iou(confusion)[0]
    squared, measured = 0.0, 0
    for i in range(len(test)):
        t = test.target(i)
        squared, measured = squared + float(((t[t > 0] - value) ** 2).sum()), measured + int((t > 0).sum())
    return math.sqrt(squared / max(measured, 1))


def _mean_over_runs(per_class) -> list:
    """Per-class IoU averaged over runs, leaving out a run where the class was not scored (NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a class no run scored stays NaN
        return np.nanmean(per_class, axis=0).tolist() if per_class[0] else []


def finetune_and_score(backbone, train, test, protocol: Protocol, resize=None, workers=0, device="cpu", seed=0,
                       progress=True, runs: int = 1, keep: str = "last") -> FinetuneResult:
    """Finetune on ``train``, score on ``test``: one cell of Tables 3, 4, 9 or S1.

    ``runs`` finetunings (seeds ``seed``, ``seed + 1``, ...) each keep their ``keep`` epoch: ``"last"``, or
    ``"best"`` on ``test``, as the authors' segmentation code (scored after every epoch on val, the test split). The
    score is the runs' mean, as the authors report five; the predictions stack the runs' (``bootstrap.Predictions``),
    so that its interval and the paired differences are those of the mean."""
    import time

    start = time.perf_counter()
    prediction = constant_prediction(train, protocol.task)
    constant = constant_score(train, test, protocol.task, prediction)
    bias = prediction if protocol.task == "depth" else 0.0
    better = (lambda a, b: a > b) if protocol.task == "segmentation" else (lambda a, b: a < b)  # mIoU up, rmse down
    kept, curves = [], []
    for run in range(runs):
        best = []  # the best epoch's score so far: (value, per_class, skipped, predictions)

        def keep_best(model, epoch, best=best):
            scored = score(model, test, protocol.task, resize, device, progress=False)
            if not best or better(scored[0], best[0][0]):
                best[:] = [scored]

        model, losses = finetune(backbone, train, protocol, resize, workers, device, seed + run, progress, bias,
                                 after_epoch=keep_best if keep == "best" else None)
        kept.append(best[0] if keep == "best" else score(model, test, protocol.task, resize, device, progress))
        curves.append(losses)
    values, per_class, skipped, predictions = zip(*kept)
    if runs > 1:
        predictions = [Predictions(predictions[0].score, predictions[0].labels, [p.decision for p in predictions])]
    metric = "mIoU" if protocol.task == "segmentation" else "rmse"
    per_class = list(per_class[0]) if runs == 1 else _mean_over_runs(per_class)
    return FinetuneResult(protocol.task, metric, float(np.mean(values)), per_class, curves[0], len(train), len(test),
                          skipped[0], time.perf_counter() - start, constant, predictions[0], list(values))
