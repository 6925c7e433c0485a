"""MoCo-v2 pretraining loop (paper Sec. 3 "Setup", App. A.1).

SGD (momentum 0.9, weight decay 1e-4), lr = base_lr x batch / 256 with a per-epoch cosine
schedule (as the official MoCo code), mixed precision on CUDA. Every ``log_every`` steps a JSON
line goes to ``metrics.jsonl`` (loss, instance accuracy, lr, images/s, skipped images); after
every epoch ``checkpoint.pt`` is written atomically with the model, optimiser, queue and pointer,
RNG states and epoch. Under ``torch.distributed`` the batch is split over the processes
(``batch_size`` is global, as in the paper), keys are gathered before enqueueing and rank 0
writes the log and checkpoints. Calling ``pretrain`` again on the same folder resumes from it; on the CPU
the resumed run reproduces the uninterrupted run's losses exactly, because each epoch's data
order and views are seeded by (seed, epoch).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from .augment import TwoCrops, ViewPairs
from .backbones import build_backbone
from .config import PretrainParams
from .moco import MoCo

CHECKPOINT = "checkpoint.pt"
BACKBONE = "backbone.pt"
LOG = "metrics.jsonl"


def build_model(p: PretrainParams) -> MoCo:
    """The MoCo-v2 model a params set describes."""
    backbone = build_backbone(p.arch, p.width)
    return MoCo(backbone, dim=p.dim, queue_size=p.queue_size, momentum=p.momentum, temperature=p.temperature,
                bn_groups=p.bn_groups)


def cosine_lr(p: PretrainParams, epoch: int) -> float:
    """Learning rate of ``epoch``: base_lr x batch/256, cosine-decayed, no warm-up."""
    lr = p.base_lr * p.batch_size / 256
    return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / p.epochs))


def atomic_save(obj, path: Path):
    """``torch.save`` to a temporary file, then rename: a kill never leaves half a checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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
        path.write_text("".join(ln + "\n" for ln in kept))


def read_log(run_dir) -> list[dict]:
    """The per-step records of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / LOG
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.is_file() else []


def pretrain(p: PretrainParams, images, run_dir, device: str | None = None, progress: bool = True) -> dict:
    """Train MoCo-v2 on ``images`` (an ``ImageSet``) into ``run_dir``; resumes if a checkpoint is there.

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
    model = build_model(p).to(device)
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=cosine_lr(p, 0), momentum=p.sgd_momentum,
                                weight_decay=p.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=device.startswith("cuda"))
    start_epoch, ckpt_path = 0, run_dir / CHECKPOINT
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # RNG states must stay on the CPU
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])  # moves its state to the parameters' device
        if state["scaler"]:  # empty when the checkpoint was written without CUDA
            scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        start_epoch = state["epoch"]
    if rank == 0:
        _trim_log(run_dir / LOG, start_epoch)

    device_ids = [torch.device(device).index] if device.startswith("cuda") else None
    net = DistributedDataParallel(model, device_ids=device_ids) if world > 1 else model
    views = ViewPairs(images, TwoCrops(p.crop_size, p.crop_scale), seed=p.seed)
    sampler = DistributedSampler(views, num_replicas=world, rank=rank, shuffle=True, seed=p.seed, drop_last=True)
    steps_per_epoch = len(sampler) // (p.batch_size // world)
    for epoch in range(start_epoch, p.epochs):
        torch.manual_seed(hash((p.seed, epoch, rank)) & (2**62 - 1))  # the epoch's randomness depends on nothing else
        views.set_epoch(epoch)
        sampler.set_epoch(epoch)
        loader = DataLoader(views, batch_size=p.batch_size // world, sampler=sampler, drop_last=True,
                            num_workers=p.workers, pin_memory=device.startswith("cuda"))
        lr = cosine_lr(p, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        bar = tqdm(loader, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{p.epochs}", disable=not progress or rank,
                   mininterval=5, leave=False)
        window_start, window_images, window_skipped = time.perf_counter(), 0, 0
        with open(run_dir / LOG if rank == 0 else os.devnull, "a") as log:
            for step, (anchor, positive, skipped) in enumerate(bar):
                anchor, positive = anchor.to(device, non_blocking=True), positive.to(device, non_blocking=True)
                with torch.autocast("cuda", enabled=device.startswith("cuda")):
                    loss, logits = net(anchor, positive)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                window_images += anchor.shape[0] * world
                window_skipped += int(skipped.sum())
                if (step + 1) % p.log_every == 0 or step + 1 == steps_per_epoch:
                    elapsed = time.perf_counter() - window_start
                    record = {"epoch": epoch, "step": epoch * steps_per_epoch + step + 1, "loss": loss.item(),
                              "acc": (logits.argmax(1) == 0).float().mean().item(), "lr": lr,
                              "images_per_s": window_images / max(elapsed, 1e-9), "skipped": window_skipped}
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['acc']:.2f}",
                                    ips=f"{record['images_per_s']:.0f}")
                    window_start, window_images, window_skipped = time.perf_counter(), 0, 0
        if rank:
            continue
        atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                     "rng": _rng_state(), "epoch": epoch + 1, "params": dataclasses.asdict(p)}, ckpt_path)
    if rank == 0:
        torch.save(model.backbone.state_dict(), run_dir / BACKBONE)
    return summarize(read_log(run_dir), p)


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
    }
