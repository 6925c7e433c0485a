"""End-to-end finetuning (App. A.3-A.5): heads, augmentation, schedules, and a tiny model that learns."""
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from revisit.backbones import build_backbone
from revisit.data.dense import DenseSet
from revisit.dense.finetune import (PROTOCOLS, Augmented, DenseModel, _lr_factor, finetune_and_score, scaled)


def squares(n, task="segmentation", size=32, seed=0):
    """Images with one coloured square: class = its colour channel + 1, depth = 1 + channel."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, (n, size, size, 3)).astype(np.uint8)
    targets = np.zeros((n, size, size), np.int64 if task == "segmentation" else np.float32)
    for i in range(n):
        c, (y, x), s = rng.integers(3), rng.integers(0, size // 2, 2), size // 2
        images[i, y:y + s, x:x + s, c] = 230
        targets[i, y:y + s, x:x + s] = c + 1
    if task == "depth":
        targets += 1.0  # background 1 m, squares 2-4 m
    return DenseSet("squares", task, ["background", "r", "g", "b"], images, targets)


def test_heads_follow_the_appendix():
    voc = DenseModel(build_backbone("resnet_small", 8), PROTOCOLS["voc_seg"], 21)
    convs = [m for m in voc.head if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3), (3, 3), (1, 1)]
    assert [c.dilation for c in convs[:2]] == [(6, 6), (6, 6)] and convs[0].out_channels == 256
    assert convs[-1].out_channels == 21
    nyud = DenseModel(build_backbone("resnet_small", 8), PROTOCOLS["nyud_seg"], 40)
    assert type(nyud.head[0]).__name__ == "ASPP"
    x = torch.randn(2, 3, 40, 48)
    assert voc(x).shape == (2, 21, 40, 48) and nyud.eval()(x).shape == (2, 40, 40, 48)


def test_paper_recipes_and_their_scaling():
    voc, city = PROTOCOLS["voc_seg"], PROTOCOLS["cityscapes_seg"]
    assert (voc.epochs, voc.batch_size, voc.optimizer, voc.lr, voc.milestones, voc.crop) == (45, 16, "sgd", 0.003,
                                                                                            (30, 40), 513)
    assert (city.epochs, city.optimizer, city.schedule, city.crop, city.head_dilation) == (150, "adam", "poly", 768, 1)
    small = scaled(voc, schedule=0.1, crop_scale=1 / 16, lr_scale=10, head_channels=32)
    assert (small.epochs, small.milestones, small.crop, small.head_channels) == (4, (3, 4), 32, 32)
    assert small.lr == pytest.approx(0.03)
    assert scaled(city, crop_scale=1 / 16).crop == 48 and scaled(city, crop_scale=1 / 16, max_crop=32).crop == 32
    assert _lr_factor(voc, 0, 10, 450) == 1 and _lr_factor(voc, 300, 10, 450) == pytest.approx(0.1)
    assert _lr_factor(voc, 449, 10, 450) == pytest.approx(0.01)
    assert _lr_factor(city, 0, 10, 100) == 1 and _lr_factor(city, 50, 10, 100) == pytest.approx(0.5 ** 0.9)


def test_augmentation_crops_pads_with_ignore_and_keeps_image_and_label_aligned():
    data = squares(4)
    protocol = dataclasses.replace(scaled(PROTOCOLS["voc_seg"], crop_scale=48 / 513), scale_range=(0.5, 1.0))
    aug = Augmented(data, protocol, resize=None, seed=0)
    for i in range(4):
        image, target = aug[i]
        assert image.shape == (3, 48, 48) and target.shape == (48, 48)
        padded = target == 255
        assert padded.any()  # 32 px images scaled by at most 1 and padded to 48 fill with "ignore"
        raw = image * torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1) + torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        bright = raw.max(0).values > 0.6  # the square's pixels, after bilinear resizing
        inside = (target > 0) & (target < 255)
        assert (bright & inside).sum() >= 0.8 * inside.sum()


def test_a_tiny_model_learns_to_segment_and_to_predict_depth():
    torch.manual_seed(0)
    protocol = scaled(PROTOCOLS["voc_seg"], schedule=20 / 45, crop_scale=32 / 513, lr_scale=30, head_channels=16)
    seg = finetune_and_score(build_backbone("resnet_small", 8), squares(48), squares(16, seed=1), protocol,
                             progress=False)
    assert seg.metric == "mIoU" and seg.value > 50  # chance is about 25
    assert seg.train_loss[-1] < seg.train_loss[0]
    protocol = scaled(PROTOCOLS["nyud_depth"], schedule=20 / 100, crop_scale=32 / 512, lr_scale=30, head_channels=16)
    test = squares(16, "depth", seed=1)
    depth = finetune_and_score(build_backbone("resnet_small", 8), squares(48, "depth"), test, protocol, progress=False)
    targets = np.stack([test[i][1].numpy() for i in range(len(test))])
    constant = float(np.sqrt(((targets - targets.mean()) ** 2).mean()))
    assert depth.metric == "rmse" and depth.value < 0.8 * constant


def test_constant_prediction_floor():
    from revisit.dense.finetune import constant_score

    seg = squares(8)
    # background everywhere: IoU of background = background pixels / all pixels, 0 for the three classes present
    targets = np.stack([seg[i][1].numpy() for i in range(8)])
    present = [c for c in range(4) if (targets == c).any()]
    assert constant_score(seg, seg, "segmentation") == pytest.approx(100 * (targets == 0).mean() / len(present))
    depth = squares(8, "depth")
    values = np.stack([depth[i][1].numpy() for i in range(8)])
    assert constant_score(depth, depth, "depth") == pytest.approx(values.std(), rel=1e-4)


def test_depth_follows_the_zoom():
    data = squares(2, "depth")
    protocol = dataclasses.replace(scaled(PROTOCOLS["nyud_depth"], crop_scale=32 / 512), scale_range=(2.0, 2.0))
    _, target = Augmented(data, protocol, resize=None, seed=0)[0]
    assert set(np.unique(target.numpy())) <= {0.5, 1.0, 1.5, 2.0}  # 1-4 m seen twice as close
    assert target.max() <= 2.0 and target.min() >= 0.5


def test_runs_keep_their_best_epoch_on_the_test_split_and_are_averaged():
    """The authors' protocol (best val epoch, five runs) against a plain loop: each run finetuned again with its
    seed, every epoch scored; the kept score is the best of them."""
    from revisit.dense.finetune import finetune, score

    protocol = scaled(PROTOCOLS["voc_seg"], schedule=8 / 45, crop_scale=32 / 513, lr_scale=30, head_channels=16)
    torch.manual_seed(0)
    backbone, train, test = build_backbone("resnet_small", 8), squares(48), squares(16, seed=1)
    best = finetune_and_score(backbone, train, test, protocol, seed=4, progress=False, runs=2, keep="best")
    for run, kept in enumerate(best.runs):
        scores = []
        finetune(backbone, train, protocol, seed=4 + run, progress=False,
                 after_epoch=lambda model, epoch: scores.append(score(model, test, "segmentation", progress=False)[0]))
        assert len(scores) == protocol.epochs == 8 and kept == pytest.approx(max(scores))
        if run == 0:
            last = finetune_and_score(backbone, train, test, protocol, seed=4, progress=False)
            assert last.runs == [pytest.approx(scores[-1])] and last.value == pytest.approx(scores[-1])
            assert last.value < kept  # this run's best epoch came before its last
    assert best.runs[0] != best.runs[1] and best.value == pytest.approx(np.mean(best.runs))
    assert best.predictions.decision.shape == (2, *last.predictions.decision.shape)  # both runs, for the bootstrap
    assert best.predictions.value() == pytest.approx(best.value)
