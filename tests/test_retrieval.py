"""Segment retrieval (Table 6, App. A.7): known answers with hand-built feature maps."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from revisit.augment import IMAGENET_MEAN, IMAGENET_STD
from revisit.backbones import build_backbone
from revisit.data.dense import DenseSet
from revisit.data.loaders import VOC_CLASSES
from revisit.dense.retrieval import (SUBSET_7, Regions, RetrievalParams, cluster, examples, feature_map,
                                     region_descriptors, segment_retrieval)

CLASSES = ["background"] + VOC_CLASSES
CAR, DOG, CAT, PERSON = (CLASSES.index(c) for c in ("car", "dog", "cat", "person"))
SIZE, BLOCK = 32, 4  # images of 8 x 8 blocks; the fake net's feature cells are the blocks
PARAMS = RetrievalParams(image_size=SIZE, batch_size=4, n_init=1)


class ClassFeatures(nn.Module):
    """Fake feature map: the class a block's red value encodes (10 x class), one-hot, at stride ``BLOCK``.

    ``alias`` maps a class to another's feature, to make two classes indistinguishable.
    """

    def __init__(self, alias=None):
        super().__init__()
        self.alias = alias or {}

    def forward(self, x):
        mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        red = (x * std + mean)[:, 0] * 255
        label = torch.round(F.avg_pool2d(red[:, None], BLOCK)[:, 0] / 10).long()
        for a, b in self.alias.items():
            label[label == a] = b
        return F.one_hot(label, len(CLASSES)).permute(0, 3, 1, 2).float()


def toy_set(label_blocks, ignore_border=True):
    """A DenseSet whose images paint each 4 x 4 block with its class's red value; targets = the blocks,
    with a 1-pixel 255 border per image (ignored pixels must not count)."""
    labels = np.stack([np.kron(np.asarray(b), np.ones((BLOCK, BLOCK), np.int64)) for b in label_blocks])
    images = np.zeros(labels.shape + (3,), np.uint8)
    images[..., 0] = 10 * labels
    images[..., 1] = 128
    targets = labels.copy()
    if ignore_border:
        targets[:, 0, :] = 255
    return DenseSet("toy", "segmentation", CLASSES, images, targets)


def blocks(*regions, size=SIZE // BLOCK):
    """An 8 x 8 block map, background with rectangles ``(class, r0, r1, c0, c1)``."""
    b = np.zeros((size, size), np.int64)
    for c, r0, r1, c0, c1 in regions:
        b[r0:r1, c0:c1] = c
    return b


def test_class_encoding_features_retrieve_perfectly():
    train = toy_set([blocks((CAR, 0, 4, 0, 4), (PERSON, 4, 8, 4, 8)), blocks((CAT, 2, 6, 2, 6), (DOG, 0, 2, 6, 8))])
    val = toy_set([blocks((PERSON, 0, 3, 0, 8)), blocks((CAT, 4, 8, 0, 4), (CAR, 0, 3, 5, 8)),
                   blocks((DOG, 1, 7, 1, 7))])
    result = segment_retrieval(ClassFeatures(), train, val, PARAMS, progress=False)
    assert result.miou_21 == pytest.approx(100) and result.miou_7 == pytest.approx(100)
    present = [CLASSES.index(c) for c in ("background", "car", "cat", "dog", "person")]
    assert np.allclose(np.asarray(result.per_class_21)[present], 100)
    assert np.isnan(np.delete(result.per_class_21, present)).all()
    assert result.subset == list(SUBSET_7) and len(result.per_class_7) == 7
    # one region per class present in each image (K clipped to the distinct features)
    assert result.n_train_regions == 3 + 3 and result.n_val_regions == 2 + 3 + 2
    assert result.n_train == 2 and result.n_val == 3 and result.skipped_images == 0
    for ex in examples(result, count=2, neighbours=2):
        assert ex.train_labels[0] == ex.val_label != 0
        assert ex.val_mask.shape == (SIZE // BLOCK,) * 2 and ex.val_mask.dtype == bool
        assert len(ex.train_masks) == 2 and ex.train_masks[0].any()


def test_constant_features_retrieve_poorly():
    class Constant(nn.Module):
        def forward(self, x):
            return torch.ones(len(x), 4, SIZE // BLOCK, SIZE // BLOCK)

    train = toy_set([blocks((CAR, 0, 4, 0, 4)), blocks((PERSON, 2, 6, 2, 6))])
    val = toy_set([blocks((PERSON, 0, 3, 0, 8)), blocks((CAR, 4, 8, 0, 4))])
    result = segment_retrieval(Constant(), train, val, PARAMS, progress=False)
    assert result.n_val_regions == 2  # one region per image: nothing to cluster
    assert result.miou_21 < 40 and result.miou_7 < 40
    # the bootstrap's per-image record gives back the 7-class score (background out of the mean)
    assert result.predictions.score == "miou_fg" and len(result.predictions) == 2
    assert result.predictions.value() == pytest.approx(result.miou_7)


def test_seven_class_subset_ignores_the_other_classes():
    # dog looks exactly like car: in val, dog pixels are predicted car
    train = toy_set([blocks((CAR, 0, 4, 0, 4))])
    val = toy_set([blocks((CAR, 0, 2, 0, 8), (DOG, 4, 8, 0, 8))], ignore_border=False)
    result = segment_retrieval(ClassFeatures(alias={DOG: CAR}), train, val, PARAMS, progress=False)
    car_px, dog_px = 2 * 8 * BLOCK ** 2, 4 * 8 * BLOCK ** 2
    assert result.per_class_21[CAR] == pytest.approx(100 * car_px / (car_px + dog_px))
    assert result.per_class_21[DOG] == pytest.approx(0)
    # 7 classes: dog pixels become 255, car is perfect; background is not in the mean
    assert result.per_class_7[SUBSET_7.index("car")] == pytest.approx(100)
    assert result.miou_7 == pytest.approx(100) and result.predictions.value() == pytest.approx(100)


def test_majority_labels_respect_the_kept_classes():
    counts = np.zeros((3, len(CLASSES)), np.int64)
    counts[0, [DOG, CAR]] = [10, 3]  # mostly dog
    counts[1, [0, CAT]] = [5, 5]  # tie: lower class id
    regions = Regions(np.zeros((3, 2), np.float32), np.zeros(3, np.int64), [None], counts)  # region 2: all ignore
    assert regions.labels().tolist() == [DOG, 0, 255]
    keep = [0] + [CLASSES.index(c) for c in SUBSET_7]
    assert regions.labels(keep).tolist() == [CAR, 0, 255]
    assert regions.labels([DOG]).tolist() == [DOG, 255, 255]


def test_cluster_clips_k_to_the_number_of_positions():
    x = np.eye(4, dtype=np.float32)
    labels = cluster(x, 15, seed=0)
    assert sorted(labels.tolist()) == [0, 1, 2, 3]
    duplicates = np.repeat(np.eye(2, dtype=np.float32), 5, axis=0)
    labels = cluster(duplicates, 15)
    assert labels.max() == 1 and len(set(labels[:5])) == 1 and len(set(labels[5:])) == 1


def test_region_descriptors_are_normalised_means_and_maps_index_them():
    train = toy_set([blocks((CAR, 0, 4, 0, 4)), blocks((CAT, 0, 8, 0, 2))])
    regions = region_descriptors(ClassFeatures(), train, PARAMS, progress=False)
    assert np.allclose(np.linalg.norm(regions.descriptors, axis=1), 1)
    assert regions.image.tolist() == [0, 0, 1, 1]
    for i, m in enumerate(regions.maps):
        assert set(np.unique(m)) == set(np.flatnonzero(regions.image == i))
    # counts at the target's resolution, the 255 top row left out
    car = regions.labels().tolist().index(CAR)
    assert regions.counts[car, CAR] == 16 * 16 - 16 and regions.counts[car].sum() == 16 * 16 - 16


def test_bad_input_is_named():
    train = toy_set([blocks((CAR, 0, 4, 0, 4))])
    with pytest.raises(ValueError, match="subset"):
        segment_retrieval(ClassFeatures(), train, train, RetrievalParams(image_size=SIZE, subset=("zebra",)),
                          progress=False)
    depth = DenseSet("d", "depth", [], np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="segmentation"):
        region_descriptors(ClassFeatures(), depth, PARAMS, progress=False)


def test_resnet_small_smoke():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(CLASSES), (6, 4, 4)).repeat(8, 1).repeat(8, 2)
    images = rng.integers(0, 255, (6, 32, 32, 3)).astype(np.uint8)
    data = DenseSet("smoke", "segmentation", CLASSES, images, labels)
    net = feature_map(build_backbone("resnet_small", 8))
    for size in (32, 8):  # 8 px: 2 x 2 features, fewer positions than K = 15
        result = segment_retrieval(net, data.subset([0, 1, 2]), data.subset([3, 4, 5]),
                                   RetrievalParams(image_size=size, batch_size=3), progress=False)
        assert np.isfinite(result.miou_21) and 0 <= result.miou_21 <= 100
        assert np.isfinite(result.miou_7) and result.n_val == 3
    assert result.n_val_regions <= 3 * 4
