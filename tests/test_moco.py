"""moco: InfoNCE and the kNN loss against plain loops; queues, multi-crop layout, momentum encoder, BN groups."""
import pytest
import torch
import torch.nn.functional as F

from revisit.backbones import build_backbone
from revisit.moco import MoCo, info_nce, info_nce_logits, knn_loss, mlp_head


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
    loss = info_nce(positives, anchors, queue, 0.2)
    logits = info_nce_logits(positives, anchors, queue, 0.2)
    expected = plain_info_nce(positives if L else positives[:, None], anchors, queue, 0.2)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.shape == () and logits.shape == (B * (L or 1), K + 1)
    first = positives.reshape(-1, C)[0]  # the first positive: its anchor's logit, then the queue's
    assert torch.allclose(logits[0], torch.cat([(first @ anchors[0]).view(1), first @ queue]) / 0.2, atol=1e-6)


def test_info_nce_is_low_when_positive_is_the_anchor():
    eye = torch.eye(8)
    anchors, queue = eye[:4], eye[4:].T  # negatives orthogonal to every anchor
    loss = info_nce(anchors, anchors, queue, 0.05)
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
    loss, logits, loss_nn = model(x, x.flip(-1))
    assert loss_nn.item() == 0
    loss.backward()
    assert logits.shape == (8, 17)
    assert int(model.queue_ptr) == 8
    assert not torch.equal(model.queue[:, :8], queue_before[:, :8]) and torch.equal(model.queue[:, 8:], queue_before[:, 8:])
    assert torch.allclose(model.queue[:, :8].norm(dim=0), torch.ones(8))
    assert model.encoder_k[0].stem[0].weight.grad is None  # no gradient reaches the key encoder


def test_head_bn_normalises_each_channel_over_every_positive():
    """The optional hidden BN sees (B, L, C) positives as B x L samples, as a plain per-channel loop does."""
    torch.manual_seed(0)
    head = mlp_head(6, 5, 3, bn=True).train()
    x = torch.randn(4, 3, 6)
    hidden = head[1](head[0](x))  # Linear, then the BN
    flat = head[0](x).reshape(-1, 5)
    for c in range(5):
        col = flat[:, c]
        expected = (col - col.mean()) / torch.sqrt(col.var(unbiased=False) + 1e-5)
        assert torch.allclose(hidden[..., c].reshape(-1), expected, atol=1e-5)
    assert len(mlp_head(6, 5, 3)) == 3  # MoCo-v2's head: Linear-ReLU-Linear, no BN
    model = small_moco(head_bn=True)
    x = torch.randn(8, 3, 16, 16)
    loss, logits, _ = model(x, x.flip(-1), torch.randn(8, 2, 3, 8, 8))
    loss.backward()
    assert logits.shape == (8 * 3, 17) and torch.isfinite(loss)


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


def plain_knn_loss(pos_backbone, queue_backbone, pos_logits, k, t):
    losses = []
    for i in range(pos_backbone.shape[0]):
        sims = [(float(pos_backbone[i] @ queue_backbone[:, j]), j) for j in range(queue_backbone.shape[1])]
        neighbours = [j for _, j in sorted(sims, reverse=True)[:k]]
        log_prob = torch.log_softmax(pos_logits[i] / t, 0)
        losses.append(-sum(log_prob[j] for j in neighbours) / k)
    return torch.stack(losses).mean()


@pytest.mark.parametrize("k", [1, 3, 7])
def test_knn_loss_matches_plain_loop(k):
    g = torch.Generator().manual_seed(1)
    N, Cg, K = 6, 10, 12
    pos_backbone = F.normalize(torch.randn(N, Cg, generator=g), dim=1)
    queue_backbone = F.normalize(torch.randn(Cg, K, generator=g), dim=0)
    pos_logits = torch.randn(N, K, generator=g).clamp(-1, 1)
    loss = knn_loss(pos_backbone, queue_backbone, pos_logits, k, 0.2)
    assert loss.item() == pytest.approx(plain_knn_loss(pos_backbone, queue_backbone, pos_logits, k, 0.2).item(), rel=1e-5)


