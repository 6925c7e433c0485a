"""Dense-transfer datasets read from their official on-disk layouts (App. A.3-A.7).

Every loader takes ``root``, the ``DATA_ROOT`` folder holding all datasets, and returns a
``DenseSet`` (a list of ``Video`` for DAVIS) whose images and targets are absolute paths, read
lazily. A missing folder or list file raises ``DatasetNotFoundError`` with the expected layout; so
do listed images or targets missing from disk beyond ``MAX_MISSING`` (fewer are dropped with a
warning, see ``check_listed``).
Layouts under ``DATA_ROOT``:

* VOC 2012 segmentation (+ SBD as DeepLab distributes it)::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<id>.png       palette PNG, 0-20, 255 = void
    VOCdevkit/VOC2012/SegmentationClassAug/<id>.png    grey PNG, same ids and 255
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,train_aug}.txt

* Cityscapes (fine annotations)::

    cityscapes/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    cityscapes/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

* NYUD-v2 as the multi-task benchmarks ship it (``NYUD_MT`` of Vandenhende et al.'s
  Multi-Task-Learning-PyTorch, ``data/nyud.py``; 795 train / 654 val)::

    NYUD_MT/images/<id>.jpg
    NYUD_MT/segmentation/<id>.png    0 = void, 1..40 = the 40 classes (read as void -> 255, k -> k - 1)
    NYUD_MT/depth/<id>.npy           float (H, W) in metres, 0 = no measurement
    NYUD_MT/gt_sets/{train,val}.txt

* VOC detection::

    VOCdevkit/VOC{2007,2012}/{Annotations/<id>.xml, JPEGImages/<id>.jpg, ImageSets/Main/<set>.txt}

* DAVIS-2017 (semi-supervised, train/val annotate every frame)::

    DAVIS/JPEGImages/<resolution>/<seq>/<frame>.jpg
    DAVIS/Annotations/<resolution>/<seq>/<frame>.png   palette PNG, pixel = object id
    DAVIS/ImageSets/2017/{train,val}.txt
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import partial
from itertools import compress
from pathlib import Path
from typing import Callable

import numpy as np

from .dense import Boxes, DenseSet, Video
from .images import DatasetFormatError, DatasetNotFoundError, check_listed, require
from .loaders import VOC_CLASSES, _check_split, _lines


def _on_disk(data: DenseSet, dataset: str, layout: str, targets: str) -> DenseSet:
    """``data`` without the entries whose image or ``targets`` file is missing (``check_listed``)."""
    keep = check_listed(dataset, layout, {"images": data.images, targets: data.targets})
    return data if keep.all() else data.subset(np.flatnonzero(keep))


# ---------------------------------------------------------------- PASCAL VOC 2012 segmentation (App. A.3)

VOC_SEG_CLASSES = ["background", *VOC_CLASSES]

_TRAIN_AUG_SOURCE = (
    "train_aug.txt lists the 10582 SBD-augmented training images: (VOC12 Segmentation train + SBD train + SBD val)"
    " minus VOC12 Segmentation val. It ships with DeepLab's SegmentationClassAug release (or build both from SBD's"
    " benchmark_RELEASE, e.g. with mmsegmentation's voc_aug.py, whose trainaug.txt is the same list).")


def _voc_id(line: str) -> str:
    """The image id of a list line: a bare id, or DeepLab's ``/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png``."""
    return Path(line.split()[0]).stem


def voc2012_segmentation(root: Path, split: str) -> DenseSet:
    """PASCAL VOC 2012 semantic segmentation, 21 classes (background + 20), 255 = void.

    ``train_aug`` (the paper's training set, App. A.3) is the DeepLab augmented set: the 10582 images
    of VOC12 Segmentation train, SBD train and SBD val, minus VOC12 Segmentation val, with labels in
    ``SegmentationClassAug``; ``train`` (1464) and ``val`` (1449) read ``SegmentationClass``.
    """
    _check_split("voc2012_segmentation", split, ("train_aug", "train", "val"))
    labels = "SegmentationClassAug" if split == "train_aug" else "SegmentationClass"
    layout = ("VOCdevkit/VOC2012/{JPEGImages/<id>.jpg, SegmentationClass/<id>.png, SegmentationClassAug/<id>.png, "
              "ImageSets/Segmentation/{train,val,train_aug}.txt}")
    if split == "train_aug":
        layout += "\n  " + _TRAIN_AUG_SOURCE
    voc = Path(root).absolute() / "VOCdevkit" / "VOC2012"
    ids = sorted({_voc_id(line) for line in
                  _lines(require(voc / "ImageSets" / "Segmentation" / f"{split}.txt", "voc2012_segmentation", layout))})
    images = require(voc / "JPEGImages", "voc2012_segmentation", layout)
    targets = require(voc / labels, "voc2012_segmentation", layout)
    data = DenseSet(f"voc2012 {split}", "segmentation", list(VOC_SEG_CLASSES),
                    [images / f"{i}.jpg" for i in ids], [targets / f"{i}.png" for i in ids])
    return _on_disk(data, "voc2012_segmentation", layout, f"{labels} masks")


