"""augment: the Sec. 4 view policies (multi-crop sizes, constraints, A+ only on positives)."""
import numpy as np
import torch

from revisit.augment import ColorAugment, Views, ViewSet, color_pipeline
from revisit.crops import overlap_fraction
from revisit.data import ImageSet


def image(seed=0, size=64):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, size, size), dtype=np.uint8))


def views_with_seed(transform, img, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transform(img)


def test_multicrop_shapes_and_default_is_two_crop():
    img = image()
    two = views_with_seed(Views(32), img)
    assert two["anchor"].shape == two["positive"].shape == (3, 32, 32) and two["small"].shape[0] == 0
    mc = views_with_seed(Views(23, small_crops=4, small_size=14), img)
    assert mc["anchor"].shape == (3, 23, 23) and mc["small"].shape == (4, 3, 14, 14)
    assert mc["rejected"] == mc["fallbacks"] == 0


def test_autoaugment_never_touches_the_anchor():
    img = image(1)
    calls = []
    for policy in ("standard", "mixed", "autoaugment"):
        views = Views(32, small_crops=3, small_size=14, policy=policy)
        strong = views.strong
        views.strong = lambda x, strong=strong: calls.append((policy, tuple(x.shape))) or strong(x)
        out = [views_with_seed(views, img, seed) for seed in range(8)]
        if policy == "standard":
            reference = out
        for a, b in zip(out, reference):
            assert torch.equal(a["anchor"], b["anchor"])  # same seed, same anchor whatever the policy
    per_policy = {p: [c for c in calls if c[0] == p] for p in ("standard", "mixed", "autoaugment")}
    assert not per_policy["standard"]
    assert len(per_policy["autoaugment"]) == 8 * 4  # every positive (1 large + 3 small), never the anchor
    assert 0 < len(per_policy["mixed"]) < 8 * 4  # about half of them


def test_constrained_small_crops_overlap_the_anchor(monkeypatch):
    import revisit.augment as augment

    boxes = []
    original = augment.constrained_crop
    monkeypatch.setattr(augment, "constrained_crop",
                        lambda *a, **k: boxes.append((a[4], original(*a, **k)[0])) or original(*a, **k))
    views = Views(23, small_crops=4, small_size=14, min_overlap=0.2)
    for seed in range(10):
        views_with_seed(views, image(seed), seed)
    assert len(boxes) == 40
    assert all(overlap_fraction(box, anchor) >= 0.2 for anchor, box in boxes)


def test_viewset_counts_rejected_crops_and_batches_sample_major():
    images = ImageSet("tiny", array=np.random.default_rng(0).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8))
    views = ViewSet(images, Views(23, small_crops=2, small_size=14, min_overlap=0.9), seed=0)
    batch = torch.utils.data.default_collate([views[i] for i in range(6)])
    assert batch["small"].shape == (6, 2, 3, 14, 14)
    assert int(batch["rejected"].sum()) > 0  # 90% overlap rejects many candidates
    assert torch.equal(views[3]["small"], views[3]["small"])  # seeded per (seed, epoch, index)


def test_iou_ceiling_applies_to_the_pair():
    from revisit.crops import box_iou
    import revisit.augment as augment

    pairs = []
    original = augment.iou_constrained_pair
    views = Views(32, max_iou=0.2)
    augment.iou_constrained_pair = lambda *a: pairs.append(original(*a)) or pairs[-1]
    try:
        for seed in range(20):
            assert views_with_seed(views, image(seed), seed)["rejected"] >= 0
    finally:
        augment.iou_constrained_pair = original
    assert len(pairs) == 20 and all(box_iou(a, b) < 0.2 for a, b, _ in pairs)


def test_color_augment_equals_the_torchvision_pipeline():
    """The fast path draws the same numbers in the same order as v2.Compose, so every view is identical."""
    for size in (14, 32):
        img = image(2, size)
        fast, reference = ColorAugment(size), color_pipeline(size)
        for seed in range(40):  # 40 seeds cover every branch (jitter orders, grayscale, blur, flip)
            a, b = views_with_seed(fast, img, seed), views_with_seed(reference, img, seed)
            assert torch.equal(a, b), (size, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            fast(img)
            after_fast = torch.rand(4)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            reference(img)
            after_reference = torch.rand(4)
        assert torch.equal(after_fast, after_reference)  # and leave the generator in the same state
