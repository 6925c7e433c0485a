"""MoCo-v2 pretraining loop (paper Sec. 3 "Setup", App. A.1), with the additions of Sec. 4; the same loop trains a
table's supervised ceiling (``revisit.supervised``) under the same budget.

SGD (momentum 0.9, weight decay 1e-4), lr = base_lr x batch / 256 with a per-epoch cosine
schedule (as the official MoCo code), float32 unless the params ask for autocast (``precision``), the views' colour
steps on the GPU on CUDA (``augment.colour_on_device``). The params choose the views
(multi-crop, constrained crops, IoU ceiling, A+) and the kNN loss with its start-up (App. B).
Every ``log_every`` steps a JSON line goes to ``metrics.jsonl`` (loss, nearest-neighbour loss,
instance accuracy, gradient norm, lr, images/s, training seconds so far, skipped images, rejected
and fallback crops); after every epoch ``checkpoint.pt`` is written atomically with the model,
optimiser, queues and pointer, RNG states, epoch and training time (the one before is kept as
``checkpoint.prev.pt`` until the new one is verified, and a checkpoint that does not load falls back
to it), and every ``snapshot_every`` epochs the backbone is kept under ``snapshots/`` (Figure 5). A
non-finite loss or gradient stops the run with ``NonFiniteError``: nothing non-finite is ever saved. Under
``torch.distributed`` the batch is split over the processes (``batch_size`` is global, as in the
paper), keys are gathered before enqueueing and rank 0 writes the log and checkpoints. Calling
``pretrain`` again on the same folder resumes from it; on the CPU the resumed run reproduces the
uninterrupted run's losses exactly, because each epoch's data order and views are seeded by
(seed, epoch).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from . import rundir
from .augment import Views, ViewSet, colour_on_device
from .backbones import build_backbone, channels_last
from .config import PretrainParams, SupervisedParams
from .moco import MoCo
from .rundir import BACKBONE, CHECKPOINT, LOG, PREVIOUS_CHECKPOINT, SNAPSHOTS, read_log
from .supervised import Supervised


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; the run stops and its checkpoints stay as they were."""


def build_model(p: PretrainParams, images=None, processes: int = 1) -> MoCo | Supervised:
    """The model a params set describes: MoCo-v2, or for ``SupervisedParams`` the classifier on ``images``' labels.
    On ``processes`` DDP processes each splits its share of the batch into ``bn_groups / processes`` BN groups (at
    least 1): a BN batch stays ``batch_size / bn_groups`` where ``processes`` divides ``bn_groups`` (2 GPUs at the
    paper profile), and is one GPU's share of the batch on more GPUs."""
    backbone = build_backbone(p.arch, p.width)
    if isinstance(p, SupervisedParams):
        if images is None or images.labels is None:
            raise ValueError(f"{getattr(images, 'name', p.dataset)} has no labels: a supervised ceiling cannot train on it")
        return Supervised(backbone, images.labels)
    return MoCo(backbone, dim=p.dim, queue_size=p.queue_size, momentum=p.momentum, temperature=p.temperature,
                bn_groups=max(p.bn_groups // processes, 1), nn_k=p.nn_k if p.nn_lambda else 0, nn_features=p.nn_features, head_bn=p.head_bn)


def build_views(p: PretrainParams) -> Views:
    """The view policy a params set describes (two-crop by default; Sec. 4 variants by key)."""
    return Views(p.crop_size, p.crop_scale, small_crops=p.small_crops, small_size=p.small_crop_size,
                 small_scale=p.small_crop_scale, min_overlap=p.min_overlap, overlap_tries=p.overlap_tries,
                 max_iou=p.max_iou, policy=p.policy)


def autocast_dtype(precision: str, device: str) -> torch.dtype | None:
    """The dtype the training step autocasts to (``PretrainParams.precision``), or None for float32."""
    if precision == "bf16":
        return torch.bfloat16
    return torch.float16 if precision == "amp" and str(device).startswith("cuda") else None


def cosine_lr(p: PretrainParams, epoch: int) -> float:
    """Learning rate of ``epoch``: base_lr x batch/256, cosine-decayed, no warm-up."""
    lr = p.base_lr * p.batch_size / 256
    return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / p.epochs))


