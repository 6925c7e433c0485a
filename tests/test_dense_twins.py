"""Synthetic twins of the dense targets: determinism, targets that agree with what was drawn, cache."""
import numpy as np
import pytest
import torch

from revisit.data import dense_twins as dt
from revisit.data.dense import Boxes, DenseSet, Video
from revisit.data.dense_loaders import CITYSCAPES_CLASSES, NYUD_CLASSES
from revisit.data.loaders import VOC_CLASSES
from revisit.data.twins import UNIVERSE

SETS = {  # name -> (generator of a few images, what to compare)
    "voc_segmentation": lambda seed, split="train": dt.voc_segmentation(split, 6, seed=seed),
    "voc_detection": lambda seed, split="train": dt.voc_detection(split, 6, seed=seed),
    "cityscapes": lambda seed, split="train": dt.cityscapes_segmentation(split, 4, seed=seed),
    "nyud": lambda seed, split="train": dt.nyud(split, 4, seed=seed)[1],
}


def arrays(result):
    """Every array of a DenseSet (boxes flattened) or of a list of videos, for equality checks."""
    if isinstance(result, list):
        return [a for v in result for a in (v.frames, v.masks)]
    if result.task == "detection":
        return [result.images] + [a for b in result.targets for a in (b.boxes, b.labels, b.difficult)]
    return [result.images, result.targets]


def same(a, b):
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("name", SETS)
def test_same_seed_same_arrays_other_seed_or_split_different(name):
    make = SETS[name]
    assert same(arrays(make(0)), arrays(make(0)))
    assert not same(arrays(make(0)), arrays(make(1)))
    assert not same(arrays(make(0)), arrays(make(0, "test")))


def test_videos_are_deterministic():
    assert same(arrays(dt.davis_videos(2, 4, seed=3)), arrays(dt.davis_videos(2, 4, seed=3)))
    assert not same(arrays(dt.davis_videos(2, 4, seed=3)), arrays(dt.davis_videos(2, 4, seed=4)))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown split 'val2'.*train, val, test"):
        dt.voc_segmentation("val2", 2)
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        dt.nyud("train", -1)
    with pytest.raises(ValueError, match="frames must be an integer >= 2"):
        dt.davis_videos(1, 1)


def test_class_mappings_are_fixed_and_distinct():
    assert sorted(dt.VOC_UNIVERSE) == sorted(VOC_CLASSES)
    assert len(set(dt.VOC_UNIVERSE.values())) == 20 and set(dt.VOC_UNIVERSE.values()) <= set(UNIVERSE)
    on_wall, on_floor = dt.NYUD_ON_WALL, dt.NYUD_ON_FLOOR
    assert sorted([*dt.NYUD_STRUCTURE, *on_wall, *on_floor]) == sorted(NYUD_CLASSES)  # each class exactly once
    for placement in (on_wall, on_floor):  # within a placement, a universe class names one NYUD class
        assert len(set(placement.values())) == len(placement) and set(placement.values()) <= set(UNIVERSE)


# ----------------------------------------------------------------------------- segmentation targets

def test_boundary_band_is_the_outer_ring_of_later_segments():
    segments = np.zeros((6, 6), np.int32)
    segments[1:4, 1:4] = 1  # an object
    segments[2:5, 3:5] = 2  # a nearer one covering its corner
    band = dt.boundary_band(segments)
    expected = np.zeros((6, 6), bool)
    expected[0, 1:4] = expected[1:4, 0] = expected[4, 1:3] = True  # background around object 1
    expected[1, 4] = expected[5, 3:5] = expected[2:5, 5] = True  # background around object 2
    expected[2:4, 2] = expected[1, 3] = True  # object 1's pixels next to the nearer object 2
    assert np.array_equal(band, expected)


