"""Batch execution of runs with papermill.

``run_all`` executes the runs the book needs in dependency order (pretraining before the linear
evaluations that read its backbone), skips finished runs, resumes partial ones (the pretraining
loop picks up its last checkpoint), keeps going past a failure and reports it at the end. A run's
folder is only ever written by that run, and by one process at a time: the executing process holds
the run's lock, and a second batch on the same runs folder waits for the runs it finds locked,
then skips them once done. With ``jobs`` > 1, runs whose dependency is done execute side by side,
each in its own process with its output in ``batch.log`` in its folder: on two cores this overlaps
one run's single-threaded parts (kernel start, scikit-learn) with another's training. With
``gpus_per_run``, each run gets its own slice of the host's GPUs (``devices``). Those
children die with the batch, whatever kills it (on Linux, SIGKILL included), and every failure
leaves ``error.txt``, signals included.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import papermill

from . import book, devices, kernels, rundir, zygote
from .config import PRETRAINING, PROJECT_ROOT, Profile
from .runs import Run, plan, prepare, replicas, runs_root

NOTEBOOKS = {"pretrain": PROJECT_ROOT / "notebooks" / "pretrain.py",
             "supervised": PROJECT_ROOT / "notebooks" / "pretrain.py",  # the same loop trains the ceilings
             "linear": PROJECT_ROOT / "notebooks" / "linear.py", "transfer": PROJECT_ROOT / "notebooks" / "transfer.py"}


def book_experiments(profile: Profile, root: Path | None = None) -> dict[str, list[str]]:
    """The runs each page of the book reads at ``profile`` (``params/book.yaml``, ``revisit.book``): the runs listed
    under ``seeds`` come with their replicas at the profile's further training seeds (``runs.replicas``)."""
    listing = book.read(root)
    return {page: [replica for name in listing.runs(page)
                   for replica in (replicas(name, profile.seeds) if name in listing.seeds else [name])]
            for page in listing.pages}


def book_runs(profile: Profile) -> list[Run]:
    """Every run of the book at ``profile`` and what it needs, dependencies first."""
    return ordered([name for names in book_experiments(profile).values() for name in names], profile)


def ordered(names, profile: Profile) -> list[Run]:
    """Runs of ``names`` plus their dependencies, each once, dependencies first."""
    out, seen = [], set()

    def visit(run):
        if run.needs is not None:
            visit(run.needs)
        if run.run_id not in seen:
            seen.add(run.run_id)
            out.append(run)

    for name in names:
        visit(plan(name, profile))
    return out


class Terminated(BaseException):
    """The process received SIGTERM (or SIGHUP): raised like KeyboardInterrupt, so runs record it and children stop."""

    def __init__(self, signum: int):
        super().__init__(f"killed by {signal.Signals(signum).name}")
        self.signum = signum


def stop_on_signals():
    """Turn SIGTERM and SIGHUP into ``Terminated``, so a killed batch records its runs and stops its children."""
    def raise_terminated(signum, frame):
        raise Terminated(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_terminated)


def describe(err: BaseException) -> str:
    """One line for the batch summary and the top of ``error.txt``: the exception type and message."""
    if isinstance(err, papermill.PapermillExecutionError):  # the exception raised in the notebook's cell
        text = f"{err.ename}: {err.evalue} (cell {err.exec_count})"
    elif isinstance(err, Terminated):
        text = str(err)
    elif isinstance(err, KeyboardInterrupt):
        text = "interrupted (SIGINT)"
    elif isinstance(err, SystemExit) and os.environ.get("SUBMITIT_EXECUTOR"):  # submitit's preemption handler
        text = "stopped by the cluster (preempted or at its time limit); the requeued job resumes the run"
    else:
        text = f"{type(err).__name__}: {err}"
    text = " ".join(text.split())
    return text if len(text) <= 600 else text[:597] + "..."


