"""Bootstrap intervals and the paired test: against sklearn's metrics on resampled copies, scipy's bootstrap,
and cases small enough to work out by hand."""
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from revisit.bootstrap import (Interval, Predictions, average_precision, average_precision_11, interval,
                               paired_difference, resample_weights)
from revisit.linear.logistic import score
from revisit.metrics import classifier_ap


def _resampled(rng, n):
    """A resample as weights, and the same resample as the list of drawn items."""
    drawn = rng.integers(0, n, n)
    return np.bincount(drawn, minlength=n)[None], drawn


@pytest.mark.parametrize("trial", range(5))
def test_weighted_scores_equal_sklearn_on_the_resampled_items(trial):
    rng = np.random.default_rng(trial)
    n = 60
    y = rng.integers(0, 2, n)
    s = np.round(rng.normal(size=n) + y, 1)  # rounding makes tied scores, which sklearn groups into one threshold
    labels, predicted = rng.integers(0, 4, n), rng.integers(0, 4, n)
    w, drawn = _resampled(rng, n)
    assert average_precision_11(y, s, w)[0] == pytest.approx(classifier_ap(y[drawn], s[drawn], "11-point"))
    assert average_precision(y, s, w)[0] == pytest.approx(classifier_ap(y[drawn], s[drawn], "all-point"))
    acc = Predictions("accuracy", labels, predicted).scores(w)[0]
    assert acc == pytest.approx(100 * accuracy_score(labels[drawn], predicted[drawn]))
    bal = Predictions("balanced_accuracy", labels, predicted).scores(w)[0]
    assert bal == pytest.approx(100 * balanced_accuracy_score(labels[drawn], predicted[drawn]))


def test_value_is_the_reported_score():
    rng = np.random.default_rng(0)
    Y = rng.integers(0, 2, (50, 3))
    S = rng.normal(size=(50, 3)) + Y
    assert Predictions("ap11", Y, S).value() == pytest.approx(score("mAP", Y, S))
    expected = 100 * np.mean([classifier_ap(Y[:, c], S[:, c], "all-point") for c in range(3)])
    assert Predictions("ap", Y, S).value() == pytest.approx(expected)


def test_two_items_by_hand():
    """One right, one wrong: resamples give 100% (1/4), 50% (1/2) or 0% (1/4); the 95% interval is [0, 100]."""
    p = Predictions("accuracy", np.array([1, 1]), np.array([1, 0]))
    draws = p.scores(resample_weights(2, 4000, seed=1))
    assert set(np.unique(draws)) == {0.0, 50.0, 100.0}
    assert np.mean(draws == 50) == pytest.approx(0.5, abs=0.03)
    assert np.mean(draws == 100) == pytest.approx(0.25, abs=0.03)
    assert interval(p, 4000) == Interval(50.0, 0.0, 100.0)


def test_interval_agrees_with_scipy_percentile_bootstrap():
    rng = np.random.default_rng(3)
    correct = rng.random(400) < 0.7
    ours = interval(Predictions("accuracy", correct.astype(int), np.ones(400, int)), draws=20000, seed=0)
    theirs = stats.bootstrap((100.0 * correct,), np.mean, n_resamples=20000, method="percentile", random_state=0)
    assert ours.value == pytest.approx(100 * correct.mean())
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=0.5)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=0.5)
    assert ours.half_width == pytest.approx(1.96 * 100 * np.sqrt(0.7 * 0.3 / 400), rel=0.1)  # the normal approximation


