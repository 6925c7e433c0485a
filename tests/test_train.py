"""Pretraining loop: logging, atomic checkpoints, and a resumed run equal to an uninterrupted one."""
import dataclasses
import os

import pytest
import torch
from PIL import Image

import revisit.train as train
from revisit import rundir
from revisit.config import load_experiment, load_profile, resolve
from revisit.data import ImageSet, twins
from revisit.moco import MoCo


SEC4 = dict(crop_size=23, small_crops=2, small_crop_size=14, min_overlap=0.2, policy="mixed", nn_lambda=0.4, nn_k=3,
            nn_warmup_epochs=1.0, snapshot_every=1)  # every Sec. 4 addition at once


@pytest.fixture(params=[{}, SEC4], ids=["two-crop", "sec4"])
def setup(request):
    p = resolve(load_experiment("pretrain/moco_in118k_400ep"), load_profile("smoke"))
    p = dataclasses.replace(p, epochs=3, images=96, batch_size=32, queue_size=64, **request.param)
    return p, twins.generate_pretrain("in118k", 96, seed=0)


def test_sec4_run_logs_its_additions_and_keeps_snapshots(tmp_path):
    p = resolve(load_experiment("pretrain/moco_in118k_400ep"), load_profile("smoke"))
    p = dataclasses.replace(p, epochs=3, images=96, batch_size=32, queue_size=64, **SEC4)
    summary = train.pretrain(p, twins.generate_pretrain("in118k", 96, seed=0), tmp_path, progress=False)
    records = rundir.read_log(tmp_path)
    assert all(r["loss_nn"] == 0 and r["nn_weight"] == 0 for r in records if r["epoch"] == 0)  # warm-up epoch
    assert all(r["loss_nn"] > 0 and r["nn_weight"] == 0.4 for r in records if r["epoch"] > 0)
    assert summary["rejected_crops"] > 0 and summary["fallback_crops"] == 0  # the paper's sampler never gives up
    assert [r["train_s"] for r in records] == sorted(r["train_s"] for r in records)
    snaps = train.snapshots(tmp_path)
    assert [s.name for s in snaps] == ["epoch0001.pt", "epoch0002.pt", "epoch0003.pt"]
    last = torch.load(snaps[-1], weights_only=False)
    assert last["epoch"] == 3 and 0 < last["train_seconds"] <= summary["train_seconds"] + 1
    state = torch.load(tmp_path / train.CHECKPOINT, weights_only=False)
    assert "queue_g" in state["model"] and state["train_seconds"] > 0


def test_pretrain_writes_log_checkpoint_and_backbone(setup, tmp_path):
    p, images = setup
    summary = train.pretrain(p, images, tmp_path, progress=False)
    records = rundir.read_log(tmp_path)
    assert [r["step"] for r in records] == list(range(1, 10))
    assert {"loss", "acc", "lr", "images_per_s", "skipped"} <= set(records[0])
    assert records[0]["lr"] == pytest.approx(0.3 * 32 / 256) and records[-1]["lr"] < records[0]["lr"]
    state = torch.load(tmp_path / train.CHECKPOINT, weights_only=False)
    assert state["epoch"] == 3 and {"model", "optimizer", "rng"} <= set(state)
    assert "queue" in state["model"] and "queue_ptr" in state["model"]
    assert (tmp_path / train.BACKBONE).is_file() and not list(tmp_path.glob("*.tmp"))
    assert summary["epochs"] == 3 and summary["steps"] == 9 and summary["skipped_images"] == 0


