"""VOC detection transfer: detectron2 weight conversion, detectron2's VOC AP, the torchvision backend."""
import importlib.util
import math
import pickle
import re

import numpy as np
import pytest

from revisit.backbones import build_backbone
from revisit.data.dense import Boxes, DenseSet
from revisit.dense.detection import (DetectionParams, DetectionResult, Detections, detect, faster_rcnn, lr_factor,
                                     train_faster_rcnn, voc_ap)
from revisit.dense.detectron2_backend import save_detectron2_checkpoint, to_detectron2
from revisit.metrics import detector_ap

CLASSES = ["cat", "dog"]


def gt(boxes, labels, difficult=None):
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    difficult = np.zeros(len(boxes), bool) if difficult is None else np.array(difficult, bool)
    return Boxes(boxes, np.array(labels, np.int64), difficult)


def dets(boxes, scores, labels):
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32),
                      np.array(labels, np.int64))


# ---------------------------------------------------------------- detectron2 weights

@pytest.fixture(scope="module")
def resnet50_state():
    return build_backbone("resnet50").state_dict()


def test_every_resnet50_key_maps_to_a_detectron2_name(resnet50_state):
    converted = to_detectron2(resnet50_state)
    assert len(converted) == len(resnet50_state)  # every key mapped, none merged
    expected = {"net.conv1.weight": "stem.conv1.weight", "net.bn1.running_mean": "stem.conv1.norm.running_mean",
                "net.layer1.0.conv1.weight": "res2.0.conv1.weight", "net.layer1.0.bn3.bias": "res2.0.conv3.norm.bias",
                "net.layer3.5.bn2.running_var": "res4.5.conv2.norm.running_var",
                "net.layer4.0.downsample.0.weight": "res5.0.shortcut.weight",
                "net.layer4.0.downsample.1.running_var": "res5.0.shortcut.norm.running_var"}
    for ours, theirs in expected.items():
        assert converted[theirs].shape == tuple(resnet50_state[ours].shape)
        np.testing.assert_array_equal(converted[theirs], resnet50_state[ours].numpy())
    name = re.compile(r"^(stem\.conv1|res[2-5]\.\d+\.(conv[123]|shortcut))(\.norm)?"
                      r"\.(weight|bias|running_mean|running_var|num_batches_tracked)$")
    assert all(name.match(k) for k in converted), [k for k in converted if not name.match(k)]
    assert not any("fc" in k or "layer" in k or "bn" in k or "downsample" in k for k in converted)
    assert all(isinstance(v, np.ndarray) for v in converted.values())
    assert sum(k.startswith("res5.") for k in converted) == sum(k.startswith("net.layer4.") for k in resnet50_state)


def test_classifier_dropped_and_small_resnet_refused(resnet50_state):
    import torch

    with_fc = {**resnet50_state, "net.fc.weight": torch.zeros(10, 2048), "net.fc.bias": torch.zeros(10)}
    assert len(to_detectron2(with_fc)) == len(resnet50_state)
    for arch in ("resnet_small", "resnet18"):  # resnet18's keys are torchvision's too ('net.*'), its blocks are not
        with pytest.raises(ValueError, match="only the resnet50"):
            to_detectron2(build_backbone(arch, 8).state_dict())


def test_saved_checkpoint_is_what_detectron2_loads(resnet50_state, tmp_path):
    path = save_detectron2_checkpoint(resnet50_state, tmp_path / "weights.pkl")
    with open(path, "rb") as f:
        data = pickle.load(f)
    assert set(data) == {"model", "__author__", "matching_heuristics"} and data["matching_heuristics"] is True
    assert "stem.conv1.weight" in data["model"] and data["model"]["stem.conv1.weight"].shape == (64, 3, 7, 7)
    with pytest.raises(ValueError, match=".pkl"):
        save_detectron2_checkpoint(resnet50_state, tmp_path / "weights.pth")


# ---------------------------------------------------------------- VOC AP

def test_perfect_detections_score_100():
    targets = [gt([[0, 0, 10, 10], [20, 20, 40, 30]], [0, 1]), gt([[5, 5, 25, 25]], [1])]
    detections = [dets(t.boxes, np.ones(len(t.labels)), t.labels) for t in targets]
    scores = voc_ap(detections, targets, CLASSES)
    assert scores["AP"] == scores["AP50"] == scores["AP75"] == pytest.approx(100.0)
    assert scores["per_class_AP50"] == {"cat": pytest.approx(100.0), "dog": pytest.approx(100.0)}
    assert voc_ap([Detections.empty(), Detections.empty()], targets, CLASSES)["AP"] == 0.0


def test_difficult_ground_truth_is_neither_true_nor_false_positive():
    targets = [gt([[0, 0, 10, 10], [30, 30, 50, 50]], [0, 0], difficult=[False, True])]
    hit_difficult_first = [dets([[30, 30, 50, 50], [0, 0, 10, 10]], [0.9, 0.8], [0, 0])]
    assert voc_ap(hit_difficult_first, targets, CLASSES[:1])["AP"] == pytest.approx(100.0)
    # a class whose only ground truth is difficult has no positives: NaN, left out of the mean
    targets = [gt([[0, 0, 10, 10], [30, 30, 50, 50]], [0, 1], difficult=[False, True])]
    scores = voc_ap([dets([[0, 0, 10, 10], [30, 30, 50, 50]], [0.9, 0.9], [0, 1])], targets, CLASSES)
    assert math.isnan(scores["per_class_AP50"]["dog"]) and scores["AP50"] == pytest.approx(100.0)