# ---------------------------------------------------------------- Cityscapes (App. A.4)

# (name, label id, train id) of cityscapesScripts' helpers/labels.py; train id 255 = ignored in
# evaluation. "license plate" (id -1) never appears in the labelIds PNGs, so it is left out.
CITYSCAPES_LABELS = [
    ("unlabeled", 0, 255), ("ego vehicle", 1, 255), ("rectification border", 2, 255), ("out of roi", 3, 255),
    ("static", 4, 255), ("dynamic", 5, 255), ("ground", 6, 255), ("road", 7, 0), ("sidewalk", 8, 1),
    ("parking", 9, 255), ("rail track", 10, 255), ("building", 11, 2), ("wall", 12, 3), ("fence", 13, 4),
    ("guard rail", 14, 255), ("bridge", 15, 255), ("tunnel", 16, 255), ("pole", 17, 5), ("polegroup", 18, 255),
    ("traffic light", 19, 6), ("traffic sign", 20, 7), ("vegetation", 21, 8), ("terrain", 22, 9), ("sky", 23, 10),
    ("person", 24, 11), ("rider", 25, 12), ("car", 26, 13), ("truck", 27, 14), ("bus", 28, 15),
    ("caravan", 29, 255), ("trailer", 30, 255), ("train", 31, 16), ("motorcycle", 32, 17), ("bicycle", 33, 18),
]
CITYSCAPES_CLASSES = [name for name, _, train_id in sorted(CITYSCAPES_LABELS, key=lambda c: c[2]) if train_id != 255]



def _train_id_table() -> np.ndarray:
    """A 256-entry lookup table label id -> train id (255 for ids outside the table)."""
    table = np.full(256, 255, np.int64)
    table[[label_id for _, label_id, _ in CITYSCAPES_LABELS]] = [train_id for *_, train_id in CITYSCAPES_LABELS]
    return table


_TRAIN_IDS = _train_id_table()


def cityscapes_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Cityscapes label ids -> the 19 train ids (others 255); module-level so DataLoader workers can pickle it."""
    return _TRAIN_IDS[np.asarray(label_ids, dtype=np.int64)]


def cityscapes(root: Path, split: str) -> DenseSet:
    """Cityscapes fine annotations (train 2975, val 500), targets mapped to the 19 train ids, 255 = ignore."""
    _check_split("cityscapes", split, ("train", "val"))
    layout = ("cityscapes/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png and "
              "cityscapes/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png")
    city = Path(root).absolute() / "cityscapes"
    images = sorted(require(city / "leftImg8bit" / split, "cityscapes", layout).glob("*/*_leftImg8bit.png"))
    labels = require(city / "gtFine" / split, "cityscapes", layout)
    if not images:
        raise DatasetNotFoundError(f"cityscapes: no *_leftImg8bit.png under {city / 'leftImg8bit' / split}. "
                                   f"Expected layout under DATA_ROOT:\n  {layout}")
    targets = [labels / p.parent.name / p.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png") for p in images]
    data = DenseSet(f"cityscapes {split}", "segmentation", list(CITYSCAPES_CLASSES), images, targets,
                    read_target=cityscapes_train_ids)
    return _on_disk(data, "cityscapes", layout, "gtFine_labelIds.png files (one per image)")


# ---------------------------------------------------------------- NYUD-v2 (App. A.5)

NYUD_CLASSES = ["wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
                "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat",
                "clothes", "ceiling", "books", "refridgerator", "television", "paper", "towel", "shower curtain",
                "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag",
                "otherstructure", "otherfurniture", "otherprop"]


def nyud_void_to_ignore(labels: np.ndarray) -> np.ndarray:
    """NYUD-v2 40-class PNG values -> class ids: 0 (void) -> 255, k -> k - 1, as NYUD_MT's ``_load_semseg``."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.where(labels == 0, 255, labels - 1)


