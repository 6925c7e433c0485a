"""Class activation maps (Figure 6, Figure S2): hand-computed maps, normalisation, localisation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

import revisit.dense.cams as cams
from revisit.backbones import FeatureMap, build_backbone
from revisit.dense.cams import class_activation_maps, fit_classifier, minmax, overlay
from revisit.data.images import ImageSet
from revisit.linear.features import extract_features, resize_square

COLOURS = np.array([[220, 30, 30], [30, 200, 30], [40, 40, 220]], np.uint8)


class LocalColour(nn.Module):
    """Stub backbone: its 'last conv block' is the image's mean colour per 4 x 4 cell; its pooled
    output the mean over cells, as a ResNet's average pool."""

    def spatial(self, x):
        return F.avg_pool2d(x, 4)

    def forward(self, x):
        return self.spatial(x).mean((2, 3))


class Spatial(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return self.backbone.spatial(x)


@pytest.fixture
def stub_feature_map(monkeypatch):
    monkeypatch.setattr(cams, "FeatureMap", lambda backbone, depth, dilate: Spatial(backbone))


def blobs(n, rng, size=32, blob=10):
    """Grey images with one coloured square (the class) in a random quadrant."""
    images = np.full((n, size, size, 3), 120, np.uint8) + rng.integers(0, 20, (n, size, size, 3)).astype(np.uint8)
    y, quadrant = rng.integers(0, 3, n), rng.integers(0, 4, n)
    for i in range(n):
        r0 = (quadrant[i] // 2) * 16 + rng.integers(1, 16 - blob)
        c0 = (quadrant[i] % 2) * 16 + rng.integers(1, 16 - blob)
        images[i, r0:r0 + blob, c0:c0 + blob] = COLOURS[y[i]]
    return images, y, quadrant


def test_cam_of_a_hand_made_weight(monkeypatch):
    feats = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 5.0]]])[None]  # (1, 2, 2, 2)

    class Fixed(nn.Module):
        def forward(self, x):
            return feats.expand(len(x), -1, -1, -1)

    monkeypatch.setattr(cams, "FeatureMap", lambda backbone, depth, dilate: Fixed())
    weight = np.array([[1.0, -1.0], [0.5, 2.0]])
    images = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    # class 0: 1-0, 2-1, 3-0, 4-5 = [[1, 1], [3, -1]] -> min-max [[0.5, 0.5], [1, 0]]
    assert class_activation_maps(None, weight, images, 0, image_size=2)[0] == pytest.approx(
        np.array([[0.5, 0.5], [1.0, 0.0]]))
    # class 1: [[0.5, 3], [1.5, 12]] -> (v - 0.5) / 11.5
    expected = (np.array([[0.5, 3.0], [1.5, 12.0]]) - 0.5) / 11.5
    assert class_activation_maps(None, weight, images, [1, 1], image_size=2)[1] == pytest.approx(expected)
    # predicted class: pooled logits are [1, 4.25] + bias; a bias can flip it, and the bias never enters the map
    assert class_activation_maps(None, weight, images, image_size=2)[0] == pytest.approx(expected)
    flipped = class_activation_maps(None, weight, images, image_size=2, bias=np.array([10.0, 0.0]))
    assert flipped[0] == pytest.approx(np.array([[0.5, 0.5], [1.0, 0.0]]))
    # resized (bilinear) to the image: a 4 x 6 image gets a 4 x 6 map in [0, 1]
    big = class_activation_maps(None, weight, torch.zeros(1, 3, 4, 6, dtype=torch.uint8), 1, image_size=2)
    assert big.shape == (1, 4, 6) and big.min() == 0 and big.max() == pytest.approx(1)


def test_minmax_spans_zero_to_one_and_constant_maps_are_zero():
    maps = torch.tensor([[[2.0, 4.0], [6.0, 10.0]], [[3.0, 3.0], [3.0, 3.0]]])
    out = minmax(maps)
    assert out[0].min() == 0 and out[0].max() == 1 and out[0, 0, 1] == pytest.approx(0.25)
    assert torch.equal(out[1], torch.zeros(2, 2))


