"""The event head: a temporal convolution network over a track's per-frame features.

Dilated 1-D convolutions with residual connections give each frame a view of about a second of
its track on both sides, from which it predicts multi-label agent, action and location logits.
"""
from __future__ import annotations

import torch
from torch import nn

from .relation import ActorRelation


class TemporalBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel // 2),
                              dilation=dilation)
        self.norm = nn.GroupNorm(1, channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, C, T)
        return x + self.drop(torch.nn.functional.gelu(self.norm(self.conv(x))))


class EventHead(nn.Module):
    """(B, T, F) per-frame features -> agent (B, T, A), action (B, T, C), loc (B, T, L) logits.

    With a ``relation`` module (:class:`~roadtrack.events.relation.ActorRelation`), ``forward``
    also takes each frame's other actors (``actors``, ``boxes``, ``present``) and the module's
    (B, T, out_dim) output joins the features."""

    def __init__(self, in_dim: int, num_agent: int, num_action: int, num_loc: int,
                 hidden: int = 96, layers: int = 3, kernel: int = 5, dropout: float = 0.1,
                 relation: ActorRelation | None = None):
        super().__init__()
        self.sizes = (num_agent, num_action, num_loc)
        self.relation = relation
        self.embed = nn.Linear(in_dim + (relation.out_dim if relation else 0), hidden)
        self.blocks = nn.Sequential(*[TemporalBlock(hidden, kernel, 2 ** i, dropout)
                                      for i in range(layers)])
        self.classify = nn.Linear(hidden, sum(self.sizes))

    def forward(self, features: torch.Tensor, **actors: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.relation is not None:
            features = torch.cat([features, self.relation(features, **actors)], dim=-1)
        x = self.embed(features).transpose(1, 2)  # (B, hidden, T)
        x = self.blocks(x).transpose(1, 2)  # (B, T, hidden)
        agent, action, loc = self.classify(x).split(self.sizes, dim=-1)
        return {"agent": agent, "action": action, "loc": loc}