def test_resume_after_interruption_reproduces_uninterrupted_losses(setup, tmp_path, monkeypatch):
    p, images = setup
    train.pretrain(p, images, tmp_path / "straight", progress=False)

    real_forward, calls = MoCo.forward, []

    def dying_forward(self, *args, **kwargs):  # the process "dies" in the middle of the second epoch (3 steps each)
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(MoCo, "forward", dying_forward)
    with pytest.raises(KeyboardInterrupt):
        train.pretrain(p, images, tmp_path / "resumed", progress=False)
    assert torch.load(tmp_path / "resumed" / train.CHECKPOINT, weights_only=False)["epoch"] == 1
    monkeypatch.setattr(MoCo, "forward", real_forward)
    train.pretrain(p, images, tmp_path / "resumed", progress=False)

    straight, resumed = rundir.read_log(tmp_path / "straight"), rundir.read_log(tmp_path / "resumed")
    assert [r["step"] for r in resumed] == [r["step"] for r in straight]
    assert [r["loss"] for r in resumed] == [r["loss"] for r in straight]
    a = torch.load(tmp_path / "straight" / train.BACKBONE)
    b = torch.load(tmp_path / "resumed" / train.BACKBONE)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_colours_applied_on_the_device_train_like_colours_applied_in_the_loader(setup, tmp_path, monkeypatch):
    """The GPU data path, forced on the CPU: the same views, hence the same losses, as the loader's colouring."""
    p, images = setup
    p = dataclasses.replace(p, epochs=2)
    train.pretrain(p, images, tmp_path / "loader", progress=False)
    monkeypatch.setattr(train, "colour_on_device", lambda device: True)
    coloured, colour = [], train.ViewSet.colour
    monkeypatch.setattr(train.ViewSet, "colour", lambda self, batch, device=None: coloured.append(device)
                        or colour(self, batch, device))
    train.pretrain(p, images, tmp_path / "device", progress=False)
    loader, device = rundir.read_log(tmp_path / "loader"), rundir.read_log(tmp_path / "device")
    assert coloured == ["cpu"] * 6  # every batch coloured in the training loop, after the transfer
    assert [r["loss"] for r in device] == [r["loss"] for r in loader] and len(loader) == 6


def test_unreadable_images_are_skipped_and_counted(setup, tmp_path):
    p, images = setup
    files = []
    for i, array in enumerate(images.array):
        files.append(tmp_path / f"{i:03d}.png")
        if i % 8 == 0:
            files[-1].write_bytes(b"not an image")
        else:
            Image.fromarray(array).save(files[-1])
    on_disk = ImageSet("files", files=files)
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        summary = train.pretrain(dataclasses.replace(p, epochs=1), on_disk, tmp_path / "run", progress=False)
    assert summary["skipped_images"] == 96 // 8
    assert summary["steps"] == 3  # full batches: a corrupt image is replaced, the run goes on


def _ddp_worker(rank, world, rdv, run_dir, p, images):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{rdv}", rank=rank, world_size=world)
    try:
        train.pretrain(p, images, run_dir, progress=False)
    finally:
        dist.destroy_process_group()


def test_two_processes_split_the_batch_and_share_the_queue(setup, tmp_path):
    """torch.distributed on CPU (gloo): keys of both ranks are gathered into one queue."""
    p, images = setup
    p = dataclasses.replace(p, epochs=1, batch_size=32, queue_size=64)
    torch.multiprocessing.spawn(_ddp_worker, args=(2, tmp_path / "rdv", tmp_path / "run", p, images), nprocs=2)
    state = torch.load(tmp_path / "run" / train.CHECKPOINT, weights_only=False)
    assert int(state["model"]["queue_ptr"]) == (3 * 32) % 64  # 3 global steps of 32 keys each
    records = rundir.read_log(tmp_path / "run")
    assert [r["step"] for r in records] == [1, 2, 3]


