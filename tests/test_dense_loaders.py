"""Dense-transfer loaders on tiny fixtures written in each official on-disk layout."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from revisit.data.dense import DenseSet, Video, read_label_png
from revisit.data.dense_loaders import (CITYSCAPES_CLASSES, DENSE_LOADERS, NYUD_CLASSES, VOC_SEG_CLASSES, cityscapes,
                                        cityscapes_train_ids, davis2017, nyud, nyud_void_to_ignore, read_voc_boxes,
                                        voc2012_segmentation, voc_detection)
from revisit.data.images import DatasetFormatError, DatasetNotFoundError
from revisit.data.loaders import VOC_CLASSES

H, W = 8, 12


def write_image(path, color=(200, 30, 30)):
    """A small 12 x 8 RGB image at ``path`` (JPEG or PNG from the suffix; parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (W, H), color).save(path)
    return path


def write_label(path, array, palette=False):
    """A label PNG of ``array`` (uint8): grey, or palette-indexed like VOC/DAVIS."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.asarray(array, np.uint8), mode="L")
    if palette:
        img = img.convert("P")
        img.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)])
    img.save(path)
    return path


def write_text(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def label_map(values):
    """An ``H x W`` map: ``values[0]`` everywhere, then a top-left, a bottom-right block for the others."""
    arr = np.full((H, W), values[0], np.uint8)
    arr[:4, :6] = values[1]
    if len(values) > 2:
        arr[4:, 6:] = values[2]
    return arr


def truncate(path):
    """Cut ``path`` in half, as an interrupted copy does."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def assert_missing_fails(load, path):
    """Deleting ``path``, a file the list implies, makes ``load()`` fail naming it (1 of a few > MAX_MISSING)."""
    path.unlink()
    with pytest.raises(DatasetNotFoundError, match=rf"1 of \d+ listed .*missing, e\.g\. .*{path.name}"):
        load()


def assert_image(image):
    assert isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and tuple(image.shape) == (3, H, W)


# ---------------------------------------------------------------- VOC 2012 segmentation

