"""GPUs for the batch runner: which ones this host lets us use, split into one disjoint slice per running job.

``revisit batch --jobs N --gpus-per-run G`` gives each child run its own ``CUDA_VISIBLE_DEVICES`` slice of G
devices and runs at most as many jobs as there are slices, so that on an 8-GPU host no two runs share a GPU.
Nothing here imports torch or touches CUDA: the list comes from ``CUDA_VISIBLE_DEVICES`` (which a user or a
scheduler may already have narrowed) or, where it is unset, from ``nvidia-smi``.
"""
from __future__ import annotations

import os
import subprocess

VISIBLE = "CUDA_VISIBLE_DEVICES"


class DeviceError(ValueError):
    """The GPUs asked for are not there."""


def visible() -> list[str]:
    """The devices this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (indices or UUIDs); where it is
    unset, the indices ``nvidia-smi`` lists (none without an NVIDIA driver)."""
    if VISIBLE in os.environ:
        names = [name.strip() for name in os.environ[VISIBLE].split(",") if name.strip()]
        return [] if names[:1] == ["-1"] else names  # "-1" hides every device, as CUDA reads it
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return listed.stdout.split() if listed.returncode == 0 else []


def only(gpus: str) -> dict:
    """The environment that shows a process only ``gpus`` (a ``CUDA_VISIBLE_DEVICES`` value), numbered as
    ``nvidia-smi`` numbers them (CUDA's default order puts the fastest first)."""
    return {VISIBLE: gpus, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def slices(devices: list[str], per_run: int) -> list[str]:
    """Disjoint groups of ``per_run`` devices, each as a ``CUDA_VISIBLE_DEVICES`` value; devices left over (7
    GPUs in slices of 2) stay idle. Raises ``DeviceError`` when not even one slice fits."""
    if per_run < 1:
        raise DeviceError(f"--gpus-per-run must be at least 1, got {per_run}")
    if len(devices) < per_run:
        seen = f"{VISIBLE}={os.environ[VISIBLE]!r}" if VISIBLE in os.environ else "nvidia-smi lists"
        raise DeviceError(f"--gpus-per-run {per_run} needs {per_run} GPU(s), but {len(devices)} are visible "
                         f"({seen}: {devices}); lower it, or run without it on a CPU host")
    return [",".join(devices[i:i + per_run]) for i in range(0, len(devices) - per_run + 1, per_run)]