def test_duplicate_is_false_positive_and_07_vs_all_point():
    # ranked: TP (image 0), duplicate of it (FP), TP (image 1): recall .5 .5 1, precision 1 .5 2/3
    targets = [gt([[0, 0, 10, 10]], [0]), gt([[0, 0, 10, 10]], [0])]
    detections = [dets([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], [0, 0]), dets([[0, 0, 10, 10]], [0.7], [0])]
    eleven = (6 * 1.0 + 5 * 2 / 3) / 11  # recall >= 0..0.5: precision 1; >= 0.6..1: 2/3
    area = 0.5 * 1.0 + 0.5 * 2 / 3
    assert voc_ap(detections, targets, CLASSES[:1])["AP50"] == pytest.approx(100 * eleven)
    assert voc_ap(detections, targets, CLASSES[:1], use_07_metric=False)["AP50"] == pytest.approx(100 * area)
    recall, precision = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    assert detector_ap(recall, precision, "11-point") == pytest.approx(eleven)
    assert detector_ap(recall, precision, "all-point") == pytest.approx(area)


def test_iou_06_counts_for_ap50_not_ap75():
    targets = [gt([[0, 0, 10, 10]], [0])]
    scores = voc_ap([dets([[0, 0, 10, 6]], [0.9], [0])], targets, CLASSES[:1])  # IoU = 60 / 100
    assert scores["AP50"] == pytest.approx(100.0) and scores["AP75"] == 0.0
    assert scores["AP"] == pytest.approx(20.0)  # IoU > threshold (strict, as voc_eval): 0.50 and 0.55 of ten
    assert set(scores["per_threshold"]) == set(range(50, 100, 5))


def test_wrong_class_and_length_mismatch():
    targets = [gt([[0, 0, 10, 10]], [0])]
    assert voc_ap([dets([[0, 0, 10, 10]], [0.9], [1])], targets, CLASSES)["per_class_AP50"]["cat"] == 0.0
    with pytest.raises(ValueError, match="detection lists"):
        voc_ap([], targets, CLASSES)


def test_lr_schedule_warms_up_then_steps():
    p = DetectionParams(iterations=30, steps=(10, 20), warmup_iters=4, warmup_factor=0.2)
    assert [lr_factor(i, p) for i in (0, 2, 4, 9, 10, 20)] == pytest.approx([0.2, 0.6, 1.0, 1.0, 0.1, 0.01])
    with pytest.raises(ValueError, match="one tuple"):
        DetectionParams(anchor_sizes=((32,), (64,)))


# ---------------------------------------------------------------- backends

TINY = dict(batch_size=2, lr=0.01, steps=(2,), warmup_iters=1, min_sizes=(40, 48), test_size=48, max_size=64,
            anchor_sizes=((8, 16, 32),), fc_dim=32, rpn_pre_nms_topk=(200, 100), rpn_post_nms_topk=(50, 50))


def tiny_voc(n=4, size=48, seed=0) -> DenseSet:
    """One bright square per image on a dark background, class = parity of the image index."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, (n, size, size, 3), dtype=np.uint8)
    targets = []
    for i in range(n):
        side = int(rng.integers(14, 24))
        x, y = (int(v) for v in rng.integers(0, size - side, 2))
        images[i, y:y + side, x:x + side] = 230
        targets.append(gt([[x, y, x + side, y + side]], [i % 2]))
    return DenseSet("tiny voc", "detection", CLASSES, images, targets)


@pytest.mark.skipif(importlib.util.find_spec("detectron2") is not None, reason="detectron2 is installed")
def test_detectron2_backend_without_detectron2_says_how_to_install():
    data = tiny_voc()
    with pytest.raises(ImportError, match="not on PyPI") as err:
        detect(build_backbone("resnet_small", 8), data, data, DetectionParams(), backend="detectron2")
    assert "pip install" in str(err.value) and "backend='torchvision'" in str(err.value)


def test_unknown_backend_and_wrong_task():
    data = tiny_voc()
    with pytest.raises(ValueError, match="unknown detection backend"):
        detect(build_backbone("resnet_small", 8), data, data, backend="mmdet")
    seg = DenseSet("seg", "segmentation", CLASSES, np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8), np.int64))
    with pytest.raises(ValueError, match="detection"):
        detect(build_backbone("resnet_small", 8), seg, data)


def test_torchvision_backend_smoke():
    data = tiny_voc()
    params = DetectionParams(iterations=3, **TINY)
    result = detect(build_backbone("resnet_small", 8), data, data, params, progress=False)
    assert isinstance(result, DetectionResult) and result.backend == "torchvision"
    assert (result.n_train, result.n_test) == (4, 4)
    assert len(result.train_loss) == 3 and all(math.isfinite(v) and v > 0 for v in result.train_loss)
    for value in (result.AP, result.AP50, result.AP75, *result.per_class_AP50.values()):
        assert math.isfinite(value) and 0 <= value <= 100
    assert set(result.per_class_AP50) == set(CLASSES)


@pytest.mark.parametrize("bn, frozen", [("frozen", True), ("batch", False)])
def test_bn_mode_keeps_or_updates_statistics(bn, frozen):
    import torch

    model = faster_rcnn(build_backbone("resnet_small", 8), len(CLASSES), DetectionParams(iterations=1, bn=bn, **TINY))
    norm = model.backbone.stem[1]
    before, affine = norm.running_mean.clone(), norm.weight.detach().clone()
    train_faster_rcnn(model, tiny_voc(), DetectionParams(iterations=1, bn=bn, **TINY), progress=False)
    assert torch.equal(norm.running_mean, before) == frozen
    assert not torch.equal(norm.weight.detach(), affine)  # scale and shift are trained either way