def test_nan_at_a_chosen_step_fails_the_run_and_keeps_the_last_good_checkpoint(setup, tmp_path, monkeypatch):
    p, images = setup
    real_forward, calls = MoCo.forward, []

    def nan_at_step_5(self, *args, **kwargs):  # step 5 = the second step of the second epoch (3 steps each)
        calls.append(1)
        loss, logits, loss_nn = real_forward(self, *args, **kwargs)
        return (loss * float("nan") if len(calls) == 5 else loss), logits, loss_nn

    monkeypatch.setattr(MoCo, "forward", nan_at_step_5)
    with pytest.raises(train.NonFiniteError, match=r"loss is nan at step 5 \(epoch 2\).*epoch \(1\) is kept"):
        train.pretrain(p, images, tmp_path, progress=False)
    state = torch.load(tmp_path / train.CHECKPOINT, weights_only=False)
    assert state["epoch"] == 1 and not train.non_finite(state["model"])
    assert not (tmp_path / train.BACKBONE).exists()
    assert all(r["step"] < 5 for r in rundir.read_log(tmp_path))  # nothing logged from the failing step


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    state = {"model": {"w": torch.tensor([1.0, float("inf")]), "n": torch.tensor(3)}, "epoch": 2}
    with pytest.raises(train.NonFiniteError, match="1 model tensors are not finite"):
        train.save_checkpoint(state, tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_a_corrupt_checkpoint_falls_back_to_the_previous_one(setup, tmp_path, damage):
    p, images = setup
    p = dataclasses.replace(p, epochs=2)
    train.pretrain(p, images, tmp_path / "straight", progress=False)
    run = tmp_path / "run"
    train.pretrain(dataclasses.replace(p, epochs=1), images, run, progress=False)  # 1 epoch: checkpoint.pt
    train.save_checkpoint(torch.load(run / train.CHECKPOINT, weights_only=False), run)  # and a previous one
    data = (run / train.CHECKPOINT).read_bytes()
    (run / train.CHECKPOINT).write_bytes({"truncated": data[:len(data) // 3], "empty": b"",
                                          "garbage": os.urandom(4096)}[damage])
    with pytest.warns(UserWarning, match=r"checkpoint.pt cannot be used .*moved to checkpoint.pt.corrupt"):
        train.pretrain(p, images, run, progress=False)
    assert (run / "checkpoint.pt.corrupt").is_file()
    assert [r["loss"] for r in rundir.read_log(run)] == [r["loss"] for r in rundir.read_log(tmp_path / "straight")]


def test_without_a_loadable_checkpoint_the_run_starts_over(setup, tmp_path):
    p, images = setup
    p = dataclasses.replace(p, epochs=1)
    (tmp_path / train.CHECKPOINT).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.warns(UserWarning, match="else from the start"):
        summary = train.pretrain(p, images, tmp_path, progress=False)
    assert summary["steps"] == 3 and [r["step"] for r in rundir.read_log(tmp_path)] == [1, 2, 3]


def test_a_corrupt_backbone_names_its_file(tmp_path):
    from revisit.backbones import load_backbone

    (tmp_path / train.BACKBONE).write_bytes(b"\x00" * 100)
    with pytest.raises(RuntimeError, match=f"{tmp_path / train.BACKBONE} cannot be read.*move that run folder away"):
        load_backbone(tmp_path / train.BACKBONE, "resnet_small", 8)


def test_bf16_autocast_trains_like_float32(tmp_path):
    """Profiles cpu and smoke train under bfloat16 autocast: from the same initialisation and batches its first loss is
    float32's within 0.5%, and the next ones stay within 5%; "amp" autocasts to float16 on CUDA only."""
    p = resolve(load_experiment("pretrain/moco_in118k_400ep"), load_profile("smoke"))
    p = dataclasses.replace(p, epochs=1, images=96, batch_size=32, queue_size=64, log_every=1)
    images = twins.generate_pretrain("in118k", 96, seed=0)
    losses = {}
    for precision in ("fp32", "bf16"):
        train.pretrain(dataclasses.replace(p, precision=precision), images, tmp_path / precision, progress=False)
        losses[precision] = [r["loss"] for r in rundir.read_log(tmp_path / precision)]
    assert losses["bf16"] != losses["fp32"]  # the autocast did act
    assert losses["bf16"][0] == pytest.approx(losses["fp32"][0], rel=0.005)
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)
    assert train.autocast_dtype("amp", "cpu") is None and train.autocast_dtype("amp", "cuda:1") == torch.float16
    assert train.autocast_dtype("bf16", "cpu") == torch.bfloat16 and train.autocast_dtype("fp32", "cuda") is None
