"""Command line: ``revisit batch``, ``revisit status``, ``revisit check``, ``revisit list``.

``revisit batch --profile cpu`` runs every run the book needs (``params/book.yaml``) that is not
done yet; ``--section section4_1_multicrop`` limits it to one page's runs; ``revisit status`` shows where
each stands (a failed run with the first line of its ``error.txt``); ``revisit check --profile paper`` trains
each kind of pretraining and of evaluation work for a few steps and projects the book's hours
(``revisit.dryrun``). Exit status 1 when a run failed, 2 for a params or runs-folder problem (nothing run), 128 + n
when stopped by signal n.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import rundir
from .batch import Terminated, book_experiments, ordered, run_all, stop_on_signals
from .config import ParamsError, list_experiments, load_profile
from .devices import DeviceError

DEFAULT_PROFILE = os.environ.get("REVISIT_PROFILE", "cpu")


def _names(args, profile) -> list[str]:
    if args.experiments:
        return args.experiments
    sections = book_experiments(profile)
    if args.section:
        unknown = sorted(set(args.section) - set(sections))
        if unknown:
            raise ParamsError(f"unknown page(s) {unknown}: --section takes a page of params/book.yaml, "
                              f"one of {sorted(sections)}")
        sections = {name: sections[name] for name in args.section}
    return [name for names in sections.values() for name in names]


def _submit(args, profile) -> int:
    """``revisit batch --executor slurm|local``: one job per run; the local executor's jobs are waited for."""
    from . import cluster
    from .runs import runs_root

    if args.gpus_per_run or args.jobs != 1:
        raise ParamsError("--jobs and --gpus-per-run share this machine's GPUs; with --executor each run is a job "
                          "of its own: use --gpus-per-node")
    runs = ordered(_names(args, profile), profile)
    ex = cluster.executor(args.executor, runs_root() / profile.name / "submitit", partition=args.partition,
                          gpus_per_node=args.gpus_per_node, minutes=args.time, account=args.account,
                          cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb)
    jobs, refused = cluster.submit(runs, profile, ex)
    if args.executor == "slurm":
        print(f"\n{len(jobs)} job(s) submitted, {len(refused)} run(s) not submitted; "
              f"`revisit status --profile {profile.name}` shows each run")
        return 1 if refused else 0
    cluster.wait(jobs)
    left = [run.name for run in runs if run.status != "done"]
    print(f"\n{len(runs) - len(left)} of {len(runs)} runs done" + (f"; not done: {left}" if left else ""))
    return 1 if left else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="revisit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in [("batch", "run what is missing"), ("status", "show the state of each run")]:
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--profile", default=DEFAULT_PROFILE, help="smoke, cpu, gpu or paper (default: %(default)s)")
        if name == "batch":
            cmd.add_argument("--jobs", type=int, default=1, help="runs side by side (default: %(default)s)")
            cmd.add_argument("--gpus-per-run", type=int, default=0, metavar="G",
                             help="give each run its own G of the visible GPUs (CUDA_VISIBLE_DEVICES or nvidia-smi), "
                             "at most as many runs at once as there are such slices (default: no assignment)")
            cmd.add_argument("--executor", choices=("here", "slurm", "local"), default="here",
                             help="here: run on this machine; slurm: one Slurm job per run through submitit, "
                             "in the run graph's order; local: the same jobs as local processes (default: here)")
            cluster = cmd.add_argument_group("Slurm jobs (--executor slurm)")
            cluster.add_argument("--partition")
            cluster.add_argument("--account")
            cluster.add_argument("--gpus-per-node", type=int, default=1, help="GPUs per job (default: %(default)s)")
            cluster.add_argument("--cpus-per-task", type=int, default=10, help="cores per job (default: %(default)s)")
            cluster.add_argument("--mem-gb", type=float, help="memory per job (default: the partition's)")
            cluster.add_argument("--time", type=int, default=1440, metavar="MINUTES", help="time limit of one "
                                 "attempt; a run past it is requeued and resumes (default: %(default)s)")
        cmd.add_argument("--section", action="append", help="only this page's runs (repeatable; see params/book.yaml)")
        cmd.add_argument("experiments", nargs="*", help="experiment names under params/, a replica as "
                         "name@seed<n> (default: the book's)")
    check = sub.add_parser("check", help="dry run: time each kind of run for a few steps and project the book's hours")
    check.add_argument("--profile", default=DEFAULT_PROFILE, help="the profile to project (default: %(default)s)")
    check.add_argument("--batch", type=int, help="batch to measure at (default: the profile's on a GPU, halved "
                       "until it fits; 4 on a CPU)")
    check.add_argument("--steps", type=int, default=3, help="steps per kind (default: %(default)s)")
    sub.add_parser("list", help="list every experiment under params/")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print("\n".join(list_experiments()))
            return 0
        profile = load_profile(args.profile)
        if args.command == "check":
            from .dryrun import dry_run, evaluation_dry_run, report

            table = dry_run(profile, batch=args.batch, steps=args.steps)
            print(report(table, evaluation_dry_run(profile, steps=args.steps)))
            return 0
        if args.command == "status":
            for run in ordered(_names(args, profile), profile):
                holder = rundir.holder(run.dir)
                status = "running" if holder else run.status
                note = f"  [{holder}]" if holder else (
                    f"  [{rundir.error_summary(run.dir)}]" if status == "failed" else "")
                job = run.dir / rundir.JOB
                if status != "done" and job.is_file():
                    note += f"  [job {json.loads(job.read_text())['job_id']}]"
                print(f"{status:8s} {run.name:40s} {run.dir}{note}")
            return 0
        if args.executor != "here":
            return _submit(args, profile)
        stop_on_signals()
        report = run_all(_names(args, profile), profile, jobs=args.jobs, gpus_per_run=args.gpus_per_run)
    except (ParamsError, rundir.RunsFolderError, DeviceError) as err:
        print(f"revisit: {err.strerror if isinstance(err, OSError) else err}", file=sys.stderr)
        return 2
    except Terminated as err:
        print(f"revisit: {err}; the runs it had started resume with `revisit batch`", file=sys.stderr)
        return 128 + err.signum
    print(f"\n{len(report.done)} run, {len(report.skipped)} already done, {len(report.failed)} failed, "
          f"{len(report.blocked)} blocked by a failed dependency")
    for message in report.failed.values():
        print(f"  failed: {message}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
