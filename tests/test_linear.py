"""Linear evaluation: VOC07 AP by hand, C selection, metrics per target, the SVM and the SGD layer."""
import numpy as np
import torch
import pytest

from revisit.linear.logistic import c_grid, evaluate, score
from revisit.metrics import classifier_ap


def test_classifier_ap_11_point_hand_computed():
    # ranks: + - + -> precision at recall 0.5 is 1, at recall 1.0 is 2/3
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1])
    expected = (6 * 1.0 + 5 * (2 / 3)) / 11
    assert classifier_ap(y, s, "11-point") == pytest.approx(expected)
    assert classifier_ap(np.array([1, 1, 0]), np.array([3.0, 2.0, 1.0]), "11-point") == pytest.approx(1.0)


def test_c_grid():
    paper = c_grid("paper", 45)
    assert len(paper) == 45 and paper[0] == pytest.approx(1e-5) and paper[-1] == pytest.approx(1e5)
    assert np.all(np.diff(paper) > 0)
    assert c_grid("ericsson", 45)[-1] == pytest.approx(1e6)


def blobs(n, classes, dim, rng, spread=0.5):
    centres = rng.normal(0, 3, (classes, dim))
    y = rng.integers(0, classes, n)
    return centres[y] + rng.normal(0, spread, (n, dim)), y


def test_separable_features_score_high_and_noise_scores_chance():
    rng = np.random.default_rng(0)
    X, y = blobs(600, 5, 16, rng)
    split = {"train": slice(0, 300), "val": slice(300, 400), "test": slice(400, 600)}
    result = evaluate({k: X[s] for k, s in split.items()}, {k: y[s] for k, s in split.items()}, "cifar10",
                      c_grid("paper", 9))
    assert result.metric == "top1_acc" and result.test > 95
    assert len(result.val_curve[0]) == 9
    noise = rng.normal(size=X.shape)
    chance = evaluate({k: noise[s] for k, s in split.items()}, {k: y[s] for k, s in split.items()}, "cifar10",
                      c_grid("paper", 5))
    assert chance.test < 40
    assert chance.interval == []  # bootstrapped only when the record is written
    low, high = chance.record()["interval"]
    assert low < chance.test < high and high - low > 5  # 200 items
    assert chance.predictions.value() == pytest.approx(chance.test) and "predictions" not in chance.record()


def test_pets_uses_mean_per_class_accuracy_and_voc_map():
    y = np.array([0, 0, 0, 1])
    assert score("mean_per_class_acc", y, np.array([0, 0, 0, 0])) == pytest.approx(50.0)
    assert score("top1_acc", y, np.array([0, 0, 0, 0])) == pytest.approx(75.0)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 8))
    Y = np.stack([(X[:, 0] > 0), (X[:, 1] > 0.5)], 1).astype(int)
    split = {"train": slice(0, 150), "val": slice(150, 200), "test": slice(200, 300)}
    result = evaluate({k: X[s] for k, s in split.items()}, {k: Y[s] for k, s in split.items()}, "voc", c_grid("paper", 5))
    assert result.metric == "mAP" and result.test > 90 and len(result.best_C) == 1  # one C for all classes


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_c_sweep_runs_from_large_c_down_with_warm_starts_as_a_plain_loop():
    """Ericsson et al.'s sweep, written out: largest C first, each fit starting from the last; ties go to larger C."""
    from sklearn.linear_model import LogisticRegression

    from revisit.linear.logistic import _sweep, best_c

    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(120, 6)), rng.integers(0, 3, 120)
    X[:, 0] += y
    Cs = c_grid("paper", 6)
    clf, expected = LogisticRegression(C=Cs[-1], solver="lbfgs", max_iter=2, warm_start=True), {}  # 2 iterations:
    # each fit ends near where the last one left it, so the order of the sweep shows
    for C in sorted(Cs, reverse=True):
        clf.set_params(C=C)
        expected[C] = 100.0 * float((clf.fit(X[:80], y[:80]).predict(X[80:]) == y[80:]).mean())
    assert _sweep(X[:80], y[:80], X[80:], y[80:], Cs, 2, "top1_acc").tolist() == [expected[C] for C in Cs]
    assert best_c(Cs, [1, 3, 3, 2, 3, 0]) == Cs[4] and best_c(Cs, [5, 0, 0, 0, 0, 0]) == Cs[0]


def test_classifier_ap_all_point_hand_computed():
    # ranks: + - + : precision 1 up to recall 0.5, then the envelope's 2/3 up to recall 1
    y, s = np.array([1, 0, 1]), np.array([0.9, 0.8, 0.7])
    assert classifier_ap(y, s, "all-point") == pytest.approx(0.5 + 0.5 * 2 / 3)
    # a dip that the envelope fills: + - - + + -> precisions 1, 2/4, 3/5; envelope at recall 2/3 and 1 is 3/5
    y, s = np.array([1, 0, 0, 1, 1]), np.array([5, 4, 3, 2, 1.0])
    assert classifier_ap(y, s, "all-point") == pytest.approx(1 / 3 + (2 / 3) * 0.6)
    assert classifier_ap(np.array([1, 1, 0]), np.array([3.0, 2.0, 1.0]), "all-point") == pytest.approx(1.0)


