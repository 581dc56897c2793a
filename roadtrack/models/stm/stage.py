"""One STMixer decoder stage: query self-attention, adaptive 4-D sampling, spatial and temporal
AdaptiveMixing, feed-forward blocks, heads and box refinement."""
from __future__ import annotations

import torch
from torch import nn

from ..heads import StageHeads
from .deformable import DeformableMixing, ValueProjection
from .geometry import pairwise_iof, position_embedding, refine_xyzr, xyzr_to_xyxy
from .mixing import AdaptiveMixing
from .sampling import FeatureLayout, make_sample_points, sample4d


class FeedForward(nn.Module):
    """x + W2 relu(W1 x), then LayerNorm."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.net(x))


class SamplingMixing(nn.Module):
    """Sample points from the spatial queries' boxes and mix what they read into both queries:
    by AdaptiveMixing (``mixing="adaptive"``) or by multi-scale deformable attention
    (``"deformable"``, see :mod:`.deformable`), from the same sample points."""

    def __init__(self, dim: int, points: int, frames: int, groups: int, out_multiplier: int,
                 mapping_stride: float, tau: float, mixing: str = "adaptive"):
        super().__init__()
        self.points, self.groups = points, groups
        self.mapping_stride, self.tau = mapping_stride, tau
        self.offset_generator = nn.Linear(dim, groups * points * 3)
        self.value_proj = ValueProjection(dim) if mixing == "deformable" else None
        if self.value_proj is not None:
            self.mixing_s: nn.Module = DeformableMixing(dim, points, frames, groups)
            self.mixing_t: nn.Module = DeformableMixing(dim, points, frames, groups)
        else:
            self.mixing_s = AdaptiveMixing(dim, points, groups, query_dim=dim,
                                           out_points=points * out_multiplier)
            self.mixing_t = AdaptiveMixing(dim, frames, groups, query_dim=dim,
                                           out_points=frames * out_multiplier)
        self.norm_s = nn.LayerNorm(dim)
        self.norm_t = nn.LayerNorm(dim)

    @torch.no_grad()
    def init_weights(self):
        # offsets start as fixed points spread uniformly over the box, at the box's own level
        nn.init.zeros_(self.offset_generator.weight)
        bias = self.offset_generator.bias.view(self.groups, self.points, 3)
        bias[..., :2].uniform_(-0.5, 0.5)
        bias[..., 2].zero_()
        if self.value_proj is not None:
            self.value_proj.init_weights()
        self.mixing_s.init_weights()
        self.mixing_t.init_weights()

    def forward(self, layout: FeatureLayout, strides, spatial: torch.Tensor,
                temporal: torch.Tensor, xyzr: torch.Tensor):
        if self.value_proj is not None:
            layout = self.value_proj(layout)
        offset = self.offset_generator(spatial)  # (B, N, G*P*3)
        points = make_sample_points(offset, self.groups * self.points, xyzr)  # (B, N, 1, G*P, 3)
        sampled = sample4d(points, layout, strides, n_points=self.points,
                           mapping_stride=self.mapping_stride, tau=self.tau)
        # (B, C/G, G, T, P, N, 1) -> (B, N, G, T, P, C/G)
        sampled = sampled.flatten(5, 6).permute(0, 5, 2, 3, 4, 1)
        if self.value_proj is not None:  # attention over the T x P frame-points of each group
            return (self.norm_s(self.mixing_s(sampled, spatial)),
                    self.norm_t(self.mixing_t(sampled, temporal)))
        spatial = self.norm_s(self.mixing_s(sampled.mean(dim=3), spatial))  # mean over T
        temporal = self.norm_t(self.mixing_t(sampled.mean(dim=4), temporal))  # mean over P
        return spatial, temporal


class DecoderStage(nn.Module):
    """forward(layout, strides, spatial, temporal (B, N, D), xyzr (B, N, 4)) ->
    (spatial, temporal, refined xyzr, head logits dict)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, points: int, frames: int,
                 groups: int, out_multiplier: int, mapping_stride: float, tau: float,
                 classes: dict[str, int], dropout: float = 0.0, mixing: str = "adaptive"):
        super().__init__()
        self.num_heads = num_heads
        self.iof_tau = nn.Parameter(torch.empty(num_heads))
        self.attention_s = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.attention_t = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.attention_norm_s = nn.LayerNorm(dim)
        self.attention_norm_t = nn.LayerNorm(dim)
        self.sampling_mixing = SamplingMixing(dim, points, frames, groups, out_multiplier,
                                              mapping_stride, tau, mixing)
        self.ffn_s = FeedForward(dim, ffn_dim, dropout)
        self.ffn_t = FeedForward(dim, ffn_dim, dropout)
        self.heads = StageHeads(dim, classes)

    @torch.no_grad()
    def init_weights(self):
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.uniform_(self.iof_tau, 0.0, 4.0)
        self.sampling_mixing.init_weights()
        self.heads.init_weights()

    def _attend(self, attention, norm, queries, embedding, bias):
        x = queries + embedding
        return norm(x + attention(x, x, x, attn_mask=bias, need_weights=False)[0])

    def forward(self, layout: FeatureLayout, strides, spatial: torch.Tensor,
                temporal: torch.Tensor, xyzr: torch.Tensor):
        D = spatial.shape[-1]
        with torch.no_grad():  # geometry prior: log IoF between the current boxes
            log_iof = (pairwise_iof(xyzr_to_xyxy(xyzr)) + 1e-7).log()  # (B, N, N)
            embedding = position_embedding(xyzr, D // 4)  # (B, N, D)
        bias = (log_iof[:, None] * self.iof_tau.view(1, -1, 1, 1)).flatten(0, 1)  # (B*heads, N, N)
        spatial = self._attend(self.attention_s, self.attention_norm_s, spatial, embedding, bias)
        temporal = self._attend(self.attention_t, self.attention_norm_t, temporal, embedding, bias)
        spatial, temporal = self.sampling_mixing(layout, strides, spatial, temporal, xyzr)
        spatial = self.ffn_s(spatial)
        temporal = self.ffn_t(temporal)
        logits = self.heads(spatial, temporal)
        xyzr = refine_xyzr(xyzr, logits.pop("delta"))
        return spatial, temporal, xyzr, logits
