"""The run folder's one owner: its file names, atomic writes, the lock and the error record.

Every file a run keeps is named here and written through ``write_text``, ``write_json`` or
``save_torch``: each writes a temporary file named after the writing process, then renames it, so a
reader (or a second process) never sees half a file and a write that fails half way (a full disk, a
kill) leaves the previous version and no temporary behind. ``lock`` makes one process at a time the
run's executor (an ``fcntl`` lock, released by the kernel when its holder dies, so the lock of a
killed process is taken over at once). ``record_error`` leaves ``error.txt``, whose first line is the
one-line summary that ``revisit batch`` and ``revisit status`` print.
"""
from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

PARAMS = "params.yaml"  # the resolved parameters: written first, it marks a started run
METRICS = "metrics.json"  # the summary, written last: its presence means the run is done
ERROR = "error.txt"  # why the last attempt failed: first line a summary, then the traceback
LOCK = "run.lock"  # held by the process executing the run, with its pid, host and start time
RUNNER = "runner.ipynb"  # the runner notebook papermill executes
NOTEBOOK = "notebook.ipynb"  # the executed notebook (earlier attempts: notebook.attempt-<time>.ipynb)
BATCH_LOG = "batch.log"  # a child run's output under `revisit batch --jobs N`
LOG = "metrics.jsonl"  # pretraining: one JSON line every log_every steps
CHECKPOINT = "checkpoint.pt"  # pretraining: the state after the last finished epoch
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"  # the one before, kept until the new one is verified
BACKBONE = "backbone.pt"  # pretraining: the backbone weights the evaluations read
SNAPSHOTS = "snapshots"  # pretraining: backbones kept along the way (Figure 5)
CAMS = "cams.npz"  # dense transfer: the CAMs of Figures 6 / S2
DAVIS_EXAMPLE = "davis_example.npz"  # dense transfer: one propagated video (Figure S3)
RETRIEVAL_EXAMPLES = "retrieval_examples.npz"  # dense transfer: queries and their nearest regions (Figure S4)
TASKS = "tasks"  # dense transfer: one <task>.json per finished task
PREDICTIONS = "predictions"  # evaluations: one <evaluation>.npz of test labels and predictions (for the bootstrap)
DDP_LOGS = "ddp"  # pretraining on several processes: the launcher's logs, one folder per attempt and rank
JOB = "job.json"  # a cluster job's id, executor and log folder (revisit.cluster)
SUBSET_FILES = "subset_files.txt"  # pretraining on real data: the images drawn


class RunBusyError(RuntimeError):
    """The run is being executed by another process."""


class RunsFolderError(OSError):
    """The runs folder cannot be written (read-only, no permission, full)."""


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def replacing(path):
    """Yield a temporary path for this process to write; on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path, text: str):
    """Write ``text`` to ``path`` atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text)


def finite_or_none(value):
    """``value`` with every non-finite float (NaN, inf; numpy scalars too) replaced by ``None``, recursively."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(data) -> str:
    """Strict JSON (RFC 8259): NaN and infinities become ``null``, which every reader takes as missing."""
    return json.dumps(finite_or_none(data), indent=2, allow_nan=False, default=float)


def write_json(path, data):
    """Write ``data`` as strict JSON to ``path`` atomically."""
    write_text(path, dumps(data))


def write_metrics(run_dir, summary: dict, begun: dict):
    """Finish a run: its ``summary`` and the environment it ran on since ``begun`` (``environment.begin``,
    ``environment.describe``) as ``metrics.json``, the file written last."""
    from .environment import describe

    write_json(Path(run_dir) / METRICS, {**summary, "environment": describe(begun)})


def save_arrays(path, **arrays):
    """``numpy.savez_compressed`` atomically (into an open file, so that numpy adds no ``.npz`` suffix)."""
    import numpy as np

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def read_log(run_dir) -> list[dict]:
    """The per-step records of a pretraining run's ``metrics.jsonl`` (empty before its first line)."""
    path = Path(run_dir) / LOG
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.is_file() else []


def predictions_file(run_dir, evaluation: str) -> Path:
    """Where a run keeps the test predictions of one evaluation (``predictions/<evaluation>.npz``)."""
    return Path(run_dir) / PREDICTIONS / f"{evaluation}.npz"


def save_torch(obj, path, previous=None):
    """``torch.save`` atomically. The written archive is read back (the CRC of every member) before it replaces
    ``path``, so a short write never replaces a good file; with ``previous``, the file it replaces is kept there."""
    import zipfile

    import torch

    path = Path(path)
    with replacing(path) as tmp:
        torch.save(obj, tmp)
        try:
            with zipfile.ZipFile(tmp) as archive:
                bad = archive.testzip()
        except zipfile.BadZipFile as err:
            bad = str(err)
        if bad is not None:
            raise OSError(f"{path}: the file written does not read back ({bad}); the previous one is kept")
        if previous is not None and path.is_file():
            os.replace(path, previous)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"


@contextmanager
def lock(run_dir, wait: bool = True, echo=print):
    """Hold the run's lock while executing it; another holder makes this wait (``wait``) or raise ``RunBusyError``.

    The lock file records the holder (pid, host, start); the kernel frees the lock when the holder dies.
    """
    path = Path(run_dir) / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            if not wait:
                raise RunBusyError(f"{run_dir} is being run by {holder}") from None
            echo(f"{Path(run_dir).name}: being run by {holder}; waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def holder(run_dir) -> str | None:
    """Who holds the run's lock (``"pid ... on ... since ..."``), or ``None`` when nobody executes it."""
    path = Path(run_dir) / LOCK
    if not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(path)
    finally:
        os.close(fd)
    return None


def record_error(run_dir, summary: str, details: str = "") -> Path | None:
    """Write ``error.txt`` (``summary`` on its first line, then ``details``); best effort: returns ``None``
    when even that cannot be written (a full disk), so the caller says so instead."""
    path = Path(run_dir) / ERROR
    try:
        write_text(path, summary.strip().replace("\n", " ") + "\n\n" + details)
    except OSError:
        return None
    return path


def error_summary(run_dir) -> str | None:
    """The first line of the run's ``error.txt``, or ``None``."""
    try:
        with open(Path(run_dir) / ERROR) as f:
            return f.readline().strip() or None
    except OSError:
        return None


def brief(err: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters): torch's messages run to paragraphs."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:200] if lines else ''}"


def check_writable(folder) -> Path:
    """Create ``folder`` and write a probe file there; ``RunsFolderError`` naming the folder and the cause if not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:  # a name of its own: batches may probe side by side
            probe.write(b"ok\n")
            probe.flush()
    except OSError as err:

        reason = {errno.ENOSPC: "the disk is full", errno.EROFS: "it is on a read-only file system",
                  errno.EACCES: "permission denied", errno.EDQUOT: "the disk quota is exceeded"}.get(err.errno, str(err))
        raise RunsFolderError(err.errno, f"cannot write the runs folder {folder}: {reason}. Free space or fix its "
                                         "permissions, or set REVISIT_RUNS to a writable folder; nothing was run") from err
    return folder