def non_finite(tensors: dict) -> list[str]:
    """Names of the floating-point tensors of a state dict that hold a NaN or an infinity."""
    return [name for name, t in tensors.items() if torch.is_tensor(t) and t.is_floating_point()
            and not bool(torch.isfinite(t).all())]


def save_checkpoint(state: dict, run_dir: Path):
    """Write ``checkpoint.pt``: refused if the model is not finite; the previous one becomes ``checkpoint.prev.pt``
    only once the new one is written and verified, so a failed or killed write leaves a loadable checkpoint."""
    bad = non_finite(state["model"])
    if bad:
        raise NonFiniteError(f"{run_dir}: after epoch {state['epoch']} {len(bad)} model tensors are not finite "
                             f"(first: {bad[0]}); the checkpoint was not written, the previous one is kept")
    rundir.save_torch(state, run_dir / CHECKPOINT, previous=run_dir / PREVIOUS_CHECKPOINT)


def load_checkpoint(run_dir: Path) -> dict | None:
    """The newest checkpoint of ``run_dir`` that loads: ``checkpoint.pt``, else ``checkpoint.prev.pt``, else ``None``
    (the run starts over). A file that does not load is set aside as ``<name>.corrupt`` with a warning naming it."""
    for path in (run_dir / CHECKPOINT, run_dir / PREVIOUS_CHECKPOINT):
        if not path.is_file():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)  # RNG states must stay on the CPU
            if not isinstance(state, dict) or not {"model", "optimizer", "epoch", "rng"} <= set(state):
                raise ValueError("not a checkpoint of this training loop")
            if non_finite(state["model"]):
                raise ValueError("non-finite model tensors")
            return state
        except Exception as err:  # noqa: BLE001 - torch raises many kinds for a truncated or foreign file
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            warnings.warn(f"{path} cannot be used ({rundir.brief(err)}); moved to {aside.name}, "
                          "resuming from the previous checkpoint if there is one, else from the start", stacklevel=2)
    return None


def _rng_state():
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(state):
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trim_log(path: Path, epochs_done: int):
    """Drop log lines of an epoch that was interrupted, so the resumed epoch is logged once."""
    if path.is_file():
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        kept = [ln for ln in lines if json.loads(ln)["epoch"] < epochs_done]
        rundir.write_text(path, "".join(ln + "\n" for ln in kept))


