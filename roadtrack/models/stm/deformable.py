"""Multi-scale deformable attention (Deformable-DETR's MSDeformAttn, seed 003) as the way a decoder
stage combines its sampled values: the alternative to AdaptiveMixing (``decoder.mixing:
deformable``).

MSDeformAttn, per query: ``value = value_proj(features)`` split into M heads; per head, level
and point a sampling location (reference point + offset predicted from the query) and an
attention weight (a linear layer on the query, softmax over levels x points); bilinear reads of
every level at its locations (grid_sample); the weighted sum per head; ``output_proj`` of the
concatenated heads. How its pieces map onto roadtrack's sampling, which stays STMixer's:

- heads M = ``decoder.groups`` G: head g reads channels g * D/G .. (g + 1) * D/G of the
  projected values, as in MSDeformAttn (and as AdaptiveMixing's groups do).
- points K = ``decoder.spatial_points`` P per head; their offsets come from the spatial query
  (the stage's ``offset_generator``), relative to the reference box, the query's xyzr box:
  x, y = box centre + offset * box size (:func:`~.sampling.make_sample_points`).
- levels L: every frame t of every scale level l is one of the seed's 2-D maps (L_seed = L x T').
  A point is read at the same x, y in every frame. Its third coordinate z (box log2 scale +
  predicted offset) weighs the scale levels, w_l(z) = softmax_l(-(z - mapping_stride - l)^2 /
  tau) (:func:`~.sampling.sample4d`), so scale selection is per point, not per attention weight.
- attention weights: a linear layer on the query gives G x T' x P logits, softmax over the
  T' x P frame-points of each head. The seed's weight of map (l, t), point p is then
  A[g, t, p] * w_l(z_gp): still summing to 1 over levels x points, and the weighted sum equals
  MSDeformAttn's over those maps with those weights (``tests/reference/msdeform.py`` checks it).

The spatial and the temporal query each attend (own attention weights and output projection)
to the same sampled values: one value projection per stage, on every level's feature map.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .sampling import FeatureLayout, layout_features


class ValueProjection(nn.Module):
    """MSDeformAttn's ``value_proj``: a linear map of every feature vector before sampling.

    forward(layout of (B, D, T, H_l, W_l) levels) -> the same layout of the projected levels.
    Projecting the maps (not the samples) keeps it exact: outside the frame grid_sample reads
    zeros, not the bias, and each head reads all D input channels.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    @torch.no_grad()
    def init_weights(self):
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, layout: FeatureLayout) -> FeatureLayout:
        B, D = layout.batch, layout.channels
        # a 1x1x1 convolution: on the CPU twice as fast as a matmul over (B, D, T*H*W)
        weight = self.proj.weight[:, :, None, None, None]
        projected = [F.conv3d(level.reshape(B, D, *level.shape[2:]), weight, self.proj.bias)
                     for level in layout.levels]  # L x (B, D, T, H_l, W_l)
        return layout_features(projected, layout.n_heads, batched=layout.folded is not None)


class DeformableMixing(nn.Module):
    """Attention-weighted sum of the sampled values per head, output projection, residual.

    forward(x (B, N, G, T, P, C), query (B, N, query_dim)) -> (B, N, query_dim), C = dim / G:
    ``query + output_proj(concat_g sum_{t,p} softmax_{t,p}(attention_weights(query))[g] *
    x[g, t, p])``. The same call and result shape as :class:`~.mixing.AdaptiveMixing`.
    """

    def __init__(self, dim: int, points: int, frames: int, groups: int,
                 query_dim: int | None = None):
        super().__init__()
        query_dim = dim if query_dim is None else query_dim
        self.groups, self.frames, self.points = groups, frames, points
        self.attention_weights = nn.Linear(query_dim, groups * frames * points)
        self.output_proj = nn.Linear(dim, query_dim)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self):
        # MSDeformAttn's: uniform attention at the start, xavier output projection
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, x: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        B, N, G, T, P, C = x.shape
        logits = self.attention_weights(query).view(B, N, G, T * P)
        weights = logits.softmax(dim=-1)  # (B, N, G, T*P)
        out = torch.einsum("bngk,bngkc->bngc", weights, x.reshape(B, N, G, T * P, C))
        return query + self.output_proj(out.reshape(B, N, G * C))
