"""Synthetic twins: procedurally generated stand-ins for every dataset of Section 3.

Each twin keeps the property the paper studies:

* ``in118k``: object-centric, one central object, classes uniform;
* ``in118k_lt``: the same images, class sizes Pareto(alpha = 6) (Figure S1);
* ``coco`` / ``oi118k``: scene-centric, several small objects per image on a scene background,
  object classes imbalanced, OpenImages-like slightly denser and more varied;
* ``bdd100k``: domain-specific, monotonous street-like scenes with few object classes;
* targets ``cifar10``, ``cars`` (fine-grained), ``food`` (textures), ``pets`` (per-class
  accuracy), ``places`` / ``sun`` (scene labels) and ``voc`` (multi-label).

All objects come from one universe of classes = (shape, texture); colour varies within a class,
so what transfers is shape and texture, the invariances colour jitter and cropping teach. In the
pretraining twins colour varies only within the reach of that jitter (objects ``jittered_color``, scene
backgrounds grey, ``GREY_SCENE`` untinted), so that it cannot tell images apart on its own; the targets use any hue.

Every generator is deterministic from ``seed``; ``cached`` stores results as ``.npz`` (``data.cache``).
Images are ``uint8`` ``(N, S, S, 3)``.
The instance map of each image is used to *measure* objects per image (Table 1).
"""
from __future__ import annotations

import colorsys

import numpy as np

from ..config import RECIPE_VERSION
from . import cache
from .images import ImageSet

SIZE = 64  # native twin resolution; crops and linear-eval resizes go to the profile's size
KEEPS = {  # twin -> the property of the real dataset it keeps (the book's twins page lists them)
    "in118k": "object-centric: one central object per image; 32 classes of uniform size",
    "in118k_lt": "IN-118K's images with Pareto (alpha 6) class sizes, as the paper's long-tailed subset",
    "coco": "scene-centric: several small objects (7.3 a image) on a grey scene; imbalanced object classes",
    "oi118k": "scene-centric like COCO, denser (8.3 objects a image) with a flatter spread of classes",
    "bdd100k": "domain-specific: monotonous street views with few object classes",
    "cifar10": "small whole objects, 10 classes",
    "cars": "fine-grained: one body shape, classes told apart by shape details and paint",
    "food": "close-up textures: many small objects of one class fill the frame",
    "pets": "fine-grained animals; scored by mean per-class accuracy",
    "places": "scene labels: a palette and a typical mix of objects per scene class",
    "sun": "scene labels, as Places with other classes",
    "voc": "multi-label: the 20 VOC classes as objects in scenes; scored by mAP",
}

SHAPES = ("disk", "square", "triangle", "diamond", "star", "cross", "ring", "ellipse")
TEXTURES = ("solid", "stripes", "checker", "dots")
UNIVERSE = [f"{s}-{t}" for s in SHAPES for t in TEXTURES]  # 32 object classes


def _shape_mask(shape: int, u, v):
    r = np.hypot(u, v)
    if shape == 0:
        return r < 1
    if shape == 1:
        return np.maximum(abs(u), abs(v)) < 0.8
    if shape == 2:
        return (v < 0.7) & (abs(u) < (v + 1.0) * 0.55) & (v > -0.9)
    if shape == 3:
        return abs(u) + abs(v) < 1
    if shape == 4:
        return r < 0.55 + 0.4 * np.cos(5 * np.arctan2(v, u))
    if shape == 5:
        return ((abs(u) < 0.3) & (abs(v) < 0.95)) | ((abs(v) < 0.3) & (abs(u) < 0.95))
    if shape == 6:
        return (r < 1) & (r > 0.55)
    return (u / 1.0) ** 2 + (v / 0.5) ** 2 < 1


def _texture(texture: int, u, v, freq):
    if texture == 0:
        return np.ones_like(u)
    if texture == 1:
        return (np.sin(freq * u) > 0).astype(float)
    if texture == 2:
        return ((np.sin(freq * u) * np.sin(freq * v)) > 0).astype(float)
    return ((np.sin(freq * u) * np.sin(freq * v)) < 0.5).astype(float)


def _rgb(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def any_color(rng):
    """Any hue (the target twins): a class is its shape and texture, so colour alone never tells classes apart."""
    return _rgb(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.55, 1.0))


