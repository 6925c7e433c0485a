"""Fault injection on the batch: two batches at once, the batch or a run killed, a run that diverges, an unwritable
runs folder, a missing reference. In each case nothing already computed is lost and the failure is named."""
import json
import signal
import subprocess
import sys
import time

import psutil
import pytest

from conftest import env_with, params_copy, revisit
from revisit.config import PROJECT_ROOT

PRETRAIN = "pretrain/moco_in118k_400ep"
OTHER = "pretrain/moco_coco_400ep"


@pytest.fixture(scope="module")
def longer(tmp_path_factory):
    """A params copy whose pretraining runs last a few seconds (4 epochs), and both runs done without interruption."""
    tmp = tmp_path_factory.mktemp("faults")
    params = params_copy(tmp, longer={"pretrain": {"epochs": 4, "images": 256, "log_every": 1}})
    env = env_with(REVISIT_PARAMS=params, REVISIT_RUNS=tmp / "straight",
                   REVISIT_CACHE=tmp_path_factory.getbasetemp() / "twin-cache")
    proc = revisit("batch", "--profile", "longer", "--jobs", "2", PRETRAIN, OTHER, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return params, env, tmp / "straight" / "longer"


def start_batch(env, *args):
    return subprocess.Popen([sys.executable, "-m", "revisit.cli", "batch", "--profile", "longer", *args], env=env,
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_training(root, runs=2, timeout=300):
    """Wait until ``runs`` pretraining runs under ``root`` have logged a step of their second epoch."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        logs = list(root.rglob("metrics.jsonl"))
        if len(logs) >= runs and all(any(json.loads(ln)["epoch"] >= 1 for ln in log.read_text().splitlines() if ln)
                                     for log in logs):
            return logs
        time.sleep(0.05)
    raise TimeoutError(f"no training under {root}")


def assert_all_gone(processes, timeout=15):
    """No process of ``processes`` (children, kernels) is left running after ``timeout`` seconds."""
    deadline = time.time() + timeout
    alive = processes
    while time.time() < deadline:
        alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return
        time.sleep(0.2)
    raise AssertionError(f"left running: {[(p.pid, p.cmdline()[-3:]) for p in alive]}")


def final(root, name):
    return json.loads(next(root.glob(f"{name.replace('/', '__')}--*/metrics.json")).read_text())


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_batch_leaves_no_process_and_its_rerun_equals_an_uninterrupted_one(longer, tmp_path, sig):
    params, env, straight = longer
    env = {**env, "REVISIT_RUNS": str(tmp_path)}
    batch = start_batch(env, "--jobs", "2", PRETRAIN, OTHER)
    wait_for_training(tmp_path)
    family = psutil.Process(batch.pid).children(recursive=True)
    assert len(family) >= 4  # two child runs, each with its kernel
    batch.send_signal(sig)
    out = batch.communicate(timeout=60)[0]
    assert_all_gone(family)
    if sig == signal.SIGTERM:
        assert batch.returncode == 128 + sig and "stopping 2 runs" in out and "killed by SIGTERM" in out
    stopped = [d for d in (tmp_path / "longer").iterdir() if not (d / "metrics.json").exists()]
    assert stopped  # (a run may finish just before the signal)
    for run in (tmp_path / "longer").iterdir():  # each stopped child recorded why (SIGTERM from the dying batch)
        error = run / "error.txt"
        assert error.read_text().startswith("killed by SIGTERM") if run in stopped else not error.exists()

    status = revisit("status", "--profile", "longer", PRETRAIN, OTHER, env=env)
    assert status.stdout.count("failed") == len(stopped) and "[killed by SIGTERM]" in status.stdout
    rerun = revisit("batch", "--profile", "longer", "--jobs", "2", PRETRAIN, OTHER, env=env)
    assert rerun.returncode == 0 and rerun.stdout.count("resuming") == len(stopped), rerun.stdout + rerun.stderr
    for name in (PRETRAIN, OTHER):
        a, b = final(straight, name), final(tmp_path / "longer", name)
        assert (a["final_loss"], a["final_acc"], a["steps"]) == (b["final_loss"], b["final_acc"], b["steps"])
    assert not list(tmp_path.rglob("error.txt")) and not list(tmp_path.rglob("*.tmp"))


def test_a_preempted_cluster_job_is_requeued_and_its_run_resumes_as_if_uninterrupted(longer, tmp_path):
    """Slurm's preemption signal (USR2, as submitit's local executor sends it) reaches a job mid-training: submitit
    requeues it, and the run resumes from its checkpoint to the numbers of an uninterrupted run."""
    params, env, straight = longer
    env = {**env, "REVISIT_RUNS": str(tmp_path)}
    batch = start_batch(env, "--executor", "local", PRETRAIN)
    wait_for_training(tmp_path, runs=1)
    task, = [p for p in psutil.Process(batch.pid).children(recursive=True)
             if "submitit.core._submit" in " ".join(p.cmdline())]
    task.send_signal(signal.SIGUSR2)
    out = batch.communicate(timeout=600)[0]
    assert batch.returncode == 0 and "1 of 1 runs done" in out, out
    logs = "".join(path.read_text() for path in (tmp_path / "longer" / "submitit").rglob("*_log.*"))
    assert "Requeued job" in logs, logs[-3000:]  # the job was requeued, not restarted from scratch by us
    a, b = final(straight, PRETRAIN), final(tmp_path / "longer", PRETRAIN)
    assert (a["final_loss"], a["final_acc"], a["steps"]) == (b["final_loss"], b["final_acc"], b["steps"])
    assert len(list((tmp_path / "longer").glob("*/notebook.attempt-*.ipynb"))) == 1  # the first attempt's notebook


def test_two_batches_at_once_execute_each_run_once(longer, tmp_path):
    params, env, straight = longer
    env = {**env, "REVISIT_RUNS": str(tmp_path)}
    names = [PRETRAIN, OTHER, "linear/table2_in118k"]
    first = start_batch(env, "--jobs", "2", *names)
    second = start_batch(env, *names)
    outputs = [first.communicate(timeout=600)[0], second.communicate(timeout=600)[0]]
    assert first.returncode == second.returncode == 0, outputs
    said = "".join(outputs) + "".join(log.read_text() for log in tmp_path.rglob("batch.log"))
    assert "by another process" in said  # they met: one waited for the other's lock
    # each run executed once: no second attempt's notebook, no error, and (below) one unbroken training log
    for run in (tmp_path / "longer").iterdir():
        assert not list(run.glob("notebook.attempt-*")) and not (run / "error.txt").exists()
    for name in (PRETRAIN, OTHER):
        run = next((tmp_path / "longer").glob(f"{name.replace('/', '__')}--*"))
        steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(1, len(steps) + 1))  # one process wrote the log, once
        assert final(straight, name)["final_loss"] == final(tmp_path / "longer", name)["final_loss"]


def test_a_run_killed_by_a_signal_is_recorded_and_the_batch_goes_on(longer, tmp_path):
    params, env, _ = longer
    env = {**env, "REVISIT_RUNS": str(tmp_path)}
    batch = start_batch(env, "--jobs", "2", PRETRAIN, OTHER)
    wait_for_training(tmp_path)
    child = next(p for p in psutil.Process(batch.pid).children() if PRETRAIN in " ".join(p.cmdline()))
    kernel = child.children(recursive=True)
    child.kill()
    out = batch.communicate(timeout=300)[0]
    assert batch.returncode == 1
    error = next(tmp_path.rglob(f"{PRETRAIN.replace('/', '__')}--*/error.txt"))
    assert error.read_text().startswith("killed by SIGKILL")
    assert "FAILED after" in out and "killed by SIGKILL" in out and f"see {error}" in out
    assert "1 run, 0 already done, 1 failed" in out  # the other run finished
    assert_all_gone(kernel)  # the kernel ends with its run


def test_a_diverging_run_fails_and_is_never_done(tmp_path):
    params = params_copy(tmp_path, diverging={"pretrain": {"base_lr": 1.0e+9}})
    env = env_with(REVISIT_PARAMS=params, REVISIT_RUNS=tmp_path / "runs")
    proc = revisit("batch", "--profile", "diverging", PRETRAIN, "linear/table2_in118k", env=env)
    assert proc.returncode == 1
    assert "FAILED" in proc.stdout and "NonFiniteError: loss is nan at step" in proc.stdout
    assert "PapermillExecutionError" not in proc.stdout  # the summary names the notebook's own exception
    run = next((tmp_path / "runs" / "diverging").glob("pretrain__*"))
    assert not (run / "metrics.json").exists() and not (run / "backbone.pt").exists()
    assert "1 blocked" in proc.stdout
    status = revisit("status", "--profile", "diverging", PRETRAIN, env=env)
    assert status.stdout.startswith("failed") and "NonFiniteError" in status.stdout


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_unwritable_runs_folder_is_one_clear_error(tmp_path, jobs):
    (tmp_path / "runs").write_text("a file where the runs folder should be")
    proc = revisit("batch", "--profile", "smoke", "--jobs", jobs, PRETRAIN,
                   env=env_with(REVISIT_RUNS=tmp_path / "runs"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"cannot write the runs folder {tmp_path / 'runs' / 'smoke'}" in proc.stderr and "REVISIT_RUNS" in proc.stderr


def test_a_missing_pretraining_reference_names_the_file_and_key(tmp_path):
    params = params_copy(tmp_path)
    (params / "linear" / "orphan.yaml").write_text("kind: linear\npretrain: pretrain/no_such_run\n")
    proc = revisit("batch", "--profile", "smoke", "linear/orphan", env=env_with(REVISIT_PARAMS=params))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{params / 'linear' / 'orphan.yaml'}: key 'pretrain' names 'pretrain/no_such_run'" in proc.stderr
