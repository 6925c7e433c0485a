"""Metrics: mIoU against a per-pixel loop, DAVIS J and F on hand-built masks, VOC AP against a plain loop."""
import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from revisit.metrics import (classifier_ap, confusion_matrix, davis_boundary, davis_f, davis_j, davis_sequence,
                             davis_summary, detector_ap, mean_iou)


def square(shape=(100, 100), top=40, left=40, size=20):
    m = np.zeros(shape, dtype=bool)
    m[top:top + size, left:left + size] = True
    return m


# --- confusion matrix / mIoU -------------------------------------------------------------------


def test_confusion_and_miou_match_a_pixel_loop():
    rng = np.random.default_rng(0)
    c = 5
    target = rng.integers(0, c, size=(2, 17, 23))
    target[rng.random(target.shape) < 0.2] = 255
    target[target == 3] = 0  # class 3 never in the ground truth ...
    pred = rng.integers(0, c, size=target.shape)
    pred[pred == 3] = 1  # ... nor predicted: its IoU is NaN
    brute = np.zeros((c, c), dtype=np.int64)
    for t, p in zip(target.ravel(), pred.ravel()):
        if t != 255:
            brute[t, p] += 1
    conf = sum(confusion_matrix(pred[i], target[i], c) for i in range(2))
    np.testing.assert_array_equal(conf, brute)
    miou, per_class = mean_iou(conf)
    for k in range(c):
        tp, fp, fn = brute[k, k], brute[:, k].sum() - brute[k, k], brute[k].sum() - brute[k, k]
        if tp + fp + fn == 0:
            assert np.isnan(per_class[k])
        else:
            assert per_class[k] == pytest.approx(tp / (tp + fp + fn))
    assert np.isnan(per_class[3])
    assert miou == pytest.approx(np.mean([per_class[k] for k in range(c) if k != 3]))


def test_confusion_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="target labels"):
        confusion_matrix(np.zeros(4, int), np.array([0, 1, 7, 255]), 3)
    with pytest.raises(ValueError, match="predicted labels"):
        confusion_matrix(np.array([0, 1, 3, 0]), np.zeros(4, int), 3)
    with pytest.raises(ValueError, match="pixels"):
        confusion_matrix(np.zeros(4, int), np.zeros(5, int), 3)


# --- DAVIS J and F ----------------------------------------------------------------------------


def test_boundary_is_the_seg2bmap_ring():
    mask = np.zeros((6, 6), dtype=bool)
    mask[2:4, 2:4] = True
    expected = np.zeros((6, 6), dtype=bool)
    expected[1, 1:4] = expected[1:4, 1] = True  # outside, above and left (south / east / south-east differ)
    expected[3, 1:4] = expected[1:4, 3] = True  # inside, the last row and column of the square
    np.testing.assert_array_equal(davis_boundary(mask), expected)
    full = np.ones((4, 5), dtype=bool)  # a mask filling the frame has no boundary
    assert not davis_boundary(full).any()


def test_identical_masks_score_one():
    m = square()
    assert davis_j(m, m) == 1.0
    assert davis_f(m, m) == 1.0


def test_far_apart_masks_score_zero():
    a, b = square(top=5, left=5, size=10), square(top=80, left=80, size=10)
    assert davis_j(a, b) == 0.0
    assert davis_f(a, b) == 0.0


def test_empty_mask_cases():
    empty, m = np.zeros((50, 50), dtype=bool), square((50, 50), 10, 10, 10)
    assert davis_j(empty, empty) == 1.0 and davis_f(empty, empty) == 1.0  # P = R = 1
    assert davis_j(empty, m) == 0.0 and davis_f(empty, m) == 0.0  # P = 1, R = 0
    assert davis_j(m, empty) == 0.0 and davis_f(m, empty) == 0.0  # P = 0, R = 1


def test_shifted_square_j_by_hand():
    gt, pred = square(left=40), square(left=42)  # 20 x 20, shifted 2 px: overlap 18 x 20
    assert davis_j(pred, gt) == pytest.approx(360 / 440)


def test_f_tolerance():
    # 100 x 100: tolerance ceil(0.008 * 141.4) = 2 px
    gt = square()
    assert davis_f(square(left=42), gt) == 1.0
    assert davis_f(square(left=43), gt) < 1.0
    # bound_th >= 1 is a radius in pixels
    assert davis_f(square(left=44), gt, bound_th=4) == 1.0
    assert davis_f(square(left=45), gt, bound_th=4) < 1.0


def test_f_by_hand_for_a_wide_shift():
    # 20 x 20 square shifted 10 px right, tolerance 2 px: of each 80-pixel boundary ring, the
    # vertical sides far from the other ring miss; count from the dilation definition directly
    gt, pred = square(left=40), square(left=50)
    bg, bp = davis_boundary(gt), davis_boundary(pred)
    y, x = np.mgrid[-2:3, -2:3]
    disk = x ** 2 + y ** 2 <= 4
    precision = (bp & binary_dilation(bg, disk)).sum() / bp.sum()
    recall = (bg & binary_dilation(bp, disk)).sum() / bg.sum()
    assert 0 < precision < 1
    assert davis_f(pred, gt) == pytest.approx(2 * precision * recall / (precision + recall))