def jittered_color(rng):
    """A colour within what MoCo's colour jitter spans (hue 0 +- 0.1, saturation and value as ``any_color``).

    The pretraining twins' objects: with 1500 images, any hue would tell an image from the others on
    its own, and 184 steps of MoCo then learn colour and nothing else (measured: no better than random
    init. on Table 2). Kept within the jitter's reach, colour is a nuisance the augmentations remove, as
    in 118K photos where a colour is shared by thousands, and instances differ by shape, texture, layout.
    """
    return _rgb(rng.uniform(-0.1, 0.1), rng.uniform(0.5, 1.0), rng.uniform(0.55, 1.0))


def draw_object(canvas, inst, inst_id, rng, cls, cy, cx, radius, color=any_color, angle=None, freq=None):
    """Paint object class ``cls`` (shape x texture) at ``(cy, cx)`` with ``radius`` in pixels.

    ``color`` is an RGB triple or a function of ``rng`` that draws one (``any_color``, ``jittered_color``).
    """
    size = canvas.shape[0]
    y0, y1 = int(max(cy - radius - 1, 0)), int(min(cy + radius + 2, size))
    x0, x1 = int(max(cx - radius - 1, 0)), int(min(cx + radius + 2, size))
    if y1 <= y0 or x1 <= x0:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(float)
    angle = rng.uniform(-0.6, 0.6) if angle is None else angle
    c, s = np.cos(angle), np.sin(angle)
    du, dv = (xx - cx) / radius, (yy - cy) / radius
    u, v = c * du + s * dv, -s * du + c * dv
    shape, texture = divmod(cls, len(TEXTURES))
    mask = _shape_mask(shape, u, v)
    freq = rng.uniform(5, 8) if freq is None else freq
    pattern = _texture(texture, u, v, freq)
    color = color(rng) if callable(color) else color
    dark = color * rng.uniform(0.15, 0.4)
    paint = dark + (color - dark) * pattern[..., None]
    region = canvas[y0:y1, x0:x1]
    region[mask] = paint[mask]
    inst[y0:y1, x0:x1][mask] = inst_id


def smooth_noise(rng, size, cells=4, amplitude=0.15):
    """Low-frequency colour noise, bilinearly upsampled from a ``cells`` x ``cells`` grid."""
    grid = rng.uniform(-amplitude, amplitude, size=(cells + 1, cells + 1, 3))
    t = np.linspace(0, cells, size)
    i = np.minimum(t.astype(int), cells - 1)
    f = (t - i)[:, None]
    rows = grid[i] * (1 - f[..., None]) + grid[i + 1] * f[..., None]  # (size, cells+1, 3)
    cols = rows[:, i] * (1 - f.T[..., None]) + rows[:, i + 1] * f.T[..., None]
    return cols


def _finish(canvas, rng, noise=0.03):
    canvas = canvas + rng.normal(0, noise, canvas.shape)
    return (np.clip(canvas, 0, 1) * 255).astype(np.uint8)


# ----------------------------------------------------------------------------- image recipes

BACKDROPS = [_rgb(h, s, v) for h, s, v in ((0, 0, 0.55), (0.1, 0.25, 0.75), (0.3, 0.2, 0.5), (0.58, 0.2, 0.7),
                                           (0, 0, 0.3), (0.07, 0.4, 0.4))]


def object_centric_image(rng, cls, size=SIZE, colors=any_color):
    """One central object on one of a few plain backdrops (ImageNet-like).

    The backdrops are few on purpose: the object, not a unique background, must be what tells one
    image from another, as in a photo centred on its subject.
    """
    canvas = BACKDROPS[rng.integers(len(BACKDROPS))] + smooth_noise(rng, size, cells=rng.integers(2, 6), amplitude=0.08)
    inst = np.zeros((size, size), np.int32)
    for k in range(rng.integers(0, 3)):  # small clutter in the background
        draw_object(canvas, inst, 0, rng, int(rng.integers(len(UNIVERSE))), rng.uniform(0, size), rng.uniform(0, size),
                    size * rng.uniform(0.04, 0.07), colors)
    inst[:] = 0  # clutter is texture, not an annotated object
    for k in range(rng.choice(3, p=(0.5, 0.3, 0.2))):  # further, smaller instances of the class (ImageNet: 1.7 a image)
        draw_object(canvas, inst, k + 2, rng, cls, rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size,
                    size * rng.uniform(0.1, 0.16), colors)
    r = size * rng.uniform(0.25, 0.4)
    draw_object(canvas, inst, 1, rng, cls, size / 2 + rng.normal(0, size * 0.06), size / 2 + rng.normal(0, size * 0.06), r,
                colors)
    return _finish(canvas, rng), inst


