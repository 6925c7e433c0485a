"""Real datasets read from their official on-disk layouts (paper Table 1 and the linear-classification targets of App. A.2).

Every loader takes ``root``, the ``DATA_ROOT`` folder holding all datasets, and returns an
``ImageSet`` whose files are absolute paths in a deterministic (sorted) order. A missing folder
or annotation file raises ``DatasetNotFoundError`` with the expected layout; so do listed images
missing from disk beyond ``MAX_MISSING`` (fewer are dropped with a warning, see ``check_listed``).
"""
from __future__ import annotations

import json
import pickle
import xml.etree.ElementTree as ET
from collections import Counter
from itertools import compress
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from .images import ImageSet, check_listed, require

VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def _check_split(dataset: str, split: str, allowed: tuple) -> None:
    """Fail early on a split the dataset does not ship."""
    if split not in allowed:
        raise ValueError(f"{dataset}: unknown split {split!r}; allowed: {', '.join(allowed)}")


def _lines(path: Path) -> list[str]:
    """Non-empty, stripped lines of a text file."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _labelled(name: str, pairs, classes) -> ImageSet:
    """An ImageSet from ``(path, label)`` pairs, sorted by path."""
    pairs = sorted(pairs)
    return ImageSet(name, [p for p, _ in pairs], labels=np.array([y for _, y in pairs], np.int64).reshape(-1),
                    classes=list(classes))


def _on_disk(images: ImageSet, dataset: str, layout: str) -> ImageSet:
    """``images`` without the files its annotation lists but the disk lacks (``check_listed``: too many is an error)."""
    keep = check_listed(dataset, layout, {"images": images.files})
    return images if keep.all() else images.subset(np.flatnonzero(keep))


# ---------------------------------------------------------------- pretraining sets (Table 1)

def imagenet(root: Path, split: str) -> ImageSet:
    """ImageNet train or val as ImageFolder trees (val sorted into wnid folders, as torchvision's
    ``ImageNet`` prepares it); labels index the sorted wnids."""
    _check_split("imagenet", split, ("train", "val"))
    folder = require(Path(root).absolute() / "imagenet" / split, "imagenet", f"imagenet/{split}/<wnid>/*.JPEG")
    classes, class_to_idx = find_classes(folder)
    samples = make_dataset(folder, class_to_idx, extensions=IMG_EXTENSIONS)
    return _labelled(f"imagenet {split}", [(Path(p), y) for p, y in samples], classes)


def imagenet_train(root: Path) -> ImageSet:
    """ImageNet train, the source of IN-118K and IN-118K-LT."""
    return imagenet(root, "train")


def coco_train2017(root: Path) -> ImageSet:
    """COCO train2017: the images of the instances json, with their number of annotated objects and the object
    classes present (multi-hot over the 80 categories: Table 1's class balance, the supervised ceiling's labels)."""
    layout = "coco/train2017/*.jpg and coco/annotations/instances_train2017.json"
    coco = Path(root).absolute() / "coco"
    images = require(coco / "train2017", "coco", layout)
    with require(coco / "annotations" / "instances_train2017.json", "coco", layout).open() as f:
        meta = json.load(f)
    categories = sorted(meta["categories"], key=lambda c: c["id"])
    column = {c["id"]: k for k, c in enumerate(categories)}
    counts = Counter(a["image_id"] for a in meta["annotations"])
    entries = sorted((im["file_name"], im["id"]) for im in meta["images"])
    row = {image_id: i for i, (_, image_id) in enumerate(entries)}
    labels = np.zeros((len(entries), len(categories)), np.uint8)
    for a in meta["annotations"]:
        labels[row[a["image_id"]], column[a["category_id"]]] = 1
    listed = ImageSet("coco train2017", [images / name for name, _ in entries], labels=labels,
                      classes=[c["name"] for c in categories],
                      objects=np.array([counts[image_id] for _, image_id in entries], np.int64))
    return _on_disk(listed, "coco", layout)


def openimages_v4_train(root: Path) -> ImageSet:
    """OpenImages-v4 train images present on disk, with their number of boxes (0 if none) and the boxed classes
    present (multi-hot over the classes of the box file, named by their MIDs; one byte per image and class)."""
    layout = "openimages/train/<ImageID>.jpg and openimages/annotations/train-annotations-bbox.csv"
    oi = Path(root).absolute() / "openimages"
    files = sorted(require(oi / "train", "openimages", layout).glob("*.jpg"))
    boxes = pd.read_csv(require(oi / "annotations" / "train-annotations-bbox.csv", "openimages", layout),
                        usecols=["ImageID", "LabelName"], dtype=str)
    stems = pd.Index([f.stem for f in files])
    counts = boxes["ImageID"].value_counts().reindex(stems, fill_value=0)
    classes = sorted(boxes["LabelName"].unique())
    rows, columns = stems.get_indexer(boxes["ImageID"]), pd.Index(classes).get_indexer(boxes["LabelName"])
    labels = np.zeros((len(files), len(classes)), np.uint8)
    labels[rows[rows >= 0], columns[rows >= 0]] = 1
    return ImageSet("openimages-v4 train", files, labels=labels, classes=classes, objects=counts.to_numpy(np.int64))


def bdd100k_train(root: Path) -> ImageSet:
    """BDD100K 100k-images train split (no labels, no object counts)."""
    images = require(Path(root).absolute() / "bdd100k" / "images" / "100k" / "train", "bdd100k",
                     "bdd100k/images/100k/train/*.jpg")
    return ImageSet("bdd100k train", sorted(images.glob("*.jpg")))


# ---------------------------------------------------------------- classification targets (App. A.2)

def cifar10(root: Path, split: str) -> ImageSet:
    """CIFAR-10 python pickles, decoded to an in-memory ``(N, 32, 32, 3)`` array."""
    _check_split("cifar10", split, ("train", "test"))
    layout = "cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}"
    folder = Path(root).absolute() / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    data, labels = [], []
    for name in names:
        with require(folder / name, "cifar10", layout).open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data.append(np.asarray(batch[b"data"], np.uint8))
        labels.extend(batch[b"labels"])
    with require(folder / "batches.meta", "cifar10", layout).open("rb") as f:
        classes = [c.decode() for c in pickle.load(f, encoding="bytes")[b"label_names"]]
    array = np.ascontiguousarray(np.concatenate(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return ImageSet(f"cifar10 {split}", array=array, labels=np.array(labels, np.int64), classes=classes)


def food101(root: Path, split: str) -> ImageSet:
    """Food-101: split lists ``meta/<split>.json`` of ``class/imageid`` entries."""
    _check_split("food101", split, ("train", "test"))
    layout = "food-101/meta/{train,test}.json, food-101/meta/classes.txt, food-101/images/<class>/<id>.jpg"
    food = Path(root).absolute() / "food-101"
    classes = _lines(require(food / "meta" / "classes.txt", "food101", layout))
    images = require(food / "images", "food101", layout)
    with require(food / "meta" / f"{split}.json", "food101", layout).open() as f:
        entries = json.load(f)
    index = {c: i for i, c in enumerate(classes)}
    pairs = [(images / f"{e}.jpg", index[c]) for c, es in entries.items() for e in es]
    return _on_disk(_labelled(f"food101 {split}", pairs, classes), "food101", layout)


def pets(root: Path, split: str) -> ImageSet:
    """Oxford-IIIT Pets: ``annotations/<split>.txt`` lines ``name class_id species breed_id``.

    Class names come from both split files, so every split has the same 37 classes.
    """
    _check_split("pets", split, ("trainval", "test"))
    layout = "oxford-iiit-pet/annotations/{trainval,test}.txt, oxford-iiit-pet/images/<name>.jpg"
    folder = Path(root).absolute() / "oxford-iiit-pet"
    rows = {s: [line.split() for line in _lines(require(folder / "annotations" / f"{s}.txt", "pets", layout))
                if not line.startswith("#")] for s in ("trainval", "test")}
    images = require(folder / "images", "pets", layout)
    breeds = {int(cid): name.rsplit("_", 1)[0] for s in rows for name, cid, *_ in rows[s]}
    pairs = [(images / f"{name}.jpg", int(cid) - 1) for name, cid, *_ in rows[split]]
    return _on_disk(_labelled(f"pets {split}", pairs, [breeds[c] for c in sorted(breeds)]), "pets", layout)


def stanford_cars(root: Path, split: str) -> ImageSet:
    """Stanford Cars from the devkit ``.mat`` files (1-based classes, test labels from the withlabels file)."""
    _check_split("stanford_cars", split, ("train", "test"))
    layout = ("stanford_cars/devkit/{cars_meta.mat, cars_train_annos.mat}, "
              "stanford_cars/cars_test_annos_withlabels.mat, stanford_cars/cars_{train,test}/<fname>")
    cars = Path(root).absolute() / "stanford_cars"
    annos = cars / "devkit" / "cars_train_annos.mat" if split == "train" else cars / "cars_test_annos_withlabels.mat"
    classes = scipy.io.loadmat(require(cars / "devkit" / "cars_meta.mat", "stanford_cars", layout),
                               squeeze_me=True)["class_names"]
    records = np.atleast_1d(scipy.io.loadmat(require(annos, "stanford_cars", layout), squeeze_me=True)["annotations"])
    images = require(cars / f"cars_{split}", "stanford_cars", layout)
    pairs = [(images / str(r["fname"]), int(r["class"]) - 1) for r in records]
    return _on_disk(_labelled(f"stanford_cars {split}", pairs, [str(c) for c in np.atleast_1d(classes)]),
                    "stanford_cars", layout)


def sun397(root: Path, split: str, partition: int = 1) -> ImageSet:
    """SUN397 with one of its ten official train/test partitions."""
    _check_split("sun397", split, ("train", "test"))
    layout = "SUN397/ClassName.txt, SUN397/Partitions/{Training,Testing}_01.txt, SUN397/<l>/<class>/<image>.jpg"
    sun = Path(root).absolute() / "SUN397"
    classes = _lines(require(sun / "ClassName.txt", "sun397", layout))
    part = sun / "Partitions" / f"{'Training' if split == 'train' else 'Testing'}_{partition:02d}.txt"
    index = {c: i for i, c in enumerate(classes)}
    lines = _lines(require(part, "sun397", layout))
    pairs = [(sun / line.lstrip("/"), index[line.rsplit("/", 1)[0]]) for line in lines]
    return _on_disk(_labelled(f"sun397 {split}", pairs, classes), "sun397", layout)


def voc2007(root: Path, split: str) -> ImageSet:
    """PASCAL VOC 2007 multi-label: a class is positive if one of its objects is not ``difficult``."""
    _check_split("voc2007", split, ("train", "val", "trainval", "test"))
    layout = "VOCdevkit/VOC2007/{ImageSets/Main/<split>.txt, Annotations/<id>.xml, JPEGImages/<id>.jpg}"
    voc = Path(root).absolute() / "VOCdevkit" / "VOC2007"
    ids = sorted(_lines(require(voc / "ImageSets" / "Main" / f"{split}.txt", "voc2007", layout)))
    annotations = require(voc / "Annotations", "voc2007", layout)
    images = require(voc / "JPEGImages", "voc2007", layout)
    keep = check_listed("voc2007", layout, {"images": [images / f"{i}.jpg" for i in ids],
                                            "annotations": [annotations / f"{i}.xml" for i in ids]})
    ids = list(compress(ids, keep))
    labels = np.zeros((len(ids), len(VOC_CLASSES)), np.int64)
    objects = np.zeros(len(ids), np.int64)
    for i, image_id in enumerate(ids):
        found = ET.parse(annotations / f"{image_id}.xml").getroot().findall("object")
        objects[i] = len(found)
        for obj in found:
            if int(obj.findtext("difficult", "0")) == 0:
                labels[i, VOC_CLASSES.index(obj.findtext("name").strip())] = 1
    return ImageSet(f"voc2007 {split}", [images / f"{i}.jpg" for i in ids], labels=labels, classes=list(VOC_CLASSES),
                    objects=objects)


def places365(root: Path, split: str) -> ImageSet:
    """Places365-Standard, small (256 px) images, in the folders torchvision's ``Places365`` uses."""
    _check_split("places365", split, ("train", "val"))
    layout = ("places365/{categories_places365.txt, places365_train_standard.txt, places365_val.txt, "
              "data_256_standard/<l>/<class>/*.jpg, val_256/*.jpg}")
    places = Path(root).absolute() / "places365"
    categories = [line.rsplit(" ", 1)
                  for line in _lines(require(places / "categories_places365.txt", "places365", layout))]
    classes = [name for name, _ in sorted(categories, key=lambda c: int(c[1]))]
    listing, folder = (("places365_train_standard.txt", "data_256_standard") if split == "train"
                       else ("places365_val.txt", "val_256"))
    images = require(places / folder, "places365", layout)
    rows = [line.rsplit(" ", 1) for line in _lines(require(places / listing, "places365", layout))]
    pairs = [(images / path.lstrip("/"), int(y)) for path, y in rows]
    return _on_disk(_labelled(f"places365 {split}", pairs, classes), "places365", layout)


PRETRAIN_LOADERS = {"in118k": imagenet_train, "in118k_lt": imagenet_train, "coco": coco_train2017,
                    "oi118k": openimages_v4_train, "bdd100k": bdd100k_train}
TARGET_LOADERS = {"cifar10": cifar10, "cars": stanford_cars, "food": food101, "pets": pets, "places": places365,
                  "sun": sun397, "voc": voc2007, "imagenet": imagenet}
# (train, official val or None, test): with None the caller carves 20% of train as validation.
TARGET_SPLITS = {"cifar10": ("train", None, "test"), "cars": ("train", None, "test"), "food": ("train", None, "test"),
                 "pets": ("trainval", None, "test"), "places": ("train", None, "val"), "sun": ("train", None, "test"),
                 "voc": ("train", "val", "test"), "imagenet": ("train", None, "val")}
