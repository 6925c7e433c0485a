"""The run folder's owner: atomic writes that survive a failing writer, strict JSON, the lock, the error record."""
import errno
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from revisit import rundir


def test_a_write_that_fails_half_way_keeps_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    rundir.write_json(path, {"score": 1.0})
    real_write = Path.write_text

    def half_then_full(self, text, *args, **kwargs):  # writes half the bytes, then the disk is full
        real_write(self, text[:len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        rundir.write_json(path, {"score": 2.0})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"score": 1.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_torch_file_cut_short_never_replaces_a_good_one(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    rundir.save_torch({"w": torch.ones(3)}, path)
    real_save = torch.save

    def truncated_save(obj, target):  # a short write: the archive loses its tail
        real_save(obj, target)
        data = Path(target).read_bytes()
        Path(target).write_bytes(data[:len(data) // 2])

    monkeypatch.setattr(torch, "save", truncated_save)
    with pytest.raises(OSError, match="does not read back"):
        rundir.save_torch({"w": torch.zeros(3)}, path, previous=tmp_path / "checkpoint.prev.pt")
    monkeypatch.undo()
    assert torch.equal(torch.load(path)["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # nothing moved, no temporary left


def test_save_torch_keeps_the_file_it_replaces(tmp_path):
    rundir.save_torch({"epoch": 1}, tmp_path / "c.pt", previous=tmp_path / "p.pt")
    rundir.save_torch({"epoch": 2}, tmp_path / "c.pt", previous=tmp_path / "p.pt")
    assert torch.load(tmp_path / "c.pt")["epoch"] == 2 and torch.load(tmp_path / "p.pt")["epoch"] == 1


def test_json_is_strict_and_non_finite_numbers_become_null(tmp_path):
    import numpy as np

    rundir.write_json(tmp_path / "m.json", {"loss": float("nan"), "acc": np.float32(np.inf), "ok": 0.5,
                                            "list": [1.0, float("-inf")], "n": np.int64(3)})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}")) == {
        "loss": None, "acc": None, "ok": 0.5, "list": [1.0, None], "n": 3}


def _hold(run_dir, ready, release):
    with rundir.lock(run_dir):
        ready.set()
        release.wait(30)


@pytest.fixture
def holding(tmp_path):
    """Another process holding the lock of the run folder ``tmp_path``, and the event that lets it go."""
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(tmp_path, ready, release))
    proc.start()
    assert ready.wait(30)
    yield proc, release
    if proc.is_alive():  # a killed holder may leave the event's lock taken: never touch it then
        release.set()
        proc.join(30)


def test_the_lock_admits_one_process_and_names_its_holder(tmp_path, holding):
    proc, release = holding
    assert f"pid {proc.pid}" in rundir.holder(tmp_path)
    with pytest.raises(rundir.RunBusyError, match=f"pid {proc.pid}"):
        with rundir.lock(tmp_path, wait=False):
            pass
    release.set()
    proc.join(30)
    assert rundir.holder(tmp_path) is None
    with rundir.lock(tmp_path, wait=False):
        assert f"pid {os.getpid()}" in rundir.holder(tmp_path)


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path, holding):
    proc, _ = holding
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    start = time.time()
    with rundir.lock(tmp_path, wait=False):  # no stale lock: the kernel freed it with the process
        pass
    assert time.time() - start < 1


def test_error_record_summary_and_best_effort(tmp_path, monkeypatch):
    path = rundir.record_error(tmp_path, "ValueError: bad\nthings", "Traceback ...")
    assert path == tmp_path / rundir.ERROR and rundir.error_summary(tmp_path) == "ValueError: bad things"
    monkeypatch.setattr(rundir, "write_text", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    assert rundir.record_error(tmp_path / "other", "x") is None  # a full disk: the caller says so instead


def test_an_unwritable_runs_folder_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the folder should be: no permission check can be skipped, even as root
    with pytest.raises(rundir.RunsFolderError, match=f"cannot write the runs folder {blocker / 'cpu'}.*REVISIT_RUNS"):
        rundir.check_writable(blocker / "cpu")


def _probe_many(folder, times=300):
    for _ in range(times):
        rundir.check_writable(folder)


def test_batches_probing_one_runs_folder_side_by_side_do_not_trip_each_other(tmp_path):
    """Each run of a `--jobs 2` batch checks the runs folder; a shared probe name once made one fail (ENOENT)."""
    import multiprocessing

    workers = [multiprocessing.get_context("fork").Process(target=_probe_many, args=(tmp_path,)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0] and not list(tmp_path.iterdir())


def test_results_show_a_null_or_legacy_nan_metric_as_missing():

    from revisit.config import load_profile
    from revisit.results import linear_scores, with_deltas
    from revisit.runs import plan

    profile = load_profile("smoke")
    strict, legacy = plan("linear/table2_coco", profile), plan("linear/table2_in118k", profile)
    for run, text in [(strict, rundir.dumps({"targets": {"voc": {"test": float("nan")}, "pets": {"test": 40.0}}})),
                      (legacy, '{"targets": {"voc": {"test": NaN}, "cars": {"test": Infinity}}}')]:
        run.dir.mkdir(parents=True)
        (run.dir / rundir.METRICS).write_text(text)
    scores = linear_scores({"COCO": "linear/table2_coco", "IN": "linear/table2_in118k"}, profile)
    assert scores.isna().loc["COCO", "VOC"] and scores.loc["COCO", "Pets"] == 40.0
    assert scores.isna().loc["IN", ["VOC", "Cars"]].all()
    cells = with_deltas(scores, "COCO")
    assert cells.loc["COCO", "VOC"] == "missing" and cells.loc["IN", "Cars"] == "missing"
    assert "nan" not in cells.to_string().lower().replace("missing", "")
