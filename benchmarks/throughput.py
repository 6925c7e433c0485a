"""Throughput of every training path on this machine, printed as figures (not a test).

    python benchmarks/throughput.py                 # CPU: the book's cpu-profile sizes
    python benchmarks/throughput.py --paper         # paper sizes: ResNet-50, 224/160/96 crops, 513 px seg crops

Pretraining (two-crop vs multi-crop + CC + A+ + kNN, Sec. 4.1's efficiency claim), segmentation
finetuning, Faster R-CNN and DAVIS label propagation, each for a few steps on twin data; with
CUDA it also proves the autocast path and prints peak GPU memory.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import numpy as np
import torch

from revisit.backbones import FeatureMap, build_backbone
from revisit.config import PretrainParams, TransferParams
from revisit.data import twins
from revisit.data import dense_twins
from revisit.dense import detection_params
from revisit.dense.detection import DetectionParams, detect
from revisit.dense.finetune import PROTOCOLS, finetune, scaled
from revisit.dense.propagation import PropagationParams, propagate
from revisit.train import pretrain


def _peak(device):
    if device != "cuda":
        return ""
    peak = torch.cuda.max_memory_allocated() / 2 ** 30
    torch.cuda.reset_peak_memory_stats()
    return f", peak GPU memory {peak:.1f} GiB"


def _timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def bench_pretrain(paper: bool, device: str, steps: int, workers: int):
    arch = dict(arch="resnet50") if paper else dict(arch="resnet_small", width=16)
    batch = 128 if paper else 64
    sizes = dict(crop_size=224, small_crop_size=96) if paper else dict(crop_size=32, small_crop_size=14)
    images = twins.generate_pretrain("coco", batch * steps, seed=0)
    base = PretrainParams(dataset="coco", source="twin", epochs=1, batch_size=batch, queue_size=batch * 8,
                          workers=workers, log_every=1, **arch, **sizes)
    variants = {"two-crop": base,
                "MC+CC+A++kNN": dataclasses.replace(base, small_crops=4, min_overlap=0.2, policy="mixed", nn_lambda=0.4,
                                                    nn_warmup_epochs=0, momentum=0.995)}
    for name, p in variants.items():
        with tempfile.TemporaryDirectory() as run_dir:
            summary, seconds = _timed(lambda: pretrain(p, images, run_dir, device, progress=False))
        print(f"pretrain {name:14s}: {summary['images_per_s']:8.1f} images/s (median of {summary['steps']} steps), "
              f"{seconds:.1f} s, loss {summary['final_loss']:.3f}{_peak(device)}")


def bench_segmentation(paper: bool, device: str, steps: int):
    size = 128 if paper else 64
    train = dense_twins.voc_segmentation("train", 16 * steps, seed=0, size=size)
    backbone = build_backbone("resnet50") if paper else build_backbone("resnet_small", 16)
    protocol = dataclasses.replace(scaled(PROTOCOLS["voc_seg"], crop_scale=1.0 if paper else 1 / 16,
                                          head_channels=None if paper else 64), epochs=1, milestones=())  # `steps` steps
    resize = 513 if paper else 32
    (_, losses), seconds = _timed(lambda: finetune(backbone, train, protocol, resize, 0, device, progress=False))
    print(f"finetune VOC seg (crop {protocol.crop}): {len(losses) * protocol.batch_size / seconds:8.1f} images/s, "
          f"{seconds / len(losses):.3f} s/step, loss {losses[0]:.2f} -> {losses[-1]:.2f}{_peak(device)}")


def bench_detection(paper: bool, device: str, steps: int):
    size = 128 if paper else 64
    data = dense_twins.voc_detection("train", 8 * steps, seed=0, size=size)
    backbone = build_backbone("resnet50") if paper else build_backbone("resnet_small", 16)
    params = detection_params(TransferParams(resolution=1.0 if paper else 1 / 16, det_batch_size=8 if paper else 4,
                                             schedule=steps / DetectionParams().iterations, workers=0))  # as the book
    result, seconds = _timed(lambda: detect(backbone, data, data.subset(np.arange(8)), params, device=device,
                                            progress=False))
    print(f"detection ({result.backend}, {params.iterations} iterations of {params.batch_size}): "
          f"{seconds / params.iterations:.3f} s/iteration incl. test, AP50 {result.AP50:.1f}{_peak(device)}")


def bench_propagation(paper: bool, device: str):
    size = 480 if paper else 64
    video = dense_twins.davis_videos(1, 12, seed=0, size=size)[0]
    backbone = build_backbone("resnet50") if paper else build_backbone("resnet_small", 16)
    features = FeatureMap(backbone, depth=3, dilate=(3, 4)).to(device).eval()
    _, seconds = _timed(lambda: propagate(features, video, PropagationParams(), device))
    print(f"DAVIS propagation ({size} px frames): {seconds / len(video):.3f} s/frame{_peak(device)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", action="store_true", help="paper sizes (ResNet-50); meant for a GPU")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=["pretrain", "segmentation", "detection", "propagation"])
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name}")
    if "pretrain" in args.only:
        bench_pretrain(args.paper, device, args.steps, args.workers)
    if "segmentation" in args.only:
        bench_segmentation(args.paper, device, args.steps)
    if "detection" in args.only:
        bench_detection(args.paper, device, args.steps)
    if "propagation" in args.only:
        bench_propagation(args.paper, device)


if __name__ == "__main__":
    main()