def test_knn_loss_rewards_agreeing_with_the_neighbours():
    queue_backbone = torch.eye(4)
    pos_backbone = torch.eye(4)[:2]  # positive i's nearest neighbour is entry i
    agree = torch.eye(4)[:2] * 5  # head logits peak at the neighbour
    disagree = torch.eye(4)[[2, 3]] * 5
    assert knn_loss(pos_backbone, queue_backbone, agree, 1, 1.0) < knn_loss(pos_backbone, queue_backbone, disagree, 1, 1.0)


class Recorder(torch.nn.Module):
    """A backbone whose feature is the image's mean value; records every batch it encodes."""

    feature_dim = 4

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.scale * x.mean(dim=(1, 2, 3))[:, None].expand(-1, 4) + torch.arange(4.0)


def test_multicrop_positives_line_up_with_their_anchor_and_small_crops_never_reach_the_queue():
    torch.manual_seed(0)
    model = MoCo(Recorder(), dim=4, hidden_dim=8, queue_size=12, momentum=0.9, temperature=0.2)
    B, N = 3, 2
    anchor = torch.arange(B, dtype=torch.float)[:, None, None, None].expand(B, 3, 8, 8).clone()
    positive = anchor + 0.0
    small = (anchor[:, None, :, :4, :4] + 0.01 * torch.arange(1, N + 1)[None, :, None, None, None]).clone()
    _, logits, _ = model(anchor, positive, small)
    assert logits.shape == (B * (1 + N), 1 + 12)
    query_batches = model.encoder_q[0].seen  # the query encoder: one pass per resolution
    assert [b.shape[-1] for b in query_batches] == [8, 4]
    small_values = query_batches[1].mean(dim=(1, 2, 3))
    expected = torch.tensor([b + 0.01 * (n + 1) for b in range(B) for n in range(N)])  # sample-major
    assert torch.allclose(small_values, expected)
    # every positive's positive logit is the similarity to its own anchor's key
    key_batches = list(model.encoder_k[0].seen)
    with torch.no_grad():
        q = F.normalize(torch.cat([model.encoder_q(positive), model.encoder_q(small.flatten(0, 1))]), dim=1)
        k = F.normalize(model.encoder_k(anchor), dim=1)
    owner = [b for b in range(B)] + [b for b in range(B) for _ in range(N)]
    rows = [b * (1 + N) for b in range(B)] + [b * (1 + N) + 1 + n for b in range(B) for n in range(N)]
    assert torch.allclose(logits[rows, 0] * 0.2, (q * k[owner]).sum(1), atol=1e-5)
    assert all(b.shape[-1] == 8 for b in key_batches)  # only anchors go through the momentum encoder
    assert torch.allclose(model.queue[:, :B].T, k, atol=1e-6)  # ... and into the queue
    assert int(model.queue_ptr) == B


def test_aligned_queues_stay_aligned_after_wrap_around():
    model = small_moco(nn_k=2)
    x = torch.randn(8, 3, 16, 16)
    for step in range(5):  # 5 x 8 keys through a 16-key queue: wraps twice
        xs = x + step
        model(xs, xs.flip(-1), nn_weight=0.4)
    with torch.no_grad():
        g = F.normalize(model.encoder_k[0](x + 4), dim=1)
        h = F.normalize(model.encoder_k[1](model.encoder_k[0](x + 4)), dim=1)
    ptr = int(model.queue_ptr)
    assert ptr == (5 * 8) % 16
    last = slice(ptr - 8, ptr) if ptr else slice(8, 16)
    assert torch.allclose(model.queue_g[:, last].T, g, atol=1e-5)
    assert torch.allclose(model.queue[:, last].T, h, atol=1e-5)


