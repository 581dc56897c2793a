"""Literal transcription of Deformable-DETR's multi-scale deformable attention as seed 003
describes it (the pure PyTorch core of ``MSDeformAttnFunction``), and a decoder stage's
deformable mixing written with it: the reference for ``tests/test_msdeform.py``. Slow on
purpose (one map at a time, explicit stacks); do not optimise."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .stm import translate_to_linear_weight_ref


def ms_deform_attn_core_ref(value, value_spatial_shapes, sampling_locations, attention_weights):
    """The seed's MSDeformAttnFunction in plain PyTorch.

    value: (batch, S, heads, dim_per_head), S = sum of H_l * W_l over the levels, level by level;
    value_spatial_shapes: [(H_l, W_l)] per level; sampling_locations: (batch, queries, heads,
    levels, points, 2) normalised x, y in [0, 1]; attention_weights: (batch, queries, heads,
    levels, points). Returns (batch, queries, heads * dim_per_head).
    """
    N, S, M, D = value.shape
    _, Lq, _, L, P, _ = sampling_locations.shape
    value_list = value.split([h * w for h, w in value_spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    sampled_list = []
    for level, (h, w) in enumerate(value_spatial_shapes):
        # (N, h*w, M, D) -> (N, M*D, h*w) -> (N*M, D, h, w)
        value_l = value_list[level].flatten(2).transpose(1, 2).reshape(N * M, D, h, w)
        # (N, Lq, M, P, 2) -> (N, M, Lq, P, 2) -> (N*M, Lq, P, 2)
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled_list.append(F.grid_sample(value_l, grid_l, mode="bilinear",
                                          padding_mode="zeros", align_corners=False))
    # (N, Lq, M, L, P) -> (N*M, 1, Lq, L*P)
    attention = attention_weights.transpose(1, 2).reshape(N * M, 1, Lq, L * P)
    sampled = torch.stack(sampled_list, dim=-2).flatten(-2)  # (N*M, D, Lq, L*P)
    output = (sampled * attention).sum(-1).view(N, M * D, Lq)
    return output.transpose(1, 2).contiguous()


def deformable_mixing_ref(levels, strides, sample_points, query, value_proj, attention_weights,
                          output_proj, n_points, mapping_stride=3.0, tau=2.0):
    """One query set's deformable mixing as MSDeformAttn over every frame of every scale level.

    levels: list of (B, D, T, H_l, W_l) features; sample_points: (B, N, 1, G * P, 3) x, y in
    input pixels and level coordinate; query: (B, N, D); value_proj, attention_weights,
    output_proj: nn.Linear (the module's). The seed's "levels" are the L x T maps (level l,
    frame t); point p of head g is read at x, y in each, with weight softmax_{t,p}(logits)[g, t,
    p] * softmax_l(-(z - mapping_stride - l)^2 / tau). Returns query + output_proj(...),
    (B, N, D).
    """
    B, D, T = levels[0].shape[:3]
    _, N, _, GP, _ = sample_points.shape
    G, P, L = GP // n_points, n_points, len(levels)
    maps, shapes, locations = [], [], []
    xy = sample_points[:, :, 0, :, :2].reshape(B, N, G, P, 2)
    for level, stride in zip(levels, strides, strict=True):
        h, w = level.shape[-2:]
        for t in range(T):
            flat = level[:, :, t].flatten(2).transpose(1, 2)  # (B, h*w, D)
            maps.append(value_proj(flat))
            shapes.append((h, w))
            locations.append(xy / torch.tensor([w * stride, h * stride], dtype=xy.dtype))
    value = torch.cat(maps, dim=1).view(B, -1, G, D // G)
    sampling_locations = torch.stack(locations, dim=3)  # (B, N, G, L*T, P, 2)
    attention = attention_weights(query).view(B, N, G, T * P).softmax(-1).view(B, N, G, T, P)
    level_weights = translate_to_linear_weight_ref(
        sample_points[:, :, 0, :, 2] - mapping_stride, L, tau).view(B, N, G, P, L)
    weights = torch.stack([attention[:, :, :, t] * level_weights[..., lev]
                           for lev in range(L) for t in range(T)], dim=3)  # (B, N, G, L*T, P)
    out = ms_deform_attn_core_ref(value, shapes, sampling_locations, weights)
    return query + output_proj(out)