SCENE_PALETTES = (  # (sky, ground) hues / values: scene types for Places/SUN-like twins and COCO/OI backgrounds
    ((0.58, 0.5, 0.9), (0.30, 0.6, 0.5)), ((0.58, 0.3, 0.8), (0.10, 0.5, 0.6)), ((0.0, 0.0, 0.6), (0.0, 0.0, 0.35)),
    ((0.08, 0.3, 0.9), (0.07, 0.6, 0.4)), ((0.6, 0.6, 0.4), (0.6, 0.5, 0.2)), ((0.15, 0.2, 0.95), (0.12, 0.4, 0.8)),
    ((0.5, 0.3, 0.7), (0.45, 0.6, 0.5)), ((0.75, 0.3, 0.6), (0.0, 0.0, 0.5)), ((0.95, 0.3, 0.8), (0.33, 0.3, 0.3)),
    ((0.05, 0.1, 0.3), (0.6, 0.2, 0.2)), ((0.55, 0.1, 0.95), (0.55, 0.1, 0.85)), ((0.2, 0.5, 0.7), (0.25, 0.7, 0.3)),
)


GREY_SCENE = 2  # the grey palette: the backgrounds of the pretraining scenes and of streets


def scene_background(rng, size, palette, horizon=None, tint=True):
    """Sky over ground, two tones of ``SCENE_PALETTES[palette]`` split at ``horizon``, with low-frequency noise.

    ``tint=False`` keeps the noise to brightness: a tinted patch would tell one pretraining scene from the others.
    """
    sky, ground = (_rgb(h + rng.normal(0, 0.03), s, v) for h, s, v in SCENE_PALETTES[palette])
    horizon = rng.uniform(0.3, 0.7) * size if horizon is None else horizon
    rows = (np.arange(size) > horizon)[:, None, None]
    canvas = np.where(rows, ground, sky) * np.ones((size, size, 3))
    noise = smooth_noise(rng, size, cells=6, amplitude=0.1)
    return canvas + (noise if tint else noise.mean(-1, keepdims=True))


def scene_image(rng, classes, palette, size=SIZE, scale=(0.09, 0.2), colors=any_color, tint=True):
    """Several small objects of ``classes`` on a two-tone scene (COCO / OpenImages-like)."""
    canvas = scene_background(rng, size, palette, tint=tint)
    inst = np.zeros((size, size), np.int32)
    for k, cls in enumerate(classes):
        draw_object(canvas, inst, k + 1, rng, int(cls), rng.uniform(0.05, 0.95) * size, rng.uniform(0.05, 0.95) * size,
                    size * rng.uniform(*scale), colors)
    return _finish(canvas, rng), inst


STREET_CLASSES = ("car", "pedestrian", "sign", "truck")


def street_image(rng, size=SIZE):
    """A monotonous street scene: sky, buildings, road, lane marks, cars and people (BDD-like)."""
    horizon = size * rng.uniform(0.38, 0.48)
    canvas = scene_background(rng, size, GREY_SCENE, horizon=horizon)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    for side in (0, 1):  # buildings
        for _ in range(rng.integers(2, 4)):
            w, h = rng.uniform(6, 16), rng.uniform(8, 25)
            x = rng.uniform(0, size * 0.3) if side == 0 else rng.uniform(size * 0.7, size)
            box = (abs(xx - x) < w / 2) & (yy < horizon) & (yy > horizon - h)
            canvas[box] = _rgb(0.08, 0.15, rng.uniform(0.3, 0.6))
    road = (yy > horizon) & (abs(xx - size / 2) < (yy - horizon) * 1.4 + 3)
    canvas[road] = _rgb(0, 0, rng.uniform(0.25, 0.35))
    for lane in (-0.5, 0.5):  # dashed lane markings
        mark = road & (abs(xx - size / 2 - lane * (yy - horizon) * 1.2) < 0.8) & (np.sin(yy * 0.8) > 0)
        canvas[mark] = (0.9, 0.9, 0.85)
    inst = np.zeros((size, size), np.int32)
    labels = []
    for k in range(rng.poisson(4) + 1):
        cls = rng.choice(4, p=(0.6, 0.2, 0.12, 0.08))
        y = rng.uniform(horizon + 2, size - 2)
        depth = (y - horizon) / (size - horizon)
        x = size / 2 + rng.uniform(-1.3, 1.3) * (y - horizon)
        s = 2 + 10 * depth
        if cls in (0, 3):
            w, h = s * (1.6 if cls == 0 else 2.2), s * (0.8 if cls == 0 else 1.3)
            box = (abs(xx - x) < w / 2) & (abs(yy - y + h / 2) < h / 2)
            color = _rgb(rng.random(), rng.uniform(0, 0.7), rng.uniform(0.2, 0.9))
        elif cls == 1:
            box = (abs(xx - x) < max(s * 0.2, 0.6)) & (abs(yy - y + s) < s)
            color = _rgb(rng.random(), 0.5, 0.4)
        else:
            box = (np.hypot(xx - x, yy - y + 2 * s) < max(s * 0.4, 1)) | ((abs(xx - x) < 0.5) & (yy < y) & (yy > y - 2 * s))
            color = _rgb(0.0, 0.8, 0.8)
        canvas[box] = color
        inst[box] = k + 1
        labels.append(int(cls))
    return _finish(canvas, rng), inst, labels


