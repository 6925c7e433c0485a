"""A pretraining run on several processes with DDP (App. A.1: the authors trained on 2 GPUs): one process per
visible GPU, started by torch.distributed's elastic launcher (what ``torchrun --standalone`` runs). Every rank trains
its share of each batch (``train.pretrain`` splits it, gathers the keys into one queue, only rank 0 writes the run
folder); the runner gets rank 0's summary. ``revisit batch --gpus-per-run G`` gives a run its G GPUs.
"""
from __future__ import annotations

import os

PROCESSES = "REVISIT_PROCESSES"  # processes per pretraining run; unset: one per visible GPU, one on a CPU


def processes() -> int:
    """How many processes a pretraining run starts here: ``$REVISIT_PROCESSES`` (e.g. 2 gloo processes on a CPU,
    to test the DDP path), else one per visible GPU, else 1."""
    value = os.environ.get(PROCESSES, "").strip()
    import torch

    gpus = torch.cuda.device_count()
    if not value:
        return max(gpus, 1)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{PROCESSES}={value!r}: give a whole number of processes, at least 1")
    if gpus and int(value) > gpus:
        raise ValueError(f"{PROCESSES}={value} processes, but {gpus} GPU(s) are visible: one process per GPU at most")
    return int(value)


def _rank(p, images, run_dir) -> dict:
    """One process of the group: join it (NCCL on GPUs, gloo on CPUs; the launcher sets the rendezvous), train."""
    import torch
    import torch.distributed as dist

    from .train import pretrain

    if torch.cuda.is_available():  # this rank's GPU before NCCL starts (the launcher sets LOCAL_RANK)
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        return pretrain(p, images, run_dir, progress=dist.get_rank() == 0)
    finally:
        dist.destroy_process_group()


def pretrain_run(run, images) -> dict:
    """Train ``run`` on ``images``: in this process where ``processes()`` is 1, else on that many processes
    with DDP; the training summary (rank 0's)."""
    from .train import pretrain

    n = processes()
    if n == 1:
        return pretrain(run.params, images, run.dir)
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from .rundir import DDP_LOGS

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=n, run_id=f"revisit-{run.run_id}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, start_method="spawn",
                          logs_specs=DefaultLogsSpecs(log_dir=str(run.dir / DDP_LOGS)))  # (default: a folder in /tmp)
    return elastic_launch(config, _rank)(run.params, images, run.dir)[0]
