"""Per-stage prediction heads: agentness, box delta and multi-label agent / action / location."""
from __future__ import annotations

import math

import torch
from torch import nn

PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)  # sigmoid(bias) = 0.01, the focal-loss prior


class MLPHead(nn.Sequential):
    """Linear + LayerNorm + ReLU, then a Linear to ``out_dim``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out_dim))

    @property
    def last(self) -> nn.Linear:
        return self[-1]


class StageHeads(nn.Module):
    """Heads of one decoder stage.

    forward(spatial (B, N, D), temporal (B, N, D)) -> dict of logits: ``agentness`` (B, N),
    ``agent`` (B, N, A), ``action`` (B, N, C), ``loc`` (B, N, L), and ``delta`` (B, N, 4) xyzr.
    Agentness and the box delta read the spatial query; labels read both queries.
    """

    def __init__(self, dim: int, classes: dict[str, int]):
        super().__init__()
        self.agentness = MLPHead(dim, dim, 1)
        self.delta = MLPHead(dim, dim, 4)
        self.labels = nn.ModuleDict({name: MLPHead(2 * dim, dim, n) for name, n in classes.items()})

    @torch.no_grad()
    def init_weights(self):
        nn.init.zeros_(self.delta.last.weight)
        nn.init.zeros_(self.delta.last.bias)
        for head in [self.agentness, *self.labels.values()]:
            nn.init.constant_(head.last.bias, PRIOR_BIAS)

    def forward(self, spatial: torch.Tensor, temporal: torch.Tensor) -> dict:
        both = torch.cat([spatial, temporal], dim=-1)
        out = {"agentness": self.agentness(spatial).squeeze(-1), "delta": self.delta(spatial)}
        for name, head in self.labels.items():
            out[name] = head(both)
        return out
