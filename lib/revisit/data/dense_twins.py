"""Synthetic twins of the dense-transfer targets (App. A.3-A.7), with dense ground truth.

They draw with the object universe and helpers of ``twins`` (shape x texture classes, scene
backgrounds, the street look), so the dense tasks ask about what pretraining saw. Each twin keeps
what its benchmark tests:

* VOC segmentation / detection: 1-2 large objects of the 20 VOC classes (one universe class each) on
  a scene; per-pixel class of the visible object with a 1-pixel void band around objects (VOC's
  255 border); boxes of the visible pixels with "difficult" flags;
* Cityscapes: street scenes labelled with the 19 train ids, stuff classes and small things;
* NYUD-v2: a box room seen in perspective (wall, floor, ceiling) with 37 kinds of objects on the
  floor or on the back wall; depth in metres of the visible surface, a few Kinect-like holes;
* DAVIS-2017: short videos of 2-3 objects of one colour moving over a panning scene, occluding each
  other: only their shape and texture tell them apart.

Each image is first drawn as ``Layers`` (which object is visible where, and where each would be
seen alone); targets are read from them. Images are ``uint8`` ``(N, S, S, 3)``; segmentation
targets and video masks are stored as ``uint8`` arrays (``DenseSet`` / ``Video`` hand them out as
``int64``). Everything is deterministic from ``seed``; ``cached_dense`` stores results as ``.npz`` (``data.cache``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import DENSE_RECIPE_VERSION
from . import cache
from .dense import Boxes, DenseSet, Video
from .dense_loaders import CITYSCAPES_CLASSES, NYUD_CLASSES, VOC_SEG_CLASSES
from .loaders import VOC_CLASSES, _check_split
from .twins import (RECIPE_VERSION, SCENE_PALETTES, SIZE, UNIVERSE, _finish, _rgb, draw_object, scene_background,
                    smooth_noise)

IGNORE = 255
TWIN_SPLITS = ("train", "val", "test")
_STREAMS = ("voc_segmentation", "voc_detection", "cityscapes", "nyud", "davis")  # one random stream each
KEEPS = {  # dense task -> what its twin keeps of the benchmark (the book's twins page lists them)
    "voc_seg": "1-2 large objects of the 20 VOC classes on a scene; VOC's void band around objects",
    "cityscapes_seg": "street scenes labelled with the 19 train ids: large stuff classes and small things",
    "nyud_seg": "a box room in perspective with 37 kinds of objects on the floor and the back wall",
    "nyud_depth": "the same rooms' metric depth of the visible surface, with Kinect-like holes",
    "voc_det": "the VOC scenes' objects as boxes with difficult flags",
    "davis": "short videos of 2-3 objects of one colour (told apart by shape and texture) moving over a panning "
             "scene, occluding each other",
}



def _rng(stream: str, split: str, seed: int) -> np.random.Generator:
    _check_split(f"{stream} twin", split, TWIN_SPLITS)
    return np.random.default_rng([seed, _STREAMS.index(stream), TWIN_SPLITS.index(split), 31])


def _check_count(name: str, n: int, least: int = 0) -> None:
    if int(n) != n or n < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {n!r}")


# ----------------------------------------------------------------------------- drawing helpers

def paint(canvas, rng, cls, cy, cx, radius, where=None, **style) -> np.ndarray:
    """``twins.draw_object`` that returns the pixels it painted; with ``where``, only those may change (a z-test)."""
    layer = canvas if where is None else canvas.copy()
    drawn = np.zeros(canvas.shape[:2], np.int32)
    draw_object(layer, drawn, 1, rng, cls, cy, cx, radius, **style)
    mask = drawn == 1
    if where is not None:
        mask &= where
        canvas[mask] = layer[mask]
    return mask


def boundary_band(segments: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of a higher segment id (painted later, nearer): a 1-pixel band just
    outside each object's visible outline, where VOC's annotations have their void border."""
    band = np.zeros(segments.shape, bool)
    band[:-1] |= segments[1:] > segments[:-1]
    band[1:] |= segments[:-1] > segments[1:]
    band[:, :-1] |= segments[:, 1:] > segments[:, :-1]
    band[:, 1:] |= segments[:, :-1] > segments[:, 1:]
    return band


@dataclass
class Layers:
    """One drawn image and its objects, the source of every target (masks, boxes, difficult flags)."""

    image: np.ndarray  # (S, S, 3) uint8
    instances: np.ndarray  # (S, S) int32: 0 = background, k = object k where it is visible (topmost)
    classes: np.ndarray  # (K,) int64: the class of object k at index k - 1
    full: np.ndarray  # (K, S, S) bool: object k's pixels had nothing covered it (inside the image)


# ----------------------------------------------------------------------------- VOC (App. A.3, A.6)