def test_sequence_excludes_first_and_last_frames():
    gt = np.zeros((5, 30, 30), dtype=np.int64)
    gt[:, 5:15, 5:15] = 1
    gt[:, 18:28, 18:28] = 2
    pred = gt.copy()
    pred[0] = 0  # the first and last frames are wrong ...
    pred[-1] = 2
    j, f = davis_sequence(pred, gt, [1, 2])
    assert j.shape == f.shape == (2, 3)
    assert (j == 1).all() and (f == 1).all()  # ... and do not count
    pred[2] = np.where(gt[2] == 2, 0, gt[2])  # object 2 lost in frame 2
    j, f = davis_sequence(pred, gt, [1, 2])
    np.testing.assert_array_equal(j, [[1, 1, 1], [1, 0, 1]])
    summary = davis_summary({"seq": (j, f)})
    assert summary["J_mean"] == pytest.approx((1 + 2 / 3) / 2)
    assert summary["JF"] == pytest.approx((summary["J_mean"] + summary["F_mean"]) / 2)
    assert summary["J_per_object"] == pytest.approx({"seq_1": 1.0, "seq_2": 2 / 3})


def test_summary_averages_objects_not_sequences():
    one = (np.ones((1, 4)), np.ones((1, 4)))
    three = (np.zeros((3, 4)), np.zeros((3, 4)))
    assert davis_summary({"a": one, "b": three})["J_mean"] == pytest.approx(0.25)


def test_sequence_needs_three_frames_and_matching_shapes():
    with pytest.raises(ValueError, match="at least 3 frames"):
        davis_sequence(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), [1])
    with pytest.raises(ValueError, match="shape"):
        davis_sequence(np.zeros((3, 4, 4)), np.zeros((3, 4, 5)), [1])


# ---------------------------------------------------------------- VOC AP

def tied_scores(rng):
    """Labels and scores rounded to one decimal, so that many scores tie (at least one positive)."""
    n = int(rng.integers(2, 80))
    y = rng.integers(0, 2, n)
    y[rng.integers(n)] = 1
    return y, np.round(rng.normal(size=n) + y, 1)


def ranked_detections(rng):
    """A detector's curve as ``voc_ap`` builds it: tied scores sorted stably, flags 1 (true) / 0 (false) / -1
    (difficult), recall over at least as many boxes as true positives."""
    n = int(rng.integers(0, 60))
    scores, flags = np.round(rng.random(n), 1), rng.choice([1, 0, -1], n, p=[0.5, 0.4, 0.1])
    flags = flags[np.argsort(-scores, kind="stable")]
    tp, fp = np.cumsum(flags == 1), np.cumsum(flags == 0)
    positives = max(1, int(tp[-1] if n else 0) + int(rng.integers(0, 4)))
    return tp / positives, tp / np.maximum(tp + fp, np.finfo(np.float64).eps)


RECALL_POINTS = [k * 0.1 for k in range(11)]  # as detectron2's np.arange: 3 * 0.1 is 0.30000000000000004


def reference_curve(y, s) -> list:
    """``(recall, precision)`` at each distinct score, highest first, by counting: tied scores are one threshold."""
    points = []
    for threshold in sorted(set(s.tolist()), reverse=True):
        tp = sum(1 for label, score in zip(y, s) if score >= threshold and label == 1)
        fp = sum(1 for label, score in zip(y, s) if score >= threshold and label == 0)
        points.append((tp / sum(y), tp / (tp + fp)))
    return points


def reference_11_point(points) -> float:
    """The mean over the 11 recall points of the best precision at that recall or above (0 if never reached)."""
    total = 0.0
    for t in RECALL_POINTS:
        reached = [precision for recall, precision in points if recall >= t]
        total += max(reached) if reached else 0.0
    return total / 11


def reference_all_point(points) -> float:
    """Each rise of recall times the best precision at that recall or above."""
    area, below = 0.0, 0.0
    for level in sorted({recall for recall, _ in points}):
        area += (level - below) * max(precision for recall, precision in points if recall >= level)
        below = level
    return area


@pytest.mark.parametrize("seed", range(40))
def test_ap_equals_a_plain_loop_on_tied_scores(seed):
    """Both APs at both interpolations against the loops above (the classifier's curve ends at recall 0, precision
    1, as scikit-learn's). When they replaced linear.voc07_ap, linear_svm.interpolated_ap and
    detection.average_precision, these inputs gave exactly the old numbers."""
    rng = np.random.default_rng(seed)
    for _ in range(25):
        y, s = tied_scores(rng)
        points = reference_curve(y, s) + [(0.0, 1.0)]
        assert classifier_ap(y, s, "11-point") == pytest.approx(reference_11_point(points), rel=1e-12, abs=1e-15)
        assert classifier_ap(y, s, "all-point") == pytest.approx(reference_all_point(points), rel=1e-12, abs=1e-15)
        recall, precision = ranked_detections(rng)
        points = list(zip(recall.tolist(), precision.tolist()))
        assert detector_ap(recall, precision, "11-point") == pytest.approx(reference_11_point(points), rel=1e-12,
                                                                            abs=1e-15)
        assert detector_ap(recall, precision, "all-point") == pytest.approx(reference_all_point(points), rel=1e-12,
                                                                             abs=1e-15)


def test_ap_refuses_an_unknown_interpolation():
    with pytest.raises(ValueError, match="interpolation"):
        classifier_ap(np.array([1, 0]), np.array([0.5, 0.2]), "voc12")
    with pytest.raises(ValueError, match="interpolation"):
        detector_ap(np.array([1.0]), np.array([1.0]), "101-point")