def test_voc_segmentation_targets_follow_the_visible_objects():
    seg = dt.voc_segmentation("train", 20, seed=5)
    assert seg.classes[0] == "background" and seg.classes[1:] == VOC_CLASSES and seg.task == "segmentation"
    assert seg.images.shape == (20, 64, 64, 3) and seg.images.dtype == np.uint8
    image, target = seg[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 64, 64)
    assert target.dtype == torch.int64 and target.shape == (64, 64)
    for mask, layers in zip(seg.targets, dt.voc_layers("segmentation", "train", 20, seed=5)):
        band = mask == 255
        assert band.any()  # every image has an object, hence a band
        visible = np.concatenate([[0], layers.classes + 1])[layers.instances]
        assert np.array_equal(mask[~band], visible[~band])
        assert np.array_equal(band, dt.boundary_band(layers.instances))
        assert (mask[~band] <= 20).all()
    areas = [full.sum() for layers in dt.voc_layers("segmentation", "train", 20, seed=5) for full in layers.full]
    radii = np.sqrt(np.array(areas) / np.pi)
    assert np.median(radii) > 0.1 * 64  # objects big enough to segment at 32-64 px


def test_cityscapes_labels_cover_most_train_ids():
    city = dt.cityscapes_segmentation("train", 60, seed=0)
    assert city.classes == CITYSCAPES_CLASSES and len(city.classes) == 19
    labels = city.targets
    assert set(np.unique(labels)) <= set(range(19)) | {255}
    assert 0 < (labels == 255).mean() < 0.15  # a thin band and the ego vehicle, not more
    share = np.array([(labels == c).reshape(60, -1).any(1).mean() for c in range(19)])
    regular = [c for c in CITYSCAPES_CLASSES if c not in dt.CITYSCAPES_RARE]
    assert len(regular) >= 12 and (share[[CITYSCAPES_CLASSES.index(c) for c in regular]] >= 0.1).all()
    for name in ("road", "sidewalk", "building", "sky", "car"):
        assert share[CITYSCAPES_CLASSES.index(name)] > 0.9
    sky = labels == CITYSCAPES_CLASSES.index("sky")
    road = labels == CITYSCAPES_CLASSES.index("road")
    assert np.nonzero(sky)[0].mean() < np.nonzero(road)[0].mean()  # the sky is above the road


# ----------------------------------------------------------------------------- NYUD

def test_room_box_depths_follow_the_pinhole_geometry():
    depth, labels, _ = dt.room_box(40, f=20.0, cx=20.0, cy=15.5, cam_height=1.0, height=2.5, left=2.0, right=2.0,
                                   back=4.0)
    nyud = dt.NYUD
    assert labels[15, 20] == nyud["wall"] and depth[15, 20] == 4.0  # straight ahead: the back wall
    assert labels[39, 20] == nyud["floor"] and depth[39, 20] == pytest.approx(20 * 1.0 / (39 - 15.5))
    assert labels[0, 20] == nyud["ceiling"] and depth[0, 20] == pytest.approx(20 * 1.5 / 15.5)
    assert labels[15, 0] == nyud["wall"] and depth[15, 0] == pytest.approx(20 * 2.0 / 20)  # side wall
    floor_column = depth[labels[:, 20] == nyud["floor"], 20]
    assert (np.diff(floor_column) < 0).all()  # the floor gets nearer toward the bottom of the image


def test_nyud_depth_is_the_visible_surface_and_consistent_with_occlusion():
    seg, depth = dt.nyud("val", 12, seed=2)
    assert seg.images is depth.images  # the same images
    assert seg.classes == NYUD_CLASSES and depth.task == "depth" and depth.targets.dtype == np.float32
    assert set(np.unique(seg.targets)) <= set(range(40)) | {255}
    structure = [dt.NYUD[c] for c in dt.NYUD_STRUCTURE]
    objects_seen = 0
    for i, room in enumerate(dt.nyud_rooms("val", 12, seed=2)):
        assert np.array_equal(seg.targets[i], room.labels)
        on_object = ~np.isin(room.labels, structure) & (room.labels != 255)
        objects_seen += on_object.sum()
        assert (room.surface[on_object] < room.room[on_object]).all()  # nearer than the room behind
        on_room = np.isin(room.labels, structure)
        assert np.array_equal(room.surface[on_room], room.room[on_room])
        assert (room.surface > 0).all()
        assert np.array_equal(depth.targets[i] == 0, room.holes)  # zero only where a hole was made
        assert room.holes.mean() < 0.03
        rows, cols = np.nonzero(room.holes)  # Kinect shadows: just left of a nearer surface
        assert (room.surface[rows, cols] - room.surface[rows, cols + 1] > dt.HOLE_JUMP).all()
    assert objects_seen > 0
    assert (depth.targets == 0).any()


