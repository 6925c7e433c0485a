"""What a run ran on, kept in its ``metrics.json``: library versions, devices, the code's git commit, the host
and the run's start and end, so that a number can be traced to the software and hardware that produced it."""
from __future__ import annotations

import datetime
import os
import platform
import socket
import subprocess
from pathlib import Path

from .config import PROJECT_ROOT


def now() -> str:
    """The current time in UTC, ISO 8601 to the second (``2026-12-04T13:58:02+00:00``)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):  # no git, or a hung file system
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(root: Path = PROJECT_ROOT) -> dict:
    """The commit checked out at ``root`` and whether tracked files differ from it (untracked ones do not count:
    runs and data live in the checkout). Both ``None`` where the code does not come from a git checkout."""
    commit = _git(root, "rev-parse", "HEAD")
    changes = _git(root, "status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if changes is None else bool(changes)}


def begin() -> dict:
    """What a run records as it starts: the time and the code's git state (a checkout may change during a long run)."""
    return {"started": now(), "git": git_state()}


def describe(begun: dict) -> dict:
    """The environment of a run that ``begin()`` opened (a resumed run's earlier attempts are in its
    ``metrics.jsonl``) and that finishes now."""
    import torch
    import torchvision

    cuda = torch.cuda.is_available()
    devices = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda
               else [f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"])
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "cuda": torch.version.cuda if cuda else None, "cudnn": torch.backends.cudnn.version() if cuda else None,
            "devices": devices, "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "host": socket.gethostname(), **begun, "finished": now()}
