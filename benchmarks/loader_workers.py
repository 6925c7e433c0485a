"""Pretraining seconds at each loader worker count, with runs side by side as `revisit batch --jobs N` runs them.

    python benchmarks/loader_workers.py                                   # cpu profile, Table 4's MoCo and MC
    python benchmarks/loader_workers.py --side-by-side 1 --workers 0 2    # one run with the machine to itself

Each experiment of ``--experiments`` is trained ``--side-by-side`` times at once into temporary folders, at every
worker count of ``--workers`` (the profile's other settings unchanged), and each copy prints its training seconds.
The worker counts alternate ``--repeats`` times: a shared machine's speed can drift by a fifth within minutes, so
only neighbouring measurements compare. On 2 cores with two jobs, loader processes only compete with the other job:
this is what set the cpu profile's ``workers`` (not a test).
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile


def one(experiment: str, profile: str, workers: int):
    """Train one copy and print its seconds (the child process)."""
    from revisit.config import load_profile
    from revisit.data import pretrain_images
    from revisit.runs import plan
    from revisit.train import pretrain

    p = dataclasses.replace(plan(experiment, load_profile(profile)).params, workers=workers)
    with tempfile.TemporaryDirectory() as folder:
        summary = pretrain(p, pretrain_images(p, folder), folder, progress=False)
    print(f"{experiment:28s} workers {workers}: {summary['train_seconds']:6.1f} s for {summary['steps']} steps",
          flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--experiments", nargs="*", default=["pretrain/coco200/moco", "pretrain/coco200/mc"])
    parser.add_argument("--workers", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--side-by-side", type=int, default=2, help="copies trained at once (the batch's --jobs)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the worker counts, interleaved")
    parser.add_argument("--one", nargs=2, metavar=("EXPERIMENT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(args.one[0], args.profile, int(args.one[1]))
    for workers in args.workers * args.repeats:
        for experiment in args.experiments:
            copies = [subprocess.Popen([sys.executable, __file__, "--profile", args.profile,
                                        "--one", experiment, str(workers)]) for _ in range(args.side_by_side)]
            if any(c.wait() for c in copies):
                sys.exit(f"{experiment} at {workers} workers failed")


if __name__ == "__main__":
    main()