# ----------------------------------------------------------------------------- detection

def test_detection_boxes_enclose_exactly_the_visible_pixels():
    det = dt.voc_detection("train", 15, seed=1)
    assert det.task == "detection" and det.classes == VOC_CLASSES
    kept = 0
    for boxes, layers in zip(det.targets, dt.voc_layers("detection", "train", 15, seed=1)):
        assert isinstance(boxes, Boxes) and boxes.boxes.dtype == np.float32 and boxes.labels.dtype == np.int64
        visible = [k for k in range(1, len(layers.classes) + 1) if (layers.instances == k).any()]
        assert np.array_equal(boxes.labels, layers.classes[np.array(visible, int) - 1])
        for box, k in zip(boxes.boxes, visible):
            x0, y0, x1, y1 = box.astype(int)
            inside = np.zeros_like(layers.instances, bool)
            inside[y0:y1, x0:x1] = True
            pixels = layers.instances == k
            assert not (pixels & ~inside).any()  # encloses every visible pixel
            # tight: a visible pixel on each of the box's four edges
            assert pixels[y0].any() and pixels[y1 - 1].any() and pixels[:, x0].any() and pixels[:, x1 - 1].any()
            kept += 1
    assert kept >= 15


def layers_of(*objects, size=50):
    """Hand-built Layers: ``objects`` are (full mask, visible mask) pairs, later ones on top."""
    instances = np.zeros((size, size), np.int32)
    for k, (_, visible) in enumerate(objects, start=1):
        instances[visible] = k
    return dt.Layers(np.zeros((size, size, 3), np.uint8), instances, np.arange(len(objects), dtype=np.int64),
                     np.stack([full for full, _ in objects]))


def test_difficult_flags_occluded_and_tiny_objects():
    big = np.zeros((50, 50), bool)
    big[10:30, 10:30] = True  # 400 px
    cover = np.zeros((50, 50), bool)
    cover[10:30, 14:34] = True  # a nearer object hiding 80% of it
    tiny = np.zeros((50, 50), bool)
    tiny[40:43, 40:43] = True  # 3 px < 8% of 50
    boxes = dt.voc_boxes(layers_of((big, big & ~cover), (cover, cover), (tiny, tiny)))
    assert boxes.difficult.tolist() == [True, False, True]
    assert boxes.boxes.tolist() == [[10, 10, 14, 30], [14, 10, 34, 30], [40, 40, 43, 43]]
    hidden = dt.voc_boxes(layers_of((big, np.zeros_like(big)), (tiny, tiny)))
    assert hidden.labels.tolist() == [1]  # an object with no visible pixel has no box


# ----------------------------------------------------------------------------- videos

def still(cls, color, y, x, depths, radius=10.0):
    """A MovingObject that stays at (y, x) while its depth follows ``depths``."""
    t = len(depths)
    return dt.MovingObject(cls, np.array(color, float), 6.0, 0, np.tile([y, x], (t, 1)).astype(float),
                           np.full(t, radius), np.zeros(t), np.array(depths, float))


def test_render_frame_masks_are_the_pixels_of_the_nearest_object():
    square = UNIVERSE.index("square-solid")
    objects = [still(square, (1, 0, 0), 20, 20, [0.2, 0.8]), still(square, (0, 1, 0), 26, 28, [0.5, 0.5])]
    black = np.zeros((48, 48, 3))
    for t, front in ((0, 1), (1, 2)):  # object 1 in front, then behind: the depth order swaps
        canvas, instances, full = dt.render_frame(black, objects, t)
        for k in (1, 2):
            shows_k = canvas[..., k - 1] > 0
            assert np.array_equal(instances == k, shows_k)  # the mask is where its colour is
        overlap = full[0] & full[1]
        assert overlap.any() and (instances[overlap] == front).all()


