"""Real-dataset loaders on tiny fixtures written in each official on-disk layout."""
import json
import os
import pickle

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from revisit.data.images import MAX_MISSING, DatasetNotFoundError, check_listed, missing_files, read_image
from revisit.data.loaders import (PRETRAIN_LOADERS, TARGET_LOADERS, TARGET_SPLITS, VOC_CLASSES, bdd100k_train,
                                  cifar10, coco_train2017, food101, imagenet_train, openimages_v4_train, pets,
                                  places365, stanford_cars, sun397, voc2007)


def write_jpg(path, size=(12, 8), color=(200, 30, 30)):
    """A small RGB JPEG at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def write_text(path, lines):
    """A text file of ``lines`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_readable(images, i=0):
    """``images[i]`` decodes to a ``uint8`` ``(3, H, W)`` tensor."""
    x = images[i]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.uint8 and x.ndim == 3 and x.shape[0] == 3


def assert_missing_fails(load, path):
    """Deleting ``path``, a file the annotation lists, makes ``load()`` fail naming it: one of a fixture's
    few entries is far above ``MAX_MISSING``."""
    path.unlink()
    with pytest.raises(DatasetNotFoundError, match=rf"1 of \d+ listed .*missing, e\.g\. .*{path.name}"):
        load()


def cars_annotations(rows):
    """A devkit-like ``1 x N`` struct array of ``(fname, class)`` annotations with bounding boxes."""
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    return np.array([[(1, 1, 10, 6, cls, fname) for fname, cls in rows]], dtype=[(f, object) for f in fields])


def voc_xml(objects):
    """A VOC annotation XML for ``(name, difficult)`` objects."""
    body = "".join(f"<object><name>{n}</name><pose>Left</pose><truncated>0</truncated><difficult>{d}</difficult>"
                   "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>"
                   for n, d in objects)
    size = "<size><width>12</width><height>8</height><depth>3</depth></size>"
    return f"<annotation><folder>VOC2007</folder>{size}{body}</annotation>"


def test_imagenet_train(tmp_path):
    """Labels index the sorted wnids; every file is listed."""
    for wnid, n in (("n01440764", 2), ("n01443537", 3)):
        for k in range(n):
            write_jpg(tmp_path / "imagenet" / "train" / wnid / f"{wnid}_{k}.JPEG")
    images = imagenet_train(tmp_path)
    assert len(images) == 5 and images.classes == ["n01440764", "n01443537"]
    assert images.labels.dtype == np.int64 and images.labels.tolist() == [0, 0, 1, 1, 1]
    assert all(f.is_absolute() for f in images.files)
    assert images.files[2].name == "n01443537_0.JPEG"
    assert_readable(images, 4)


def test_imagenet_val_for_the_linear_columns(tmp_path):
    """Tables 4 and 9 read ImageNet val sorted into wnid folders; a wrong split is named."""
    from revisit.data.loaders import imagenet

    for wnid in ("n01440764", "n01443537"):
        write_jpg(tmp_path / "imagenet" / "val" / wnid / f"ILSVRC2012_val_{wnid[-2:]}.JPEG")
    val = imagenet(tmp_path, "val")
    assert len(val) == 2 and val.labels.tolist() == [0, 1] and val.name == "imagenet val"
    with pytest.raises(ValueError, match="imagenet"):
        imagenet(tmp_path, "test")


def test_corrupt_image_gives_none_with_warning(tmp_path):
    """A file that is not an image is skipped (``None``), not a crash."""
    write_jpg(tmp_path / "imagenet" / "train" / "n1" / "good.jpg")
    (tmp_path / "imagenet" / "train" / "n1" / "bad.jpg").write_bytes(np.random.default_rng(0).bytes(300))
    images = imagenet_train(tmp_path)
    bad = [f.name for f in images.files].index("bad.jpg")
    with pytest.warns(UserWarning, match="bad.jpg"):
        assert images[bad] is None
    assert_readable(images, 1 - bad)


def test_truncated_image_gives_none_with_a_warning_naming_it(tmp_path):
    """A JPEG cut in half (PIL: "image file is truncated", raised when decoding) is skipped like a corrupt one."""
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)).save(tmp_path / "whole.jpg")
    whole = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.warns(UserWarning, match=r"cut\.jpg: image file is truncated"):
        assert read_image(tmp_path / "cut.jpg") is None


def test_coco_train2017(tmp_path):
    """Objects per image come from the instances json; images without annotations count 0."""
    for name in ("000000000009.jpg", "000000000025.jpg", "000000000030.jpg"):
        write_jpg(tmp_path / "coco" / "train2017" / name)
    meta = {"images": [{"id": 25, "file_name": "000000000025.jpg", "height": 8, "width": 12},
                       {"id": 9, "file_name": "000000000009.jpg", "height": 8, "width": 12},
                       {"id": 30, "file_name": "000000000030.jpg", "height": 8, "width": 12}],
            "annotations": [{"id": k, "image_id": i, "category_id": c, "bbox": [0, 0, 2, 2], "area": 4, "iscrowd": 0}
                            for k, (i, c) in enumerate([(9, 1), (9, 1), (9, 3), (25, 3)])],
            "categories": [{"id": 3, "name": "car", "supercategory": "vehicle"},
                           {"id": 1, "name": "person", "supercategory": "person"}]}
    (tmp_path / "coco" / "annotations").mkdir()
    (tmp_path / "coco" / "annotations" / "instances_train2017.json").write_text(json.dumps(meta))
    images = coco_train2017(tmp_path)
    assert [f.name for f in images.files] == ["000000000009.jpg", "000000000025.jpg", "000000000030.jpg"]
    assert images.objects.tolist() == [3, 1, 0]
    assert images.classes == ["person", "car"]  # by category id
    assert images.labels.tolist() == [[1, 1], [0, 1], [0, 0]]  # classes present: Table 1's balance, the ceiling
    from revisit.data.stats import class_counts

    assert class_counts(images).tolist() == [1, 2]
    assert_readable(images, 2)
    assert_missing_fails(lambda: coco_train2017(tmp_path), tmp_path / "coco" / "train2017" / "000000000025.jpg")


def test_openimages_v4_train(tmp_path):
    """Only images on disk are listed; box rows are counted per ImageID, 0 for none."""
    for image_id in ("000002b66c9c498e", "000002b97e5471a0", "00000c4a6c3ed6b4"):
        write_jpg(tmp_path / "openimages" / "train" / f"{image_id}.jpg")
    header = ("ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,"
              "IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside")
    rows = [f"{i},xclick,{mid},1,0.1,0.5,0.1,0.5,0,0,0,0,0"
            for i, mid in (("000002b66c9c498e", "/m/01g317"), ("000002b66c9c498e", "/m/0k4j"),
                           ("00000c4a6c3ed6b4", "/m/01g317"), ("ffff_not_on_disk", "/m/02wbm"))]
    write_text(tmp_path / "openimages" / "annotations" / "train-annotations-bbox.csv", [header, *rows])
    images = openimages_v4_train(tmp_path)
    assert [f.stem for f in images.files] == ["000002b66c9c498e", "000002b97e5471a0", "00000c4a6c3ed6b4"]
    assert images.objects.dtype == np.int64 and images.objects.tolist() == [2, 0, 1]
    assert images.classes == ["/m/01g317", "/m/02wbm", "/m/0k4j"]  # every class of the box file, by MID
    assert images.labels.tolist() == [[1, 0, 1], [0, 0, 0], [1, 0, 0]]
    assert images.subset([2]).labels.tolist() == [[1, 0, 0]]  # OI-118K keeps its images' labels
    assert_readable(images)


def test_bdd100k_train(tmp_path):
    """A flat folder of frames, no labels."""
    for name in ("b2.jpg", "a1.jpg"):
        write_jpg(tmp_path / "bdd100k" / "images" / "100k" / "train" / name)
    images = bdd100k_train(tmp_path)
    assert [f.name for f in images.files] == ["a1.jpg", "b2.jpg"]
    assert images.labels is None and images.objects is None
    assert_readable(images)


def test_cifar10(tmp_path):
    """Pickled row-major R, G, B planes decode to ``(N, 32, 32, 3)``; train joins the five batches."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)

    def dump(name, obj):
        with (folder / name).open("wb") as f:
            pickle.dump(obj, f)

    batches = {name: rng.integers(0, 256, (2, 3072), dtype=np.uint8)
               for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]}
    for k, (name, data) in enumerate(batches.items()):
        dump(name, {b"batch_label": name.encode(), b"labels": [k % 3, 2], b"data": data,
                    b"filenames": [b"a.png", b"b.png"]})
    dump("batches.meta", {b"label_names": [b"airplane", b"automobile", b"bird"], b"num_cases_per_batch": 2})
    train, test = cifar10(tmp_path, "train"), cifar10(tmp_path, "test")
    assert len(train) == 10 and len(test) == 2 and train.classes == ["airplane", "automobile", "bird"]
    assert train.labels.dtype == np.int64 and train.labels[:4].tolist() == [0, 2, 1, 2]
    pixel = batches["test_batch"][1]
    assert test.array.shape == (2, 32, 32, 3) and test.array.dtype == np.uint8
    assert test.array[1, 0, 1].tolist() == [pixel[1], pixel[1024 + 1], pixel[2048 + 1]]
    assert torch.equal(test[1][:, 0, 1], torch.tensor(test.array[1, 0, 1]))
    assert_readable(test, 1)


def test_food101(tmp_path):
    """Split json lists ``class/id``; labels follow ``classes.txt``."""
    food = tmp_path / "food-101"
    write_text(food / "meta" / "classes.txt", ["apple_pie", "baby_back_ribs"])
    train_json = {"apple_pie": ["apple_pie/1005649"], "baby_back_ribs": ["baby_back_ribs/100", "baby_back_ribs/22"]}
    (food / "meta" / "train.json").write_text(json.dumps(train_json))
    (food / "meta" / "test.json").write_text(json.dumps({"apple_pie": ["apple_pie/1011328"], "baby_back_ribs": []}))
    for entry in ("apple_pie/1005649", "baby_back_ribs/100", "baby_back_ribs/22", "apple_pie/1011328"):
        write_jpg(food / "images" / f"{entry}.jpg")
    train = food101(tmp_path, "train")
    assert len(train) == 3 and train.classes == ["apple_pie", "baby_back_ribs"]
    labels = dict(zip([f.name for f in train.files], train.labels.tolist()))
    assert labels == {"1005649.jpg": 0, "100.jpg": 1, "22.jpg": 1}
    assert len(food101(tmp_path, "test")) == 1
    assert_readable(train, 2)
    assert_missing_fails(lambda: food101(tmp_path, "train"), food / "images" / "baby_back_ribs" / "22.jpg")


def test_pets(tmp_path):
    """Class ids are 1-based; class names are the image names without their trailing number."""
    pet = tmp_path / "oxford-iiit-pet"
    write_text(pet / "annotations" / "trainval.txt",
               ["Abyssinian_100 1 1 1", "american_bulldog_10 2 2 1", "Abyssinian_101 1 1 1", "basset_hound_1 3 2 3"])
    write_text(pet / "annotations" / "test.txt", ["Abyssinian_1 1 1 1", "basset_hound_2 3 2 3"])
    for name in ("Abyssinian_100", "american_bulldog_10", "Abyssinian_101", "basset_hound_1", "Abyssinian_1",
                 "basset_hound_2"):
        write_jpg(pet / "images" / f"{name}.jpg")
    train = pets(tmp_path, "trainval")
    assert len(train) == 4 and train.classes == ["Abyssinian", "american_bulldog", "basset_hound"]
    assert train.labels[[f.name for f in train.files].index("american_bulldog_10.jpg")] == 1
    test = pets(tmp_path, "test")  # lacks american_bulldog, still has all three classes
    assert test.labels.tolist() == [0, 2] and test.classes == train.classes
    assert_readable(train, 3)
    assert_missing_fails(lambda: pets(tmp_path, "test"), pet / "images" / "basset_hound_2.jpg")


def test_stanford_cars(tmp_path):
    """Devkit ``.mat`` struct arrays; 1-based classes; test labels from the withlabels file."""
    cars = tmp_path / "stanford_cars"
    (cars / "devkit").mkdir(parents=True)
    scipy.io.savemat(cars / "devkit" / "cars_meta.mat",
                     {"class_names": np.array([["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 2012"]],
                                              dtype=object)})
    scipy.io.savemat(cars / "devkit" / "cars_train_annos.mat",
                     {"annotations": cars_annotations([("00001.jpg", 3), ("00002.jpg", 1), ("00003.jpg", 2)])})
    scipy.io.savemat(cars / "cars_test_annos_withlabels.mat",
                     {"annotations": cars_annotations([("00001.jpg", 2), ("00002.jpg", 2)])})
    for folder, n in (("cars_train", 3), ("cars_test", 2)):
        for k in range(1, n + 1):
            write_jpg(cars / folder / f"{k:05d}.jpg")
    train, test = stanford_cars(tmp_path, "train"), stanford_cars(tmp_path, "test")
    assert train.classes == ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 2012"]
    assert [f.name for f in train.files] == ["00001.jpg", "00002.jpg", "00003.jpg"]
    assert train.labels.tolist() == [2, 0, 1]
    assert test.files[0].parent.name == "cars_test" and test.labels.tolist() == [1, 1]
    assert_readable(test, 1)
    assert_missing_fails(lambda: stanford_cars(tmp_path, "train"), cars / "cars_train" / "00002.jpg")


def test_sun397(tmp_path):
    """Partition lines are paths under ``SUN397``; the label is the index of their directory."""
    sun = tmp_path / "SUN397"
    write_text(sun / "ClassName.txt", ["/a/abbey", "/a/apartment_building/outdoor", "/b/beach"])
    write_text(sun / "Partitions" / "Training_01.txt",
               ["/b/beach/sun_b1.jpg", "/a/abbey/sun_a1.jpg", "/a/apartment_building/outdoor/sun_c1.jpg"])
    write_text(sun / "Partitions" / "Testing_01.txt", ["/a/abbey/sun_a2.jpg"])
    for line in ("b/beach/sun_b1.jpg", "a/abbey/sun_a1.jpg", "a/apartment_building/outdoor/sun_c1.jpg",
                 "a/abbey/sun_a2.jpg"):
        write_jpg(sun / line)
    train = sun397(tmp_path, "train")
    assert len(train) == 3 and train.classes[1] == "/a/apartment_building/outdoor"
    labels = dict(zip([f.name for f in train.files], train.labels.tolist()))
    assert labels == {"sun_a1.jpg": 0, "sun_c1.jpg": 1, "sun_b1.jpg": 2}
    assert sun397(tmp_path, "test").files == [sun / "a" / "abbey" / "sun_a2.jpg"]
    assert_readable(train)
    assert_missing_fails(lambda: sun397(tmp_path, "train"), sun / "b" / "beach" / "sun_b1.jpg")


def test_voc2007(tmp_path):
    """Multi-hot over the 20 classes; a class present only as ``difficult`` is negative."""
    voc = tmp_path / "VOCdevkit" / "VOC2007"
    annotations = {"000005": [("chair", 0), ("chair", 0), ("person", 1)],
                   "000007": [("car", 0)],
                   "000009": [("horse", 0), ("person", 0), ("person", 1)]}
    for image_id, objects in annotations.items():
        write_text(voc / "Annotations" / f"{image_id}.xml", [voc_xml(objects)])
        write_jpg(voc / "JPEGImages" / f"{image_id}.jpg")
    write_text(voc / "ImageSets" / "Main" / "trainval.txt", ["000009", "000005", "000007"])
    write_text(voc / "ImageSets" / "Main" / "test.txt", ["000007"])
    images = voc2007(tmp_path, "trainval")
    assert [f.stem for f in images.files] == ["000005", "000007", "000009"] and images.classes == VOC_CLASSES
    assert images.labels.shape == (3, 20) and images.labels.dtype == np.int64
    positives = [[VOC_CLASSES[c] for c in np.flatnonzero(row)] for row in images.labels]
    assert positives == [["chair"], ["car"], ["horse", "person"]]
    assert images.objects.tolist() == [3, 1, 3]
    assert len(voc2007(tmp_path, "test")) == 1
    assert_readable(images, 1)
    assert_missing_fails(lambda: voc2007(tmp_path, "trainval"), voc / "JPEGImages" / "000005.jpg")
    assert_missing_fails(lambda: voc2007(tmp_path, "test"), voc / "Annotations" / "000007.xml")


def test_places365(tmp_path):
    """Train paths live under ``data_256_standard``, val files under ``val_256``."""
    places = tmp_path / "places365"
    write_text(places / "categories_places365.txt", ["/a/airfield 0", "/a/airplane_cabin 1", "/b/beach 2"])
    write_text(places / "places365_train_standard.txt",
               ["/b/beach/00000001.jpg 2", "/a/airfield/00000001.jpg 0", "/a/airplane_cabin/00000001.jpg 1"])
    write_text(places / "places365_val.txt", ["Places365_val_00000001.jpg 2", "Places365_val_00000002.jpg 0"])
    for line in ("b/beach/00000001.jpg", "a/airfield/00000001.jpg", "a/airplane_cabin/00000001.jpg"):
        write_jpg(places / "data_256_standard" / line)
    for k in (1, 2):
        write_jpg(places / "val_256" / f"Places365_val_{k:08d}.jpg")
    train, val = places365(tmp_path, "train"), places365(tmp_path, "val")
    assert train.classes == ["/a/airfield", "/a/airplane_cabin", "/b/beach"]
    assert train.files[2] == places / "data_256_standard" / "b" / "beach" / "00000001.jpg" and train.labels[2] == 2
    assert val.labels.tolist() == [2, 0] and val.files[0].parent.name == "val_256"
    assert_readable(val, 1)
    airfield = places / "data_256_standard" / "a" / "airfield" / "00000001.jpg"
    assert_missing_fails(lambda: places365(tmp_path, "train"), airfield)
    assert_missing_fails(lambda: places365(tmp_path, "val"), places / "val_256" / "Places365_val_00000002.jpg")


def test_missing_dataset_names_dataset_path_and_data_root(tmp_path):
    """Every loader fails on an empty DATA_ROOT with an actionable message."""
    with pytest.raises(DatasetNotFoundError) as err:
        food101(tmp_path, "train")
    message = str(err.value)
    assert "food101" in message and str(tmp_path / "food-101") in message and "DATA_ROOT" in message
    for loader in PRETRAIN_LOADERS.values():
        with pytest.raises(DatasetNotFoundError, match="DATA_ROOT"):
            loader(tmp_path)
    for name, loader in TARGET_LOADERS.items():
        with pytest.raises(DatasetNotFoundError, match="DATA_ROOT"):
            loader(tmp_path, TARGET_SPLITS[name][0])


def test_missing_files_lists_each_folder_once_and_agrees_with_exists(tmp_path, monkeypatch):
    """Each parent folder is listed once (no stat per file, for Places365's 1.8M), with exists()'s answer:
    nested folders, a missing folder, a file named like a folder, repeated entries, a folder entry."""
    for rel in ("a/x.jpg", "a/y.jpg", "a/b/z.jpg", "c.jpg", "d/e/f.jpg"):
        write_jpg(tmp_path / rel)
    rels = ["a/x.jpg", "a/missing.jpg", "a/b/z.jpg", "a/b/Z.jpg", "c.jpg", "c.jpg/inside.jpg", "nope/x.jpg",
            "d/e", "d/e/f.jpg", "a/x.jpg", "a/b/../y.jpg", "d/e/f.jpeg"]
    paths = [tmp_path / rel for rel in rels]
    paths[4] = str(paths[4])  # str and Path alike
    listed = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda folder: listed.append(folder) or real_scandir(folder))
    monkeypatch.setattr(os, "stat", None)  # any per-file stat (exists, is_file) would fail
    missing = missing_files(paths)
    monkeypatch.undo()
    assert missing.tolist() == [not os.path.exists(p) for p in paths]
    assert missing.tolist() == [False, True, False, True, False, True, True, False, False, False, False, True]
    assert sorted(listed) == sorted({os.path.dirname(os.fspath(p)) for p in paths})


def test_check_listed_drops_a_few_missing_entries_and_fails_on_more(tmp_path):
    """Up to MAX_MISSING of the entries may lack a file (dropped, one warning); more is an error. An entry
    is kept only if all its files exist."""
    images = [write_jpg(tmp_path / "img" / f"{k}.jpg") for k in range(200)]
    masks = [tmp_path / "mask" / f"{k}.png" for k in range(200)]
    for m in masks:
        write_text(m, ["x"])
    images[3].unlink()
    masks[150].unlink()
    assert 2 / 200 <= MAX_MISSING < 3 / 200
    with pytest.warns(UserWarning) as caught:
        keep = check_listed("demo", "demo/<layout>", {"images": images, "masks": masks})
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "1 of 200 listed images are missing" in message and "1 of 200 listed masks" in message
    assert "3.jpg" in message and "150.png" in message and "dropping 2 of 200 entries" in message
    assert np.flatnonzero(~keep).tolist() == [3, 150]
    masks[7].unlink()
    with pytest.raises(DatasetNotFoundError, match=r"(?s)demo: 1 of 200 listed images .*2 of 200 listed masks .*"
                                                   r"demo/<layout>"):
        check_listed("demo", "demo/<layout>", {"images": images, "masks": masks})
    assert check_listed("demo", "-", {"images": []}).tolist() == []


def test_stanford_cars_mostly_missing_is_a_dataset_error(tmp_path):
    """A devkit whose images are mostly absent fails at load with the count, not 8141 read-time warnings."""
    cars = tmp_path / "stanford_cars"
    (cars / "devkit").mkdir(parents=True)
    scipy.io.savemat(cars / "devkit" / "cars_meta.mat", {"class_names": np.array([["A", "B", "C"]], dtype=object)})
    scipy.io.savemat(cars / "devkit" / "cars_train_annos.mat",
                     {"annotations": cars_annotations([(f"{k:05d}.jpg", 1 + k % 3) for k in range(1, 8145)])})
    for k in (1, 2, 3):
        write_jpg(cars / "cars_train" / f"{k:05d}.jpg")
    with pytest.raises(DatasetNotFoundError) as err:
        stanford_cars(tmp_path, "train")
    message = str(err.value)
    assert "stanford_cars: 8141 of 8144 listed images are missing" in message
    assert str(cars / "cars_train" / "00004.jpg") in message and "cars_{train,test}/<fname>" in message


def test_food101_entries_matching_no_file_are_a_dataset_error(tmp_path):
    """A split json naming files that are not there fails at load, before any classifier sees 0 samples."""
    food = tmp_path / "food-101"
    write_text(food / "meta" / "classes.txt", ["apple_pie", "ramen"])
    (food / "meta" / "train.json").write_text(json.dumps({"apple_pie": ["apple_pie/1"], "ramen": ["ramen/2"]}))
    write_jpg(food / "images" / "apple_pie" / "1.jpeg")  # wrong extension: the listed file is missing
    with pytest.raises(DatasetNotFoundError, match=r"food101: 2 of 2 listed images are missing.*food-101/images"):
        food101(tmp_path, "train")


def test_a_few_missing_images_are_dropped_with_their_labels(tmp_path):
    """Below MAX_MISSING: one warning with the count; the files and labels left still belong together."""
    places = tmp_path / "places365"
    write_text(places / "categories_places365.txt", ["/a/airfield 0", "/b/beach 1"])
    rows = [f"/{'a/airfield' if k % 2 else 'b/beach'}/{k:08d}.jpg {k % 2 == 0:d}" for k in range(150)]
    write_text(places / "places365_train_standard.txt", rows)
    for row in rows:
        write_jpg(places / "data_256_standard" / row.split()[0].lstrip("/"))
    (places / "data_256_standard" / "b" / "beach" / "00000010.jpg").unlink()
    with pytest.warns(UserWarning, match=r"places365: 1 of 150 listed images are missing, e\.g\. .*00000010") as caught:
        train = places365(tmp_path, "train")
    assert len(caught) == 1 and len(train) == 149
    assert "00000010.jpg" not in [f.name for f in train.files]
    assert all(label == (f.parent.name == "beach") for f, label in zip(train.files, train.labels))


@pytest.mark.parametrize("name", sorted(TARGET_LOADERS))
def test_unknown_split_raises(tmp_path, name):
    """A split the dataset does not ship is a ValueError listing the allowed ones."""
    with pytest.raises(ValueError, match="allowed"):
        TARGET_LOADERS[name](tmp_path, "validation")


def test_target_splits_are_accepted_by_their_loaders():
    """Every split named in TARGET_SPLITS is one the loader knows (no ValueError before the data check)."""
    for name, splits in TARGET_SPLITS.items():
        for split in filter(None, splits):
            with pytest.raises(DatasetNotFoundError):
                TARGET_LOADERS[name]("/nonexistent-data-root", split)


def test_real_pretraining_subset_is_saved_and_targets_get_a_val_split(tmp_path, monkeypatch):
    """The run-facing paths on real layouts: IN-118K-LT subset with its file list, a carved val split."""
    from revisit.config import LinearParams, PretrainParams
    from revisit.data import pretrain_images, target_splits

    for c, n in (("n01", 6), ("n02", 4), ("n03", 2)):
        for i in range(n):
            write_jpg(tmp_path / "imagenet" / "train" / c / f"{c}_{i}.JPEG")
    monkeypatch.setenv("DATA_ROOT", str(tmp_path))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    images = pretrain_images(PretrainParams(dataset="in118k_lt", images=7), run_dir)
    saved = (run_dir / "subset_files.txt").read_text().splitlines()
    assert len(images) == 7 and saved == [str(f) for f in images.files]
    assert np.bincount(images.labels, minlength=3).max() <= 6

    food = tmp_path / "food-101"
    write_text(food / "meta" / "classes.txt", ["apple_pie", "ramen"])
    entries = {"apple_pie": [f"apple_pie/{i}" for i in range(5)], "ramen": [f"ramen/{i}" for i in range(5)]}
    (food / "meta" / "train.json").write_text(json.dumps(entries))
    (food / "meta" / "test.json").write_text(json.dumps({"apple_pie": ["apple_pie/9"], "ramen": ["ramen/9"]}))
    for entry in [*entries["apple_pie"], *entries["ramen"], "apple_pie/9", "ramen/9"]:
        write_jpg(food / "images" / f"{entry}.jpg")
    splits = target_splits("food", LinearParams(source="real", targets=("food",)))
    assert [len(splits[k]) for k in ("train", "val", "test")] == [8, 2, 2]  # val: 20% of the official train
    assert not set(splits["train"].files) & set(splits["val"].files)
