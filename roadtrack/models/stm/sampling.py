"""Adaptive 4-D sampling of STMixer: sample points from query boxes, level weights, multi-level
bilinear reads of every frame.

``make_sample_points``, ``translate_to_linear_weight``, ``mhaq3d`` and ``sample4d`` follow the
formulas of STMixer (seed 000) with the same arguments and shapes. ``sample4d`` gives the same
numbers as the literal formula but runs faster: the features are laid out once per clip
(:func:`layout_features`, which the decoder reuses at every stage) as grouped views that need no
copy, grid_sample reads each frame of each level in place (a strided view), and the levels
accumulate frame by frame in one contiguous buffer with a fused multiply-add; nothing is
zero-filled, repeated or added through a permuted view. Folding time into grid_sample's batch
after a layout copy is as fast without autograd but slower than the literal formula with it;
the per-frame reads are faster both ways and keep no second copy of the features.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def make_sample_points(offset: torch.Tensor, num_group: int, xyzr: torch.Tensor) -> torch.Tensor:
    """Sample points (x, y in pixels, level) around each query box.

    offset: (B, L, num_group * 3), x/y in box units, level offset in log2 units;
    num_group: points per query (in_points * n_heads); xyzr: (B, L, 4) box centre x, y, log2
    scale z, log2 ratio r. Returns (B, L, 1, num_group, 3).
    """
    B, L, _ = offset.shape
    offset = offset.view(B, L, 1, num_group, 3)
    z = xyzr[..., 2:3]  # (B, L, 1)
    r = xyzr[..., 3:4]
    box_wh = 2.0 ** z * 2.0 ** torch.cat([r * -0.5, r * 0.5], dim=-1)  # (B, L, 2)
    xy = xyzr[..., :2].reshape(B, L, 1, 1, 2) + offset[..., :2] * box_wh.view(B, L, 1, 1, 2)
    level = z.reshape(B, L, 1, 1, 1) + offset[..., 2:3]
    return torch.cat([xy, level], dim=-1)


def translate_to_linear_weight(ref: torch.Tensor, num_total: int, tau: float = 2.0) -> torch.Tensor:
    """Soft assignment of a level coordinate to levels 0..num_total-1.

    ref: any shape (..., ) of level coordinates; returns (..., num_total) =
    softmax(-(ref - l)^2 / tau) over l.
    """
    levels = torch.arange(num_total, device=ref.device, dtype=ref.dtype)
    logits = -((ref.unsqueeze(-1) - levels) ** 2 / tau).abs()
    return torch.softmax(logits, dim=-1)


@dataclass
class FeatureLayout:
    """Multi-level features laid out once per clip for :func:`sample4d` (the decoder reuses it).

    ``levels[i]``: (B * n_heads, C // n_heads, T, H_i, W_i), a view of the (B, C, T, H_i, W_i)
    level. Each frame ``levels[i][:, :, t]`` is a strided (B * n_heads, C // n_heads, H, W) image
    that grid_sample reads in place: no copy of the features is needed.
    """

    levels: list
    n_heads: int
    batch: int
    channels: int
    frames: int
    folded: list | None = None  # (T * B * n_heads, C // n_heads, H_i, W_i) copies: one read
    # per level over all frames (the GPU layout), or None: frame by frame in place (the CPU's)

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(H, W) of every level."""
        return [tuple(level.shape[-2:]) for level in self.levels]


def layout_features(values, n_heads: int, batched: bool | None = None) -> FeatureLayout:
    """Lay out a list of (B, C, T, H, W) feature maps (same B, C, T) for :func:`sample4d`.

    ``batched`` (default: on a GPU) adds time-major copies of the levels, so that one
    grid_sample per level reads all frames: fewer, larger kernels where launches cost more than
    the copy; on the CPU the per-frame reads of views are faster and copy nothing.
    """
    B, C, T = values[0].shape[:3]
    if C % n_heads:
        raise ValueError(f"{C} channels do not split into {n_heads} heads")
    levels = [value.reshape(B * n_heads, C // n_heads, T, *value.shape[-2:]) for value in values]
    if batched is None:
        batched = values[0].device.type == "cuda"
    folded = [level.permute(2, 0, 1, 3, 4).reshape(T * B * n_heads, C // n_heads,
                                                   *level.shape[-2:])
              for level in levels] if batched else None  # (T, B*G, C/G, H, W) flattened
    return FeatureLayout(levels, n_heads, B, C, T, folded)


def _read_frame(frame: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear reads of one frame. frame: (B*G, C/G, H, W), a strided view that grid_sample
    reads in place; grid: (B*G, Q, P, 2) in [-1, 1]. Returns (B*G, C/G, Q, P)."""
    return F.grid_sample(frame, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _mix_levels_inplace(out: torch.Tensor, frames, grids, weights) -> None:
    """out[t] = sum_l weights[l] * reads of frames[l][t], written in place (no autograd).

    out: (T, B*G, C/G, Q, P). One grid_sample per frame reads the frame in place and keeps each
    result small (recycled by the allocator from frame to frame).
    """
    for t in range(out.shape[0]):
        for i, (level_frames, grid, weight) in enumerate(zip(frames, grids, weights, strict=True)):
            sampled = _read_frame(level_frames[t], grid)
            if weight is None and i == 0:
                out[t].copy_(sampled)
            elif weight is None:
                out[t].add_(sampled)
            elif i == 0:
                torch.mul(sampled, weight, out=out[t])
            else:
                out[t].addcmul_(sampled, weight)


def _mix_levels_differentiable(frames, grids, weights) -> torch.Tensor:
    """The same as :func:`_mix_levels_inplace` with autograd: per-frame sums, then one stack."""
    per_frame = []
    for t in range(len(frames[0])):
        acc = None
        for level_frames, grid, weight in zip(frames, grids, weights, strict=True):
            sampled = _read_frame(level_frames[t], grid)
            if weight is None:
                acc = sampled if acc is None else acc + sampled
            else:
                acc = sampled * weight if acc is None else torch.addcmul(acc, sampled, weight)
        per_frame.append(acc)
    return torch.stack(per_frame)


def _mix_levels(frames: int, levels, grids, weights, like: torch.Tensor) -> torch.Tensor:
    """(T, B*G, C/G, Q, P): every frame of every level read at ``grids``, weighted, summed."""
    # unbind, not indexing: its backward stacks the frame gradients once per level
    level_frames = [level.unbind(2) for level in levels]  # L x T x (B*G, C/G, H, W)
    needs_grad = torch.is_grad_enabled() and any(
        x is not None and x.requires_grad for x in (*levels, *grids, *weights))
    if needs_grad:
        return _mix_levels_differentiable(level_frames, grids, weights)
    B_G, Cg = levels[0].shape[:2]
    Q, P = grids[0].shape[1:3]
    out = like.new_empty(frames, B_G, Cg, Q, P)
    _mix_levels_inplace(out, level_frames, grids, weights)
    return out


def _mix_levels_batched(frames: int, folded, grids, weights) -> torch.Tensor:
    """:func:`_mix_levels` with one grid_sample per level over all frames of the time-major
    ``folded`` levels (T * B*G, C/G, H, W). Returns (T, B*G, C/G, Q, P)."""
    out = None
    for level, grid, weight in zip(folded, grids, weights, strict=True):
        B_G, Q, P, _ = grid.shape
        every = grid.unsqueeze(0).expand(frames, -1, -1, -1, -1).reshape(frames * B_G, Q, P, 2)
        sampled = _read_frame(level, every).view(frames, B_G, -1, Q, P)
        if weight is None:
            out = sampled if out is None else out + sampled
        else:
            out = sampled * weight if out is None else torch.addcmul(out, sampled, weight)
    return out


def _to_seed_order(out: torch.Tensor, B: int, n_heads: int, Hq: int, Wq: int) -> torch.Tensor:
    """(T, B*G, C/G, Q, P) -> (B, C/G, G, T, P, Hq, Wq) (a view)."""
    T, _, Cg, Q, P = out.shape
    out = out.view(T, B, n_heads, Cg, Q, P).permute(1, 3, 2, 0, 5, 4)
    return out.unflatten(-1, (Hq, Wq))


def sample4d(sample_points: torch.Tensor, values, featmap_strides, n_points: int = 1,
             num_levels: int | None = None, mapping_stride: float = 3.0,
             tau: float = 2.0, batched: bool | None = None) -> torch.Tensor:
    """Read every point in every frame of every level, mixed over levels by the point's level.

    sample_points: (B, Hq, Wq, n_heads * n_points, 3) x, y in input pixels and level;
    values: list of (B, C, T, H_l, W_l) or a :class:`FeatureLayout` (reused across stages; its
    own layout decides); ``batched``: for a list, one read per level over all frames (default
    on a GPU, see :func:`layout_features`);
    featmap_strides: stride of each level. Returns (B, C // n_heads, n_heads, T, n_points, Hq, Wq),
    a permuted view of a contiguous (T, B, n_heads, C // n_heads, Hq * Wq, n_points) buffer.
    """
    B, Hq, Wq, n_heads_points, _ = sample_points.shape
    n_heads = n_heads_points // n_points
    if isinstance(values, FeatureLayout):
        layout = values
        if layout.n_heads != n_heads:
            raise ValueError(f"layout has {layout.n_heads} heads, points have {n_heads}")
    else:
        layout = layout_features(values[:num_levels] if num_levels else values, n_heads,
                                 batched)
    if num_levels is None:
        num_levels = len(layout.levels)
    Q = Hq * Wq

    # (B*G, Q, P, 2) pixel coordinates; (L, B*G, 1, Q, P) level weights
    xy = sample_points[..., :2].reshape(B, Q, n_heads, n_points, 2).transpose(1, 2)
    xy = xy.reshape(B * n_heads, Q, n_points, 2)
    weights = translate_to_linear_weight(sample_points[..., 2] - mapping_stride, num_levels, tau)
    weights = weights.reshape(B, Q, n_heads, n_points, num_levels).permute(4, 0, 2, 1, 3)
    weights = weights.reshape(num_levels, B * n_heads, 1, Q, n_points)

    grids = []
    for i in range(num_levels):
        H, W = layout.levels[i].shape[-2:]
        mapping_size = xy.new_tensor([W * featmap_strides[i], H * featmap_strides[i]])
        grids.append((xy / mapping_size) * 2.0 - 1.0)
    if layout.folded is not None:
        out = _mix_levels_batched(layout.frames, layout.folded[:num_levels], grids,
                                  list(weights))
    else:
        out = _mix_levels(layout.frames, layout.levels[:num_levels], grids, list(weights),
                          like=sample_points)
    return _to_seed_order(out, B, n_heads, Hq, Wq)


def mhaq3d(sample_points: torch.Tensor, value: torch.Tensor, weight: torch.Tensor | None = None,
           n_points: int = 1) -> torch.Tensor:
    """Multi-head bilinear reads of one level in every frame.

    sample_points: (B, Hq, Wq, n_heads * n_points, 2) normalised to [0, 1]; value: (B, C, T, H, W);
    weight: (B, Hq, Wq, n_heads * n_points) or None.
    Returns (B, C // n_heads, n_heads, T, n_points, Hq, Wq).
    """
    B, Hq, Wq, n_heads_points, _ = sample_points.shape
    n_heads = n_heads_points // n_points
    layout = layout_features([value], n_heads)
    Q = Hq * Wq
    grid = sample_points.reshape(B, Q, n_heads, n_points, 2).transpose(1, 2)
    grid = grid.reshape(B * n_heads, Q, n_points, 2) * 2.0 - 1.0
    if weight is not None:
        weight = weight.reshape(B, Q, n_heads, n_points).transpose(1, 2)
        weight = weight.reshape(B * n_heads, 1, Q, n_points)
    out = _mix_levels(layout.frames, layout.levels, [grid], [weight], like=sample_points)
    return _to_seed_order(out, B, n_heads, Hq, Wq)