def test_davis_videos_objects_move_stay_visible_and_occlude():
    videos = dt.davis_videos(6, 8, seed=0)
    assert len(videos) == 6 and all(isinstance(v, Video) for v in videos)
    layers = dt.davis_layers(6, 8, seed=0)
    occlusions = 0
    for video, frames in zip(videos, layers):
        k = len(frames[0].classes)
        assert video.frames.shape == (8, 64, 64, 3) and video.frames.dtype == np.uint8 and 2 <= k <= 3
        assert video.masks.shape == (8, 64, 64) and video.mask(0).dtype == np.int64
        assert video.objects() == list(range(1, k + 1))  # every object visible in frame 0
        for j in range(k):
            visible = (video.masks[0] == j + 1).sum()
            assert visible >= dt.VISIBLE_FIRST * frames[0].full[j].sum()
            first, last = (np.argwhere(f.full[j]).mean(0) for f in (frames[0], frames[-1]))
            assert np.hypot(*(first - last)) > 1  # it moved
        for t, f in enumerate(frames):
            assert np.array_equal(video.masks[t], f.instances)
            for j in range(k):
                assert not ((f.instances == j + 1) & ~f.full[j]).any()
                occlusions += ((f.instances != j + 1) & f.full[j]).any()  # part of it hidden by another
    assert occlusions > 0


# ----------------------------------------------------------------------------- cache

def test_cache_round_trip_returns_equal_objects(tmp_path):
    calls = []

    def voc_detection(split, n, seed=0):
        calls.append(split)
        return dt.voc_detection(split, n, seed=seed)

    made = dt.cached_dense(voc_detection, "train", 5, seed=2, cache_dir=tmp_path)
    loaded = dt.cached_dense(voc_detection, "train", 5, seed=2, cache_dir=tmp_path)
    assert calls == ["train"]  # the second call read the file
    assert loaded.name == made.name and loaded.classes == made.classes and same(arrays(loaded), arrays(made))
    assert [p.suffix for p in tmp_path.iterdir()] == [".npz"]  # no temporary file left behind

    seg, depth = dt.cached_dense(dt.nyud, "val", 3, cache_dir=tmp_path)
    seg2, depth2 = dt.cached_dense(dt.nyud, "val", 3, cache_dir=tmp_path)
    assert isinstance(seg2, DenseSet) and seg2.classes == NYUD_CLASSES and depth2.classes == []
    assert same(arrays(seg), arrays(seg2)) and same(arrays(depth), arrays(depth2))
    assert seg2.target(0).dtype == torch.int64 and depth2.target(0).dtype == torch.float32

    videos = dt.cached_dense(dt.davis_videos, 2, 4, cache_dir=tmp_path)
    again = dt.cached_dense(dt.davis_videos, 2, 4, cache_dir=tmp_path)
    assert [v.name for v in again] == [v.name for v in videos] and same(arrays(again), arrays(videos))
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_cache_default_folder_is_revisit_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REVISIT_CACHE", str(tmp_path / "c"))
    dt.cached_dense(dt.voc_segmentation, "test", 2)
    assert len(list((tmp_path / "c").glob("dense-voc_segmentation-*.npz"))) == 1


def test_both_twin_families_share_one_cache_under_the_names_already_on_disk(tmp_path, monkeypatch):
    """``data.cache`` keeps the file names the twins had before it (the first 16 hex digits of the sha256 of the call),
    so caches written then are read, not drawn again."""
    import hashlib

    from revisit.config import DENSE_RECIPE_VERSION, RECIPE_VERSION
    from revisit.data import twins

    def key(*call):
        return hashlib.sha256(repr(call).encode()).hexdigest()[:16]

    monkeypatch.setenv("REVISIT_CACHE", str(tmp_path))
    twins.cached(twins.generate_target, "pets", "test", 4, seed=1)
    dt.cached_dense(dt.voc_segmentation, "test", 2, seed=1)
    images = key("generate_target", ("pets", "test", 4), [("seed", 1)], RECIPE_VERSION)
    dense = key("voc_segmentation", ("test", 2), [("seed", 1)], DENSE_RECIPE_VERSION, RECIPE_VERSION)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"dense-voc_segmentation-{dense}.npz",
                                                         f"generate_target-pets-{images}.npz"]
