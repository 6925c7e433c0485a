"""Subsets of Table 1: Pareto class sizes (Figure S1), uniform and long-tailed sampling."""
import numpy as np
import pytest

from revisit.data import long_tailed_class_sizes
from revisit.data.subsets import long_tailed_subset, random_subset, uniform_subset


@pytest.mark.parametrize("classes, total, cap", [(1000, 118_000, 1300), (32, 4000, None), (10, 55, None)])
def test_long_tailed_class_sizes(classes, total, cap):
    sizes = long_tailed_class_sizes(classes, total, 6.0, max_per_class=cap)
    assert sizes.dtype.kind == "i" and len(sizes) == classes
    assert sizes.sum() == total
    assert (np.diff(sizes) <= 0).all()
    if cap:
        assert sizes.max() <= cap


def test_long_tailed_follows_pareto_shape():
    sizes = long_tailed_class_sizes(1000, 118_000, 6.0)
    # a Pareto(alpha = 6) tail: the top 20% of classes hold far more than 20% of the images
    assert sizes[:200].sum() / sizes.sum() > 0.45
    assert sizes[0] > 10 * sizes[500]  # head vs. median class
    heavier = long_tailed_class_sizes(1000, 118_000, 2.0)
    assert heavier[0] > sizes[0]  # smaller alpha, heavier head


def test_cap_that_cannot_hold_the_total_is_an_error():
    with pytest.raises(ValueError, match="cannot hold"):
        long_tailed_class_sizes(10, 1000, 6.0, max_per_class=50)


def test_uniform_and_long_tailed_subsets():
    labels = np.repeat(np.arange(20), 50)
    uni = uniform_subset(labels, 400, seed=0)
    assert len(uni) == 400 and (np.bincount(labels[uni]) == 20).all()
    lt = long_tailed_subset(labels, 400, alpha=6.0, seed=0)
    counts = np.sort(np.bincount(labels[lt], minlength=20))[::-1]
    assert len(lt) == 400 and len(set(lt)) == 400
    assert (counts == long_tailed_class_sizes(20, 400, 6.0, max_per_class=50, min_per_class=5)).all()
    assert np.array_equal(lt, long_tailed_subset(labels, 400, alpha=6.0, seed=0))  # reproducible


def test_long_tailed_subset_caps_each_class_at_what_it_has():
    labels = np.concatenate([np.repeat(np.arange(10), 100), np.repeat(np.arange(10, 20), 8)])  # ten small classes
    lt = long_tailed_subset(labels, 600, alpha=6.0, seed=0)
    counts = np.bincount(labels[lt], minlength=20)
    assert len(lt) == 600 and (counts[10:] <= 8).all() and counts.max() > 8
    sizes = long_tailed_class_sizes(3, 30, 6.0, max_per_class=[5, 100, 100])
    assert sizes.sum() == 30 and sizes[0] == 5
    assert len(set(random_subset(1000, 118, seed=0))) == 118


def test_imagenet_lt_floor_of_five_images_a_class_at_paper_scale():
    """Without a floor the quantiles give 5 of 1000 classes no image and 45 fewer than 5; ImageNet-LT (whose
    sampling the paper follows) keeps at least 5 a class. The floor takes from the others, the head stays."""
    plain = long_tailed_class_sizes(1000, 118_000, 6.0, max_per_class=1300)
    floored = long_tailed_class_sizes(1000, 118_000, 6.0, max_per_class=1300, min_per_class=5)
    assert (plain == 0).sum() == 5 and (plain < 5).sum() == 45
    assert floored.min() == 5 and floored.sum() == 118_000 and (np.diff(floored) <= 0).all()
    assert floored[0] == 1300 and (floored[:900] <= plain[:900]).all()  # paid for by the larger classes
    sizes = long_tailed_class_sizes(3, 30, 6.0, max_per_class=[2, 100, 100], min_per_class=5)
    assert sizes.tolist()[0] == 2 and sizes.sum() == 30  # a class with fewer images keeps what it has
    assert long_tailed_class_sizes(10, 40, 6.0, min_per_class=5).min() == 4  # 40 images: an equal share is 4
    both = long_tailed_class_sizes(2, 10, 6.0, max_per_class=6, min_per_class=5)  # a cap and a floor on one set
    assert both.tolist() == [5, 5]