VOC_UNIVERSE = {  # VOC class -> universe class (shape-texture): 20 distinct, every shape and texture used
    "aeroplane": "cross-solid", "bicycle": "ring-stripes", "bird": "star-dots", "boat": "triangle-stripes",
    "bottle": "ellipse-solid", "bus": "square-stripes", "car": "square-solid", "cat": "diamond-dots",
    "chair": "triangle-checker", "cow": "disk-checker", "diningtable": "square-checker", "dog": "diamond-solid",
    "horse": "ellipse-checker", "motorbike": "ring-dots", "person": "disk-solid", "pottedplant": "star-solid",
    "sheep": "disk-dots", "sofa": "ellipse-stripes", "train": "cross-stripes", "tvmonitor": "diamond-checker",
}
_VOC_IDS = [UNIVERSE.index(VOC_UNIVERSE[name]) for name in VOC_CLASSES]
VOC_OBJECTS = (1, 2)  # objects per image, fewest and most
VOC_RADIUS = (0.25, 0.45)  # object radius, fraction of the image side (recipe 1: 1-4 objects of 0.1-0.3; twins page)
DIFFICULT_VISIBLE = 0.3  # "difficult": less than this fraction of the object is visible (occluded) ...
DIFFICULT_SIDE = 0.08  # ... or its visible box's shorter side is under this fraction of the image side


def voc_scene(rng, size=SIZE) -> Layers:
    """``VOC_OBJECTS`` objects of the 20 classes, radius ``VOC_RADIUS`` of the image, at random places on a scene."""
    canvas = scene_background(rng, size, int(rng.integers(len(SCENE_PALETTES))))
    classes = rng.integers(len(VOC_CLASSES), size=int(rng.integers(VOC_OBJECTS[0], VOC_OBJECTS[1] + 1)))
    instances = np.zeros((size, size), np.int32)
    full = np.zeros((len(classes), size, size), bool)
    for k, c in enumerate(classes):
        cy, cx = rng.uniform(0.15, 0.85, 2) * size
        full[k] = paint(canvas, rng, _VOC_IDS[c], cy, cx, size * rng.uniform(*VOC_RADIUS))
        instances[full[k]] = k + 1
    return Layers(_finish(canvas, rng), instances, classes.astype(np.int64), full)


def voc_layers(task: str, split: str, n: int, seed: int = 0, size: int = SIZE) -> list[Layers]:
    """The scenes behind ``voc_segmentation`` (``task="segmentation"``) or ``voc_detection`` (``"detection"``)."""
    _check_count("n", n)
    rng = _rng(f"voc_{task}", split, seed)
    return [voc_scene(rng, size) for _ in range(n)]


def voc_mask(layers: Layers) -> np.ndarray:
    """Class ids (0 = background, VOC class + 1) of the visible object per pixel, 255 on the boundary band."""
    mask = np.concatenate([[0], layers.classes + 1]).astype(np.uint8)[layers.instances]
    mask[boundary_band(layers.instances)] = IGNORE
    return mask


def voc_boxes(layers: Layers) -> Boxes:
    """Tight boxes ``(x0, y0, x1 + 1, y1 + 1)`` of each object's visible pixels (hidden objects dropped).

    Difficult: under ``DIFFICULT_VISIBLE`` of the object visible, or a box side under ``DIFFICULT_SIDE``
    of the image (VOC's annotators flag objects hard to recognise without context).
    """
    size = layers.instances.shape[0]
    boxes, labels, difficult = [], [], []
    for k, cls in enumerate(layers.classes, start=1):
        ys, xs = np.nonzero(layers.instances == k)
        if ys.size == 0:
            continue
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        boxes.append((x0, y0, x1, y1))
        labels.append(cls)
        difficult.append(ys.size < DIFFICULT_VISIBLE * layers.full[k - 1].sum()
                         or min(x1 - x0, y1 - y0) < DIFFICULT_SIDE * size)
    return Boxes(np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64), np.array(difficult, bool))


