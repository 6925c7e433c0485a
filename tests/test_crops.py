"""crops: IoU against hand-computed cases, the sampler against torchvision's RandomResizedCrop."""
import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import RandomResizedCrop

from revisit.crops import box_iou, default_view_ious, sample_crop, sample_crops


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
