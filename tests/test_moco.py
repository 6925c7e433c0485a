"""moco: InfoNCE against a plain loop; queue, momentum encoder and shuffle-BN groups."""
import pytest
import torch
import torch.nn.functional as F

from revisit.backbones import build_backbone
from revisit.moco import MoCo, info_nce


def plain_info_nce(positives, anchors, queue, t):
    losses = []
    for b in range(positives.shape[0]):
        for pos in positives[b]:
            logits = torch.cat([(pos @ anchors[b]).view(1), pos @ queue]) / t
            losses.append(-torch.log_softmax(logits, 0)[0])
    return torch.stack(losses).mean()


@pytest.mark.parametrize("L", [None, 1, 4])
def test_info_nce_matches_plain_loop(L):
    g = torch.Generator().manual_seed(0)
    B, C, K = 5, 16, 32
    shape = (B, C) if L is None else (B, L, C)
    positives = F.normalize(torch.randn(*shape, generator=g), dim=-1)
    anchors = F.normalize(torch.randn(B, C, generator=g), dim=-1)
    queue = F.normalize(torch.randn(C, K, generator=g), dim=0)
    loss, logits = info_nce(positives, anchors, queue, 0.2)
    expected = plain_info_nce(positives if L else positives[:, None], anchors, queue, 0.2)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logits.shape == (B * (L or 1), K + 1)


def test_info_nce_is_low_when_positive_is_the_anchor():
    eye = torch.eye(8)
    anchors, queue = eye[:4], eye[4:].T  # negatives orthogonal to every anchor
    loss, _ = info_nce(anchors, anchors, queue, 0.05)
    assert 0 <= loss.item() < 1e-6  # log(1 + 4 exp(-20))


def small_moco(**kw):
    torch.manual_seed(0)
    return MoCo(build_backbone("resnet_small", 4), dim=8, queue_size=16, momentum=0.9, temperature=0.2, **kw)


def test_moco_step_updates_queue_and_key_encoder():
    model = small_moco(bn_groups=2)
    for pq, pk in zip(model.encoder_q.parameters(), model.encoder_k.parameters()):
        assert torch.equal(pq, pk) and not pk.requires_grad  # initialised as a copy
    queue_before = model.queue.clone()
    x = torch.randn(8, 3, 16, 16)
    loss, logits = model(x, x.flip(-1))
    loss.backward()
    assert logits.shape == (8, 17)
    assert int(model.queue_ptr) == 8
    assert not torch.equal(model.queue[:, :8], queue_before[:, :8]) and torch.equal(model.queue[:, 8:], queue_before[:, 8:])
    assert torch.allclose(model.queue[:, :8].norm(dim=0), torch.ones(8))
    assert model.encoder_k[0].stem[0].weight.grad is None  # no gradient reaches the key encoder


def test_queue_must_be_divisible_by_batch():
    model = small_moco()
    x = torch.randn(6, 3, 16, 16)
    with pytest.raises(ValueError, match="divisible"):
        model(x, x)


def test_momentum_update_is_an_ema():
    model = small_moco()
    with torch.no_grad():
        for p in model.encoder_q.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.encoder_k.parameters()]
    model.momentum_update()
    for b, pk, pq in zip(before, model.encoder_k.parameters(), model.encoder_q.parameters()):
        assert torch.allclose(pk, 0.9 * b + 0.1 * pq)
