"""DAVIS label propagation on synthetic videos whose answer is known."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from revisit.backbones import FeatureMap, build_backbone
from revisit.data.dense import Video, read_label_png
from revisit.augment import IMAGENET_MEAN, IMAGENET_STD
from revisit.dense.propagation import (PropagationParams, evaluate_davis, frame_names,
                                 propagate, write_davis_results)

STRIDE = 4


class CodeFeatures(nn.Module):
    """Stub feature map: each pixel's red value is an appearance code, looked up in ``table``,
    average-pooled to stride 4. Objects drawn on the 4-px grid give pure features per cell."""

    def __init__(self, table):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))

    def forward(self, x):
        mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        code = ((x * std + mean)[:, 0] * 255).round().long()
        return F.avg_pool2d(self.table[code].permute(0, 3, 1, 2), STRIDE)


def draw(shape, boxes):
    """Frames whose red channel holds the appearance code, and masks: ``boxes`` per frame is a list of
    ``(object id, code, top, left, size)``."""
    frames = np.zeros((len(boxes), *shape, 3), dtype=np.uint8)
    masks = np.zeros((len(boxes), *shape), dtype=np.int64)
    for t, objects in enumerate(boxes):
        for k, code, top, left, size in objects:
            frames[t, top:top + size, left:left + size, 0] = code
            masks[t, top:top + size, left:left + size] = k
    return frames, masks


def matches_up_to_corners(pred, gt) -> bool:
    """``pred`` equals ``gt`` except the 4 corner pixels of each square object, which bilinear
    upsampling of the stride-4 soft labels followed by argmax rounds off to background (weight
    0.625^2 < 1/2): the exact answer of the protocol for grid-aligned squares."""
    wrong = pred != gt
    n_objects = len(set(np.unique(gt)) - {0})
    return bool((pred[wrong] == 0).all() and wrong.sum() == 4 * n_objects)


def two_moving_squares(n_frames=8):
    """Object 1 moves right and object 2 left by one feature cell per frame."""
    boxes = [[(1, 1, 4, 4 + 4 * t, 12), (2, 2, 20, 48 - 4 * t, 12)] for t in range(n_frames)]
    frames, masks = draw((36, 64), boxes)
    return Video("squares", frames, masks)


def test_propagation_reproduces_moving_objects():
    video = two_moving_squares()
    params = PropagationParams(context=3, radius=3)  # fewer context frames than the video: a rolling window
    pred = propagate(CodeFeatures(np.eye(3)), video, params)
    assert pred.dtype == np.int64 and pred.shape == (8, 36, 64)
    np.testing.assert_array_equal(pred[0], video.masks[0])
    assert all(matches_up_to_corners(pred[t], video.masks[t]) for t in range(1, 8))


def angle_code_table():
    """Code 0: background; codes 1..4: an object whose appearance turns 45 degrees per code,
    so code c matches c - 1 (cos 45) but not c - 2 (cos 90)."""
    table = np.zeros((5, 3))
    table[0, 0] = 1
    for c in range(1, 5):
        theta = math.radians(45 * (c - 1))
        table[c, 1:] = math.cos(theta), math.sin(theta)
    return table


def jumping_object(jump_left, drifting=True):
    """An object static for frames 0-2 at the left, then at ``jump_left`` px in frames 3-4; its
    appearance drifts (codes 1, 2, 3, 4, 4) so that by frame 3 it only matches frame 2, or stays."""
    codes = [1, 2, 3, 4, 4] if drifting else [1] * 5
    lefts = [4, 4, 4, jump_left, jump_left]
    frames, masks = draw((32, 96), [[(1, codes[t], 8, lefts[t], 16)] for t in range(5)])
    return Video("jump", frames, masks)


@pytest.mark.parametrize("jump_left, radius, tracked", [
    (8, 3, True),  # moves one cell: frame 2 is within the radius
    (72, 3, False),  # moves 17 cells: beyond the radius, and the first frame no longer looks like it
    (72, 100, True),  # the same jump with an unlimited radius
])
def test_radius_limits_short_term_matches(jump_left, radius, tracked):
    video = jumping_object(jump_left)
    pred = propagate(CodeFeatures(angle_code_table()), video, PropagationParams(context=3, radius=radius))
    assert all(matches_up_to_corners(pred[t], video.masks[t]) for t in (1, 2))
    assert matches_up_to_corners(pred[3], video.masks[3]) == tracked
    if not tracked:
        assert (pred[3] == 0).all()  # the object is lost: every pixel background


def test_first_frame_is_not_radius_limited():
    video = jumping_object(72, drifting=False)  # same appearance as in the annotated frame
    pred = propagate(CodeFeatures(angle_code_table()), video, PropagationParams(context=3, radius=3))
    assert all(matches_up_to_corners(pred[t], video.masks[t]) for t in range(1, 5))


def test_results_are_palette_pngs_read_back_identically(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(3, 9, 11))
    paths = write_davis_results(tmp_path, "seq", labels)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["seq/00000.png", "seq/00001.png", "seq/00002.png"]
    for path, lab in zip(paths, labels):
        np.testing.assert_array_equal(read_label_png(path), lab)
        with Image.open(path) as img:
            assert img.mode == "P"
            assert img.getpalette()[3:9] == [128, 0, 0, 0, 128, 0]  # DAVIS colours of objects 1 and 2
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        write_davis_results(tmp_path, "bad", np.full((1, 2, 2), 300))


def test_frame_names_follow_the_video_files():
    on_disk = Video("v", ["/d/JPEGImages/480p/v/00012.jpg", "/d/JPEGImages/480p/v/00013.jpg"], [])
    assert frame_names(on_disk) == ["00012", "00013"]
    assert frame_names(two_moving_squares(3)) == ["00000", "00001", "00002"]


def test_evaluate_davis_scores_and_writes(tmp_path):
    video = two_moving_squares(5)
    out = evaluate_davis(CodeFeatures(np.eye(3)), [video], PropagationParams(context=3, radius=3), out_dir=tmp_path,
                         progress=False)
    assert out["J_mean"] == pytest.approx(140 / 144)  # 12 x 12 squares less their 4 corner pixels
    assert out["F_mean"] == 1.0  # the rounded corners are within the boundary tolerance
    assert out["JF"] == pytest.approx((140 / 144 + 1) / 2)
    assert set(out["J_per_object"]) == {"squares_1", "squares_2"}
    assert out["sequences"]["squares"].J.shape == (2, 3)
    written = sorted(p.name for p in (tmp_path / "squares").iterdir())
    assert written == [f"{t:05d}.png" for t in range(5)]
    assert matches_up_to_corners(read_label_png(tmp_path / "squares" / "00003.png"), video.masks[3])


def test_real_feature_map_smoke():
    torch.manual_seed(0)
    feature_map = FeatureMap(build_backbone("resnet_small", 8), 3, (3, 4))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    masks = np.zeros((3, 32, 32), dtype=np.int64)
    masks[:, 4:14, 4:14], masks[:, 18:30, 16:28] = 1, 2
    video = Video("smoke", frames, masks)
    pred = propagate(feature_map, video, PropagationParams())
    assert pred.shape == (3, 32, 32) and pred.dtype == np.int64
    np.testing.assert_array_equal(pred[0], masks[0])
    assert set(np.unique(pred)) <= {0, 1, 2}
    # the affinity blocks change memory only, never the answer
    np.testing.assert_array_equal(propagate(feature_map, video, PropagationParams(chunk=7)), pred)
    small = propagate(feature_map, video, PropagationParams(frame_size=16))  # features at 16 px, labels at 32
    assert small.shape == (3, 32, 32)
    np.testing.assert_array_equal(small[0], masks[0])


def test_bad_params_are_refused():
    with pytest.raises(ValueError, match="temperature"):
        PropagationParams(temperature=0)