def nyud(root: Path, split: str, task: str) -> DenseSet:
    """NYUD-v2 in the NYUD_MT layout: 40-class segmentation (void -> 255) or depth in metres (0 = missing)."""
    _check_split("nyud", split, ("train", "val"))
    if task not in ("segmentation", "depth"):
        raise ValueError(f"nyud: unknown task {task!r}; allowed: segmentation, depth")
    layout = ("NYUD_MT/{images/<id>.jpg, segmentation/<id>.png, depth/<id>.npy, gt_sets/{train,val}.txt} "
              "(the NYUD_MT folder of the multi-task-learning benchmarks)")
    folder = Path(root).absolute() / "NYUD_MT"
    ids = _lines(require(folder / "gt_sets" / f"{split}.txt", "nyud", layout))
    images = require(folder / "images", "nyud", layout)
    if task == "segmentation":
        targets = require(folder / "segmentation", "nyud", layout)
        data = DenseSet(f"nyud {task} {split}", task, list(NYUD_CLASSES), [images / f"{i}.jpg" for i in ids],
                        [targets / f"{i}.png" for i in ids], read_target=nyud_void_to_ignore)
        return _on_disk(data, "nyud", layout, "segmentation masks")
    targets = require(folder / "depth", "nyud", layout)
    data = DenseSet(f"nyud {task} {split}", task, [], [images / f"{i}.jpg" for i in ids],
                    [targets / f"{i}.npy" for i in ids])
    return _on_disk(data, "nyud", layout, "depth maps")


# ---------------------------------------------------------------- VOC detection (App. A.6)

# split -> the (year, ImageSets/Main list) it joins
VOC_DETECTION_SPLITS = {"07+12_trainval": (("2007", "trainval"), ("2012", "trainval")), "07_test": (("2007", "test"),),
                        "2007_trainval": (("2007", "trainval"),), "2012_trainval": (("2012", "trainval"),),
                        "2007_test": (("2007", "test"),)}


