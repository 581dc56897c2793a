"""Optional encoder on the backbone's pyramid: 3-D deformable attention (seed 001).

Every position of a (B, C, T, H, W) level attends over a coarse grid of keys (the level
downsampled by ``downsample``) whose positions move by offsets that a small grouped conv net
predicts from the queries, one offset field per offset group; keys and values are read there by
trilinear ``grid_sample``, and a continuous position bias (an MLP of log-spaced relative
positions, SwinV2) is added to the attention logits. One pre-norm residual layer per ``depth`` on
each chosen level, own weights per level.

Same numbers as the seed's ``DeformableAttention3D`` (tests/reference/deformable3d.py) with one
deliberate difference: the seed hands grid_sample its sample points as (frame, row, column), but
grid_sample reads (x = column, y = row, z = frame), so the seed samples columns at frame
positions; here the points go in grid_sample's order (the position bias sees the same order).
Maps smaller than the downsample factors get one key along that axis (the seed gets none).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import NeckConfig


def _positions(t: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """Integer (frame, row, column) of every cell: (3, t, h, w)."""
    axes = [torch.arange(n, device=like.device, dtype=like.dtype) for n in (t, h, w)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))


def _normalized(where: torch.Tensor) -> torch.Tensor:
    """(..., 3, t, h, w) (frame, row, column) cell positions -> (..., t, h, w, 3) in grid_sample's
    (x, y, z) order, cell 0 at -1 and the last cell at +1 along each axis (as the seed does)."""
    sizes = where.new_tensor([max(n - 1, 1) for n in where.shape[-3:]]).view(3, 1, 1, 1)
    return (2.0 * where / sizes - 1.0).flip(-4).movedim(-4, -1)


class ContinuousPositionBias(nn.Module):
    """Attention bias from relative positions: an MLP (3 -> dim -> dim -> out) of
    sign(d) * log(1 + |d|) for each (query, key) pair."""

    def __init__(self, dim: int, out: int):
        super().__init__()
        self.mlp = nn.ModuleList([nn.Sequential(nn.Linear(3, dim), nn.ReLU()),
                                  nn.Sequential(nn.Linear(dim, dim), nn.ReLU()),
                                  nn.Linear(dim, out)])

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """queries (N, 3), keys (BG, M, 3) -> (BG, N, M, out)."""
        rel = queries[None, :, None] - keys[:, None]  # (BG, N, M, 3)
        bias = torch.sign(rel) * torch.log1p(rel.abs())
        for layer in self.mlp:
            bias = layer(bias)
        return bias


class _Scale(nn.Module):
    """Multiplies (B, 3, t, h, w) offsets by a per-axis factor."""

    def __init__(self, scale):
        super().__init__()
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.view(1, 3, 1, 1, 1)


class DeformableAttention3D(nn.Module):
    """Seed 001's attention on one (B, dim, T, H, W) map, (B, dim, T, H, W) out.

    ``heads * dim_head`` query/key/value channels in ``offset_groups`` groups (grouped 1x1x1
    projections); group g's offsets come from group g's queries and move group g's keys;
    offsets are tanh-bounded to +-``downsample`` key cells.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, offset_groups: int,
                 downsample, offset_kernel, dropout: float = 0.0):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.groups, self.scale = heads, offset_groups, dim_head ** -0.5
        self.downsample = tuple(downsample)
        group_dim = inner // offset_groups
        padding = tuple((k - s) // 2 for k, s in zip(offset_kernel, downsample, strict=True))
        self.to_offsets = nn.Sequential(
            nn.Conv3d(group_dim, group_dim, tuple(offset_kernel), stride=self.downsample,
                      padding=padding, groups=group_dim),
            nn.GELU(),
            nn.Conv3d(group_dim, 3, 1, bias=False),
            nn.Tanh(),
            _Scale([float(s) for s in downsample]))
        self.rel_pos_bias = ContinuousPositionBias(dim // 4, heads // offset_groups)
        self.dropout = nn.Dropout(dropout)
        self.to_q = nn.Conv3d(dim, inner, 1, groups=offset_groups, bias=False)
        self.to_k = nn.Conv3d(dim, inner, 1, groups=offset_groups, bias=False)
        self.to_v = nn.Conv3d(dim, inner, 1, groups=offset_groups, bias=False)
        self.to_out = nn.Conv3d(inner, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        G, heads = self.groups, self.heads
        q = self.to_q(x)  # (B, inner, T, H, W)
        grouped = q.reshape(B * G, -1, T, H, W)
        st, sh, sw = self.downsample  # at least one key cell along every axis
        grouped = F.pad(grouped, (0, max(0, sw - W), 0, max(0, sh - H), 0, max(0, st - T)))
        # sample points in float32 whatever autocast computes in: (B G, 3, t, h, w) key cells
        offsets = self.to_offsets(grouped).float()
        t, h, w = offsets.shape[-3:]
        points = _normalized(_positions(t, h, w, offsets) + offsets)  # (B G, t, h, w, 3)
        kv = F.grid_sample(x.float().reshape(B * G, C // G, T, H, W), points, mode="bilinear",
                           padding_mode="zeros", align_corners=False)  # (B G, C / G, t, h, w)
        kv = kv.to(x.dtype).reshape(B, C, t, h, w)
        k, v = self.to_k(kv), self.to_v(kv)  # (B, inner, t, h, w)
        q, k, v = (z.reshape(B, heads, -1, z[0, 0].numel()).transpose(2, 3)
                   for z in (q * self.scale, k, v))  # (B, heads, N or M, dim_head)
        bias = self.rel_pos_bias(_normalized(_positions(T, H, W, x)).reshape(-1, 3),
                                 points.to(x.dtype).reshape(B * G, -1, 3))  # (B G, N, M, heads/G)
        bias = bias.reshape(B, G, *bias.shape[1:3], -1).permute(0, 1, 4, 2, 3)
        sim = q @ k.transpose(2, 3) + bias.reshape(B, heads, *bias.shape[-2:])  # (B, heads, N, M)
        attn = self.dropout(sim.softmax(dim=-1))
        out = (attn @ v).transpose(2, 3).reshape(B, -1, T, H, W)  # (B, inner, T, H, W)
        return self.to_out(out)


class NeckLayer(nn.Module):
    """x + attention(LayerNorm over channels of x), (B, C, T, H, W) in and out."""

    def __init__(self, dim: int, cfg: NeckConfig):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = DeformableAttention3D(dim, cfg.heads, cfg.dim_head, cfg.offset_groups,
                                          cfg.downsample, cfg.offset_kernel, cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attn(self.norm(x.movedim(1, -1)).movedim(-1, 1))


class DeformableNeck(nn.Module):
    """``depth`` :class:`NeckLayer` on each level of ``cfg.levels``; other levels pass as they
    are. forward(list of (B, dim, T', H_l, W_l)) -> the same shapes."""

    def __init__(self, cfg: NeckConfig, dim: int):
        super().__init__()
        self.blocks = nn.ModuleDict({
            str(level): nn.Sequential(*[NeckLayer(dim, cfg) for _ in range(cfg.depth)])
            for level in sorted(cfg.levels)})

    def forward(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.blocks[str(i)](x) if str(i) in self.blocks else x
                for i, x in enumerate(levels)]


def build_neck(cfg: NeckConfig, dim: int) -> DeformableNeck | None:
    """The neck of ``model.neck`` on ``dim``-channel levels, or None for ``none``."""
    return DeformableNeck(cfg, dim) if cfg.name == "deformable3d" else None