def test_svm_map_separates_blobs_and_rejects_a_class_without_positives():
    from revisit.linear.svm import svm_map

    rng = np.random.default_rng(0)
    X, y = blobs(400, 4, 16, rng)
    multi_hot = np.eye(4, dtype=int)[y]
    mean_ap, aps, decision = svm_map(X[:300], multi_hot[:300], X[300:], multi_hot[300:])
    assert mean_ap > 95 and len(aps) == 4
    assert decision.shape == (100, 4)
    assert aps[1] == pytest.approx(100 * classifier_ap(multi_hot[300:, 1], decision[:, 1], "all-point"))
    noise_ap, _, _ = svm_map(rng.normal(size=(300, 16)), multi_hot[:300], rng.normal(size=(100, 16)), multi_hot[300:])
    assert noise_ap < 60
    no_positive = multi_hot[:300].copy()
    no_positive[:, 2] = 0
    with pytest.raises(ValueError, match="only negatives"):
        svm_map(X[:300], no_positive, X[300:], multi_hot[300:])


class MeanColour(torch.nn.Module):
    """A frozen 'backbone' whose features are the mean of each colour channel."""

    feature_dim = 3

    def forward(self, x):
        return x.mean(dim=(2, 3))


def test_sgd_linear_learns_colour_classes_and_keeps_the_backbone_frozen():
    from revisit.data import ImageSet
    from revisit.linear.sgd import sgd_linear

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 120)
    arrays = np.zeros((120, 16, 16, 3), np.uint8)
    arrays[np.arange(120), :, :, labels] = 200  # class = which channel is lit
    arrays += rng.integers(0, 40, arrays.shape, dtype=np.uint8)
    images = ImageSet("colours", array=arrays, labels=labels)
    backbone = MeanColour()
    acc, losses, (test_labels, predicted) = sgd_linear(backbone, [images.subset(np.arange(90))],
                                                       images.subset(np.arange(90, 120)), 3, 16, epochs=6, lr=1.0,
                                                       milestones=(4,), batch_size=16, progress=False)
    assert acc == 100.0 and losses[-1] < losses[0]
    assert np.array_equal(test_labels, labels[90:]) and np.array_equal(predicted, labels[90:])
    assert not backbone.training  # BN statistics of a real backbone stay frozen


def test_logistic_regression_stops_where_ericssons_code_does():
    """Ericsson et al.'s linear.py leaves max_iter at scikit-learn's default (the paper is silent)."""
    from sklearn.linear_model import LogisticRegression

    from revisit.config import LinearParams

    assert LinearParams().max_iter == LogisticRegression().max_iter == 100


def test_the_logistic_views_square_and_ericssons_short_side_crop():
    """An 80 x 40 image, dark in its 12 px borders: the square view keeps them, Ericsson et al.'s
    short side to 20 px (80 x 40 -> 40 x 20) then centre 20 px crop sees only the bright middle."""
    from revisit.linear.features import LOGISTIC_VIEWS

    image = torch.zeros(3, 40, 80, dtype=torch.uint8)
    image[:, :, 12:68] = 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    square, crop = (LOGISTIC_VIEWS[view](20)(image) * std + mean for view in ("square", "short_side_crop"))
    assert square.shape == crop.shape == (3, 20, 20)
    assert square[:, :, 0].max() < 0.05 and square[:, :, 6:14].min() > 0.95  # borders dark, middle bright
    assert crop.min() > 0.95  # x 20-60 of the original only, all bright


@pytest.mark.parametrize("standardize", [False, True])
def test_the_final_fit_sees_raw_features_as_ericssons_code_or_standardised_ones(standardize):
    """The refit on train + val and its test predictions, written out with scikit-learn: on the raw features (their
    code, the paper profile) or on features standardised with train + val's mean and variance (the book profiles).
    Features far from zero and of unequal scales, so that the two differ."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    y = {split: rng.integers(0, 3, n) for split, n in (("train", 90), ("val", 30), ("test", 60))}
    X = {split: rng.normal(size=(len(labels), 5)) * [1, 10, 100, 1, 1] + 50 + labels[:, None] * [1, 0, 0, 1, 0]
         for split, labels in y.items()}
    result = evaluate(X, y, "cifar10", c_grid("paper", 5), max_iter=50, standardize=standardize)
    Xall, yall = np.concatenate([X["train"], X["val"]]), np.concatenate([y["train"], y["val"]])
    Xte = X["test"]
    if standardize:
        scaler = StandardScaler().fit(Xall)
        Xall, Xte = scaler.transform(Xall), scaler.transform(Xte)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # raw features at 50 iterations, as in evaluate
        expected = LogisticRegression(C=result.best_C[0], max_iter=50).fit(Xall, yall).predict(Xte)
    assert (result.predictions.decision == expected).all()
    assert result.test == pytest.approx(100 * (expected == y["test"]).mean())
