"""Query box geometry: xyzr boxes (centre x, y in pixels, z = log2 sqrt(w h), r = log2 h / w),
their decoding, refinement, pairwise IoF and sinusoidal embedding."""
from __future__ import annotations

import math

import torch


def xyzr_to_xyxy(xyzr: torch.Tensor) -> torch.Tensor:
    """(..., 4) xyzr -> (..., 4) x1 y1 x2 y2 in the same pixels."""
    scale = 2.0 ** xyzr[..., 2:3]
    ratio = 2.0 ** torch.cat([xyzr[..., 3:4] * -0.5, xyzr[..., 3:4] * 0.5], dim=-1)
    wh = scale * ratio
    xy = xyzr[..., 0:2]
    return torch.cat([xy - wh * 0.5, xy + wh * 0.5], dim=-1)


def whole_frame_xyzr(batch: int, queries: int, width: int, height: int,
                     device=None) -> torch.Tensor:
    """(batch, queries, 4): every query starts as the whole frame."""
    box = torch.tensor([width / 2, height / 2, 0.5 * math.log2(width * height),
                        math.log2(height / width)], device=device)
    return box.expand(batch, queries, 4).clone()


def refine_xyzr(xyzr: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """xy += dxy * 2**z; z += dz; r += dr. Both (..., 4)."""
    xy = xyzr[..., 0:2] + delta[..., 0:2] * 2.0 ** xyzr[..., 2:3]
    return torch.cat([xy, xyzr[..., 2:4] + delta[..., 2:4]], dim=-1)


def pairwise_iof(boxes: torch.Tensor) -> torch.Tensor:
    """(B, N, 4) x1 y1 x2 y2 -> (B, N, N) intersection over the area of the first (row) box."""
    lt = torch.maximum(boxes[:, :, None, :2], boxes[:, None, :, :2])
    rb = torch.minimum(boxes[:, :, None, 2:], boxes[:, None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = (boxes[..., 2:] - boxes[..., :2]).clamp(min=0).prod(-1)
    return inter / area.clamp(min=1e-6)[:, :, None]


def position_embedding(xyzr: torch.Tensor, num_feats: int, temperature: float = 10000.0):
    """(B, N, 4) -> (B, N, 4 * num_feats) sines and cosines of x/1000, y/1000, z, r."""
    xyzr = xyzr / xyzr.new_tensor([1000.0, 1000.0, 1.0, 1.0])
    dim_t = torch.arange(num_feats, dtype=xyzr.dtype, device=xyzr.device)
    dim_t = temperature ** (2 * (dim_t // 2) / num_feats)
    pos = xyzr[..., None] / dim_t  # (B, N, 4, F)
    pos = torch.stack([pos[..., 0::2].sin(), pos[..., 1::2].cos()], dim=-1)
    return pos.flatten(2)
