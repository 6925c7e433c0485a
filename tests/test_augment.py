"""augment: the Sec. 4 view policies (multi-crop sizes, constraints, A+ only on positives)."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler

from revisit.augment import Views, ViewSet
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
        out = [views_with_seed(views.crops, img, seed) for seed in range(8)]
        if policy == "standard":
            reference = out
        for a, b in zip(out, reference):
            assert torch.equal(a["anchor"], b["anchor"])  # same seed, same anchor crop whatever the policy
        for crops in out:
            assert crops["strong"].shape == (4,)
            if policy != "mixed":
                assert bool(crops["strong"].all()) == (policy == "autoaugment")
    per_policy = {p: [c for c in calls if c[0] == p] for p in ("standard", "mixed", "autoaugment")}
    assert not per_policy["standard"]
    assert len(per_policy["autoaugment"]) == 8 * 4  # every positive (1 large + 3 small), never the anchor
    assert 0 < len(per_policy["mixed"]) < 8 * 4  # about half of them


def test_batch_colours_are_drawn_per_image_and_skip_autoaugment(monkeypatch):
    """Identical crops in one batch get different colours; AutoAugment's positives are only normalised."""
    views = Views(32, small_crops=2, small_size=14, policy="autoaugment")
    crops = views_with_seed(views.crops, image(3), 0)
    batch = torch.utils.data.default_collate([crops] * 16)
    out = views_with_seed(views.colour, batch, 1)
    assert out["anchor"].shape == (16, 3, 32, 32) and out["small"].shape == (16, 2, 3, 14, 14)
    assert len({round(float(a.mean()), 4) for a in out["anchor"]}) > 8  # per-image jitter, flips, blur
    expected = views.normalize(batch["positive"].float() / 255)
    assert torch.allclose(out["positive"], expected, atol=1e-6)  # AutoAugment positives: no colour steps
    assert torch.equal(views_with_seed(views.colour, batch, 1)["anchor"], out["anchor"])  # seeded
    import revisit.augment as augment

    monkeypatch.setattr(augment, "CHUNK_VALUES", 4 * 3 * 32 * 32)  # chunks of 4 images, each drawing anew
    chunked = views_with_seed(views.colour, batch, 1)["anchor"]
    assert len({round(float(a.mean()), 4) for a in chunked}) > 8 and not torch.equal(chunked, out["anchor"])


def test_hue_rotation_equals_kornias_hsv_round_trip():
    import kornia

    from revisit.augment import adjust_hue

    x = torch.rand(6, 3, 17, 19)
    x[:, :, :4] = x[:, :1, :4]  # greys (no chroma)
    x[:, 1, 4:8] = x[:, 0, 4:8]  # red and green tied for the maximum
    x[0, :, 8:14] = torch.tensor([[1., 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]]).T[:, :, None]
    radians = torch.tensor([-3.0, -0.6, 0.0, 0.1, 0.6, 3.1])
    expected = kornia.enhance.adjust_hue(x, radians)
    assert torch.allclose(adjust_hue(x, radians), expected, atol=1e-5)
    assert not torch.allclose(adjust_hue(x, radians.flip(0)), expected, atol=1e-2)


def test_the_colour_jitter_is_kornias_with_the_fast_hue(monkeypatch):
    """Same seed, same views as kornia's own ColorJitter; and the fast hue step is the one it runs."""
    import kornia.augmentation as K

    import revisit.augment as augment

    x = torch.rand(32, 3, 24, 24)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        expected = K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8)(x)
    calls, hue = [], augment.adjust_hue
    monkeypatch.setattr(augment, "adjust_hue", lambda image, radians: calls.append(1) or hue(image, radians))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ours = augment.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8)(x)
    assert calls and torch.allclose(ours, expected, atol=1e-5)


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
    batch = views.collate([views[i] for i in range(6)])
    assert batch["small"].shape == (6, 2, 3, 14, 14) and batch["anchor"].dtype == torch.float32
    assert int(batch["rejected"].sum()) > 0  # 90% overlap rejects many candidates
    assert torch.equal(views[3]["small"], views[3]["small"])  # seeded per (seed, epoch, index)
    again = views.collate([views[i] for i in range(6)])
    assert torch.equal(batch["anchor"], again["anchor"])  # colours seeded per batch: any worker, same views


@pytest.mark.parametrize("chunk", [None, 2], ids=["one chunk", "chunks of 2 images"])
def test_colouring_after_the_transfer_gives_the_loaders_views(chunk, monkeypatch):
    """The GPU data path (uint8 crops collated, coloured on the device) and the CPU one (coloured in the loader)
    draw the same colours for a batch: same seed, same chunks, same parameters (kornia draws them on the CPU)."""
    import revisit.augment as augment

    if chunk:
        monkeypatch.setattr(augment, "CHUNK_VALUES", chunk * 3 * 23 * 23)
    images = ImageSet("tiny", array=np.random.default_rng(1).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8))
    transform = Views(23, small_crops=2, small_size=14, policy="mixed")
    loader_side = ViewSet(images, transform, seed=3)
    device_side = ViewSet(images, transform, seed=3, colour_in_loader=False)
    for epoch in (0, 1):
        loader_side.set_epoch(epoch)
        device_side.set_epoch(epoch)
        coloured = loader_side.collate([loader_side[i] for i in range(4, 8)])
        crops = device_side.collate([device_side[i] for i in range(4, 8)])
        assert crops["anchor"].dtype == torch.uint8 and crops["small"].dtype == torch.uint8  # 4x less to transfer
        finished = device_side.colour(crops, "cpu")
        for key in ("anchor", "positive", "small"):
            assert finished[key].dtype == torch.float32 and torch.equal(finished[key], coloured[key])
    reseeded = device_side.colour({**crops, "colour_seed": crops["colour_seed"] + 1}, "cpu")
    assert not torch.equal(reseeded["anchor"], finished["anchor"])  # the batch's seed draws its colours


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


def test_each_unreadable_file_counts_once_per_draw(tmp_path):
    """3 corrupt files, adjacent once sorted, over one epoch loaded as train.py does: ``skipped`` sums to 3.

    Item ``i`` counts only its own file, not the unreadable neighbours it passes over to find a replacement
    (counting those gave 3 + 2 + 1 = 6 here).
    """
    files = []
    for k in range(16):
        path = tmp_path / f"{k:02d}.jpg"
        if k in (5, 6, 7):
            path.write_bytes(b"not an image")
        else:
            Image.fromarray(image(k, 32).permute(1, 2, 0).numpy()).save(path)
        files.append(path)
    views = ViewSet(ImageSet("files", files), Views(23), seed=0)
    sampler = DistributedSampler(views, num_replicas=1, rank=0, shuffle=True, seed=0, drop_last=True)
    loader = DataLoader(views, batch_size=4, sampler=sampler, drop_last=True, collate_fn=views.collate)
    with pytest.warns(UserWarning, match="unreadable image"):
        batches = list(loader)
    assert sum(len(b["index"]) for b in batches) == 16
    assert sum(int(b["skipped"].sum()) for b in batches) == 3
