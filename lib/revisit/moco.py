"""MoCo-v2 (paper Sec. 2, Eq. 1; He et al. 2020, Chen et al. 2020) and kNN-MoCo (Sec. 4.3, Eq. 2).

Query encoder f = backbone g + MLP head h (no BN in the head, App. A.1; ``head_bn`` adds one for short
schedules); momentum encoder f' initialised as a copy and updated as an EMA; a queue of K keys kept
as a buffer so that it is checkpointed with the model. Multi-crop (Sec. 4.1): every anchor has 1 + N
positives, encoded in one pass per resolution and matched with their own anchor; small crops never reach the momentum
encoder or the queue. kNN-MoCo keeps a second queue, aligned with the first, of the momentum
encoder's backbone features, and mines each positive's neighbours in it (Algorithm 1).
Shuffle-BN is emulated on one device by encoding the shuffled key batch in ``bn_groups``
separate chunks, so no chunk's BN statistics contain both a query and its key (a
plain permutation changes nothing on one device).
"""
from __future__ import annotations

import copy

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def info_nce_logits(positives, anchors, queue, temperature):
    """Logits of Eq. 1 for every positive, ``(B * L, 1 + K)``: its own anchor first, then the queue, over ``temperature``.

    ``positives`` ``(B, C)`` or ``(B, L, C)``, ``anchors`` ``(B, C)``, ``queue`` ``(C, K)``, all L2-normalised.
    """
    if positives.dim() == 2:
        positives = positives.unsqueeze(1)
    l_pos = torch.einsum("blc,bc->bl", positives, anchors).unsqueeze(-1)
    l_neg = torch.einsum("blc,ck->blk", positives, queue)
    return torch.cat([l_pos, l_neg], dim=-1).flatten(0, 1) / temperature


def info_nce(positives, anchors, queue, temperature):
    """Mean InfoNCE over all positives (Eq. 1 / Algorithm 2), a scalar tensor; shapes as ``info_nce_logits``.

    Each positive's positive logit is its own anchor; its negatives are the queue.
    """
    return _instance_loss(info_nce_logits(positives, anchors, queue, temperature))


def _instance_loss(logits):
    """Cross-entropy of logits whose positive is column 0."""
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


def knn_loss(pos_backbone, queue_backbone, pos_logits, k, temperature):
    """Nearest-neighbour loss of Eq. 2: mean over positives of the mean over their k neighbours of -log softmax.

    ``pos_backbone`` ``(N, Cg)`` and ``queue_backbone`` ``(Cg, K)`` are L2-normalised; the neighbours of
    a positive are the ``k`` queue entries most cosine-similar to it. ``pos_logits`` ``(N, K)`` are the
    positives' head features against the key queue, before the temperature; the softmax runs over the K entries.
    """
    with torch.no_grad():
        neighbours = (pos_backbone @ queue_backbone).topk(k, dim=1).indices
    log_prob = F.log_softmax(pos_logits / temperature, dim=1)
    return -log_prob.gather(1, neighbours).mean()


class LastDimBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the last dimension of a ``(..., C)`` tensor (the head sees ``(B, L, C)`` positives)."""

    def forward(self, x):
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


def mlp_head(in_dim: int, hidden_dim: int, out_dim: int, bn: bool = False) -> nn.Sequential:
    """Projection head h: Linear-ReLU-Linear, no batch norm (App. A.1); ``bn`` adds one after the first Linear.

    The hidden BN (SimCLR, MoCo v3) spreads the random-init embeddings at once: without it, the CPU
    profile's 184 steps end in MoCo's start-up phase, where every key looks alike (``PretrainParams.head_bn``).
    """
    norm = [LastDimBatchNorm(hidden_dim)] if bn else []
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), *norm, nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


@torch.no_grad()
def gather(tensor):
    """All-gather across processes (identity on one process); keys are gathered before enqueue."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    out = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(out, tensor)
    return torch.cat(out)