# ----------------------------------------------------------------------------- twin sets

PRETRAIN_TWINS = {  # name -> recipe; what each stands for
    "in118k": "object_uniform",  # ImageNet-118K: uniform, object-centric
    "in118k_lt": "object_long_tailed",  # ImageNet-118K-LT: Pareto alpha = 6
    "coco": "scene_coco",  # COCO train2017: scene-centric
    "oi118k": "scene_oi",  # OpenImages-v4 118K: scene-centric, denser and more varied
    "bdd100k": "street",  # BDD100K: domain-specific street scenes
}

TARGET_TWINS = {  # name -> number of classes
    "cifar10": 10, "cars": 12, "food": 10, "pets": 12, "places": 10, "sun": 12, "voc": 10,
    "imagenet": len(UNIVERSE),  # linear classification of Tables 4 and 9: every object class, object-centric
}


def _zipf(n, s, rng):
    p = 1.0 / np.arange(1, n + 1) ** s
    return rng.permutation(p / p.sum())


def _count_objects(inst):
    return len(np.unique(inst)) - (1 if (inst == 0).any() else 0)


def generate_pretrain(name: str, n: int, seed: int = 0, size: int = SIZE) -> ImageSet:
    """The twin of pretraining set ``name`` with ``n`` images (labels: object class or None)."""
    if name not in PRETRAIN_TWINS:
        raise ValueError(f"no twin for {name!r}; known: {sorted(PRETRAIN_TWINS)}")
    from .subsets import long_tailed_class_sizes

    rng = np.random.default_rng([seed, list(PRETRAIN_TWINS).index(name)])
    images = np.empty((n, size, size, 3), np.uint8)
    objects = np.empty(n, np.int64)
    kind = PRETRAIN_TWINS[name]
    classes = UNIVERSE if kind != "street" else list(STREET_CLASSES)
    labels = np.zeros((n, len(classes)), np.int64)  # scenes: multi-hot object classes, as annotations would give
    if kind.startswith("object"):
        k = len(UNIVERSE)
        sizes = (long_tailed_class_sizes(k, n, 6.0) if kind == "object_long_tailed"
                 else np.bincount(np.arange(n) % k, minlength=k))
        labels = rng.permutation(np.repeat(rng.permutation(k), sizes))  # single label per image
    if kind.startswith("scene"):
        freq = _zipf(len(UNIVERSE), 1.0 if kind == "scene_coco" else 0.7, rng)
        mean = 7.3 if kind == "scene_coco" else 8.3  # objects per image (Table 1)
    for i in range(n):
        if kind.startswith("object"):
            img, inst = object_centric_image(rng, int(labels[i]), size, jittered_color)
        elif kind.startswith("scene"):
            present = rng.choice(len(UNIVERSE), size=max(1, rng.poisson(mean)), p=freq)
            img, inst = scene_image(rng, present, GREY_SCENE, size, colors=jittered_color, tint=False)


            labels[i, present] = 1
        else:
            img, inst, present = street_image(rng, size)
            labels[i, present] = 1
        images[i], objects[i] = img, _count_objects(inst)
    return ImageSet(f"{name} (twin)", array=images, labels=labels, classes=classes, objects=objects)


