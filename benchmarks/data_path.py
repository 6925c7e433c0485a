"""The data path of MoCo pretraining against the authors' PIL pipeline, printed as figures (not a test).

    python benchmarks/data_path.py                  # per core at the paper's sizes; the training step at small sizes
    python benchmarks/data_path.py --workers 12     # on a GPU host: the training step at the paper's sizes

Images are JPEG files of 400 x 300 px (about ImageNet's mean size) in an ImageFolder layout, decoded every time.

- Per core (one process, one thread): images/s, all views of an image counted as one image, for two 224 px views
  and for 2 x 160 + 4 x 96 px (Sec. 4.1). Ours: ``ViewSet``'s crops per image, then the batch's colour steps, as a
  loader worker does on a CPU host. Reference: MoCo-v2's torchvision transforms on PIL images, one image at a time,
  as in the authors' code.
- Training step (ResNet-50 at the paper's sizes on CUDA; a small ResNet at 64 px on a CPU): images/s of MoCo's
  step fed by our loader (on CUDA the colour steps run on the GPU after the transfer), by the reference pipeline
  in the same number of loader workers, and by pre-made tensors (the model-only bound).
"""
from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageFilter
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from revisit.augment import IMAGENET_MEAN, IMAGENET_STD, Views, ViewSet, colour_on_device
from revisit.config import PretrainParams
from revisit.data import ImageSet, twins
from revisit.train import build_model

TWO_CROP = dict(size=224, small_crops=0)
MULTI_CROP = dict(size=160, small_crops=4, small_size=96)


def jpeg_folder(root: Path, count: int) -> list[Path]:
    """``count`` JPEGs of 400 x 300 px under ``root/train/n00000000/`` (ImageFolder layout): twin images upscaled."""
    folder = root / "train" / "n00000000"
    folder.mkdir(parents=True)
    files = []
    for i, image in enumerate(twins.generate_pretrain("in118k", count, seed=0).array):
        files.append(folder / f"n00000000_{i}.JPEG")
        Image.fromarray(image).resize((400, 300), Image.BICUBIC).save(files[-1], quality=90)
    return files


class PILBlur:
    """MoCo-v2's blur: PIL's Gaussian filter, sigma uniform in [0.1, 2]."""

    def __call__(self, image):
        return image.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


def reference_transform(size: int, scale=(0.2, 1.0)) -> T.Compose:
    """MoCo-v2's augmentation (the authors' code, torchvision on PIL), one view of ``size`` px."""
    return T.Compose([T.RandomResizedCrop(size, scale=scale),
                      T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(p=0.2),
                      T.RandomApply([PILBlur()], p=0.5), T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class ReferenceSet(Dataset):
    """The authors' data path: PIL decode, then each view's transform, one image at a time."""

    def __init__(self, files, size=224, small_crops=0, small_size=96):
        self.files, self.small_crops = files, small_crops
        self.large, self.small = reference_transform(size), reference_transform(small_size, (0.05, 0.14))

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with open(self.files[i], "rb") as f:
            image = Image.open(f).convert("RGB")
        small = [self.small(image) for _ in range(self.small_crops)]
        return {"anchor": self.large(image), "positive": self.large(image),
                "small": torch.stack(small) if small else torch.zeros(0, 3, 96, 96)}


def ours(files, size=224, small_crops=0, small_size=96, colour_in_loader=True) -> ViewSet:
    return ViewSet(ImageSet("bench", files), Views(size, small_crops=small_crops, small_size=small_size),
                   colour_in_loader=colour_in_loader)


def per_core(files, batch: int):
    """Images/s of each data path in this process on one thread, at the paper's sizes."""
    torch.set_num_threads(1)
    print(f"data path per core, {len(files)} JPEGs of 400 x 300 px (images/s; all views of an image = one image)")
    for name, sizes in (("2 x 224 px", TWO_CROP), ("2 x 160 + 4 x 96 px", MULTI_CROP)):
        viewset, reference = ours(files, **sizes), ReferenceSet(files, **sizes)
        start = time.perf_counter()
        for first in range(0, len(files) - batch + 1, batch):
            viewset.collate([viewset[i] for i in range(first, first + batch)])
        mine = (len(files) // batch * batch) / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(len(files)):
            reference[i]
        theirs = len(files) / (time.perf_counter() - start)
        print(f"  {name:20s} ours {mine:6.1f}   authors' PIL {theirs:6.1f}   ratio {mine / theirs:.2f}")


def step_rate(model, batches, device: str, steps: int, colour=None) -> float:
    """Images/s of MoCo's training step over ``steps`` batches after two warm-up steps."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    low = torch.float16 if device == "cuda" else None
    done, start = 0, None
    for i, batch in enumerate(batches):
        if i == 2:
            if device == "cuda":
                torch.cuda.synchronize()
            start, done = time.perf_counter(), 0
        if colour is not None:
            batch = colour(batch, device)
        inputs = model.inputs(batch, device)
        with torch.autocast(torch.device(device).type, dtype=low, enabled=low is not None):
            loss = model(*inputs)[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done += inputs[0].shape[0]
        if i + 1 == steps + 2:
            break
    if device == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def training_step(files, device: str, batch: int, steps: int, workers: int):
    paper = device == "cuda"
    arch = dict(arch="resnet50") if paper else dict(arch="resnet_small", width=16)
    sizes = dict(size=224) if paper else dict(size=64)
    p = PretrainParams(dataset="in118k", batch_size=batch, queue_size=batch * 16, crop_size=sizes["size"], **arch)
    model = build_model(p).to(device)
    loader = lambda data, collate=None: DataLoader(  # noqa: E731
        data, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers, pin_memory=paper,
        collate_fn=collate, persistent_workers=workers > 0)
    viewset = ours(files, **sizes, colour_in_loader=not colour_on_device(device))
    reference = ReferenceSet(files, **sizes)
    coloured = ours(files, **sizes)  # the model-only bound's batch: coloured once, in the loader
    fixed = next(iter(loader(coloured, coloured.collate)))
    premade = {k: fixed[k].to(device) for k in ("anchor", "positive", "small")}
    name = torch.cuda.get_device_name() if paper else f"CPU, {torch.get_num_threads()} threads"
    print(f"training step, {p.arch} at {sizes['size']} px, batch {batch}, {workers} loader workers, on {name}:")
    rates = {"ours (colour on the " + ("GPU)" if paper else "loader)"):
             step_rate(model, _cycle(loader(viewset, viewset.collate)), device, steps,
                       viewset.colour if paper else None),
             "authors' PIL pipeline": step_rate(model, _cycle(loader(reference)), device, steps),
             "model only (pre-made tensors)": step_rate(model, _repeat(premade), device, steps)}
    for what, rate in rates.items():
        print(f"  {what:32s} {rate:8.1f} images/s")


def _cycle(loader):
    while True:
        yield from loader


def _repeat(batch):
    while True:
        yield batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128, help="JPEG files to read (per-core figures)")
    parser.add_argument("--batch", type=int, default=None, help="training batch (default: 256 on CUDA, 32 on a CPU)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    batch = args.batch or (256 if device == "cuda" else 32)
    with tempfile.TemporaryDirectory() as root:
        files = jpeg_folder(Path(root), max(args.images, batch * 2))
        per_core(files[:args.images], batch=min(64, args.images))
        torch.set_num_threads(os.cpu_count() or 1)
        training_step(files, device, batch, args.steps, args.workers)


if __name__ == "__main__":
    main()
