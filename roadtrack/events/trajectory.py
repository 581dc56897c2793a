"""Trajectory attention (MotionFormer, Patrick et al. 2021; seed 004): the event head's temporal
module when ``events.temporal: trajectory``.

MotionFormer's tokens are image patches. A query token at frame t attends, separately in every
frame t', over that frame's tokens (softmax over space): this pools one *trajectory token* per
frame, along where the query's content went. A 1-D attention over those tokens, whose query is the
trajectory token of the query's own frame, gives the output (paper eq. 6-7).

Space. The event head has one token per track and frame, and a softmax over one token would make
the first step a no-op. A frame's space here is its *actors*: the track itself and up to
``MAX_ACTORS - 1`` other tracks present in that frame, nearest first (:mod:`.actors`; the detect
stage keeps one pooled RoI vector per box, not a grid, so there are no patches to use). Step 1
asks, in every frame t', which actors carry on the query's trajectory: itself mostly, and those
near it where they matter (a car stopping behind another, a pedestrian at a crossing car). Actor
tokens are the embedded inputs of those tracks at t' (they are keys and values only, a memory as
in cross-attention); the queries are the track's own tokens, updated layer by layer.

Time. Layer i attends over t' within +-reach_i frames of t, the reach of the dilated convolution
it replaces (``kernel // 2 * 2**i``), so the stack sees as far as the conv head does and a whole
track at inference sees what a training window saw. Queries go in chunks, each with only the key
frames its band needs: memory grows with the track's length, not its square.

Orthoformer (``prototypes`` R > 0): step 1 goes through R prototypes chosen among the queries,
each the one most orthogonal to those chosen so far (greedy, starting from the first valid query;
not differentiated, as in MotionFormer's code): softmax_r(q . p_r) x per frame softmax_s(p_r . k_s).
It costs R x frames x actors instead of frames^2 x actors; it is an approximation at every R.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

CHUNK = 16
"""Query frames per chunk: each chunk pools only the key frames its band needs."""


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over ``dim`` of the entries where ``mask`` holds; 0 elsewhere and 0 over a row
    with none (finite fill, so no NaN reaches the gradient)."""
    filled = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
    return filled.softmax(dim) * mask


def orthogonal_prototypes(q: torch.Tensor, valid: torch.Tensor, count: int) \
        -> tuple[torch.Tensor, torch.Tensor]:
    """q (B, h, T, d), valid (B, T) -> prototypes (B, h, R, d) and their mask (B, h, R),
    R = min(count, T): greedily, each valid query whose largest |cosine| to those chosen is the
    smallest. A sample with fewer valid queries than R masks the rest out."""
    B, h, T, d = q.shape
    R = min(count, T)
    with torch.no_grad():
        unit = F.normalize(q, dim=-1)
        free = valid[:, None, :].expand(B, h, T).clone()  # (B, h, T) selectable
        worst = torch.zeros(B, h, T, dtype=q.dtype, device=q.device)  # max |cos| to chosen
        picks = []
        for r in range(R):
            score = worst if r else torch.arange(T, dtype=q.dtype, device=q.device).expand(B, h, T)
            pick = score.masked_fill(~free, torch.inf).argmin(-1)  # (B, h)
            picks.append(pick)
            free.scatter_(-1, pick[..., None], False)
            chosen = unit.gather(2, pick[..., None, None].expand(B, h, 1, d))  # (B, h, 1, d)
            worst = torch.maximum(worst, (unit * chosen).sum(-1).abs())
        index = torch.stack(picks, -1)  # (B, h, R)
        protos = q.gather(2, index[..., None].expand(B, h, R, d)).detach()
    mask = torch.arange(R, device=q.device) < valid.sum(-1)[:, None, None]  # (B, 1, R)
    return protos, mask.expand(B, h, R)