def read_voc_boxes(xml_path: Path) -> Boxes:
    """Every object of a VOC annotation, ``difficult`` ones kept and flagged.

    VOC boxes are 1-based inclusive pixel indices; like detectron2's ``pascal_voc`` loader we subtract 1
    from xmin and ymin only, so ``(1, 1, W, H)`` becomes the whole image ``(0, 0, W, H)``.
    """
    objects = ET.parse(xml_path).getroot().findall("object")
    boxes = [[float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")] for o in objects]
    boxes = np.array(boxes, np.float32).reshape(-1, 4) - np.array([1, 1, 0, 0], np.float32)
    labels = np.array([VOC_CLASSES.index(o.findtext("name").strip()) for o in objects], np.int64)
    difficult = np.array([int(o.findtext("difficult", "0") or 0) == 1 for o in objects], bool)
    return Boxes(boxes, labels, difficult)


def voc_detection(root: Path, split: str) -> DenseSet:
    """PASCAL VOC detection, 20 classes: ``07+12_trainval`` (VOC07 + VOC12 trainval, 16551) and ``07_test`` (4952).

    Annotations are parsed here (small XML files); the images stay lazy.
    """
    _check_split("voc_detection", split, tuple(VOC_DETECTION_SPLITS))
    layout = "VOCdevkit/VOC{2007,2012}/{Annotations/<id>.xml, JPEGImages/<id>.jpg, ImageSets/Main/<set>.txt}"
    images, xmls = [], []
    for year, image_set in VOC_DETECTION_SPLITS[split]:
        voc = Path(root).absolute() / "VOCdevkit" / f"VOC{year}"
        ids = sorted(_lines(require(voc / "ImageSets" / "Main" / f"{image_set}.txt", "voc_detection", layout)))
        annotations = require(voc / "Annotations", "voc_detection", layout)
        jpegs = require(voc / "JPEGImages", "voc_detection", layout)
        images += [jpegs / f"{i}.jpg" for i in ids]
        xmls += [annotations / f"{i}.xml" for i in ids]
    keep = check_listed("voc_detection", layout, {"images": images, "annotations": xmls})
    targets = [read_voc_boxes(xml) for xml in compress(xmls, keep)]
    return DenseSet(f"voc detection {split}", "detection", list(VOC_CLASSES), list(compress(images, keep)), targets)


# ---------------------------------------------------------------- DAVIS-2017 (App. A.7)

DAVIS_2017_MASKS = ("DAVIS-2017 annotations are palette PNGs whose pixel value is the object id: 0 = background, "
                    "1..K = the objects of the sequence, 255 only as void")


def _check_davis_objects(video: Video) -> None:
    """A first-frame mask without object ids 1..K (a DAVIS-2016 binary 0/255 mask, or an empty one) is an
    error here: propagation would track nothing and scoring would fail far downstream."""
    if not video.objects():
        raise DatasetFormatError(
            f"davis2017: sequence {video.name!r}: the first-frame annotation {video.masks[0]} holds only the values "
            f"{np.unique(video.mask(0)).tolist()}, no object id. {DAVIS_2017_MASKS}; binary 0/255 masks are "
            "DAVIS-2016's. Use the DAVIS-2017 trainval release (DAVIS-2017-trainval-480p.zip).")


def davis2017(root: Path, split: str = "val", resolution: str = "480p") -> list[Video]:
    """DAVIS-2017 sequences (val: 30), frames and instance masks sorted by frame name.

    Every frame must have its annotation (true of the official train/val), else the sequence is named.
    Every frame is decoded once here: an unreadable one is dropped with its mask and a warning
    (``Video.readable``; an unreadable first frame is an error), and the first-frame mask must hold
    DAVIS-2017 object ids.
    """
    _check_split("davis2017", split, ("train", "val"))
    if resolution not in ("480p", "Full-Resolution"):
        raise ValueError(f"davis2017: unknown resolution {resolution!r}; allowed: 480p, Full-Resolution")
    layout = (f"DAVIS/{{JPEGImages/{resolution}/<seq>/<frame>.jpg, Annotations/{resolution}/<seq>/<frame>.png, "
              "ImageSets/2017/{train,val}.txt}")
    davis = Path(root).absolute() / "DAVIS"
    sequences = sorted(_lines(require(davis / "ImageSets" / "2017" / f"{split}.txt", "davis2017", layout)))
    frames_root = require(davis / "JPEGImages" / resolution, "davis2017", layout)
    masks_root = require(davis / "Annotations" / resolution, "davis2017", layout)
    frame_dirs, mask_dirs = [frames_root / seq for seq in sequences], [masks_root / seq for seq in sequences]
    keep = check_listed("davis2017", layout, {f"JPEGImages/{resolution} sequence folders": frame_dirs,
                                              f"Annotations/{resolution} sequence folders": mask_dirs})
    videos = []
    for seq, frame_dir, mask_dir in compress(zip(sequences, frame_dirs, mask_dirs), keep):
        frames, masks = sorted(frame_dir.glob("*.jpg")), sorted(mask_dir.glob("*.png"))
        if not frames or [f.stem for f in frames] != [m.stem for m in masks]:
            raise DatasetNotFoundError(
                f"davis2017: sequence {seq!r} has {len(frames)} frames but {len(masks)} annotations (the frame "
                f"names must match, every frame annotated). Expected layout under DATA_ROOT:\n  {layout}")
        video = Video(seq, frames, masks)
        _check_davis_objects(video)
        videos.append(video.readable())
    return videos


# ---------------------------------------------------------------- registry

@dataclass(frozen=True)
class DenseSource:
    """One dense benchmark: ``load(root, split)`` and the splits the paper trains on and reports on.

    ``train`` is ``None`` where nothing is trained (DAVIS: frozen features, label propagation).
    """

    load: Callable
    train: str | None
    test: str


DENSE_LOADERS = {
    "voc_seg": DenseSource(voc2012_segmentation, "train_aug", "val"),
    "cityscapes_seg": DenseSource(cityscapes, "train", "val"),
    "nyud_seg": DenseSource(partial(nyud, task="segmentation"), "train", "val"),
    "nyud_depth": DenseSource(partial(nyud, task="depth"), "train", "val"),
    "voc_det": DenseSource(voc_detection, "07+12_trainval", "07_test"),
    "davis": DenseSource(davis2017, None, "val"),
}
