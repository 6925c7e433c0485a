"""Shared fixtures: every test gets its own runs folder and twin cache, never the project's."""
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from revisit.config import PROJECT_ROOT


@pytest.fixture(autouse=True)
def isolated_store(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REVISIT_RUNS", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.setenv("REVISIT_CACHE", str(tmp_path_factory.getbasetemp() / "twin-cache"))


def revisit(*args, env, timeout=900):
    return subprocess.run([sys.executable, "-m", "revisit.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=PROJECT_ROOT)


def env_with(**values):
    return {**os.environ, **{k: str(v) for k, v in values.items()}}


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory):
    """Every run of the book at the smoke profile, executed once for the session."""
    root = tmp_path_factory.mktemp("smoke-runs")
    env = env_with(REVISIT_RUNS=root, REVISIT_CACHE=tmp_path_factory.getbasetemp() / "twin-cache")
    proc = revisit("batch", "--profile", "smoke", "--jobs", "2", env=env)
    return root, env, proc


def params_copy(tmp_path, **profiles):
    """A copy of the project's params with extra profiles (dicts of overrides)."""
    root = tmp_path / "params"
    shutil.copytree(PROJECT_ROOT / "params", root)
    smoke = yaml.safe_load((root / "profiles" / "smoke.yaml").read_text())
    for name, overrides in profiles.items():
        profile = {**smoke, **{kind: {**smoke[kind], **overrides.get(kind, {})} for kind in ("pretrain", "linear")}}
        fixed = {key for values in overrides.values() for key in values}
        profile["scale"] = {key: factor for key, factor in smoke["scale"].items() if key not in fixed}
        (root / "profiles" / f"{name}.yaml").write_text(yaml.safe_dump(profile))
    return root