class TrajectoryAttention(nn.Module):
    """x (B, T, D) track tokens, actors (B, T, S, D) the tokens of each frame's actors,
    mask (B, T, S) real actors (a frame with none is padding) -> (B, T, D)."""

    def __init__(self, dim: int, heads: int, reach: int, prototypes: int = 0):
        super().__init__()
        self.heads, self.reach, self.prototypes = heads, reach, prototypes
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj_q = nn.Linear(dim, dim)
        self.proj_kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, actors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        h = self.heads
        q = self.q(x).unflatten(-1, (h, -1)).transpose(1, 2)  # (B, h, T, d)
        k, v = (t.unflatten(-1, (h, -1)).permute(0, 3, 1, 2, 4)  # (B, h, T, S, d)
                for t in self.kv(actors).chunk(2, -1))
        valid = mask.any(-1)  # (B, T) frames of the track
        protos = orthogonal_prototypes(q, valid, self.prototypes) if self.prototypes else None
        out = []
        for a in range(0, T, CHUNK):
            b = min(T, a + CHUNK)
            lo, hi = max(0, a - self.reach), min(T, b + self.reach)
            pooled = self._pool(q[:, :, a:b], k[:, :, lo:hi], v[:, :, lo:hi], mask[:, lo:hi],
                                protos)
            out.append(self._along_time(pooled, a - lo, valid[:, lo:hi]))
        return self.proj(torch.cat(out, 1))

    def _pool(self, q, k, v, mask, protos) -> torch.Tensor:
        """Step 1: q (B, h, C, d), k/v (B, h, K, S, d), mask (B, K, S) -> trajectory tokens
        (B, h, C, K, d), each a softmax over one frame's actors."""
        space = mask[:, None, None]  # (B, 1, 1, K, S)
        if protos is None:
            attn = masked_softmax(torch.einsum("bhcd,bhksd->bhcks", q, k) * self.scale, space, -1)
            return torch.einsum("bhcks,bhksd->bhckd", attn, v)
        p, p_mask = protos  # (B, h, R, d), (B, h, R)
        to_proto = masked_softmax(torch.einsum("bhcd,bhrd->bhcr", q, p) * self.scale,
                                  p_mask[:, :, None], -1)  # (B, h, C, R)
        to_space = masked_softmax(torch.einsum("bhrd,bhksd->bhrks", p, k) * self.scale, space,
                                  -1)  # (B, h, R, K, S)
        return torch.einsum("bhcr,bhrks,bhksd->bhckd", to_proto, to_space, v)

    def _along_time(self, pooled: torch.Tensor, offset: int, valid: torch.Tensor) -> torch.Tensor:
        """Step 2: trajectory tokens (B, h, C, K, d) of queries offset..offset+C-1 of the K key
        frames, valid (B, K) -> (B, C, D): 1-D attention over the key frames within reach, the
        query from the trajectory token of the query's own frame."""
        B, h, C, K, d = pooled.shape
        tokens = pooled.permute(0, 2, 3, 1, 4).flatten(-2)  # (B, C, K, D)
        rows = torch.arange(C, device=pooled.device)
        own = rows + offset  # (C,) the query's frame among the keys
        band = own[:, None] + torch.arange(-self.reach, self.reach + 1, device=pooled.device)
        inside = (band >= 0) & (band < K)  # (C, N) N = 2 reach + 1
        band = band.clamp(0, K - 1)
        q2 = self.proj_q(tokens[:, rows, own]).unflatten(-1, (h, d))  # (B, C, h, d)
        k2, v2 = (t.unflatten(-1, (h, d))  # (B, C, N, h, d)
                  for t in self.proj_kv(tokens[:, rows[:, None], band]).chunk(2, -1))
        keep = (inside & valid[:, band])[:, None]  # (B, 1, C, N)
        attn = masked_softmax(torch.einsum("bchd,bcnhd->bhcn", q2, k2) * self.scale, keep, -1)
        return torch.einsum("bhcn,bcnhd->bchd", attn, v2).flatten(-2)


class TrajectoryBlock(nn.Module):
    """A pre-norm transformer block with trajectory attention: x (B, T, D), actors
    (B, T, S, D), mask (B, T, S) -> (B, T, D)."""

    def __init__(self, dim: int, heads: int, reach: int, prototypes: int, dropout: float):
        super().__init__()
        self.norm, self.actor_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attend = TrajectoryAttention(dim, heads, reach, prototypes)
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(),
                                 nn.Linear(2 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, actors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attend(self.norm(x), self.actor_norm(actors), mask))
        return x + self.drop(self.mlp(x))
