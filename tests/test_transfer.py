"""Dense transfer by task name: data dispatch, per-task results saved as they finish, resume."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from revisit import dense
from revisit.backbones import build_backbone
from revisit.config import DENSE_TASKS, ParamsError, load_experiment, load_profile, resolve
from revisit.data import cam_images, davis_videos, dense_splits
from revisit.runs import plan


@pytest.fixture
def smoke():
    return resolve(load_experiment("transfer/table3/coco"), load_profile("smoke"))


def test_twin_splits_have_the_task_conventions(smoke):
    for task in ("voc_seg", "cityscapes_seg", "nyud_seg", "nyud_depth", "voc_det"):
        train, test = dense_splits(task, smoke)
        assert (len(train), len(test)) == (smoke.train_images, smoke.test_images)
        assert train.classes == test.classes
        image, target = train[0]
        assert image.dtype == torch.uint8 and image.shape[0] == 3
        if task == "nyud_depth":
            assert target.dtype == torch.float32 and (target > 0).any()
        elif task != "voc_det":
            assert target.dtype == torch.int64 and set(target.unique().tolist()) <= set(range(len(train.classes))) | {255}
    assert [len(train.classes) for train, _ in (dense_splits(t, smoke) for t in ("voc_seg", "cityscapes_seg",
                                                                                   "nyud_seg"))] == [21, 19, 40]
    videos = davis_videos(smoke)
    assert len(videos) == smoke.videos and len(videos[0]) == smoke.video_frames and videos[0].objects()
    train, shown = cam_images(smoke)
    assert train.labels.ndim == 1 and len(shown) == smoke.test_images


def test_transfer_params_are_validated_and_profiles_rescale_them(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "paper.yaml").write_text("description: x\n")
    (tmp_path / "t.yaml").write_text("kind: transfer\ntasks: [voc_seg, jigsaw]\n")
    with pytest.raises(ParamsError, match="jigsaw"):
        load_experiment("t", tmp_path)
    cpu = plan("transfer/table4/mc", load_profile("cpu"))
    assert cpu.needs.experiment.name == "pretrain/coco200/mc" and cpu.params.source == "twin"
    paper = plan("transfer/table4/mc", load_profile("paper")).params
    assert (paper.schedule, paper.resolution, paper.lr_scale, paper.resize, paper.arch) == (1.0, 1.0, 1.0, None,
                                                                                           "resnet50")
    sizes = [plan(f"pretrain/tableS1/in118k_x{f}", load_profile("paper")).params.images for f in (1, 2, 4, 8)]
    assert sizes == [118000, 236000, 472000, 944000]


def test_each_task_is_saved_when_done_and_a_rerun_resumes(smoke, tmp_path, monkeypatch):
    p = dataclasses.replace(smoke, tasks=("nyud_seg", "nyud_depth"))
    torch.manual_seed(0)
    backbone = build_backbone(p.arch, p.width)
    first = dense.evaluate_tasks(p.tasks, backbone, p, tmp_path, progress=False)
    assert {t: r.metric for t, r in first.items()} == {"nyud_seg": "mIoU", "nyud_depth": "rmse"}
    assert np.isfinite(first["nyud_depth"].value) and first["nyud_depth"].value > 0
    saved = json.loads((tmp_path / "tasks" / "nyud_seg.json").read_text())
    assert saved["value"] == pytest.approx(first["nyud_seg"].value) and len(saved["details"]["per_class"]) == 40
    (tmp_path / "tasks" / "nyud_depth.json").unlink()  # as if the run was killed during depth
    calls = []
    real = dense.evaluate_task
    monkeypatch.setattr(dense, "evaluate_task", lambda task, *a, **k: calls.append(task) or real(task, *a, **k))
    again = dense.evaluate_tasks(p.tasks, backbone, p, tmp_path, progress=False)
    assert calls == ["nyud_depth"]
    assert again["nyud_seg"].value == pytest.approx(first["nyud_seg"].value)
    assert again["nyud_depth"].value == pytest.approx(first["nyud_depth"].value)  # same seed, same result


def test_unknown_task_is_refused(smoke, tmp_path):
    with pytest.raises(ValueError, match="unknown dense task"):
        dense.evaluate_task("jigsaw", build_backbone("resnet_small", 8), smoke, tmp_path)
    assert set(dense.METRICS) == set(DENSE_TASKS)


def test_auto_detection_backend_falls_back_to_torchvision_without_detectron2():
    import importlib.util

    expected = "detectron2" if importlib.util.find_spec("detectron2") else "torchvision"
    assert dense.detection_backend("auto") == expected
    assert dense.detection_backend("torchvision") == "torchvision"