def test_nn_loss_switches_on_with_its_weight_and_enqueue_first_sees_the_batch():
    model = small_moco(nn_k=1)
    x = torch.randn(8, 3, 16, 16)
    loss0, _, nn0 = model(x, x, nn_weight=0.0)
    assert nn0.item() == 0
    loss1, _, nn1 = model(x, x, nn_weight=0.4)
    assert nn1.item() > 0
    first = small_moco(nn_k=1)
    first(x, x, nn_weight=0.4, nn_startup="enqueue_first")
    assert int(first.queue_ptr) == 8


@pytest.mark.parametrize("startup", ["warmup", "enqueue_first"])
def test_nn_startups_mine_and_score_against_the_queue_states_of_app_b(startup):
    """A plain recomputation of Eq. 2 (k = 1) from the queues before and after the step: "warmup" mines the old
    queue; "enqueue_first" mines the one holding the batch, but scores against the old head queue (App. B's
    footnote: "a mismatch between the logits and the memory bank", as the authors' builder_ours.py)."""
    model = small_moco(nn_k=1).eval()  # BN from running statistics: the recomputed features equal the step's
    x = torch.randn(8, 3, 16, 16)
    queue, queue_g = model.queue.clone(), model.queue_g.clone()
    _, _, loss_nn = model(x, x, nn_weight=0.4, nn_startup=startup)
    with torch.no_grad():
        g = F.normalize(model.encoder_q[0](x), dim=1)
        q = F.normalize(model.encoder_q(x), dim=1)
    mined = queue_g if startup == "warmup" else model.queue_g
    expected = 0.0
    for i in range(8):
        neighbour = max(range(16), key=lambda j: float(g[i] @ mined[:, j]))
        if startup == "enqueue_first":
            assert neighbour == i  # the positive equals its anchor: it picks its own key, enqueued first
        expected -= torch.log_softmax(q[i] @ queue / 0.2, dim=0)[neighbour] / 8
    assert torch.allclose(loss_nn, expected, atol=1e-5)


def _shuffle_worker(rank, world, rdv, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{rdv}", rank=rank, world_size=world)
    try:
        model = small_moco(bn_groups=1).eval()  # BN from running statistics: a key depends on its image alone
        encoded = []
        model.encoder_k[0].register_forward_hook(lambda module, inputs, output: encoded.append(inputs[0].clone()))
        anchors = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(10 + rank))
        torch.manual_seed(rank)  # the ranks draw different permutations: rank 0's must win
        torch.save({"anchors": anchors, "keys": model.key_features(anchors), "encoded": encoded[0]}, out / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_shuffle_bn_across_processes_mixes_the_ranks_and_returns_each_key_to_its_anchor(tmp_path):
    """MoCo's shuffle-BN under DDP (2 gloo processes): each process encodes a shuffled half of all the keys, and
    gets back the keys of its own anchors, equal to encoding them unshuffled."""
    torch.multiprocessing.spawn(_shuffle_worker, args=(2, tmp_path / "rdv", tmp_path), nprocs=2)
    ranks = [torch.load(tmp_path / f"{rank}.pt") for rank in range(2)]
    reference = small_moco(bn_groups=1).eval()
    for rank in ranks:
        with torch.no_grad():
            assert torch.allclose(rank["keys"], reference.encoder_k[0](rank["anchors"]), atol=1e-6)
    every = torch.cat([rank["anchors"] for rank in ranks])
    encoded = torch.cat([rank["encoded"] for rank in ranks])
    owner = [int(torch.nonzero((every == image).flatten(1).all(1))[0]) // 4 for image in encoded]
    assert sorted(owner) == [0, 0, 0, 0, 1, 1, 1, 1]  # every key encoded once, by one process
    assert owner[:4] != [0] * 4  # process 0 encoded keys of process 1: the BN batches mix the ranks
