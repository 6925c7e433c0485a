"""crops: IoU against hand-computed cases, the sampler against torchvision's RandomResizedCrop."""
import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import RandomResizedCrop

from revisit.crops import (box_iou, constrained_crop, default_view_ious, iou_constrained_pair, overlap_fraction,
                          sample_constrained_crop, sample_crop, sample_crops)


@pytest.mark.parametrize("a, b, expected", [
    ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
    ((0, 0, 10, 10), (0, 5, 10, 10), 50 / 150),
    ((0, 0, 10, 10), (5, 5, 10, 10), 25 / 175),
    ((0, 0, 10, 10), (10, 0, 10, 10), 0.0),  # touching edges do not overlap
    ((0, 0, 4, 4), (1, 1, 2, 2), 4 / 16),  # one inside the other
])
def test_box_iou_hand_computed(a, b, expected):
    assert box_iou(a, b) == pytest.approx(expected)
    assert box_iou(b, a) == pytest.approx(expected)


def test_box_iou_broadcasts():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    assert box_iou(a, np.array([0, 5, 10, 10])) == pytest.approx([1 / 3, 1 / 3])
    with pytest.raises(ValueError, match="4 values"):
        box_iou((0, 0, 1), (0, 0, 1, 1))


def test_sample_crop_is_inside_the_image():
    rng = np.random.default_rng(0)
    boxes = sample_crops(5000, 120, 200, rng=rng)
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 120).all() and (left + w <= 200).all()
    assert isinstance(sample_crop(64, 64, rng=rng)[0], int)


def test_sampler_matches_torchvision_distribution():
    """Area fraction, aspect ratio and position have torchvision's law (two-sample KS tests)."""
    height, width, n = 180, 240, 4000
    ours = sample_crops(n, height, width, (0.2, 1.0), (3 / 4, 4 / 3), rng=np.random.default_rng(1))
    torch.manual_seed(1)
    img = torch.zeros(3, height, width)
    theirs = np.array([RandomResizedCrop.get_params(img, [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(n)])
    for name, f in {"area": lambda b: b[:, 2] * b[:, 3], "ratio": lambda b: b[:, 3] / b[:, 2],
                    "top": lambda b: b[:, 0], "left": lambda b: b[:, 1]}.items():
        assert stats.ks_2samp(f(ours), f(theirs)).pvalue > 0.001, name


def test_fallback_is_the_centre_crop_when_no_try_fits():
    # a scale above 1 can never fit: torchvision then falls back to the largest centred crop within ratio
    box = sample_crop(100, 400, scale=(2.0, 3.0), rng=np.random.default_rng(0))
    torch.manual_seed(0)
    assert box == tuple(RandomResizedCrop.get_params(torch.zeros(3, 100, 400), [2.0, 3.0], [3 / 4, 4 / 3]))


def test_default_views_seldom_fail_to_overlap():
    ious = default_view_ious(pairs=20000, seed=0)
    assert ious.shape == (20000,)
    assert 0 < np.mean(ious == 0) < 0.05  # the paper's Figure 1 claim, at the paper's setting


def test_constrained_crop_keeps_its_overlap_on_many_random_anchors():
    rng = np.random.default_rng(0)
    for _ in range(300):
        height, width = rng.integers(32, 400, size=2)
        anchor = sample_crop(height, width, (0.2, 1.0), rng=rng)
        box = sample_constrained_crop(height, width, (0.05, 0.14), (3 / 4, 4 / 3), anchor, 0.2, rng)
        top, left, h, w = box
        assert 0 <= top and top + h <= height and 0 <= left and left + w <= width
        assert overlap_fraction(box, anchor) >= 0.2
        assert h * w <= 0.14 * height * width + h + w  # still a small crop (rounding allowance)


def test_official_variant_falls_back_after_its_tries():
    rng = np.random.default_rng(1)
    anchor = (0, 0, 10, 10)  # a corner of a 200 x 200 image: most small crops miss it
    results = [constrained_crop(200, 200, (0.05, 0.14), (3 / 4, 4 / 3), anchor, 0.1, rng, tries=10) for _ in range(200)]
    fell_back = [box for box, rejected, gave_up in results if gave_up]
    assert fell_back, "a 10-try sampler must sometimes give up on a tiny anchor"
    assert all(rejected == 10 for _, rejected, gave_up in results if gave_up)  # the kept 11th draw is not a rejection
    assert any(overlap_fraction(box, anchor) < 0.1 for box in fell_back)  # an unconstrained crop is kept
    kept = [box for box, rejected, gave_up in results if not gave_up]
    assert all(overlap_fraction(box, anchor) >= 0.1 for box in kept) and all(r < 10 for _, r, g in results if not g)


def test_overlap_fraction_hand_computed():
    assert overlap_fraction((0, 0, 10, 10), (0, 5, 10, 10)) == pytest.approx(0.5)
    assert overlap_fraction((2, 2, 2, 2), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert overlap_fraction((0, 0, 10, 10), (2, 2, 2, 2)) == pytest.approx(0.04)  # of the box's own area


@pytest.mark.parametrize("max_iou", [0.05, 0.3, 0.6])
def test_iou_constrained_pair_stays_below_the_threshold(max_iou):
    rng = np.random.default_rng(2)
    rejected = 0
    for _ in range(100):
        anchor, box, n = iou_constrained_pair(224, 224, (0.2, 1.0), (3 / 4, 4 / 3), max_iou, rng)
        assert box_iou(box, anchor) < max_iou
        rejected += n
    assert rejected > 100 * (0.3 if max_iou < 0.5 else 0.05)  # most default pairs overlap more


def test_impossible_constraint_is_a_clear_error():
    with pytest.raises(ValueError, match="loosen"):
        iou_constrained_pair(32, 32, (0.9, 1.0), (1, 1), 0.01, np.random.default_rng(0))