def pretrain(p: PretrainParams, images, run_dir, device: str | None = None, progress: bool = True) -> dict:
    """Train MoCo-v2 (or, for ``SupervisedParams``, the supervised ceiling) on ``images`` (an ``ImageSet``) into
    ``run_dir``; resumes if a checkpoint is there.

    Returns the run's summary metrics (final loss and instance accuracy, throughput, skipped images).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if len(images) < p.batch_size:
        raise ValueError(f"{images.name}: {len(images)} images, fewer than one batch of {p.batch_size}")
    if p.threads:
        torch.set_num_threads(p.threads)
    if p.queue_size % p.batch_size:
        raise ValueError(f"queue_size {p.queue_size} must be divisible by the batch size {p.batch_size}")
    world, rank = (dist.get_world_size(), dist.get_rank()) if dist.is_available() and dist.is_initialized() else (1, 0)
    if p.batch_size % world:
        raise ValueError(f"batch_size {p.batch_size} (global) must be divisible by the {world} processes")
    if world > 1 and device == "cuda":  # one GPU per process, as torchrun sets LOCAL_RANK
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    torch.manual_seed(p.seed)
    model = channels_last(build_model(p, images, world).to(device))
    trained = [q for q in model.parameters() if q.requires_grad]  # MoCo: the query encoder (keys follow by EMA)
    optimizer = torch.optim.SGD(trained, lr=cosine_lr(p, 0), momentum=p.sgd_momentum, weight_decay=p.weight_decay)
    low = autocast_dtype(p.precision, device)
    scaler = torch.amp.GradScaler("cuda", enabled=low == torch.float16)  # bfloat16 has float32's range: no scaling
    start_epoch, train_seconds = 0, 0.0
    if rank:
        dist.barrier()  # rank 0 reads the checkpoint first, and alone sets a corrupt one aside
    state = load_checkpoint(run_dir)
    if world > 1 and rank == 0:
        dist.barrier()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])  # moves its state to the parameters' device
        if state["scaler"]:  # empty when the checkpoint was written without CUDA
            scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        start_epoch, train_seconds = state["epoch"], state.get("train_seconds", 0.0)
    if rank == 0:
        _trim_log(run_dir / LOG, start_epoch)

    device_ids = [torch.device(device).index] if device.startswith("cuda") else None
    net = DistributedDataParallel(model, device_ids=device_ids) if world > 1 else model
    on_device = colour_on_device(device)  # a GPU colours the batch after the transfer; a CPU in the loader
    views = ViewSet(images, build_views(p), seed=p.seed, colour_in_loader=not on_device)
    sampler = DistributedSampler(views, num_replicas=world, rank=rank, shuffle=True, seed=p.seed, drop_last=True)
    steps_per_epoch = len(sampler) // (p.batch_size // world)
    warmup_steps = p.nn_warmup_epochs * steps_per_epoch if p.nn_startup == "warmup" else 0
    for epoch in range(start_epoch, p.epochs):
        torch.manual_seed(hash((p.seed, epoch, rank)) & (2**62 - 1))  # the epoch's randomness depends on nothing else
        views.set_epoch(epoch)
        sampler.set_epoch(epoch)
        loader = DataLoader(views, batch_size=p.batch_size // world, sampler=sampler, drop_last=True,
                            num_workers=p.workers, pin_memory=device.startswith("cuda"), collate_fn=views.collate)
        lr = cosine_lr(p, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        bar = tqdm(loader, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{p.epochs}", disable=not progress or rank,
                   mininterval=5, leave=False)
        window = _Window()
        epoch_start = time.perf_counter()
        with open(run_dir / LOG if rank == 0 else os.devnull, "a") as log:
            for step, batch in enumerate(bar):
                if on_device:
                    batch = views.colour(batch, device)
                inputs = tuple(channels_last(x) for x in model.inputs(batch, device))
                global_step = epoch * steps_per_epoch + step
                nn_weight = p.nn_lambda if global_step >= warmup_steps else 0.0
                with torch.autocast(torch.device(device).type, dtype=low, enabled=low is not None):
                    loss, logits, loss_nn = net(*inputs, nn_weight=nn_weight, nn_startup=p.nn_startup)
                _check_finite("loss", loss, global_step, epoch, p)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.get_total_norm([q.grad for q in trained if q.grad is not None])
                if not scaler.is_enabled():  # with AMP the scaler skips a step with inf gradients and lowers its scale
                    _check_finite("gradient norm", grad_norm, global_step, epoch, p)
                scaler.step(optimizer)
                scaler.update()
                window.add(inputs[0].shape[0] * world, batch)
                if (step + 1) % p.log_every == 0 or step + 1 == steps_per_epoch:
                    record = {"epoch": epoch, "step": global_step + 1, "loss": loss.item(), "loss_nn": loss_nn.item(),
                              "nn_weight": nn_weight, "acc": model.accuracy(logits.detach(), *inputs),

                              "grad_norm": grad_norm.item(), "lr": lr,
                              "train_s": train_seconds + time.perf_counter() - epoch_start,
                              **window.flush(device if world > 1 else None)}
                    log.write(json.dumps(rundir.finite_or_none(record), allow_nan=False) + "\n")
                    log.flush()
                    bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['acc']:.2f}",
                                    ips=f"{record['images_per_s']:.0f}")
        train_seconds += time.perf_counter() - epoch_start
        if rank:
            continue
        save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scaler": scaler.state_dict(), "rng": _rng_state(), "epoch": epoch + 1,
                         "train_seconds": train_seconds, "params": dataclasses.asdict(p)}, run_dir)
        if p.snapshot_every and (epoch + 1) % p.snapshot_every == 0:
            save_snapshot(model, run_dir, epoch + 1, train_seconds)
    if rank == 0:
        rundir.save_torch(model.backbone.state_dict(), run_dir / BACKBONE)
        (run_dir / PREVIOUS_CHECKPOINT).unlink(missing_ok=True)  # only needed while checkpoint.pt may be cut
    return summarize(read_log(run_dir), p)


def _check_finite(what: str, value: torch.Tensor, global_step: int, epoch: int, p: PretrainParams):
    """Stop training at the first non-finite loss or gradient, with the step, the value and the usual cause."""
    if not bool(torch.isfinite(value)):
        raise NonFiniteError(f"{what} is {value.item()} at step {global_step + 1} (epoch {epoch + 1}); training stopped "
                             f"and the checkpoint of the last finished epoch ({epoch}) is kept. A learning rate too "
                             f"high for the batch (base_lr {p.base_lr}, batch {p.batch_size}) or a temperature too "
                             f"low ({p.temperature}) are the usual causes")


class _Window:
    """Counts between two log lines: images (for throughput), skipped images, rejected and fallback crops."""

    def __init__(self):
        self.start, self.images, self.counts = time.perf_counter(), 0, dict.fromkeys(("skipped", "rejected", "fallbacks"), 0)

    def add(self, images, batch):
        self.images += images
        for key in self.counts:
            self.counts[key] += int(batch[key].sum())

    def flush(self, device=None) -> dict:
        """The window's figures, then a new window; with ``device``, counts are summed over all processes."""
        counts = dict(self.counts)
        if device is not None:
            total = torch.tensor(list(counts.values()), device=device)
            dist.all_reduce(total)
            counts = dict(zip(counts, total.tolist()))
        out = {"images_per_s": self.images / max(time.perf_counter() - self.start, 1e-9), **counts}
        self.__init__()
        return out


