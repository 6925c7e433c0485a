"""Batch execution of runs with papermill (DESIGN.md "Runs, profiles, results").

``run_all`` executes the runs the book needs in dependency order (pretraining before the linear
evaluations that read its backbone), skips finished runs, resumes partial ones (the pretraining
loop picks up its last checkpoint), keeps going past a failure and reports it at the end. A run's
folder is only ever written by that run, so nothing computed elsewhere is overwritten.
"""
from __future__ import annotations

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

NOTEBOOKS = {"pretrain": PROJECT_ROOT / "notebooks" / "pretrain.py", "linear": PROJECT_ROOT / "notebooks" / "linear.py"}


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


def run_all(names, profile: Profile, echo=print) -> Report:
    """Run every experiment in ``names`` (and its dependencies) that is not done yet."""
    runs = ordered(names, profile)
    report = Report()
    for i, run in enumerate(runs, 1):
        tag = f"[{i}/{len(runs)}] {run.experiment.name} @ {profile.name}"
        if run.status == "done":
            echo(f"{tag}: done, skipped ({run.dir})")
            report.skipped.append(run.run_id)
            continue
        if run.needs is not None and run.needs.status != "done":
            echo(f"{tag}: not run, its pretraining run {run.needs.experiment.name} did not finish")
            report.blocked[run.run_id] = run.needs.run_id
            continue
        action = "resuming" if run.status in ("partial", "failed") else "running"
        echo(f"{tag}: {action} in {run.dir}")
        start = time.time()
        try:
            execute(run)
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - a failed run must not stop the batch
            echo(f"{tag}: FAILED after {time.time() - start:.0f}s: {type(err).__name__}: {str(err)[-500:]}")
            report.failed[run.run_id] = str(run.dir / ERROR)
            continue
        echo(f"{tag}: done in {time.time() - start:.0f}s")
        report.done.append(run.run_id)
    return report
