"""The environment a run records in its metrics: library versions, devices, the git state of the code, times."""
import subprocess

import torch

from revisit.environment import begin, describe, git_state


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                   check=True, capture_output=True)


def test_git_state_names_the_commit_and_whether_tracked_files_changed(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}  # not a checkout (an installed package)
    git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git(tmp_path, "add", "code.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert git_state(tmp_path) == {"commit": head.strip(), "dirty": False}
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "metrics.json").write_text("{}")
    assert git_state(tmp_path)["dirty"] is False  # untracked outputs do not make the code dirty
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path) == {"commit": head.strip(), "dirty": True}


def test_describe_records_the_libraries_devices_and_times():
    begun = begin()
    env = describe(begun)
    assert env["torch"] == torch.__version__ and env["python"].count(".") == 2
    assert len(env["devices"]) >= 1 and env["host"]
    assert env["cuda"] is None if not torch.cuda.is_available() else env["cuda"] == torch.version.cuda
    assert env["started"] == begun["started"] <= env["finished"]  # ISO 8601 in UTC sorts as time
    assert env["git"] == begun["git"] and set(env["git"]) == {"commit", "dirty"}  # the code as the run started
