"""The book's runs as cluster jobs through submitit: one job per run, in the run graph's order.

``revisit batch --executor slurm`` submits every run that is not done as a Slurm job; a run that reads a pretraining
run still to be trained waits for that run's job (``--dependency=afterok``, and cancelled if it fails). A job
executes its run as ``revisit batch`` would (``batch.execute``: the run's lock, papermill, ``error.txt``); when Slurm
preempts it or its time limit nears, submitit requeues it (``RunJob`` is checkpointable) and the run resumes from
its last checkpoint. The job's id is kept in the run folder (``job.json``), so a second submission skips runs whose
job is still queued or running. ``--executor local`` runs the same jobs as processes of this machine (submitit's
local executor, which has no dependencies: a run is submitted once its pretraining job has finished; it starts
every job at once on the same devices, so it is for trying the job path on one machine, where ``revisit batch
--jobs N --gpus-per-run G`` is the way to share GPUs).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import submitit

from . import rundir
from .config import Profile, load_profile
from .runs import Run, plan, runs_root

EXECUTORS = ("slurm", "local")
PASSED = ("REVISIT_RUNS", "REVISIT_PARAMS", "REVISIT_CACHE", "DATA_ROOT")  # what a job must see as the submitter did
ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "PREEMPTED", "CONFIGURING", "COMPLETING",
          "RESIZING", "SUSPENDED", "STOPPED",
          "UNKNOWN"}  # sacct did not answer (no accounting?): the job may still be queued, so never submit twice
MAX_REQUEUES = 30  # time limits a run may reach and resume after: a paper run spans several attempts


class RunJob(submitit.helpers.Checkpointable):
    """One run as a job. Requeued after a preemption or a time limit, it calls itself again: the run resumes."""

    def __init__(self, name: str, profile: str, env: dict):
        self.name, self.profile, self.env = name, profile, env

    def __call__(self) -> str:
        from .batch import execute

        os.environ.update(self.env)
        run = plan(self.name, load_profile(self.profile))
        if run.status != "done":
            execute(run)
        return run.run_id


def executor(kind: str, folder: Path, partition: str | None = None, gpus_per_node: int = 1, minutes: int = 1440,
             account: str | None = None, cpus_per_task: int = 10, mem_gb: float | None = None) -> submitit.Executor:
    """A submitit executor of ``kind`` (``slurm`` or ``local``) whose logs go under ``folder``; one task with
    ``gpus_per_node`` GPUs, ``cpus_per_task`` cores and ``mem_gb`` of memory per job, ``minutes`` of time limit per
    attempt (a run that reaches it is requeued and resumes, up to ``MAX_REQUEUES`` times)."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; choose one of {EXECUTORS}")
    ex = submitit.AutoExecutor(folder=folder / "%j", cluster=kind, slurm_max_num_timeout=MAX_REQUEUES,
                               local_max_num_timeout=MAX_REQUEUES)
    ex.update_parameters(timeout_min=minutes, nodes=1, tasks_per_node=1, gpus_per_node=gpus_per_node,
                         cpus_per_task=cpus_per_task, slurm_partition=partition, slurm_account=account)
    if mem_gb:
        ex.update_parameters(mem_gb=mem_gb)
    return ex


def queued_job(run: Run) -> str | None:
    """The id of the job an earlier submission left for ``run``, if Slurm still has it queued or running."""
    path = run.dir / rundir.JOB
    if not path.is_file():
        return None
    job = json.loads(path.read_text())
    if job["executor"] != "slurm":
        return None
    state = submitit.SlurmJob(job["folder"], job["job_id"]).state
    return job["job_id"] if (state.split() or ["UNKNOWN"])[0] in ACTIVE else None


def submit(runs: list[Run], profile: Profile, ex: submitit.Executor, echo=print) -> tuple[dict, list[str]]:
    """Submit each of ``runs`` (in dependency order, from ``batch.ordered``) that is not done; returns
    ``{run_id: job}`` and the names of the runs that could not be submitted. Runs whose pretraining is trained by a
    submitted job depend on it."""
    env = {key: os.environ[key] for key in PASSED if key in os.environ}
    env.setdefault("REVISIT_RUNS", str(runs_root()))
    jobs, refused = {}, []
    for run in sorted(runs, key=lambda r: r.needs is not None and r.needs.status != "done"):
        tag = f"{run.name} @ {profile.name}"
        if run.status == "done":
            echo(f"{tag}: done, skipped ({run.dir})")
            continue
        queued = queued_job(run)
        if queued:
            echo(f"{tag}: job {queued} of an earlier submission is still queued or running, skipped")
            continue
        after = None  # the job that trains this run's pretraining, if it is not trained yet
        if run.needs is not None and run.needs.status != "done":
            trainer = jobs.get(run.needs.run_id)
            if ex.cluster == "slurm":
                after = trainer.job_id if trainer else queued_job(run.needs)
            elif trainer is not None:  # no dependencies on this executor: wait for the pretraining job here
                _succeeded(trainer)
            if after is None and run.needs.status != "done":
                echo(f"{tag}: not submitted, its pretraining run {run.needs.name} did not finish")
                refused.append(run.name)
                continue
        dependency = {"dependency": f"afterok:{after}", "kill-on-invalid-dep": "yes"} if after else {}
        ex.update_parameters(name=run.name.replace("/", "."), slurm_additional_parameters=dependency)
        try:
            job = ex.submit(RunJob(run.name, profile.name, env))
        except (submitit.core.utils.FailedSubmissionError, OSError) as err:  # e.g. afterok on a purged job
            echo(f"{tag}: NOT submitted: {err}")
            refused.append(run.name)
            continue
        run.dir.mkdir(parents=True, exist_ok=True)
        rundir.write_json(run.dir / rundir.JOB, {"job_id": job.job_id, "executor": ex.cluster,
                                                 "folder": str(ex.folder)})
        jobs[run.run_id] = job
        echo(f"{tag}: submitted as job {job.job_id}" + (f" (after job {after})" if after else ""))
    return jobs, refused


def _succeeded(job) -> bool:
    try:
        job.result()
    except (submitit.core.utils.FailedJobError, submitit.core.utils.UncompletedJobError):
        return False
    return True


def wait(jobs: dict, echo=print) -> list[str]:
    """Wait for every job; the run ids of those that failed, each reported with the end of its log."""
    failed = []
    for run_id, job in jobs.items():
        if not _succeeded(job):
            failed.append(run_id)
            echo(f"job {job.job_id} ({run_id}) failed; its log: {job.paths.stderr}")
    return failed