def execute(run: Run, stream=sys.stdout, echo=print) -> bool:
    """Execute the run's runner notebook into its folder with papermill, holding the run's lock; raises if a
    cell fails. Returns False when another process finished the run while this one waited for the lock."""
    run.dir.mkdir(parents=True, exist_ok=True)
    with rundir.lock(run.dir, echo=echo):
        if run.status == "done":
            echo(f"{run.name}: finished by another process meanwhile")
            return False
        try:
            prepare(run)
            runner = run.dir / rundir.RUNNER
            rundir.write_text(runner, jupytext.writes(jupytext.read(NOTEBOOKS[run.experiment.kind]), fmt="ipynb"))
            output = run.dir / rundir.NOTEBOOK
            if output.is_file():  # keep the notebook of an earlier, interrupted attempt
                output.rename(run.dir / f"notebook.attempt-{time.strftime('%Y%m%d-%H%M%S')}.ipynb")
            (run.dir / rundir.ERROR).unlink(missing_ok=True)
            kernels.execute_notebook(runner, output, {"experiment": run.name, "profile": run.profile.name},
                                     PROJECT_ROOT, stream, echo)
        except BaseException as err:
            if run.status == "done":  # stopped after its metrics.json was written: nothing was lost
                raise
            if rundir.record_error(run.dir, describe(err), traceback.format_exc()) is None:
                echo(f"{run.name}: error.txt could not be written in {run.dir} (disk full?)")
            raise
    return True


@dataclass
class Report:
    """What a batch did, run by run; ``failed`` maps a run id to its one-line error and where the record is."""

    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    blocked: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked


def run_all(names, profile: Profile, echo=print, jobs: int = 1, gpus_per_run: int = 0) -> Report:
    """Run every experiment in ``names`` (and its dependencies) that is not done yet, ``jobs`` at a time; with
    ``gpus_per_run``, each in a child process that sees only its own ``gpus_per_run`` GPUs, and never more runs at
    once than the visible GPUs make slices.

    Raises ``rundir.RunsFolderError`` (the runs folder cannot be written) or ``devices.DeviceError`` (too few
    GPUs) before running anything."""
    free = devices.slices(devices.visible(), gpus_per_run) if gpus_per_run else []
    if gpus_per_run:
        jobs = min(max(jobs, 1), len(free))
        echo(f"GPUs: {len(free)} slice(s) of {gpus_per_run} ({'; '.join(free)}); {jobs} run(s) at a time")
    runs = ordered(names, profile)
    if any(run.status != "done" for run in runs):  # a read-only folder of finished runs can still be read
        rundir.check_writable(runs_root() / profile.name)
    report = Report()
    tags = {run.run_id: f"[{i}/{len(runs)}] {run.name} @ {profile.name}" for i, run in enumerate(runs, 1)}
    pending, running, waiting = list(runs), {}, set()
    warm = contextlib.ExitStack()  # the zygote that kernels fork from, started with the first run executed
    try:
        while pending or running:
            # Pretraining runs first: they are long and unblock the evaluations, which then fill both cores at the end
            for run in sorted(pending, key=lambda r: r.experiment.kind not in PRETRAINING):
                if len(running) >= max(jobs, 1):
                    break
                tag = tags[run.run_id]
                if run.status == "done":
                    echo(f"{tag}: {'done by another process' if run.run_id in waiting else 'done'}, skipped ({run.dir})")
                    report.skipped.append(run.run_id)
                    pending.remove(run)
                    continue
                if run.needs is not None and run.needs.run_id in {**report.failed, **report.blocked}:
                    echo(f"{tag}: not run, its pretraining run {run.needs.name} did not finish")
                    report.blocked[run.run_id] = run.needs.run_id
                    pending.remove(run)
                    continue
                if run.needs is not None and run.needs.status != "done":
                    continue  # its pretraining run is still pending or running
                holder = rundir.holder(run.dir)
                if holder:  # another batch executes it: wait, then skip it once done or resume it if it failed
                    if run.run_id not in waiting:
                        echo(f"{tag}: being run by {holder}; waiting for it")
                        waiting.add(run.run_id)
                    continue
                action = "resuming" if run.status in ("partial", "failed") else "running"
                pending.remove(run)
                if not os.environ.get(zygote.SOCKET_ENV):
                    warm.enter_context(zygote.running())
                if jobs <= 1 and not gpus_per_run:
                    echo(f"{tag}: {action} in {run.dir}")
                    _finish(report, run, tag, time.time(), _execute_here(run), echo)
                    continue
                gpus = free.pop(0) if gpus_per_run else None
                try:
                    proc = _spawn(run, gpus)
                except OSError as err:  # the run folder cannot be written: this run fails, the others go on
                    free += [gpus] if gpus else []
                    _finish(report, run, tag, time.time(), f"{type(err).__name__}: {err}", echo)
                    continue
                echo(f"{tag}: {action} in {run.dir} (log: {rundir.BATCH_LOG})" + (f" on GPUs {gpus}" if gpus else ""))
                running[run.run_id] = (run, time.time(), proc, gpus)
            for run_id, (run, start, proc, gpus) in list(running.items()):
                if proc.poll() is not None:
                    del running[run_id]
                    free += [gpus] if gpus else []
                    _finish(report, run, tags[run_id], start, _child_error(run, proc.returncode), echo)
            if running or any(r.run_id in waiting for r in pending):
                time.sleep(0.5)
            elif pending and not any(r.needs is None or r.needs.status == "done" or r.needs.run_id in report.failed
                                     or r.needs.run_id in report.blocked for r in pending):
                raise RuntimeError("batch: no runnable run left; a dependency is missing from the plan")
    except BaseException as err:
        if running:
            echo(f"batch stopped ({describe(err)}): stopping {len(running)} runs; `revisit batch` resumes them")
        for _, _, proc, _ in running.values():
            _stop(proc)
        raise
    finally:
        warm.close()
    return report