def test_paired_difference_separates_what_unpaired_intervals_cannot():
    """Model b is model a with 12 of 500 errors fixed: each interval is about +-4 points wide, so they overlap,
    but on the same resamples b is always ahead, and the paired interval of the 2.4-point gain excludes 0."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    a = np.where(rng.random(500) < 0.6, labels, (labels + 1) % 10)
    b = a.copy()
    wrong = np.flatnonzero(a != labels)[:12]
    b[wrong] = labels[wrong]
    pa, pb = Predictions("accuracy", labels, a), Predictions("accuracy", labels, b)
    ia, ib = interval(pa), interval(pb)
    assert ib.low < ia.high  # the unpaired intervals overlap
    gain = paired_difference(pb, pa)
    assert gain.value == pytest.approx(2.4)
    assert gain.low > 0 and gain.excludes_zero


def test_paired_difference_of_a_model_with_itself_is_exactly_zero():
    rng = np.random.default_rng(1)
    Y, S = rng.integers(0, 2, (80, 4)), rng.normal(size=(80, 4))
    same = paired_difference(Predictions("ap", Y, S), Predictions("ap", Y, S))
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0) and not same.excludes_zero


def test_paired_difference_refuses_different_test_items():
    a = Predictions("accuracy", np.array([0, 1, 2]), np.array([0, 1, 1]))
    b = Predictions("accuracy", np.array([0, 1, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="same test items"):
        paired_difference(a, b)


def test_a_draw_without_positives_leaves_the_class_out_of_the_mean():
    y = np.array([[1, 0], [0, 1], [0, 0]])
    s = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5]])
    only_first_two = np.array([[1, 1, 0]])
    only_first = np.array([[2, 0, 1]])  # class 1 has no positive drawn: its AP is undefined, class 0's counts alone
    p = Predictions("ap", y, s)
    assert p.scores(only_first_two)[0] == pytest.approx(100.0)
    assert p.scores(only_first)[0] == pytest.approx(100.0)


def test_saved_predictions_load_back_and_a_corrupt_file_is_named(tmp_path):
    p = Predictions("ap11", np.eye(3, dtype=int), np.random.default_rng(0).normal(size=(3, 3)))
    path = tmp_path / "predictions" / "voc.npz"
    p.save(path)
    back = Predictions.load(path)
    assert back.score == "ap11" and np.array_equal(back.decision, p.decision) and back.value() == p.value()
    assert [f.name for f in path.parent.iterdir()] == ["voc.npz"]  # no temporary left
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="voc.npz: unreadable predictions"):
        Predictions.load(path)


def test_dense_scores_equal_the_metrics_on_the_resampled_images():
    from revisit.metrics import confusion_matrix, mean_iou

    rng = np.random.default_rng(5)
    truth = [rng.integers(0, 4, (6, 7)) for _ in range(12)]
    predicted = [np.where(rng.random(t.shape) < 0.6, t, rng.integers(0, 4, t.shape)) for t in truth]
    confusions = np.stack([confusion_matrix(p, t, 4) for p, t in zip(predicted, truth)])
    miou = Predictions("miou", confusions.sum(2), confusions)
    w, drawn = _resampled(rng, 12)
    assert miou.scores(w)[0] == pytest.approx(100 * mean_iou(sum(confusions[i] for i in drawn))[0])
    assert miou.value() == pytest.approx(100 * mean_iou(confusions.sum(0))[0])
    foreground = Predictions("miou_fg", confusions.sum(2), confusions)  # class 0 out of the mean, not of the matrix
    assert foreground.scores(w)[0] == pytest.approx(100 * np.nanmean(mean_iou(sum(confusions[i] for i in drawn))[1][1:]))
    depth = [(rng.random((5, 5)) + 0.5, rng.random((5, 5)) + 0.5) for _ in range(12)]
    rmse = Predictions("rmse", np.full(12, 25), np.array([((p - t) ** 2).sum() for p, t in depth]))
    assert rmse.scores(w)[0] == pytest.approx(np.sqrt(np.mean([(depth[i][0] - depth[i][1]) ** 2 for i in drawn])))
    objects, jf = rng.integers(1, 4, 12), rng.random(12)
    ratio = Predictions("ratio", objects, jf * objects)  # per video: objects, and the sum of their J&F
    assert ratio.scores(w)[0] == pytest.approx(100 * np.sum((jf * objects)[drawn]) / np.sum(objects[drawn]))


def test_no_test_items_give_no_interval():
    found = interval(Predictions("accuracy", np.zeros(0, int), np.zeros(0, int)))
    assert np.isnan(found.value) and np.isnan(found.low) and not found.excludes_zero


@pytest.mark.parametrize("eleven_point", [True, False], ids=["VOC07 11-point", "all-point"])
def test_detection_ap_equals_voc_ap_on_the_resampled_images(eleven_point):
    """Random boxes near random ground truth (some difficult, some duplicates): the weighted AP equals
    ``dense.detection.voc_ap`` run on the drawn images themselves, repeated ones included."""
    from revisit.data.dense import Boxes
    from revisit.dense.detection import Detections, voc_ap

    rng = np.random.default_rng(7)
    classes = ["a", "b", "c"]
    targets, detections = [], []
    for _ in range(15):
        n = rng.integers(0, 4)
        xy = rng.uniform(0, 60, (n, 2))
        boxes = np.column_stack([xy, xy + rng.uniform(5, 30, (n, 2))]).astype(np.float32)
        labels = rng.integers(0, 3, n)
        targets.append(Boxes(boxes, labels, rng.random(n) < 0.2))
        jitter = np.repeat(boxes, 2, axis=0) + rng.normal(0, 3, (2 * n, 4)).astype(np.float32)
        extra = rng.uniform(0, 60, (2, 4)).astype(np.float32)
        extra[:, 2:] += extra[:, :2]
        found = np.concatenate([jitter, extra])
        detections.append(Detections(found, rng.random(len(found)).astype(np.float32),
                                     np.concatenate([np.repeat(labels, 2), rng.integers(0, 3, 2)])))
    full = voc_ap(detections, targets, classes, use_07_metric=eleven_point)
    p = full["predictions"]
    assert p.value() == pytest.approx(full["AP"])
    for _ in range(3):
        w, drawn = _resampled(rng, 15)
        again = voc_ap([detections[i] for i in drawn], [targets[i] for i in drawn], classes, use_07_metric=eleven_point)
        assert p.scores(w)[0] == pytest.approx(again["AP"])


def test_foreground_miou_by_hand():
    # one image, 3 classes: background (0) 4 px all right; class 1: 2 px, one predicted as 0; class 2: 2 px right
    confusion = np.array([[[4, 0, 0], [1, 1, 0], [0, 0, 2]]])
    # IoU: background 4/5, class 1 1/2, class 2 2/2 -> all classes 0.7667, without background 0.75
    assert Predictions("miou", confusion.sum(2), confusion).value() == pytest.approx(100 * (0.8 + 0.5 + 1) / 3)
    assert Predictions("miou_fg", confusion.sum(2), confusion).value() == pytest.approx(75)


def test_stacked_runs_score_the_mean_of_the_runs_on_each_resample(tmp_path):
    """Five finetuning runs on the same images (the authors' protocol): each resample scores every run on the same
    drawn images and averages; saved and loaded back, and paired with another model's runs."""
    from revisit.metrics import confusion_matrix, mean_iou

    rng = np.random.default_rng(6)
    truth = [rng.integers(0, 3, (5, 5)) for _ in range(10)]
    runs = [np.stack([confusion_matrix(np.where(rng.random(t.shape) < 0.7, t, 0), t, 3) for t in truth])
            for _ in range(5)]
    stacked = Predictions("miou", runs[0].sum(2), np.stack(runs))
    assert stacked.stacked and len(stacked) == 10
    w, drawn = _resampled(rng, 10)
    by_hand = np.mean([100 * mean_iou(sum(run[i] for i in drawn))[0] for run in runs])
    assert stacked.scores(w)[0] == pytest.approx(by_hand)
    assert stacked.value() == pytest.approx(np.mean([100 * mean_iou(run.sum(0))[0] for run in runs]))
    stacked.save(tmp_path / "p.npz")
    assert Predictions.load(tmp_path / "p.npz").value() == stacked.value()
    other = Predictions("miou", runs[0].sum(2), np.stack(runs[::-1][:3]))  # three runs of another model
    assert paired_difference(stacked, other).value == pytest.approx(stacked.value() - other.value())
    depth = Predictions("rmse", np.full(10, 25), rng.random((3, 10)))
    assert depth.value() == pytest.approx(np.mean([np.sqrt(d.sum() / 250) for d in depth.decision]))
    with pytest.raises(ValueError, match="10 labels but 9 predictions"):
        Predictions("miou", runs[0].sum(2), np.stack(runs)[:, :9])