def save_snapshot(model, run_dir: Path, epoch: int, train_seconds: float):
    """Keep the backbone after ``epoch`` with the training time so far (the points of Figure 5)."""
    folder = Path(run_dir) / SNAPSHOTS
    folder.mkdir(exist_ok=True)
    rundir.save_torch({"backbone": model.backbone.state_dict(), "epoch": epoch, "train_seconds": train_seconds},
                      folder / f"epoch{epoch:04d}.pt")


def snapshots(run_dir) -> list[Path]:
    """A run's backbone snapshots, oldest first."""
    return sorted((Path(run_dir) / SNAPSHOTS).glob("epoch*.pt"))


def summarize(records: list[dict], p: PretrainParams) -> dict:
    """Final-epoch loss and accuracy, mean throughput and skipped images of a run's log."""
    last = [r for r in records if r["epoch"] == p.epochs - 1]
    return {
        "epochs": p.epochs,
        "steps": records[-1]["step"] if records else 0,
        "final_loss": float(np.mean([r["loss"] for r in last])) if last else None,
        "final_acc": float(np.mean([r["acc"] for r in last])) if last else None,
        "images_per_s": float(np.median([r["images_per_s"] for r in records])) if records else None,
        "skipped_images": int(sum(r["skipped"] for r in records)),
        "rejected_crops": int(sum(r.get("rejected", 0) for r in records)),
        "fallback_crops": int(sum(r.get("fallbacks", 0) for r in records)),
        "train_seconds": records[-1].get("train_s") if records else None,
    }