class MoCo(nn.Module):
    """MoCo-v2 with an EMA key encoder and a queue of ``queue_size`` negatives.

    ``nn_k`` > 0 turns on kNN-MoCo's aligned backbone queue; ``nn_features`` = "head" mines the
    neighbours after the projection head instead (the variant Sec. 4.3 compares). ``head_bn`` puts a
    batch norm in the head's hidden layer, which MoCo-v2 has not (see ``mlp_head``).
    """

    def __init__(self, backbone: nn.Module, dim=128, hidden_dim=None, queue_size=65536, momentum=0.999,
                 temperature=0.2, bn_groups=1, nn_k=0, nn_features="backbone", head_bn=False):
        super().__init__()
        hidden_dim = hidden_dim or backbone.feature_dim
        self.encoder_q = nn.Sequential(backbone, mlp_head(backbone.feature_dim, hidden_dim, dim, head_bn))

        self.encoder_k = copy.deepcopy(self.encoder_q)
        for p in self.encoder_k.parameters():
            p.requires_grad = False
        self.momentum, self.temperature, self.bn_groups = momentum, temperature, bn_groups
        self.nn_k, self.nn_features = nn_k, nn_features
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        if nn_k and nn_features == "backbone":
            self.register_buffer("queue_g", F.normalize(torch.randn(backbone.feature_dim, queue_size), dim=0))

    @property
    def backbone(self) -> nn.Module:
        return self.encoder_q[0]

    def inputs(self, batch: dict, device) -> tuple:
        """What ``forward`` takes from a ``ViewSet`` batch: the anchors, the positives and the small crops."""
        return tuple(batch[k].to(device, non_blocking=True) for k in ("anchor", "positive", "small"))

    def accuracy(self, logits, *inputs) -> float:
        """Instance-discrimination accuracy: how often the positive key has the highest logit of ``forward``'s."""
        return (logits.argmax(1) == 0).float().mean().item()


    @torch.no_grad()
    def momentum_update(self):
        for pk, pq in zip(self.encoder_k.parameters(), self.encoder_q.parameters()):
            pk.mul_(self.momentum).add_(pq.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def enqueue(self, keys, keys_g=None):
        """Replace the oldest keys (and their backbone features, kept aligned) by this batch's, from all ranks."""
        keys = gather(keys)
        size, ptr = keys.shape[0], int(self.queue_ptr)
        if self.queue.shape[1] % size:
            raise ValueError(f"queue size {self.queue.shape[1]} must be divisible by the global batch {size}")
        self.queue[:, ptr:ptr + size] = keys.T
        if keys_g is not None:
            self.queue_g[:, ptr:ptr + size] = gather(keys_g).T
        self.queue_ptr.fill_((ptr + size) % self.queue.shape[1])

    def _grouped(self, encoder, x):
        return torch.cat([encoder(chunk) for chunk in x.chunk(self.bn_groups)])

    @torch.no_grad()
    def key_features(self, anchors):
        """Backbone features of the anchors under the key encoder, shuffled across BN groups then unshuffled; under
        DDP shuffled across all processes first, as MoCo's shuffle-BN: each process encodes keys of every process,
        so no BN batch holds a query's key alongside the query (the keys come back to their own process)."""
        batch = gather(anchors)  # every process's anchors, in rank order (this process's alone without DDP)
        perm = torch.randperm(batch.shape[0], device=anchors.device)
        distributed = batch.shape[0] > anchors.shape[0]
        if distributed:
            dist.broadcast(perm, 0)  # one permutation for all processes
        rank = dist.get_rank() if distributed else 0
        mine = perm.view(-1, anchors.shape[0])[rank]  # the shuffled keys this process encodes
        encoded = gather(self._grouped(self.encoder_k[0], batch[mine]))  # encoded[i] is the key of batch[perm[i]]
        keys = torch.empty_like(encoded)
        keys[perm] = encoded
        return keys.view(-1, anchors.shape[0], *keys.shape[1:])[rank]

    def forward(self, anchor, positive, small=None, nn_weight=0.0, nn_startup="warmup"):
        """Losses of one batch: ``anchor``, ``positive`` ``(B, 3, H, W)``, ``small`` ``(B, N, 3, h, w)`` or None.

        Returns the total loss, the instance logits ``(B * (1 + N), 1 + K)`` (positive logit first) and
        the nearest-neighbour loss (0 when ``nn_weight`` is 0). ``nn_startup`` (App. B): "warmup" enqueues the
        batch's keys after the losses; "enqueue_first" before mining the neighbours, whose logits stay against the
        queue before the enqueue (the "mismatch" of App. B's footnote, as the authors' ``builder_ours.py``). The
        instance loss never sees the batch's keys.
        """
        backbone, head = self.encoder_q
        feats = self._grouped(backbone, positive).unsqueeze(1)  # (B, 1, Cg)
        if small is not None and small.shape[1]:
            b, n = small.shape[:2]
            feats = torch.cat([feats, self._grouped(backbone, small.flatten(0, 1)).view(b, n, -1)], dim=1)
        with torch.no_grad():
            self.momentum_update()
            g = self.key_features(anchor)
        with torch.autocast(feats.device.type, enabled=False):  # heads, logits, losses in float32 under any autocast
            return self._losses(feats.float(), g.float(), head, nn_weight, nn_startup)

    def _losses(self, feats, g, head, nn_weight, nn_startup):
        """``forward`` from the backbone features on: query ``feats`` ``(B, L, Cg)``, key ``g`` ``(B, Cg)``."""
        q = F.normalize(head(feats), dim=-1)  # (B, L, C): positives stay lined up with their anchor
        with torch.no_grad():
            k, k_g = F.normalize(self.encoder_k[1](g), dim=1), F.normalize(g, dim=1)
        before = self.queue.clone().detach()
        logits = info_nce_logits(q, k, before, self.temperature)
        loss = _instance_loss(logits)
        loss_nn = torch.zeros((), device=loss.device)
        keys_g = k_g if hasattr(self, "queue_g") else None  # only kNN-MoCo mining on backbone features keeps them
        enqueue_first = nn_startup == "enqueue_first"
        if enqueue_first:
            self.enqueue(k, keys_g)
        if nn_weight:
            if self.nn_features == "backbone":
                mine_q, bank = F.normalize(feats, dim=-1).flatten(0, 1), self.queue_g  # read-only, no gradient
            else:
                mine_q, bank = q.flatten(0, 1), self.queue.clone().detach() if enqueue_first else before
            loss_nn = knn_loss(mine_q, bank, q.flatten(0, 1) @ before, self.nn_k, self.temperature)
            loss = loss + nn_weight * loss_nn
        if not enqueue_first:
            self.enqueue(k, keys_g)
        return loss, logits, loss_nn
