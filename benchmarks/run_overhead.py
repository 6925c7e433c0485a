"""The fixed cost of a run, printed as figures (not a test): papermill, kernel start and the runner's imports.

    python benchmarks/run_overhead.py [--runs 5]

Executes a notebook holding only the import cells of the three runners (pretraining, linear, transfer) the way
``revisit batch`` does, first with a fresh kernel per run (what every run paid before ``revisit.zygote``), then
with kernels forked from a zygote that has the imports done. The difference, times the book's runs, is what the
zygote saves the book.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from revisit import zygote
from revisit.kernels import execute_notebook

IMPORTS = """\
import pandas as pd
import torch
from revisit.backbones import build_backbone, evaluated_backbone
from revisit.config import load_profile
from revisit.data import pretrain_images
from revisit.dense import evaluate_tasks
from revisit.linear import evaluate
from revisit.rundir import METRICS, predictions_file, write_json
from revisit.runs import plan
from revisit.train import pretrain, snapshots
"""


def timed(source: Path, folder: Path, runs: int) -> list[float]:
    seconds = []
    for i in range(runs):
        start = time.perf_counter()
        execute_notebook(source, folder / f"out{i}.ipynb", {"value": i}, folder, open("/dev/null", "w"))
        seconds.append(time.perf_counter() - start)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "runner.ipynb"
        nbformat.write(nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell("value = 0", metadata={"tags": ["parameters"]}),
                   nbformat.v4.new_code_cell(IMPORTS)],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), source)
        cold = timed(source, folder, args.runs)
        with zygote.running() as path:
            start = time.perf_counter()
            while not Path(path).exists():
                time.sleep(0.05)
            ready = time.perf_counter() - start
            warm = timed(source, folder, args.runs)
    print(f"fresh kernel per run : {statistics.median(cold):.2f} s per run (median of {args.runs}; "
          f"{', '.join(f'{s:.2f}' for s in cold)})")
    print(f"forked from a zygote : {statistics.median(warm):.2f} s per run ({', '.join(f'{s:.2f}' for s in warm)}); "
          f"the zygote itself was ready after {ready:.1f} s, once per batch")
    print(f"saved per run        : {statistics.median(cold) - statistics.median(warm):.2f} s")


if __name__ == "__main__":
    sys.exit(main())