def voc_segmentation(split: str, n: int, seed: int = 0, size: int = SIZE) -> DenseSet:
    """VOC 2012 segmentation twin: 21 classes (background + 20), 255 on a 1-pixel band around objects."""
    scenes = voc_layers("segmentation", split, n, seed, size)
    images = np.zeros((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for i, layers in enumerate(scenes):
        images[i], masks[i] = layers.image, voc_mask(layers)
    return DenseSet(f"voc2012 {split} (twin)", "segmentation", list(VOC_SEG_CLASSES), images, masks)


def voc_detection(split: str, n: int, seed: int = 0, size: int = SIZE) -> DenseSet:
    """VOC detection twin: boxes of the 20 classes (0-based labels), difficult flags as ``voc_boxes``."""
    scenes = voc_layers("detection", split, n, seed, size)
    images = np.zeros((n, size, size, 3), np.uint8)
    for i, layers in enumerate(scenes):
        images[i] = layers.image
    return DenseSet(f"voc detection {split} (twin)", "detection", list(VOC_CLASSES), images,
                    [voc_boxes(layers) for layers in scenes])


# ----------------------------------------------------------------------------- Cityscapes (App. A.4)

CS = {name: i for i, name in enumerate(CITYSCAPES_CLASSES)}  # train id of each of the 19 classes
CITYSCAPES_RARE = ("train",)  # drawn in about 5% of the images; every other class appears regularly


@dataclass
class _Street:
    """The canvas of a street scene with its labels and a segment id per painted thing (for the band)."""

    rgb: np.ndarray
    labels: np.ndarray
    segments: np.ndarray

    def put(self, mask, name, color=None, thing=False):
        if color is not None:
            self.rgb[mask] = color
        self.labels[mask] = CS[name]
        if thing:
            self.segments[mask] = self.segments.max() + 1


def _box(xx, yy, cx, cy, half_w, half_h):
    """Pixels of the axis-aligned box centred at ``(cx, cy)``, at least one pixel across."""
    return (abs(xx - cx) < max(half_w, 0.5)) & (abs(yy - cy) < max(half_h, 0.5))


def _grey(v):
    return _rgb(0, 0, v)


def _roadside(xx, yy, vx, horizon, k_edge, offset, side, ratio):
    """A vertical surface along the street's outer edge (wall, fence, hedge), in perspective.

    Its foot follows the line ``|x - vx| = k_edge * (y - horizon) + offset`` on ``side``; it rises to
    ``ratio`` of the camera height, so its top converges to the vanishing point too.
    """
    lateral = side * (xx - vx)
    foot = horizon + (lateral - offset) / k_edge
    return (lateral > offset) & (yy <= foot) & (yy >= foot - (foot - horizon) * ratio)


def _street_things(st: _Street, rng, xx, yy, horizon, vx, k_road, k_side, u):
    """Cars, trucks, buses, trams, people, riders on bikes and poles with signs or lights, far to near."""
    size = st.rgb.shape[0]

    def place(where):
        y = rng.uniform(horizon + 2 * u, size + 2 * u)
        dy, side = y - horizon, rng.choice((-1, 1))
        if where == "road":
            return y, vx + rng.uniform(-0.8, 0.8) * k_road * dy
        if where == "roadside":
            return y, vx + side * rng.uniform(0.5, 0.95) * (k_road * dy + 1.5 * u)
        if where == "centre":
            return y, vx + rng.uniform(-0.2, 0.2) * k_road * dy
        return y, vx + side * (k_road * dy + 1.5 * u + rng.uniform(0.2, 0.9) * ((k_side - k_road) * dy + u))

    things = [("vehicle", *place("road")) for _ in range(rng.poisson(2.5) + 1)]
    things += [("person", *place("sidewalk" if rng.random() < 0.8 else "road")) for _ in range(rng.poisson(1.5))]
    things += [("rider", *place("roadside")) for _ in range(rng.binomial(2, 0.3))]
    things += [("bicycle", *place("sidewalk")) for _ in range(rng.binomial(1, 0.2))]
    things += [("pole", *place("sidewalk")) for _ in range(rng.integers(1, 4))]
    if rng.random() < 0.05:
        things.append(("train", *place("centre")))
    for kind, y, x in sorted(things, key=lambda t: t[1]):  # far (near the horizon) to near
        s = (2 + 10 * (y - horizon) / (size - horizon)) * u  # street_image's scale
        if kind == "vehicle":
            kind = str(rng.choice(("car", "truck", "bus"), p=(0.72, 0.15, 0.13)))
        color = _rgb(rng.random(), rng.uniform(0, 0.7), rng.uniform(0.2, 0.9))
        if kind == "car":
            st.put(_box(xx, yy, x, y - 0.35 * s, 0.9 * s, 0.35 * s) | _box(xx, yy, x, y - 0.85 * s, 0.55 * s, 0.2 * s),
                   "car", color, thing=True)
            st.rgb[_box(xx, yy, x, y - 0.85 * s, 0.45 * s, 0.12 * s)] = _grey(0.15)  # windows
        elif kind == "truck":
            st.put(_box(xx, yy, x, y - 0.65 * s, 1.1 * s, 0.65 * s), "truck", color, thing=True)
            st.rgb[_box(xx, yy, x, y - 0.2 * s, 1.1 * s, 0.2 * s)] = _grey(0.2)  # chassis
        elif kind == "bus":
            st.put(_box(xx, yy, x, y - 0.75 * s, 1.4 * s, 0.75 * s), "bus", color, thing=True)
            st.rgb[_box(xx, yy, x, y - 1.0 * s, 1.3 * s, 0.18 * s)] = _grey(0.12)  # window band
        elif kind == "train":
            st.put(_box(xx, yy, x, y - 0.8 * s, 2.0 * s, 0.8 * s), "train", _rgb(0.13, 0.8, 0.9), thing=True)
            st.rgb[_box(xx, yy, x, y - 1.0 * s, 1.9 * s, 0.2 * s) & (np.sin(xx * 1.5) > -0.3)] = _grey(0.15)
        elif kind == "person":
            st.put(_box(xx, yy, x, y - 0.7 * s, 0.18 * s, 0.7 * s) | (np.hypot(xx - x, yy - y + 1.55 * s) < 0.22 * s),
                   "person", _rgb(rng.random(), 0.5, rng.uniform(0.3, 0.7)), thing=True)
        elif kind in ("rider", "bicycle"):
            bike = "motorcycle" if kind == "rider" and rng.random() < 0.5 else "bicycle"
            wheels = (abs(np.hypot(xx - x + 0.35 * s, yy - y + 0.2 * s) - 0.2 * s) < max(0.1 * s, 0.5)) | \
                     (abs(np.hypot(xx - x - 0.35 * s, yy - y + 0.2 * s) - 0.2 * s) < max(0.1 * s, 0.5))
            frame = _box(xx, yy, x, y - 0.35 * s, 0.35 * s, 0.08 * s if bike == "bicycle" else 0.2 * s)
            st.put(wheels | frame, bike, _grey(0.1) if bike == "bicycle" else color, thing=True)
            if kind == "rider":
                body = _box(xx, yy, x, y - 0.85 * s, 0.15 * s, 0.4 * s) | (np.hypot(xx - x, yy - y + 1.4 * s) < 0.2 * s)
                st.put(body, "rider", _rgb(rng.random(), 0.6, rng.uniform(0.3, 0.7)), thing=True)
        else:  # a pole, with a sign (50%) or a traffic light (30%) on top
            height = 3.2 * s
            st.put(_box(xx, yy, x, y - height / 2, 0.06 * s, height / 2), "pole", _grey(0.45), thing=True)
            top, pick = y - height, rng.random()
            if pick < 0.5:
                cls = UNIVERSE.index(str(rng.choice(("disk-solid", "triangle-solid", "diamond-solid", "square-solid"))))
                mask = paint(st.rgb, rng, cls, top, x, max(0.3 * s, 1.2 * u), angle=0.0,
                             color=_rgb(rng.choice((0.0, 0.62, 0.14)), 0.85, 0.85))
                st.put(mask, "traffic sign", thing=True)
            elif pick < 0.8:
                st.put(_box(xx, yy, x, top, 0.15 * s, 0.35 * s), "traffic light", _grey(0.08), thing=True)
                lamp = _box(xx, yy, x, top + 0.2 * s * rng.integers(-1, 2), 0.08 * s, 0.08 * s)
                st.rgb[lamp] = _rgb(rng.choice((0.0, 0.15, 0.35)), 0.9, 1.0)


def street_scene(rng, size=SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A Cityscapes-like frame and its train-id labels (255 = ignore).

    The look of ``twins.street_image`` (grey sky, buildings on both sides, a road to the horizon with
    dashed lanes, cars and people), extended with sidewalks, terrain, trees, walls, fences, poles with
    signs and lights, riders on bikes, trucks, buses and, rarely, a tram. Ignored as gtFine's void ids:
    a 1-pixel band around things and, in 40% of the frames, the ego vehicle's bonnet.
    """
    u = size / 64  # the street look is drawn in units of a 64-px image
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    horizon = size * rng.uniform(0.38, 0.48)
    vx = size / 2 + rng.normal(0, 2 * u)
    canvas = scene_background(rng, size, 2, horizon=horizon)
    st = _Street(canvas, np.where(yy < horizon, CS["sky"], CS["terrain"]).astype(np.uint8),
                 np.zeros((size, size), np.int32))
    for side in (0, 1):  # buildings, as street_image, with a grid of windows
        for _ in range(rng.integers(2, 4)):
            w, h = rng.uniform(6, 16) * u, rng.uniform(8, 25) * u
            x = rng.uniform(0, size * 0.3) if side == 0 else rng.uniform(size * 0.7, size)
            box = (abs(xx - x) < w / 2) & (yy < horizon + u) & (yy > horizon - h)
            st.put(box, "building", _rgb(0.08, 0.15, rng.uniform(0.3, 0.6)))
            st.rgb[box & (np.sin(xx * 1.6 / u) > 0.2) & (np.sin(yy * 1.6 / u) > 0.2)] *= 0.6
    for _ in range(rng.integers(0, 4)):  # trees: a dotted or star-shaped crown on a trunk
        x = rng.uniform(0, 0.35) * size if rng.random() < 0.5 else rng.uniform(0.65, 1) * size
        y, r = horizon - rng.uniform(4, 14) * u, rng.uniform(4, 9) * u
        trunk = _box(xx, yy, x, (y + horizon) / 2 + u, 0.5 * u, (horizon - y) / 2 + u)
        st.put(trunk, "vegetation", _rgb(0.08, 0.5, 0.3))
        crown = paint(st.rgb, rng, UNIVERSE.index(str(rng.choice(("disk-dots", "star-dots", "disk-solid")))), y, x, r,
                      color=_rgb(rng.uniform(0.22, 0.38), rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.6)))
        st.put(crown, "vegetation")
    below, dy = yy >= horizon, yy - horizon
    k_road = rng.uniform(0.8, 1.3)
    k_side = k_road + rng.uniform(0.3, 0.7)
    road = below & (abs(xx - vx) < dy * k_road + 1.5 * u)
    sidewalk = below & ~road & (abs(xx - vx) < dy * k_side + 2.5 * u)
    grass = _rgb(rng.uniform(0.12, 0.3), rng.uniform(0.35, 0.6), rng.uniform(0.3, 0.5))
    st.put(below & ~road & ~sidewalk, "terrain", grass)
    st.put(sidewalk, "sidewalk", _rgb(0.07, 0.1, rng.uniform(0.5, 0.65)))
    st.put(road, "road", _grey(rng.uniform(0.25, 0.35)))
    for lane in (-0.5, 0.5):  # dashed lane markings, as street_image
        mark = road & (abs(xx - vx - lane * dy * k_road * 0.85) < 0.8 * u) & (np.sin(yy * 0.8 / u) > 0)
        st.rgb[mark] = (0.9, 0.9, 0.85)
    for name, p in (("wall", 0.45), ("fence", 0.45), ("vegetation", 0.3)):  # along the sidewalk's outer edge
        if rng.random() < p:
            side, ratio = rng.choice((-1, 1)), rng.uniform(0.5, 0.9)
            surface = _roadside(xx, yy, vx, horizon, k_side, 2.5 * u, side, ratio)
            surface &= side * (xx - vx) < rng.uniform(0.2, 0.55) * size
            if name == "wall":
                st.put(surface, "wall", _rgb(0.1, 0.15, rng.uniform(0.55, 0.75)))
            elif name == "fence":
                st.put(surface, "fence", _rgb(0.08, 0.3, 0.45))
                st.rgb[surface & (np.sin(xx * 2.2 / u) > 0.3)] *= 0.5  # bars
            else:
                st.put(surface, "vegetation", _rgb(0.3, 0.6, 0.35))
                st.rgb[surface & (rng.random((size, size)) < 0.3)] *= 0.7
    _street_things(st, rng, xx, yy, horizon, vx, k_road, k_side, u)
    st.rgb += smooth_noise(rng, size, cells=4, amplitude=0.04)
    labels = st.labels
    labels[boundary_band(st.segments)] = IGNORE
    if rng.random() < 0.4:  # the ego vehicle's bonnet, gtFine's "ego vehicle" (ignored)
        bonnet = yy > size * (1 - rng.uniform(0.06, 0.12)) + ((xx - size / 2) / size) ** 2 * size * 0.3
        st.rgb[bonnet] = _grey(0.08)
        labels[bonnet] = IGNORE
    return _finish(st.rgb, rng), labels


def cityscapes_segmentation(split: str, n: int, seed: int = 0, size: int = SIZE) -> DenseSet:
    """Cityscapes twin: street scenes labelled with the 19 train ids (255 = ignore); "train" is rare."""
    _check_count("n", n)
    rng = _rng("cityscapes", split, seed)
    images = np.zeros((n, size, size, 3), np.uint8)
    labels = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        images[i], labels[i] = street_scene(rng, size)
    return DenseSet(f"cityscapes {split} (twin)", "segmentation", list(CITYSCAPES_CLASSES), images, labels)


# ----------------------------------------------------------------------------- NYUD-v2 (App. A.5)

NYUD = {name: i for i, name in enumerate(NYUD_CLASSES)}
NYUD_ON_WALL = {  # hung on the back wall: class -> universe class (distinct among wall objects)
    "door": "square-solid", "window": "square-checker", "picture": "square-stripes", "blinds": "ellipse-stripes",
    "curtain": "triangle-stripes", "mirror": "disk-solid", "whiteboard": "ellipse-solid",
    "television": "diamond-solid", "shower curtain": "cross-stripes", "towel": "star-stripes", "shelves": "square-dots",
    "otherstructure": "ring-solid",
}
NYUD_ON_FLOOR = {  # standing on the floor: class -> universe class (distinct among floor objects); five universe
    # classes also hang on the wall (cabinet/door, bed/whiteboard, bookshelf/picture, refridgerator/mirror,
    # otherfurniture/otherstructure): 37 classes for 32 universe classes, told apart by where they are
    "cabinet": "square-solid", "bed": "ellipse-solid", "chair": "triangle-solid", "sofa": "ellipse-checker",
    "table": "cross-solid", "bookshelf": "square-stripes", "counter": "diamond-stripes", "desk": "triangle-checker",
    "dresser": "diamond-checker", "pillow": "disk-dots", "floor mat": "ellipse-dots", "clothes": "star-checker",
    "books": "cross-checker", "refridgerator": "disk-solid", "paper": "diamond-dots", "box": "triangle-dots",
    "person": "star-solid", "night stand": "disk-stripes", "toilet": "disk-checker", "sink": "ring-stripes",
    "lamp": "star-dots", "bathtub": "ring-checker", "bag": "ring-dots", "otherfurniture": "ring-solid",
    "otherprop": "cross-dots",
}
NYUD_STRUCTURE = ("wall", "floor", "ceiling")  # the room box
HOLE_JUMP = 0.4  # metres: Kinect shadow holes sit just left of a depth edge at least this deep ...
HOLE_RATE = 0.6  # ... on this fraction of such pixels


@dataclass
class Room:
    """One NYUD-like image with its labels, the depth of the visible surface, of the bare room, and the holes."""

    image: np.ndarray  # (S, S, 3) uint8
    labels: np.ndarray  # (S, S) uint8 class ids, 255 = void
    surface: np.ndarray  # (S, S) float32 metres: depth of what is seen (no holes)
    room: np.ndarray  # (S, S) float32 metres: depth of the wall, floor or ceiling behind it
    holes: np.ndarray  # (S, S) bool: missing measurements (depth 0 in the depth target)


def room_box(size, f, cx, cy, cam_height, height, left, right, back):
    """Depth and structure label of each pixel of a box room seen from inside, facing the back wall.

    A pinhole camera (focal ``f`` px, principal point ``(cx, cy)``) at ``cam_height`` m above the floor,
    optical axis level: the ray through pixel ``(x, y)`` meets the floor at depth ``f h / (y - cy)``,
    the ceiling at ``f (H - h) / (cy - y)``, the side walls at ``f w / |x - cx|``, the back wall at ``back``.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    dx, dy = (xx - cx) / f, (yy - cy) / f
    with np.errstate(divide="ignore", invalid="ignore"):
        planes = np.stack([np.where(dx < 0, left / -dx, np.where(dx > 0, right / dx, np.inf)),
                           np.where(dy > 0, cam_height / dy, np.inf),
                           np.where(dy < 0, (height - cam_height) / -dy, np.inf),
                           np.full((size, size), back)])
    which = planes.argmin(0)
    labels = np.array([NYUD["wall"], NYUD["floor"], NYUD["ceiling"], NYUD["wall"]], np.uint8)[which]
    return np.take_along_axis(planes, which[None], 0)[0], labels, which


def nyud_room(rng, size=SIZE) -> Room:
    """A box room (wall, floor, ceiling) with 1-3 objects on the back wall and up to 7 on the floor.

    Objects are flat cut-outs at one depth each, painted far to near with a z-test, so the depth map
    is the depth of the visible surface and every object is nearer than the room behind it.
    """
    f, cy = size * rng.uniform(0.85, 1.0), size * rng.uniform(0.4, 0.55)
    cx = size / 2 + rng.normal(0, size * 0.03)
    cam_height, height = rng.uniform(1.0, 1.5), rng.uniform(2.4, 3.0)
    left, right, back = rng.uniform(1.2, 3.0), rng.uniform(1.2, 3.0), rng.uniform(2.5, 5.5)
    room, labels, which = room_box(size, f, cx, cy, cam_height, height, left, right, back)
    wall_color = _rgb(rng.random(), rng.uniform(0.05, 0.3), rng.uniform(0.6, 0.9))
    palette = np.stack([wall_color * 0.85, _rgb(rng.uniform(0.05, 0.12), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.6)),
                        _rgb(0, 0, rng.uniform(0.8, 0.95)), wall_color])
    canvas = palette[which] + smooth_noise(rng, size, cells=4, amplitude=0.05)
    surface, segments = room.copy(), np.zeros((size, size), np.int32)
    objects = []  # (depth, class name, universe class, centre y, centre x, radius px)
    for _ in range(rng.integers(1, 4)):  # radius < 0.9 m: always fits on the back wall (>= 2.4 m each way)
        name = str(rng.choice(list(NYUD_ON_WALL)))
        r = f * rng.uniform(0.4, 0.9) / back
        x = rng.uniform(cx - f * left / back + r, cx + f * right / back - r)
        y = rng.uniform(cy - f * (height - cam_height) / back + r, cy + f * cam_height / back - r)
        objects.append((back - 0.02, name, NYUD_ON_WALL[name], y, x, r))
    z_near = max(1.0, f * cam_height / (size - cy))  # nearest depth whose floor point is in view
    for _ in range(rng.integers(3, 8)):
        name, radius = str(rng.choice(list(NYUD_ON_FLOOR))), rng.uniform(0.3, 0.8)
        if back - radius - 0.1 <= 0.8 * z_near:  # too big for this room
            continue
        z = rng.uniform(0.8 * z_near, back - radius - 0.1)
        lo, hi = max(-left + radius, -cx * z / f), min(right - radius, (size - cx) * z / f)
        if lo >= hi:
            continue
        r = f * radius / z
        objects.append((z, name, NYUD_ON_FLOOR[name], cy + f * cam_height / z - r, cx + f * rng.uniform(lo, hi) / z, r))
    for k, (z, name, cls, y, x, r) in enumerate(sorted(objects, key=lambda o: -o[0]), start=1):
        mask = paint(canvas, rng, UNIVERSE.index(cls), y, x, r, where=z < surface)
        surface[mask], labels[mask], segments[mask] = z, NYUD[name], k
    labels[boundary_band(segments)] = IGNORE  # NYUD's void between annotated regions
    holes = np.zeros((size, size), bool)
    holes[:, :-1] = (surface[:, :-1] - surface[:, 1:] > HOLE_JUMP) & (rng.random((size, size - 1)) < HOLE_RATE)
    return Room(_finish(canvas, rng), labels, surface.astype(np.float32), room.astype(np.float32), holes)


def nyud_rooms(split: str, n: int, seed: int = 0, size: int = SIZE) -> list[Room]:
    """The rooms behind ``nyud``."""
    _check_count("n", n)
    rng = _rng("nyud", split, seed)
    return [nyud_room(rng, size) for _ in range(n)]


def nyud(split: str, n: int, seed: int = 0, size: int = SIZE) -> tuple[DenseSet, DenseSet]:
    """NYUD-v2 twin: ``(segmentation, depth)`` of the same images; 40 classes, 255 = void; metres, 0 = hole."""
    rooms = nyud_rooms(split, n, seed, size)
    images = np.zeros((n, size, size, 3), np.uint8)
    labels = np.zeros((n, size, size), np.uint8)
    depth = np.zeros((n, size, size), np.float32)
    for i, room in enumerate(rooms):
        images[i], labels[i], depth[i] = room.image, room.labels, np.where(room.holes, 0, room.surface)
    return (DenseSet(f"nyud segmentation {split} (twin)", "segmentation", list(NYUD_CLASSES), images, labels),
            DenseSet(f"nyud depth {split} (twin)", "depth", [], images, depth))


# ----------------------------------------------------------------------------- DAVIS-2017 (App. A.7)

VISIBLE_FIRST = 0.3  # fraction of each object visible in frame 0 (DAVIS annotates what is to be tracked)


@dataclass
class MovingObject:
    """One object of a video: its class and look, and per frame where it is, its size, angle and depth."""

    cls: int
    color: np.ndarray
    freq: float
    shade: int  # seeds draw_object's shading, so the object looks the same in every frame
    centre: np.ndarray  # (T, 2) y, x in pixels
    radius: np.ndarray  # (T,)
    angle: np.ndarray  # (T,)
    depth: np.ndarray  # (T,) smaller = nearer; the order may swap during the video


def moving_objects(rng, k, frames, size=SIZE) -> list[MovingObject]:
    """``k`` objects of distinct classes and one colour, each gliding in a straight line (plus a small wobble)
    toward the centre, slowly turning and changing size, with depths that drift and may cross. One colour:
    colour alone cannot carry a mask from frame to frame (recipe 1 gave each object its own hue, and random
    features then propagated best; twins page)."""
    t = np.linspace(0, 1, frames)
    color = _rgb(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.55, 1.0))
    objects = []
    for cls in rng.choice(len(UNIVERSE), size=k, replace=False):
        start = rng.uniform(0.2, 0.8, 2) * size
        end = rng.uniform(0.3, 0.7, 2) * size
        while np.hypot(*(end - start)) < 0.1 * size:
            end = rng.uniform(0.3, 0.7, 2) * size
        wobble = 0.03 * size * np.sin(2 * np.pi * (rng.uniform(0.5, 1.5) * t + rng.random()))
        freq, shade = rng.uniform(5, 8), int(rng.integers(2 ** 31))
        centre = start + (end - start) * t[:, None] + wobble[:, None]
        radius = size * rng.uniform(0.12, 0.22) * (1 + rng.uniform(-0.2, 0.2) * t)
        angle = rng.uniform(-0.6, 0.6) + rng.uniform(-0.5, 0.5) * t
        depth = rng.random() + rng.uniform(-1, 1) * t
        objects.append(MovingObject(int(cls), color, freq, shade, centre, radius, angle, depth))
    return objects


def render_frame(background, objects, t) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame ``t``: ``(canvas, instances, full)``, objects painted far to near (id k = ``objects[k - 1]``)."""
    canvas, size = background.copy(), background.shape[0]
    instances, full = np.zeros((size, size), np.int32), np.zeros((len(objects), size, size), bool)
    for k in sorted(range(len(objects)), key=lambda k: -objects[k].depth[t]):
        o = objects[k]
        full[k] = paint(canvas, np.random.default_rng(o.shade), o.cls, *o.centre[t], o.radius[t], color=o.color,
                        angle=o.angle[t], freq=o.freq)
        instances[full[k]] = k + 1
    return canvas, instances, full


def davis_layers(n_videos: int, frames: int, seed: int = 0, size: int = SIZE) -> list[list[Layers]]:
    """The videos behind ``davis_videos``, frame by frame.

    A scene background panned slowly (or static, 30%), 2-3 moving objects; every object shows at
    least ``VISIBLE_FIRST`` of itself in frame 0 (the objects are redrawn until it does).
    """
    _check_count("n_videos", n_videos)
    _check_count("frames", frames, least=2)
    rng = np.random.default_rng([seed, _STREAMS.index("davis"), 31])
    videos = []
    for _ in range(n_videos):
        pan = 0 if rng.random() < 0.3 else int(rng.integers(2, max(3, size // 4)))
        scene = scene_background(rng, size + pan, int(rng.integers(len(SCENE_PALETTES))))[:size]
        offsets = np.round(np.linspace(0, pan, frames)).astype(int)[::rng.choice((-1, 1))]
        k = int(rng.integers(2, 4))
        for _ in range(50):
            objects = moving_objects(rng, k, frames, size)
            _, instances, full = render_frame(scene[:, offsets[0]:offsets[0] + size], objects, 0)
            if all((instances == j + 1).sum() >= VISIBLE_FIRST * max(full[j].sum(), 1) for j in range(k)):
                break
        video = []
        for t in range(frames):
            canvas, instances, full = render_frame(scene[:, offsets[t]:offsets[t] + size], objects, t)
            video.append(Layers(_finish(canvas, rng), instances, np.array([o.cls for o in objects], np.int64), full))
        videos.append(video)
    return videos


def davis_videos(n_videos: int, frames: int, seed: int = 0, size: int = SIZE) -> list[Video]:
    """DAVIS-2017 twin: ``n_videos`` videos of ``frames`` frames, instance masks 0 = background, 1..k objects."""
    videos = []
    for v, layers in enumerate(davis_layers(n_videos, frames, seed, size)):
        masks = np.stack([f.instances for f in layers]).astype(np.uint8)
        videos.append(Video(f"twin{v:03d}", np.stack([f.image for f in layers]), masks))
    return videos


# ----------------------------------------------------------------------------- cache

def _pack(result) -> dict:
    """The arrays of a ``DenseSet``, a tuple of them, or a list of ``Video``, flattened for ``np.savez``."""
    if isinstance(result, DenseSet):
        kind, items = "set", [result]
    elif isinstance(result, tuple) and all(isinstance(r, DenseSet) for r in result):
        kind, items = "sets", list(result)
    elif isinstance(result, list) and all(isinstance(r, Video) for r in result):
        kind, items = "videos", result
    else:
        raise TypeError(f"cached_dense stores a DenseSet, a tuple of them or a list of Video, "
                        f"not {type(result).__name__}")
    arrays = {"kind": np.array(kind), "count": np.array(len(items))}
    for i, item in enumerate(items):
        p = f"{i}_"
        if isinstance(item, Video):
            if not isinstance(item.frames, np.ndarray) or not isinstance(item.masks, np.ndarray):
                raise TypeError(f"cached_dense stores in-memory videos only; {item.name} holds file paths")
            arrays.update({p + "name": np.array(item.name), p + "frames": item.frames, p + "masks": item.masks})
            continue
        if not isinstance(item.images, np.ndarray):
            raise TypeError(f"cached_dense stores in-memory sets only; {item.name} holds file paths")
        arrays.update({p + "name": np.array(item.name), p + "task": np.array(item.task),
                       p + "classes": np.array(item.classes, dtype=str), p + "images": item.images})
        if item.task == "detection":
            arrays[p + "counts"] = np.array([len(b.labels) for b in item.targets], np.int64)
            arrays[p + "boxes"] = np.concatenate([b.boxes for b in item.targets] + [np.zeros((0, 4), np.float32)])
            arrays[p + "labels"] = np.concatenate([b.labels for b in item.targets] + [np.zeros(0, np.int64)])
            arrays[p + "difficult"] = np.concatenate([b.difficult for b in item.targets] + [np.zeros(0, bool)])
        else:
            arrays[p + "targets"] = np.asarray(item.targets)
    return arrays


def _unpack(z):
    kind, items = str(z["kind"]), []
    for i in range(int(z["count"])):
        p = f"{i}_"
        if kind == "videos":
            items.append(Video(str(z[p + "name"]), z[p + "frames"], z[p + "masks"]))
            continue
        task = str(z[p + "task"])
        if task == "detection":
            ends = np.cumsum(z[p + "counts"])
            boxes, labels, difficult = z[p + "boxes"], z[p + "labels"], z[p + "difficult"]
            targets = [Boxes(boxes[a:b], labels[a:b], difficult[a:b]) for a, b in zip(ends - z[p + "counts"], ends)]
        else:
            targets = z[p + "targets"]
        items.append(DenseSet(str(z[p + "name"]), task, [str(c) for c in z[p + "classes"]], z[p + "images"], targets))
    return items[0] if kind == "set" else tuple(items) if kind == "sets" else items


def cached_dense(fn, *args, cache_dir=None, **kwargs):
    """``fn(*args, **kwargs)`` (a dense twin above), stored in the twins' cache (``data.cache``) as
    ``dense-<fn>-<key>.npz``, the key covering the call and both recipe versions."""
    return cache.cached(fn, args, kwargs, stem=f"dense-{fn.__name__}", versions=(DENSE_RECIPE_VERSION, RECIPE_VERSION),
                        pack=_pack, unpack=_unpack, cache_dir=cache_dir)
