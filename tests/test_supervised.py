"""The supervised ceiling (revisit.supervised): its losses against the plain formulas, and a tiny model that learns."""
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

import revisit.train as train
from revisit import rundir
from revisit.config import SupervisedParams, load_experiment, load_profile, resolve
from revisit.data import ImageSet
from revisit.supervised import Supervised


class MeanColour(nn.Module):
    """A backbone whose features are each image's mean colour."""
    feature_dim = 3

    def forward(self, x):
        return x.mean(dim=(2, 3))


def test_single_label_loss_is_the_mean_cross_entropy_of_a_plain_loop():
    torch.manual_seed(0)
    labels = torch.tensor([0, 2, 1, 2, 0])
    model = Supervised(MeanColour(), labels)
    images, index = torch.randn(3, 3, 4, 4), torch.tensor([4, 1, 3])
    loss, logits, zero = model(images, index)
    expected = 0.0
    for b in range(3):
        z = model.classifier.weight @ images[b].mean(dim=(1, 2)) + model.classifier.bias
        expected += (torch.logsumexp(z, 0) - z[labels[index[b]]]) / 3
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and zero.item() == 0
    assert logits.shape == (3, 3)
    assert model.accuracy(logits, images, index) == pytest.approx(float(np.mean(
        [logits[b].argmax().item() == labels[index[b]].item() for b in range(3)])))


def test_multi_label_loss_is_the_mean_binary_cross_entropy():
    labels = torch.tensor([[1, 0, 1, 0], [0, 1, 1, 1]])
    model = Supervised(MeanColour(), labels)
    images = torch.randn(2, 3, 4, 4)
    loss, logits, _ = model(images, torch.tensor([1, 0]))
    y = labels[[1, 0]].float()
    p = torch.sigmoid(logits)
    expected = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and logits.shape == (2, 4)
    assert model.accuracy(logits, images, torch.tensor([1, 0])) == pytest.approx(((logits > 0).float() == y).float().mean().item())


def test_unlabelled_images_have_no_ceiling():
    p = resolve(load_experiment("supervised/in118k_400ep"), load_profile("smoke"))
    with pytest.raises(ValueError, match="has no labels"):
        train.build_model(p, ImageSet("bdd100k (twin)", array=np.zeros((4, 8, 8, 3), np.uint8)))


def _stripes(n: int, size: int = 32, seed: int = 0) -> ImageSet:
    """Class 0: vertical stripes, class 1: horizontal, in random colours and phases (what MoCo's crops, flips and
    colour jitter leave: orientation)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    grid = np.arange(size)
    images = np.zeros((n, size, size, 3), np.uint8)
    for i, y in enumerate(labels):
        wave = (np.sin(grid / 2.0 + rng.uniform(0, 6.3)) > 0).astype(np.float32)
        pattern = np.tile(wave, (size, 1)) if y == 0 else np.tile(wave[:, None], (1, size))
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        images[i] = (pattern[..., None] * a + (1 - pattern[..., None]) * b).astype(np.uint8)
    return ImageSet("stripes", array=images, labels=labels)


def test_a_tiny_supervised_model_learns_stripe_orientation(tmp_path):
    p = resolve(load_experiment("supervised/in118k_400ep"), load_profile("smoke"))
    assert isinstance(p, SupervisedParams)
    p = dataclasses.replace(p, epochs=12, images=64, batch_size=16, base_lr=0.8, crop_size=24)
    summary = train.pretrain(p, _stripes(64), tmp_path, progress=False)
    records = rundir.read_log(tmp_path)
    assert summary["final_acc"] > 0.8, records[-4:]
    assert np.mean([r["loss"] for r in records[-4:]]) < 0.5 * records[0]["loss"]
    assert (tmp_path / train.BACKBONE).is_file()
    state = torch.load(tmp_path / train.CHECKPOINT, weights_only=False)
    assert "classifier.weight" in state["model"] and "labels" not in state["model"]
