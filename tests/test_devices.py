"""GPUs per job: the visible devices, their slices, and a batch that gives each running run its own slice."""
import json

import pytest

from conftest import env_with, revisit
from revisit import batch, zygote
from revisit.config import load_profile
from revisit.runs import plan
from revisit.devices import DeviceError, slices, visible


def test_visible_devices_come_from_cuda_visible_devices_or_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0, 3,GPU-8f2a")
    assert visible() == ["0", "3", "GPU-8f2a"]  # indices or UUIDs, as CUDA reads them
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert visible() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    fake = tmp_path / "nvidia-smi"  # a host with four GPUs
    fake.write_text("#!/bin/sh\nprintf '0\\n1\\n2\\n3\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert visible() == ["0", "1", "2", "3"]
    fake.unlink()  # no driver
    assert visible() == []


def test_slices_are_disjoint_and_refuse_more_gpus_than_visible():
    assert slices(["0", "1", "2", "3", "4", "5", "6"], 2) == ["0,1", "2,3", "4,5"]  # GPU 6 stays idle
    assert slices(["0", "1"], 1) == ["0", "1"]
    with pytest.raises(DeviceError, match="needs 2 GPU"):
        slices(["0"], 2)
    with pytest.raises(DeviceError, match="at least 1"):
        slices(["0"], 0)


class FakeChild:
    """A child run that finishes after a few polls, remembering which runs ran at once on which GPUs."""

    active: dict = {}
    seen: list = []

    def __init__(self, run, gpus):
        assert gpus not in FakeChild.active.values(), f"{gpus} given to two runs at once"
        self.run, self.gpus, self.polls, self.returncode = run, gpus, 0, None
        FakeChild.active[run.run_id] = gpus
        FakeChild.seen.append((run.name, gpus, len(FakeChild.active)))

    def poll(self):
        self.polls += 1
        if self.polls < 2:
            return None
        self.run.dir.mkdir(parents=True, exist_ok=True)
        (self.run.dir / "metrics.json").write_text("{}")
        FakeChild.active.pop(self.run.run_id, None)
        self.returncode = 0
        return 0


def test_batch_gives_each_run_its_own_gpus_and_never_runs_more_than_the_slices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4")  # the fake device list: 2 slices of 2, GPU 4 idle
    monkeypatch.setenv(zygote.SOCKET_ENV, "/nonexistent")  # no warm kernels: nothing here starts a kernel
    monkeypatch.setattr(batch, "_spawn", FakeChild)
    monkeypatch.setattr(batch, "_stop", lambda proc: None)  # (a fake child has no process group to stop)
    FakeChild.active, FakeChild.seen = {}, []
    lines = []
    names = ["linear/table2_coco", "linear/table2_in118k", "linear/table2_random_init", "linear/table2_oi118k"]
    report = batch.run_all(names, load_profile("smoke"), echo=lines.append, jobs=8, gpus_per_run=2)
    assert report.ok and len(report.done) == len(FakeChild.seen) == 7  # three pretraining runs, four evaluations
    assert {gpus for _, gpus, _ in FakeChild.seen} == {"0,1", "2,3"}
    assert max(at_once for _, _, at_once in FakeChild.seen) == 2  # jobs=8 capped by the two slices
    assert "2 slice(s) of 2 (0,1; 2,3); 2 run(s) at a time" in lines[0]
    assert sum(" on GPUs " in line for line in lines) == len(FakeChild.seen)


def test_a_run_sees_only_its_gpus_and_records_them(tmp_path):
    env = env_with(REVISIT_RUNS=tmp_path, CUDA_VISIBLE_DEVICES="7,9")  # fake devices: CUDA sees none on a CPU host
    done = revisit("batch", "--profile", "smoke", "--jobs", "2", "--gpus-per-run", "1", "linear/table2_random_init",
                   "linear/table4/random_init", env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    environments = [json.loads(path.read_text())["environment"] for path in tmp_path.glob("smoke/*/metrics.json")]
    assert sorted(env["visible_devices"] for env in environments) == ["7", "9"]  # each run on its own device
    first, second = environments
    assert first["started"] <= second["finished"] and second["started"] <= first["finished"]  # side by side
    refused = revisit("batch", "--profile", "smoke", "--gpus-per-run", "3", env=env)
    assert refused.returncode == 2 and "--gpus-per-run 3 needs 3 GPU(s), but 2 are visible" in refused.stderr


def test_processes_per_run_come_from_the_environment_or_the_visible_gpus(monkeypatch):
    import torch

    from revisit.distributed import processes

    monkeypatch.delenv("REVISIT_PROCESSES", raising=False)
    assert processes() == max(torch.cuda.device_count(), 1)
    monkeypatch.setenv("REVISIT_PROCESSES", "2")
    assert processes() == 2
    for bad in ("0", "two"):
        monkeypatch.setenv("REVISIT_PROCESSES", bad)
        with pytest.raises(ValueError, match="REVISIT_PROCESSES"):
            processes()


def test_a_pretraining_run_trains_on_two_ddp_processes_through_the_batch_runner(tmp_path):
    """Two gloo processes (as two GPUs would run NCCL ones): the batch split between them, one queue, one log,
    the run folder written once, and an evaluation of the backbone they trained."""
    import torch

    env = env_with(REVISIT_RUNS=tmp_path, REVISIT_PROCESSES=2)
    done = revisit("batch", "--profile", "smoke", "linear/table2_coco", env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    trained, = tmp_path.glob("smoke/pretrain__moco_coco_400ep--*")
    summary = json.loads((trained / "metrics.json").read_text())
    p = plan("pretrain/moco_coco_400ep", load_profile("smoke")).params
    steps = p.epochs * (summary["images"] // p.batch_size)  # global steps: as on one process
    assert summary["processes"] == 2 and summary["steps"] == steps
    assert [json.loads(line)["step"] for line in (trained / "metrics.jsonl").read_text().splitlines()] == list(
        range(1, steps + 1))  # one log, written by rank 0 only
    state = torch.load(trained / "checkpoint.pt", weights_only=False)
    assert int(state["model"]["queue_ptr"]) == steps * p.batch_size % p.queue_size  # both ranks' keys enqueued
    assert next(tmp_path.glob("smoke/linear__table2_coco--*/metrics.json")).is_file()
    assert (trained / "ddp").is_dir()  # the launcher's logs in the run folder, not in /tmp