def _target_image(name, rng, label, size):
    if name == "cifar10":  # object-centric, ten object classes of the universe
        return object_centric_image(rng, [0, 5, 9, 14, 18, 21, 24, 27, 30, 3][label], size)[0]
    if name == "imagenet":
        return object_centric_image(rng, label, size)[0]
    if name == "pets":  # object-centric, twelve classes that pair shapes and textures closely
        return object_centric_image(rng, [1, 2, 5, 6, 13, 14, 17, 18, 25, 26, 29, 30][label], size)[0]
    if name == "cars":  # fine-grained: three close body shapes x four paint patterns, one street backdrop
        canvas = scene_background(rng, size, 2)
        inst = np.zeros((size, size), np.int32)
        body, paint = divmod(label, len(TEXTURES))
        draw_object(canvas, inst, 1, rng, (1, 7, 0)[body] * len(TEXTURES) + paint, size / 2, size / 2,
                    size * rng.uniform(0.3, 0.38))
        return _finish(canvas, rng)
    if name == "food":  # close-up textures: many small objects of one class fill the frame
        canvas = _rgb(rng.random(), 0.3, 0.7) + smooth_noise(rng, size, 3, 0.2)
        inst = np.zeros((size, size), np.int32)
        cls = [0, 6, 11, 12, 16, 19, 22, 23, 28, 31][label]
        for _ in range(rng.integers(8, 14)):
            draw_object(canvas, inst, 1, rng, cls, rng.uniform(0, size), rng.uniform(0, size), size * rng.uniform(0.1, 0.16))
        return _finish(canvas, rng)
    if name in ("places", "sun"):  # scene labels: a palette and a typical object mix per scene class
        scene_rng = np.random.default_rng([77 if name == "places" else 78, label])
        palette = int(scene_rng.integers(len(SCENE_PALETTES)))
        typical = scene_rng.choice(len(UNIVERSE), size=4, replace=False)
        classes = [int(rng.choice(typical)) if rng.random() < 0.7 else int(rng.integers(len(UNIVERSE)))
                   for _ in range(rng.poisson(5) + 1)]
        return scene_image(rng, classes, palette, size)[0]

    raise ValueError(name)


VOC_CLASSES = [UNIVERSE[c] for c in (0, 4, 9, 13, 18, 20, 23, 26, 29, 31)]


def generate_target(name: str, split: str, n: int, seed: int = 0, size: int = SIZE) -> ImageSet:
    """The twin of classification target ``name``: ``split`` in train / val / test, ``n`` images."""
    if name not in TARGET_TWINS:
        raise ValueError(f"no twin for target {name!r}; known: {sorted(TARGET_TWINS)}")
    rng = np.random.default_rng([seed, list(TARGET_TWINS).index(name), ("train", "val", "test").index(split), 17])
    k = TARGET_TWINS[name]
    images = np.empty((n, size, size, 3), np.uint8)
    if name == "voc":  # multi-label scenes: 1-3 objects of ten classes
        ids = [UNIVERSE.index(c) for c in VOC_CLASSES]
        labels = np.zeros((n, k), np.int64)
        for i in range(n):
            picks = rng.choice(k, size=rng.integers(1, 4), replace=True)
            images[i], inst = scene_image(rng, [ids[p] for p in picks], int(rng.integers(len(SCENE_PALETTES))), size,
                                          scale=(0.12, 0.22))
            labels[i, np.unique(picks)] = 1
        return ImageSet(f"{name} (twin)", array=images, labels=labels, classes=VOC_CLASSES)
    labels = rng.permutation(np.arange(n) % k)
    for i in range(n):
        images[i] = _target_image(name, rng, int(labels[i]), size)
    return ImageSet(f"{name} (twin)", array=images, labels=labels, classes=[f"{name}-{c}" for c in range(k)])


def _pack(images: ImageSet) -> dict:
    """An in-memory ``ImageSet`` as arrays for ``np.savez`` (no labels or objects: empty arrays)."""
    return {"name": images.name, "array": images.array,
            "labels": images.labels if images.labels is not None else np.zeros(0),
            "classes": np.array(images.classes, dtype=str),
            "objects": images.objects if images.objects is not None else np.zeros(0)}


def _unpack(z) -> ImageSet:
    return ImageSet(str(z["name"]), array=z["array"], labels=z["labels"] if z["labels"].size else None,
                    classes=list(z["classes"]), objects=z["objects"] if z["objects"].size else None)


def cached(fn, *args, cache_dir=None, **kwargs) -> ImageSet:
    """``fn(*args, **kwargs)`` (a twin above), stored in the twins' cache (``data.cache``) as
    ``<fn>-<twin>-<key>.npz``, the key covering the call and ``RECIPE_VERSION``."""
    return cache.cached(fn, args, kwargs, stem=f"{fn.__name__}-{args[0]}", versions=(RECIPE_VERSION,), pack=_pack,
                        unpack=_unpack, cache_dir=cache_dir)

