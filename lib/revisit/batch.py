"""Batch execution of runs with papermill (DESIGN.md "Runs, profiles, results").

``run_all`` executes the runs the book needs in dependency order (pretraining before the linear
evaluations that read its backbone), skips finished runs, resumes partial ones (the pretraining
loop picks up its last checkpoint), keeps going past a failure and reports it at the end. A run's
folder is only ever written by that run, so nothing computed elsewhere is overwritten. With
``jobs`` > 1, runs whose dependency is done execute side by side, each in its own process with its
output in ``batch.log`` in its folder: on two cores this overlaps one run's single-threaded parts
(kernel start, scikit-learn) with another's training.
"""
from __future__ import annotations

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
import yaml

from .config import PROJECT_ROOT, Profile, params_root
from .runs import ERROR, Run, plan, prepare

NOTEBOOKS = {"pretrain": PROJECT_ROOT / "notebooks" / "pretrain.py", "linear": PROJECT_ROOT / "notebooks" / "linear.py",
             "transfer": PROJECT_ROOT / "notebooks" / "transfer.py"}


def book_experiments(root: Path | None = None) -> dict[str, list[str]]:
    """The experiments each page of the book reads, from ``params/book.yaml``."""
    return yaml.safe_load((Path(root or params_root()) / "book.yaml").read_text())


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


def execute(run: Run, stream=sys.stdout):
    """Execute the run's runner notebook into its folder with papermill; raises if a cell fails."""
    try:
        prepare(run)
    except BaseException:
        if run.dir.is_dir():
            (run.dir / ERROR).write_text(traceback.format_exc())
        raise
    runner = run.dir / "runner.ipynb"
    jupytext.write(jupytext.read(NOTEBOOKS[run.experiment.kind]), runner)  # its header names the python3 kernel
    output = run.dir / "notebook.ipynb"
    if output.is_file():  # keep the notebook of an earlier, interrupted attempt
        output.rename(run.dir / f"notebook.attempt-{time.strftime('%Y%m%d-%H%M%S')}.ipynb")
    (run.dir / ERROR).unlink(missing_ok=True)
    try:
        papermill.execute_notebook(runner, output, parameters={"experiment": run.experiment.name,
                                                               "profile": run.profile.name},
                                   kernel_name="python3", cwd=str(PROJECT_ROOT), progress_bar=False,
                                   log_output=True, stdout_file=stream, stderr_file=stream)
    except BaseException as err:
        (run.dir / ERROR).write_text(f"{type(err).__name__}: {err}\n\n{traceback.format_exc()}")
        raise


@dataclass
class Report:
    """What a batch did, run by run."""

    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    blocked: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked


def run_all(names, profile: Profile, echo=print, jobs: int = 1) -> Report:
    """Run every experiment in ``names`` (and its dependencies) that is not done yet, ``jobs`` at a time."""
    runs = ordered(names, profile)
    report = Report()
    tags = {run.run_id: f"[{i}/{len(runs)}] {run.experiment.name} @ {profile.name}" for i, run in enumerate(runs, 1)}
    pending, running = list(runs), {}
    try:
        while pending or running:
            # Pretraining runs first: they are long and unblock the evaluations, which then fill both cores at the end
            for run in sorted(pending, key=lambda r: r.experiment.kind != "pretrain"):
                if len(running) >= max(jobs, 1):
                    break
                tag = tags[run.run_id]
                if run.status == "done":
                    echo(f"{tag}: done, skipped ({run.dir})")
                    report.skipped.append(run.run_id)
                    pending.remove(run)
                    continue
                if run.needs is not None and run.needs.run_id in {**report.failed, **report.blocked}:
                    echo(f"{tag}: not run, its pretraining run {run.needs.experiment.name} did not finish")
                    report.blocked[run.run_id] = run.needs.run_id
                    pending.remove(run)
                    continue
                if run.needs is not None and run.needs.status != "done":
                    continue  # its pretraining run is still pending or running
                action = "resuming" if run.status in ("partial", "failed") else "running"
                pending.remove(run)
                if jobs <= 1:
                    echo(f"{tag}: {action} in {run.dir}")
                    _finish(report, run, tag, time.time(), _execute_here(run), echo)
                else:
                    run.dir.mkdir(parents=True, exist_ok=True)
                    echo(f"{tag}: {action} in {run.dir} (log: batch.log)")
                    running[run.run_id] = (run, time.time(), _spawn(run))
            for run_id, (run, start, proc) in list(running.items()):
                if proc.poll() is not None:
                    del running[run_id]
                    _finish(report, run, tags[run_id], start, None if proc.returncode == 0 else
                            f"exit status {proc.returncode}; see {run.dir / 'batch.log'}", echo)
            if running:
                time.sleep(0.5)
            elif pending and not any(r.needs is None or r.needs.status == "done" or r.needs.run_id in report.failed
                                     or r.needs.run_id in report.blocked for r in pending):
                raise RuntimeError("batch: no runnable run left; a dependency is missing from the plan")
    except BaseException:
        for _, _, proc in running.values():
            _stop(proc)
        raise
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
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001 - a failed run must not stop the batch
        return f"{type(err).__name__}: {str(err)[-500:]}"
    return None


def _spawn(run: Run) -> subprocess.Popen:
    """Execute one run in a child ``revisit batch`` whose output goes to the run's ``batch.log``."""
    with open(run.dir / "batch.log", "a") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "revisit.cli", "batch", "--profile", run.profile.name,
                                 run.experiment.name], stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                                start_new_session=True)


def _finish(report: Report, run: Run, tag: str, start: float, error: str | None, echo):
    if error is None:
        echo(f"{tag}: done in {time.time() - start:.0f}s")
        report.done.append(run.run_id)
    else:
        echo(f"{tag}: FAILED after {time.time() - start:.0f}s: {error}")
        report.failed[run.run_id] = str(run.dir / ERROR)