@pytest.fixture
def voc_seg_root(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for i in ("2007_000032", "2007_000033", "2008_000001"):
        write_image(voc / "JPEGImages" / f"{i}.jpg")
    write_label(voc / "SegmentationClass" / "2007_000032.png", label_map([0, 15, 255]), palette=True)
    write_label(voc / "SegmentationClass" / "2007_000033.png", label_map([0, 1]), palette=True)
    write_label(voc / "SegmentationClassAug" / "2007_000032.png", label_map([0, 15, 255]))
    write_label(voc / "SegmentationClassAug" / "2008_000001.png", label_map([0, 7, 255]))
    sets = voc / "ImageSets" / "Segmentation"
    write_text(sets / "train.txt", ["2007_000032"])
    write_text(sets / "val.txt", ["2007_000033"])
    # DeepLab's list: image and label paths per line
    write_text(sets / "train_aug.txt", ["/JPEGImages/2008_000001.jpg /SegmentationClassAug/2008_000001.png",
                                        "/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png"])
    return tmp_path


def test_voc_segmentation_train_and_val_read_palette_pngs(voc_seg_root):
    """Palette indices are class ids; 255 (void) is kept as the ignore index."""
    train = voc2012_segmentation(voc_seg_root, "train")
    assert isinstance(train, DenseSet) and train.task == "segmentation" and len(train) == 1
    assert train.classes[0] == "background" and train.classes[15] == "person" and len(train.classes) == 21
    assert train.classes[1:] == VOC_CLASSES
    assert train.targets[0].parent.name == "SegmentationClass"
    image, target = train[0]
    assert_image(image)
    assert target.dtype == torch.int64 and tuple(target.shape) == (H, W)
    assert target[0, 0] == 15 and target[7, 11] == 255 and target[0, 11] == 0
    val = voc2012_segmentation(voc_seg_root, "val")
    assert len(val) == 1 and val.images[0].name == "2007_000033.jpg" and val[0][1][0, 0] == 1


def test_voc_segmentation_train_aug_reads_deeplab_list_and_aug_labels(voc_seg_root):
    train_aug = voc2012_segmentation(voc_seg_root, "train_aug")
    assert [p.stem for p in train_aug.images] == ["2007_000032", "2008_000001"]
    assert all(p.parent.name == "SegmentationClassAug" for p in train_aug.targets)
    target = train_aug[1][1]
    assert target[0, 0] == 7 and target[7, 11] == 255 and target[0, 11] == 0


def test_voc_segmentation_missing_train_aug_says_where_it_comes_from(voc_seg_root):
    (voc_seg_root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "train_aug.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="SBD") as err:
        voc2012_segmentation(voc_seg_root, "train_aug")
    assert "SegmentationClassAug" in str(err.value) and "10582" in str(err.value)


def test_voc_segmentation_missing_image_or_mask_is_a_dataset_error(voc_seg_root):
    """A listed image or mask absent from disk fails at load, not as a bare FileNotFoundError at read time."""
    voc = voc_seg_root / "VOCdevkit" / "VOC2012"
    assert_missing_fails(lambda: voc2012_segmentation(voc_seg_root, "val"),
                         voc / "SegmentationClass" / "2007_000033.png")
    assert_missing_fails(lambda: voc2012_segmentation(voc_seg_root, "train_aug"),
                         voc / "JPEGImages" / "2008_000001.jpg")


def test_voc_segmentation_a_few_missing_masks_are_dropped_with_their_images(tmp_path):
    """Below MAX_MISSING: one warning, and the images and masks left still pair up."""
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    ids = [f"2008_{k:06d}" for k in range(150)]
    for i in ids:
        write_image(voc / "JPEGImages" / f"{i}.jpg")
        write_label(voc / "SegmentationClass" / f"{i}.png", label_map([0, 1]), palette=True)
    write_text(voc / "ImageSets" / "Segmentation" / "train.txt", ids)
    (voc / "SegmentationClass" / "2008_000042.png").unlink()
    with pytest.warns(UserWarning, match="1 of 150 listed SegmentationClass masks are missing") as caught:
        train = voc2012_segmentation(tmp_path, "train")
    assert len(caught) == 1 and len(train) == 149
    assert [p.stem for p in train.images] == [p.stem for p in train.targets] == [i for i in ids if i != "2008_000042"]


def test_unreadable_label_png_is_an_error_naming_it(voc_seg_root):
    """A truncated mask is a DatasetFormatError naming the file: targets are read on their own by several
    protocols, so it is not skipped silently."""
    mask = truncate(voc_seg_root / "VOCdevkit" / "VOC2012" / "SegmentationClass" / "2007_000033.png")
    with pytest.raises(DatasetFormatError, match=f"(?i){mask}.*truncated"):
        read_label_png(mask)
    val = voc2012_segmentation(voc_seg_root, "val")
    with pytest.raises(DatasetFormatError, match="2007_000033.png"):
        val[0]


def test_voc_segmentation_missing_folder_and_bad_split(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="VOCdevkit/VOC2012"):
        voc2012_segmentation(tmp_path, "val")
    with pytest.raises(ValueError, match="trainaug"):
        voc2012_segmentation(tmp_path, "trainaug")


# ---------------------------------------------------------------- Cityscapes

def write_cityscapes(root, split, city, frame, ids):
    stem = f"{city}_000000_{frame:06d}"
    write_image(root / "cityscapes" / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
    write_label(root / "cityscapes" / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label_map(ids))


def test_cityscapes_train_id_table():
    """Official cityscapesScripts trainIds; void and ignored-in-eval ids become 255."""
    ids = np.array([7, 8, 11, 24, 26, 31, 33, 0, 1, 6, 9, 10, 14, 29, 30, 34, 255])
    assert cityscapes_train_ids(ids).tolist() == [0, 1, 2, 11, 13, 16, 18] + [255] * 10
    assert cityscapes_train_ids(ids).dtype == np.int64


def test_cityscapes_loader_maps_label_ids(tmp_path):
    write_cityscapes(tmp_path, "train", "zurich", 19, [7, 26, 29])
    write_cityscapes(tmp_path, "train", "aachen", 19, [0, 33, 24])
    write_cityscapes(tmp_path, "val", "frankfurt", 1, [21, 23])
    train = cityscapes(tmp_path, "train")
    assert len(train) == 2 and [p.parent.name for p in train.images] == ["aachen", "zurich"]
    assert train.targets[0].name == "aachen_000000_000019_gtFine_labelIds.png"
    assert train.classes == ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
                             "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus",
                             "train", "motorcycle", "bicycle"]
    assert CITYSCAPES_CLASSES == train.classes
    image, target = train[0]
    assert_image(image)
    assert target[7, 0] == 255 and target[0, 0] == 18 and target[7, 11] == 11  # unlabeled, bicycle, person
    target = train[1][1]
    assert target[7, 0] == 0 and target[0, 0] == 13 and target[7, 11] == 255  # road, car, caravan
    val = cityscapes(tmp_path, "val")
    assert len(val) == 1 and val[0][1][7, 0] == 8 and val[0][1][0, 0] == 10  # vegetation, sky
    # DataLoader workers pickle the dataset, mapping included
    again = pickle.loads(pickle.dumps(train))
    assert torch.equal(again[1][1], target)
    labels = tmp_path / "cityscapes" / "gtFine" / "train" / "zurich" / "zurich_000000_000019_gtFine_labelIds.png"
    assert_missing_fails(lambda: cityscapes(tmp_path, "train"), labels)


def test_cityscapes_missing_and_bad_split(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="gtFine_labelIds"):
        cityscapes(tmp_path, "train")
    with pytest.raises(ValueError, match="cityscapes"):
        cityscapes(tmp_path, "test")


# ---------------------------------------------------------------- NYUD-v2

@pytest.fixture
def nyud_root(tmp_path):
    folder = tmp_path / "NYUD_MT"
    for k, i in enumerate(("0001", "0002", "0003")):
        write_image(folder / "images" / f"{i}.jpg")
        write_label(folder / "segmentation" / f"{i}.png", label_map([0, 1, 40 - k]))
        depth = np.full((H, W), 1.5 + k, np.float32)
        depth[0, 0] = 0.0
        (folder / "depth").mkdir(exist_ok=True)
        np.save(folder / "depth" / f"{i}.npy", depth)
    write_text(folder / "gt_sets" / "train.txt", ["0001", "0002"])
    write_text(folder / "gt_sets" / "val.txt", ["0003"])
    return tmp_path


def test_nyud_segmentation_void_becomes_ignore(nyud_root):
    """PNG 0 (void) -> 255 and class k -> k - 1, as the multi-task benchmark's loader."""
    assert nyud_void_to_ignore(np.array([0, 1, 2, 40])).tolist() == [255, 0, 1, 39]
    train = nyud(nyud_root, "train", "segmentation")
    assert len(train) == 2 and train.task == "segmentation"
    assert len(NYUD_CLASSES) == 40 and train.classes[0] == "wall" and train.classes[39] == "otherprop"
    image, target = train[0]
    assert_image(image)
    assert target[7, 0] == 255 and target[0, 0] == 0 and target[7, 11] == 39
    val = nyud(nyud_root, "val", "segmentation")
    assert len(val) == 1 and val[0][1][7, 11] == 37
    assert torch.equal(pickle.loads(pickle.dumps(val))[0][1], val[0][1])


def test_nyud_depth_in_metres(nyud_root):
    val = nyud(nyud_root, "val", "depth")
    assert val.task == "depth" and len(val) == 1
    depth = val[0][1]
    assert depth.dtype == torch.float32 and tuple(depth.shape) == (H, W)
    assert depth[0, 0] == 0.0 and depth[3, 3] == pytest.approx(3.5)


def test_nyud_missing_listed_files_are_dataset_errors(nyud_root):
    folder = nyud_root / "NYUD_MT"
    assert_missing_fails(lambda: nyud(nyud_root, "train", "depth"), folder / "depth" / "0002.npy")
    assert_missing_fails(lambda: nyud(nyud_root, "train", "segmentation"), folder / "segmentation" / "0001.png")
    assert_missing_fails(lambda: nyud(nyud_root, "val", "depth"), folder / "images" / "0003.jpg")


def test_nyud_missing_folder_bad_split_and_task(nyud_root, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DatasetNotFoundError, match="NYUD_MT/.*gt_sets"):
        nyud(empty, "train", "depth")
    for child in (nyud_root / "NYUD_MT" / "depth").iterdir():
        child.unlink()
    (nyud_root / "NYUD_MT" / "depth").rmdir()
    with pytest.raises(DatasetNotFoundError, match="depth/<id>.npy"):
        nyud(nyud_root, "train", "depth")
    with pytest.raises(ValueError, match="nyud"):
        nyud(nyud_root, "test", "segmentation")
    with pytest.raises(ValueError, match="normals"):
        nyud(nyud_root, "train", "normals")


# ---------------------------------------------------------------- VOC detection

def voc_xml(objects, difficult_tag=True):
    """A VOC annotation XML for ``(name, difficult, (xmin, ymin, xmax, ymax))`` objects."""
    body = ""
    for name, difficult, (x0, y0, x1, y1) in objects:
        flag = f"<difficult>{difficult}</difficult>" if difficult_tag else ""
        body += (f"<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>{flag}"
                 f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
    return f"<annotation><size><width>{W}</width><height>{H}</height><depth>3</depth></size>{body}</annotation>"


@pytest.fixture
def voc_det_root(tmp_path):
    def add(year, image_id, objects, difficult_tag=True):
        voc = tmp_path / "VOCdevkit" / f"VOC{year}"
        write_image(voc / "JPEGImages" / f"{image_id}.jpg")
        write_text(voc / "Annotations" / f"{image_id}.xml", [voc_xml(objects, difficult_tag)])

    add("2007", "000005", [("dog", 0, (1, 2, 5, 6)), ("person", 1, (3, 1, 12, 8))])
    add("2007", "000001", [("aeroplane", 0, (1, 1, 12, 8))])
    add("2012", "2008_000002", [("tvmonitor", 0, (2.0, 3.0, 7.0, 8.0))], difficult_tag=False)
    for year, image_set, ids in (("2007", "trainval", ["000005"]), ("2007", "test", ["000001"]),
                                 ("2012", "trainval", ["2008_000002"])):
        write_text(tmp_path / "VOCdevkit" / f"VOC{year}" / "ImageSets" / "Main" / f"{image_set}.txt", ids)
    return tmp_path


def test_voc_boxes_are_detectron2_style_and_difficult_kept(voc_det_root):
    """xmin, ymin - 1 (1-based inclusive -> 0-based); difficult objects kept and flagged."""
    boxes = read_voc_boxes(voc_det_root / "VOCdevkit" / "VOC2007" / "Annotations" / "000005.xml")
    assert boxes.boxes.dtype == np.float32 and boxes.boxes.tolist() == [[0, 1, 5, 6], [2, 0, 12, 8]]
    assert boxes.labels.dtype == np.int64 and boxes.labels.tolist() == [VOC_CLASSES.index("dog"), 14]
    assert boxes.difficult.dtype == bool and boxes.difficult.tolist() == [False, True]


def test_voc_detection_07_12_union_and_07_test(voc_det_root):
    train = voc_detection(voc_det_root, "07+12_trainval")
    assert train.task == "detection" and train.classes == VOC_CLASSES and len(train) == 2
    assert [p.parent.parent.name for p in train.images] == ["VOC2007", "VOC2012"]
    image, target = train[1]
    assert_image(image)
    assert target.labels.tolist() == [19] and target.boxes.tolist() == [[1, 2, 7, 8]]
    assert target.difficult.tolist() == [False]  # no <difficult> tag -> not difficult
    test = voc_detection(voc_det_root, "07_test")
    assert len(test) == 1 and test.images[0].stem == "000001" and test[0][1].boxes.tolist() == [[0, 0, 12, 8]]
    assert len(voc_detection(voc_det_root, "2012_trainval")) == 1
    assert voc_detection(voc_det_root, "2007_trainval").images[0].stem == "000005"
    voc12 = voc_det_root / "VOCdevkit" / "VOC2012"
    assert_missing_fails(lambda: voc_detection(voc_det_root, "07+12_trainval"),
                         voc12 / "Annotations" / "2008_000002.xml")
    assert_missing_fails(lambda: voc_detection(voc_det_root, "07_test"),
                         voc_det_root / "VOCdevkit" / "VOC2007" / "JPEGImages" / "000001.jpg")


def test_voc_detection_missing_year_and_bad_split(voc_det_root):
    (voc_det_root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main" / "trainval.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="ImageSets/Main"):
        voc_detection(voc_det_root, "07+12_trainval")
    assert len(voc_detection(voc_det_root, "07_test")) == 1
    with pytest.raises(ValueError, match="07_test"):
        voc_detection(voc_det_root, "test")


# ---------------------------------------------------------------- DAVIS-2017

def write_davis_sequence(root, seq, n_frames, n_masks=None):
    davis = root / "DAVIS"
    for t in reversed(range(n_frames)):  # written out of order: the loader sorts by name
        write_image(davis / "JPEGImages" / "480p" / seq / f"{t:05d}.jpg", color=(10 * t, 0, 0))
    for t in range(n_frames if n_masks is None else n_masks):
        write_label(davis / "Annotations" / "480p" / seq / f"{t:05d}.png", label_map([0, 1, 2 if t == 0 else 0]),
                    palette=True)


def test_davis_sequences_sorted_frames_and_objects(tmp_path):
    write_davis_sequence(tmp_path, "bear", 3)
    write_davis_sequence(tmp_path, "blackswan", 2)
    write_text(tmp_path / "DAVIS" / "ImageSets" / "2017" / "val.txt", ["blackswan", "bear"])
    videos = davis2017(tmp_path, "val")
    assert [v.name for v in videos] == ["bear", "blackswan"] and all(isinstance(v, Video) for v in videos)
    bear = videos[0]
    assert len(bear) == 3 and [p.name for p in bear.frames] == ["00000.jpg", "00001.jpg", "00002.jpg"]
    assert [p.name for p in bear.masks] == ["00000.png", "00001.png", "00002.png"]
    assert bear.frame(0).shape == (H, W, 3) and bear.frame(2)[0, 0, 0] > bear.frame(0)[0, 0, 0]
    assert bear.objects() == [1, 2]
    assert bear.mask(1)[0, 0] == 1 and bear.mask(1)[7, 11] == 0 and bear.mask(0)[7, 11] == 2


def test_davis_frame_annotation_mismatch_names_the_sequence(tmp_path):
    write_davis_sequence(tmp_path, "bear", 3, n_masks=2)
    write_text(tmp_path / "DAVIS" / "ImageSets" / "2017" / "val.txt", ["bear"])
    with pytest.raises(DatasetNotFoundError, match="'bear' has 3 frames but 2 annotations"):
        davis2017(tmp_path)


def test_davis_missing_sequence_folder_is_named(tmp_path):
    write_davis_sequence(tmp_path, "bear", 3)
    write_davis_sequence(tmp_path, "blackswan", 3)
    write_text(tmp_path / "DAVIS" / "ImageSets" / "2017" / "val.txt", ["bear", "blackswan", "camel"])
    with pytest.raises(DatasetNotFoundError, match=r"1 of 3 listed JPEGImages/480p sequence folders .*camel"):
        davis2017(tmp_path)


def test_davis_2016_binary_masks_are_a_format_error_at_load(tmp_path):
    """0/255 masks (DAVIS-2016) have no object id: named at load, not a reshape error after propagation."""
    write_davis_sequence(tmp_path, "bear", 3)
    for t in range(3):
        write_label(tmp_path / "DAVIS" / "Annotations" / "480p" / "bear" / f"{t:05d}.png", label_map([0, 255]))
    write_text(tmp_path / "DAVIS" / "ImageSets" / "2017" / "val.txt", ["bear"])
    with pytest.raises(DatasetFormatError) as err:
        davis2017(tmp_path)
    message = str(err.value)
    assert "'bear'" in message and "00000.png" in message and "[0, 255]" in message
    assert "palette" in message and "object id" in message and "DAVIS-2016" in message


def test_davis_unreadable_frame_is_dropped_with_its_mask(tmp_path):
    """A truncated frame is skipped with a warning naming it and its sequence; evaluation then runs."""
    from revisit.dense.propagation import PropagationParams, evaluate_davis

    write_davis_sequence(tmp_path, "bear", 5)
    write_text(tmp_path / "DAVIS" / "ImageSets" / "2017" / "val.txt", ["bear"])
    frame = tmp_path / "DAVIS" / "JPEGImages" / "480p" / "bear" / "00002.jpg"
    frame.write_bytes(frame.read_bytes()[:300])
    with pytest.warns(UserWarning, match=r"'bear'.*00002\.jpg") as caught:
        (bear,) = davis2017(tmp_path)
    assert len(caught) == 1
    assert [p.stem for p in bear.frames] == [p.stem for p in bear.masks] == ["00000", "00001", "00003", "00004"]
    result = evaluate_davis(torch.nn.AvgPool2d(4), [bear], PropagationParams(context=2, radius=4), progress=False)
    assert 0 <= result["JF"] <= 1
    truncate(tmp_path / "DAVIS" / "Annotations" / "480p" / "bear" / "00003.png")  # an unreadable mask: the same
    with pytest.warns(UserWarning) as caught:
        (bear,) = davis2017(tmp_path)
    assert [p.stem for p in bear.frames] == [p.stem for p in bear.masks] == ["00000", "00001", "00004"]
    assert [m for w in caught for m in ("00002.jpg", "00003.png") if m in str(w.message)] == ["00002.jpg", "00003.png"]


def test_davis_unreadable_first_frame_is_an_error(tmp_path):
    """Frame 0 and its annotation start the propagation: an unreadable one is an error naming it."""
    write_davis_sequence(tmp_path, "bear", 3)
    write_text(tmp_path / "DAVIS" / "ImageSets" / "2017" / "val.txt", ["bear"])
    frame = tmp_path / "DAVIS" / "JPEGImages" / "480p" / "bear" / "00000.jpg"
    frame.write_bytes(frame.read_bytes()[:300])
    with pytest.raises(DatasetFormatError, match=r"'bear'.*00000\.jpg.*frame 0"):
        davis2017(tmp_path)


def test_davis_missing_bad_split_and_resolution(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="ImageSets/2017"):
        davis2017(tmp_path, "val")
    with pytest.raises(ValueError, match="davis2017"):
        davis2017(tmp_path, "test-dev")
    with pytest.raises(ValueError, match="resolution"):
        davis2017(tmp_path, "val", "1080p")


# ---------------------------------------------------------------- registry

def test_registry_splits_are_accepted_by_their_loaders(tmp_path):
    """Every registered (train, test) split passes the split check and reaches the layout check."""
    assert set(DENSE_LOADERS) == {"voc_seg", "cityscapes_seg", "nyud_seg", "nyud_depth", "voc_det", "davis"}
    assert DENSE_LOADERS["voc_seg"].train == "train_aug" and DENSE_LOADERS["voc_det"].test == "07_test"
    assert DENSE_LOADERS["davis"].train is None
    for name, source in DENSE_LOADERS.items():
        for split in (source.train, source.test):
            if split is not None:
                with pytest.raises(DatasetNotFoundError):
                    source.load(tmp_path, split)


def test_registry_nyud_entries_pick_the_task(nyud_root):
    assert DENSE_LOADERS["nyud_depth"].load(nyud_root, "val").task == "depth"
    seg = DENSE_LOADERS["nyud_seg"].load(nyud_root, DENSE_LOADERS["nyud_seg"].train)
    assert seg.task == "segmentation" and len(seg) == 2 and VOC_SEG_CLASSES[0] == "background"