def _stop(proc: subprocess.Popen, grace: float = 10.0):
    """End a child run and its kernel (its own process group): SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _execute_here(run: Run) -> str | None:
    """Execute in this process; the error message, or None when the run finished."""
    try:
        execute(run)
    except (KeyboardInterrupt, Terminated):
        raise
    except Exception as err:  # noqa: BLE001 - a failed run must not stop the batch
        return describe(err)
    return None


def _spawn(run: Run, gpus: str | None = None) -> subprocess.Popen:
    """Execute one run in a child ``revisit batch`` whose output goes to the run's ``batch.log`` and which sees
    only the GPUs ``gpus`` (a ``CUDA_VISIBLE_DEVICES`` value; None: those of this process).

    The child has its own process group (``_stop`` ends it with its kernel) and dies with this process."""
    run.dir.mkdir(parents=True, exist_ok=True)
    parent = os.getpid()
    with open(run.dir / rundir.BATCH_LOG, "a") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "revisit.cli", "batch", "--profile", run.profile.name,
                                 run.name], stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                                env={**os.environ, **devices.only(gpus)} if gpus else None,
                                start_new_session=True, preexec_fn=lambda: zygote.die_with_parent(parent))


def _child_error(run: Run, returncode: int) -> str | None:
    """A finished child's error: None on success, else the first line of its ``error.txt``; a child killed by a
    signal could not write one, so it is written here."""
    if returncode == 0:
        return None
    if returncode < 0:
        summary = f"killed by {signal.Signals(-returncode).name}"
        if rundir.error_summary(run.dir) != summary:
            rundir.record_error(run.dir, summary, f"The run's process (revisit batch {run.name}) was killed "
                                                  f"by signal {-returncode}; see {rundir.BATCH_LOG}.\n")
        return summary
    return rundir.error_summary(run.dir) or f"exit status {returncode}; see {run.dir / rundir.BATCH_LOG}"


def _finish(report: Report, run: Run, tag: str, start: float, error: str | None, echo):
    if error is None:
        echo(f"{tag}: done in {time.time() - start:.0f}s")
        report.done.append(run.run_id)
        return
    record = run.dir / rundir.ERROR
    where = f"see {record}" if record.is_file() else f"no {rundir.ERROR} could be written in {run.dir}"
    echo(f"{tag}: FAILED after {time.time() - start:.0f}s: {error}")
    report.failed[run.run_id] = f"{run.name}: {error} ({where})"