@pytest.mark.parametrize("n_classes", [3, 2])
def test_head_on_raw_features_reproduces_the_standardised_classifier(n_classes):
    rng = np.random.default_rng(0)
    images, y, _ = blobs(60, rng)
    keep = y < n_classes
    data = ImageSet("blobs", array=images[keep], labels=y[keep], classes=["red", "green", "blue"])
    backbone = LocalColour()
    head = fit_classifier(backbone, data, 32, C=0.5, progress=False)
    X, _, _ = extract_features(backbone, data, resize_square(32), progress=False)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000)).fit(X, data.labels)
    logits = torch.from_numpy(X @ head.weight.T + head.bias)
    assert head.classes == ["red", "green", "blue"][:n_classes]
    assert torch.softmax(logits, 1).numpy() == pytest.approx(reference.predict_proba(X), abs=1e-4)


def test_cam_peaks_on_the_object(stub_feature_map):
    rng = np.random.default_rng(0)
    images, y, _ = blobs(60, rng)
    backbone = LocalColour()
    head = fit_classifier(backbone, ImageSet("blobs", array=images, labels=y, classes=["r", "g", "b"]), 32,
                          progress=False)
    test, y_test, quadrant = blobs(20, rng)
    maps = class_activation_maps(backbone, head.weight, torch.from_numpy(test).permute(0, 3, 1, 2), y_test, 32)
    peak = maps.reshape(len(maps), -1).argmax(1)
    assert np.array_equal((peak // 32 // 16) * 2 + peak % 32 // 16, quadrant)
    # the predicted class (bias included) is the true one here, and gives the same maps
    predicted = class_activation_maps(backbone, head.weight, torch.from_numpy(test).permute(0, 3, 1, 2), None, 32,
                                      bias=head.bias)
    assert predicted == pytest.approx(maps)


def test_resnet_small_cams_use_the_block_the_classifier_pooled():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    images, y, _ = blobs(30, rng)
    backbone = build_backbone("resnet_small", 8)
    data = ImageSet("blobs", array=images, labels=y, classes=["r", "g", "b"])
    head = fit_classifier(backbone, data, 32, progress=False)
    assert head.weight.shape == (3, backbone.feature_dim)
    x = resize_square(32)(torch.from_numpy(images[:4]).permute(0, 3, 1, 2))
    with torch.no_grad():  # the CAM's feature map, pooled, is the classifier's input
        pooled = FeatureMap(backbone, depth=4, dilate=()).eval()(x).mean((2, 3))
        assert pooled == pytest.approx(backbone.eval()(x), abs=1e-5)
    predicted = (pooled.numpy() @ head.weight.T + head.bias).argmax(1)
    uint8 = torch.from_numpy(images[:4]).permute(0, 3, 1, 2)
    maps = class_activation_maps(backbone, head.weight, uint8, None, 32, bias=head.bias)
    assert maps.shape == (4, 32, 32) and maps.min() == 0 and maps.max() == pytest.approx(1)
    assert maps == pytest.approx(class_activation_maps(backbone, head.weight, uint8, predicted, 32))


def test_overlay_blends_the_colour_map():
    image = np.zeros((5, 7, 3), np.uint8)
    cam = np.ones((5, 7))
    out = overlay(image, cam, alpha=0.5)
    assert out.shape == (5, 7, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [64, 0, 0]  # jet(1) = dark red (0.5, 0, 0) at half weight
    assert np.array_equal(overlay(image + 200, cam, alpha=0.0), image + 200)
    with pytest.raises(ValueError, match="cam"):
        overlay(image, np.ones((4, 4)))


def test_bad_input_is_named():
    data = ImageSet("multi", array=np.zeros((4, 8, 8, 3), np.uint8), labels=np.zeros((4, 3), np.int64))
    with pytest.raises(ValueError, match="single-label"):
        fit_classifier(LocalColour(), data, 8, progress=False)
    with pytest.raises(ValueError, match="uint8"):
        class_activation_maps(LocalColour(), np.zeros((2, 3)), torch.zeros(1, 3, 8, 8), 0, 8)
