"""MoCo-v2 (paper Sec. 2, Eq. 1; He et al. 2020, Chen et al. 2020).

Query encoder f = backbone g + MLP head h (no BN in the head, App. A.1); momentum encoder f'
initialised as a copy and updated as an EMA; a queue of K keys kept as a buffer so that it is
checkpointed with the model. Shuffle-BN is emulated on one device by encoding the shuffled key
batch in ``bn_groups`` separate chunks, so no chunk's BN statistics contain both a query and
its key (DESIGN.md: a plain permutation changes nothing on one device).
"""
from __future__ import annotations

import copy

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def info_nce(positives, anchors, queue, temperature):
    """Mean InfoNCE over all positives (Eq. 1 / Algorithm 2).

    ``positives`` ``(B, C)`` or ``(B, L, C)``, ``anchors`` ``(B, C)``, ``queue`` ``(C, K)``, all
    L2-normalised. Each positive's positive logit is its own anchor; its negatives are the queue.
    """
    if positives.dim() == 2:
        positives = positives.unsqueeze(1)
    l_pos = torch.einsum("blc,bc->bl", positives, anchors).unsqueeze(-1)
    l_neg = torch.einsum("blc,ck->blk", positives, queue)
    logits = torch.cat([l_pos, l_neg], dim=-1).flatten(0, 1) / temperature
    labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, labels), logits


def mlp_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """Projection head h: Linear-ReLU-Linear, no batch norm (App. A.1)."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


@torch.no_grad()
def gather(tensor):
    """All-gather across processes (identity on one process); keys are gathered before enqueue."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    out = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(out, tensor)
    return torch.cat(out)


class MoCo(nn.Module):
    """MoCo-v2 with an EMA key encoder and a queue of ``queue_size`` negatives."""

    def __init__(self, backbone: nn.Module, dim=128, hidden_dim=None, queue_size=65536, momentum=0.999,
                 temperature=0.2, bn_groups=1):
        super().__init__()
        hidden_dim = hidden_dim or backbone.feature_dim
        self.encoder_q = nn.Sequential(backbone, mlp_head(backbone.feature_dim, hidden_dim, dim))
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for p in self.encoder_k.parameters():
            p.requires_grad = False
        self.momentum, self.temperature, self.bn_groups = momentum, temperature, bn_groups
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @property
    def backbone(self) -> nn.Module:
        return self.encoder_q[0]

    @torch.no_grad()
    def momentum_update(self):
        for pk, pq in zip(self.encoder_k.parameters(), self.encoder_q.parameters()):
            pk.mul_(self.momentum).add_(pq.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def enqueue(self, keys):
        keys = gather(keys)
        size, ptr = keys.shape[0], int(self.queue_ptr)
        if self.queue.shape[1] % size:
            raise ValueError(f"queue size {self.queue.shape[1]} must be divisible by the global batch {size}")
        self.queue[:, ptr:ptr + size] = keys.T
        self.queue_ptr.fill_((ptr + size) % self.queue.shape[1])

    def _grouped(self, encoder, x):
        return torch.cat([encoder(chunk) for chunk in x.chunk(self.bn_groups)])

    @torch.no_grad()
    def encode_keys(self, anchors):
        """Key features of the anchors, shuffled across BN groups then unshuffled."""
        perm = torch.randperm(anchors.shape[0], device=anchors.device)
        keys = self._grouped(self.encoder_k, anchors[perm])
        return F.normalize(keys[torch.argsort(perm)], dim=1)

    def forward(self, anchor, positives):
        """Loss and logits for one batch: ``anchor`` ``(B, 3, H, W)``, ``positives`` ``(B, 3, H, W)``."""
        q = F.normalize(self._grouped(self.encoder_q, positives), dim=1)
        with torch.no_grad():
            self.momentum_update()
            k = self.encode_keys(anchor)
        loss, logits = info_nce(q, k, self.queue.clone().detach(), self.temperature)
        self.enqueue(k)
        return loss, logits
