"""Evaluating checkpoints trained elsewhere (``pretrain: external:PATH``): MoCo's and the authors' format, written
here as their training scripts write them, loaded as MoCo's own ``main_lincls.py`` loads them."""
import copy

import pytest
import torch
from torch import nn
from torchvision.models import resnet18, resnet50

from revisit.backbones import evaluated_backbone, external_backbone
from revisit.config import ParamsError, load_profile
from revisit.runs import plan


def moco_encoder() -> nn.Module:
    """MoCo-v2's query encoder: a torchvision ResNet-50 whose ``fc`` is the 2-layer MLP head (``--mlp``)."""
    torch.manual_seed(0)
    net = resnet50(num_classes=128)
    net.fc = nn.Sequential(nn.Linear(2048, 2048), nn.ReLU(), net.fc)
    for m in net.modules():  # BN statistics that differ from a fresh model's, so that they must be loaded
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
    return net.eval()


def moco_checkpoint(encoder: nn.Module, ddp: bool = True) -> dict:
    """What ``main_moco.py`` (and the authors' ``main.py`` / ``main_ours.py``) saves: the DDP-wrapped model with
    ``encoder_q``, ``encoder_k`` and the queues, plus epoch, arch and optimizer."""
    prefix = "module." if ddp else ""
    state = {f"{prefix}encoder_q.{k}": v for k, v in encoder.state_dict().items()}
    state.update({f"{prefix}encoder_k.{k}": v + 1 for k, v in encoder.state_dict().items()})  # not the backbone
    state.update({f"{prefix}queue": torch.randn(128, 16), f"{prefix}queue_ptr": torch.zeros(1, dtype=torch.long),
                  f"{prefix}queue_backbone": torch.randn(2048, 16)})  # the authors' kNN queue
    return {"epoch": 200, "arch": "resnet50", "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}


def lincls_reference(checkpoint: dict) -> nn.Module:
    """MoCo's ``main_lincls.py``: keep ``module.encoder_q.`` without its ``fc``, load with strict=False."""
    net = resnet50()
    state = {k[len("module.encoder_q."):]: v for k, v in checkpoint["state_dict"].items()
             if k.startswith("module.encoder_q") and not k.startswith("module.encoder_q.fc")}
    missing = net.load_state_dict(state, strict=False).missing_keys
    assert set(missing) == {"fc.weight", "fc.bias"}
    net.fc = nn.Identity()
    return net.eval()


def test_moco_and_the_authors_checkpoints_give_the_query_encoders_backbone(tmp_path):
    encoder = moco_encoder()
    checkpoint = moco_checkpoint(encoder)
    torch.save(checkpoint, tmp_path / "checkpoint_0199.pth.tar")
    ours = external_backbone(tmp_path / "checkpoint_0199.pth.tar").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), lincls_reference(checkpoint)(x), atol=1e-5)  # the reference's features
        assert not torch.allclose(ours(x), resnet50(num_classes=2048).eval()(x), atol=1e-3)


@pytest.mark.parametrize("layout", ["no DDP", "torchvision"])
def test_the_same_weights_saved_without_ddp_or_as_a_plain_torchvision_model(tmp_path, layout):
    encoder = moco_encoder()
    saved = moco_checkpoint(encoder, ddp=False)["state_dict"] if layout == "no DDP" else encoder.state_dict()
    torch.save(saved, tmp_path / "model.pth")
    ours = external_backbone(tmp_path / "model.pth").eval()
    expected = copy.deepcopy(encoder)
    expected.fc = nn.Identity()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), expected(x), atol=1e-5)


def test_a_checkpoint_that_is_not_a_resnet50_says_what_it_found(tmp_path):
    torch.save({"state_dict": {f"module.encoder_q.{k}": v for k, v in resnet18().state_dict().items()}},
               tmp_path / "r18.pth.tar")
    with pytest.raises(RuntimeError, match=r"r18.pth.tar is not a torchvision ResNet-50 under 'module.encoder_q.'"):
        external_backbone(tmp_path / "r18.pth.tar")
    torch.save({"state_dict": {"backbone.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(RuntimeError, match=r"no ResNet-50 found .*backbone.weight"):
        external_backbone(tmp_path / "other.pth")
    (tmp_path / "cut.pth").write_bytes(b"PK\x03\x04 not a whole file")
    with pytest.raises(RuntimeError, match="cut.pth cannot be read"):
        external_backbone(tmp_path / "cut.pth")
    with pytest.raises(FileNotFoundError, match="after 'external:'"):
        external_backbone(tmp_path / "missing.pth")


def test_an_evaluation_of_an_external_checkpoint_needs_no_pretraining_run(tmp_path, monkeypatch):
    params = tmp_path / "params"
    (params / "linear").mkdir(parents=True)
    (params / "profiles").mkdir()
    (params / "profiles" / "paper.yaml").write_text("description: paper\n")
    (params / "profiles" / "smoke.yaml").write_text("linear: {arch: resnet_small}\n")
    (params / "linear" / "released.yaml").write_text(
        "kind: linear\ntitle: released\npretrain: external:$CHECKPOINTS/ours_800ep.pth.tar\ntargets: [voc_svm]\n")
    monkeypatch.setenv("REVISIT_PARAMS", str(params))
    monkeypatch.setenv("CHECKPOINTS", str(tmp_path))
    torch.save(moco_checkpoint(moco_encoder()), tmp_path / "ours_800ep.pth.tar")
    run = plan("linear/released", load_profile("paper"))
    assert run.needs is None and "external:$CHECKPOINTS" in run.params.pretrain
    backbone, source, _ = evaluated_backbone(run)
    assert source.startswith(f"external checkpoint {tmp_path / 'ours_800ep.pth.tar'} (sha256 ")
    assert backbone.feature_dim == 2048
    monkeypatch.setenv("CHECKPOINTS", str(tmp_path / "elsewhere"))
    assert plan("linear/released", load_profile("paper")).run_id == run.run_id  # the params as written name the run
    with pytest.raises(ParamsError, match="external checkpoints are ResNet-50s"):
        plan("linear/released", load_profile("smoke"))


def test_the_pages_show_a_released_model_beside_the_readme_once_its_run_finished(tmp_path, monkeypatch):
    import json

    import numpy as np

    from revisit.results import released

    monkeypatch.setenv("REVISIT_RUNS", str(tmp_path))
    paper, smoke = load_profile("paper"), load_profile("smoke")
    assert released(paper, 800, ("voc_svm", "voc_seg"))[0].empty  # no run yet
    assert released(smoke, 800, ("voc_svm",))[0].empty  # a book profile cannot plan it (not a ResNet-50)
    run = plan("linear/released/ours_coco_800ep", paper)
    run.dir.mkdir(parents=True)
    (run.dir / "metrics.json").write_text(json.dumps({"targets": {"voc_svm": {"test": 84.0}}}))
    ours, readme = released(paper, 800, ("voc_svm", "voc_seg"))
    assert list(ours.index) == ["Ours_800"] and ours.loc["Ours_800", "VOC SVM"] == 84.0
    assert np.isnan(ours.loc["Ours_800", "VOC_seg"])  # its transfer run has not run
    assert readme.loc["Ours_800"].to_dict() == {"VOC SVM": 85.9, "VOC_seg": 73.5}  # the README's model zoo
    assert released(paper, 200, ("voc_svm",))[0].empty
