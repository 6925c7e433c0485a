"""Runs: an experiment resolved against a profile, with an id derived from its parameters.

A run lives in ``$REVISIT_RUNS/<profile>/<experiment>--<hash>/`` (default ``runs/`` in the
project): the resolved ``params.yaml``, the executed ``notebook.ipynb``, ``metrics.json`` (written
last, atomically: its presence means the run is done), plus whatever the run keeps (checkpoint,
log); ``rundir`` names and writes these files. Changing any resolved parameter changes the hash, so
results of different settings never mix; so do the twin recipes' versions and, for pretraining runs (and through
them their evaluations), ``config.TRAINING_VERSION``, bumped when the training code computes something else.

A *replica* ``<experiment>@seed<n>`` is the same experiment trained with its seed raised by n (for an evaluation:
on the replica of its pretraining run). The seed draws the pretraining set (the twin's images, or the subset of
the real one), the initialisation and the data order, so replicas measure how much a number owes to training
noise (``revisit.results.seed_scores``). A replica of a random-init. evaluation keeps its params (its seed also
draws the target twins) and initialises the backbone with the seed raised by n (``backbones.evaluated_backbone``).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import rundir
from .config import (DENSE_RECIPE_VERSION, MAX_SEED, PRETRAINING, PROJECT_ROOT, RECIPE_VERSION, TRAINING_VERSION,
                     Experiment, ParamsError, Profile, external_path, load_experiment, params_hash, resolve)

SEED_MARK = "@seed"  # "linear/table2_in118k@seed2": replica 2 of that experiment


def replica_of(name: str) -> tuple[str, int]:
    """``"linear/table2_in118k@seed2"`` -> ``("linear/table2_in118k", 2)``; a plain name is replica 0, the params
    file as written."""
    base, mark, number = name.partition(SEED_MARK)
    if not mark:
        return name, 0
    if not number.isdigit() or int(number) == 0 or int(number) > MAX_SEED:
        raise ParamsError(f"{name!r}: a replica is named <experiment>{SEED_MARK}<n>, n a whole number from 1")
    return base, int(number)


def replicas(name: str, count: int) -> list[str]:
    """``name`` at its first ``count`` training seeds: itself, then ``name@seed1``, ``name@seed2``, ..."""
    return [name] + [f"{name}{SEED_MARK}{k}" for k in range(1, count)]


def runs_root() -> Path:
    """Where runs are stored: ``$REVISIT_RUNS``, else ``runs/`` in the project."""
    return Path(os.environ.get("REVISIT_RUNS", PROJECT_ROOT / "runs")).expanduser().resolve()


@dataclass(frozen=True)
class Run:
    """One experiment at one profile; ``needs`` is the pretraining run a linear or transfer run evaluates."""

    experiment: Experiment
    profile: Profile
    params: object
    needs: "Run | None"
    replica: int = 0

    @property
    def name(self) -> str:
        """The experiment's name, with ``@seed<n>`` for a replica: what ``plan`` takes back."""
        return f"{self.experiment.name}{SEED_MARK}{self.replica}" if self.replica else self.experiment.name

    @property
    def run_id(self) -> str:
        values = dataclasses.asdict(self.params)
        if self.needs is not None:
            values["pretrain_run"] = self.needs.run_id
        if self.experiment.kind in PRETRAINING:
            values["training_version"] = TRAINING_VERSION
        if self.params.source == "twin":  # a new twin recipe is new data
            values["twin_recipe"] = RECIPE_VERSION
            if self.experiment.kind == "transfer":
                values["dense_twin_recipe"] = DENSE_RECIPE_VERSION
        return f"{self.name.replace('/', '__')}--{params_hash(values)}"

    @property
    def dir(self) -> Path:
        return runs_root() / self.profile.name / self.run_id

    @property
    def status(self) -> str:
        """``done``, ``failed`` (last attempt raised), ``partial`` (started, resumable) or ``missing``."""
        if (self.dir / rundir.METRICS).is_file():
            return "done"
        if (self.dir / rundir.ERROR).is_file():
            return "failed"
        return "partial" if (self.dir / rundir.PARAMS).is_file() else "missing"

    def metrics(self) -> dict | None:
        """The run's ``metrics.json``, or ``None`` if it has not finished (``null`` values are missing numbers)."""
        path = self.dir / rundir.METRICS
        return json.loads(path.read_text()) if path.is_file() else None

    def resolved(self) -> dict:
        values = dataclasses.asdict(self.params)
        return {"experiment": self.name, "kind": self.experiment.kind, "profile": self.profile.name,
                "pretrain_run": self.needs.run_id if self.needs else None, "params": values}


class ExternalArchError(ParamsError):
    """An experiment that evaluates an external checkpoint (a ResNet-50) at a profile of another arch."""


def plan(name: str, profile: Profile, referrer: str | None = None) -> Run:
    """The run of experiment ``name`` (or of a replica, ``name@seed<n>``) at ``profile``, with its dependency
    resolved (``referrer``: who names it)."""
    base, replica = replica_of(name)
    experiment = load_experiment(base, referrer=referrer)
    params = resolve(experiment, profile)
    needs, external = None, external_path(getattr(params, "pretrain", None))
    if external is not None:
        if not external.name or params.arch != "resnet50":
            raise ExternalArchError(f"{experiment.path}: 'pretrain: external:PATH' needs a checkpoint path and arch "
                                    f"resnet50 (got {params.pretrain!r} at arch {params.arch}): external checkpoints "
                                    "are ResNet-50s, evaluated at the paper profile")
    elif experiment.kind in ("linear", "transfer") and params.pretrain:
        needs = plan(params.pretrain + (f"{SEED_MARK}{replica}" if replica else ""), profile,
                     referrer=f"{experiment.path}: key 'pretrain'")
        if needs.experiment.kind not in PRETRAINING:

            raise ParamsError(f"{experiment.path}: 'pretrain' must name a pretraining experiment, got {params.pretrain}")
        if (needs.params.arch, needs.params.width) != (params.arch, params.width):
            raise ParamsError(f"{experiment.path}: arch/width {params.arch}/{params.width} differ from the pretraining "
                             f"run's {needs.params.arch}/{needs.params.width}; set them alike in the profile")
    elif replica:  # a pretraining run, or a random-init. evaluation (whose backbone takes the raised seed)
        if params.seed + replica > MAX_SEED:
            raise ParamsError(f"{name!r}: seed {params.seed} + {replica} is past the largest seed, {MAX_SEED}")
        if experiment.kind in PRETRAINING:
            params = dataclasses.replace(params, seed=params.seed + replica)
    return Run(experiment, profile, params, needs, replica)


def prepare(run: Run):
    """Create the run folder and its ``params.yaml``; refuses a folder holding other parameters."""
    run.dir.mkdir(parents=True, exist_ok=True)
    path = run.dir / rundir.PARAMS
    resolved = json.loads(json.dumps(run.resolved(), default=list))
    if path.is_file():
        existing = yaml.safe_load(path.read_text())
        if existing != resolved:
            raise RuntimeError(f"{run.dir} holds a run with other parameters; move it away (nothing was overwritten)")
    else:
        rundir.write_text(path, yaml.safe_dump(resolved, sort_keys=False))
