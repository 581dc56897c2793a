"""The event head: a temporal convolution network over a track's per-frame features.

Dilated 1-D convolutions with residual connections give each frame a view of about a second of
its track on both sides, from which it predicts multi-label agent, action and location logits.
"""
from __future__ import annotations

import torch
from torch import nn

from .relation import ActorRelation
from .trajectory import TrajectoryBlock


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

    Two options relate a track to each frame's actors (:mod:`.actors`), which ``forward`` then
    also takes: features (B, T, S, F) (slot 0: the track), their mask (B, T, S) and boxes
    (B, T, S, 4). A ``relation`` module (:class:`~roadtrack.events.relation.ActorRelation`)
    adds its (B, T, out_dim) output to the features; ``temporal="trajectory"`` puts trajectory
    attention (:mod:`.trajectory`) in place of the convolutions, reaching as far."""

    def __init__(self, in_dim: int, num_agent: int, num_action: int, num_loc: int,
                 hidden: int = 96, layers: int = 3, kernel: int = 5, dropout: float = 0.1,
                 temporal: str = "conv", heads: int = 4, prototypes: int = 0,
                 relation: ActorRelation | None = None):
        super().__init__()
        self.sizes = (num_agent, num_action, num_loc)
        self.temporal, self.relation = temporal, relation
        self.embed = nn.Linear(in_dim + (relation.out_dim if relation else 0), hidden)
        reach = [kernel // 2 * 2 ** i for i in range(layers)]  # frames each side, per layer
        self.blocks = nn.Sequential(*[TemporalBlock(hidden, kernel, 2 ** i, dropout)
                                      for i in range(layers)]) if temporal == "conv" else \
            nn.ModuleList([TrajectoryBlock(hidden, heads, r, prototypes, dropout) for r in reach])
        self.classify = nn.Linear(hidden, sum(self.sizes))

    def forward(self, features: torch.Tensor, actors: torch.Tensor | None = None,
                actor_mask: torch.Tensor | None = None, actor_boxes: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        if self.relation is not None:
            if actors is None or actor_mask is None or actor_boxes is None:
                raise ValueError("the relation module needs each frame's actors, mask and boxes")
            related = self.relation(features, actors[:, :, 1:], actor_boxes, actor_mask)
            features = torch.cat([features, related], dim=-1)  # (B, T, F + out_dim)
        if self.temporal == "conv":
            x = self.embed(features).transpose(1, 2)  # (B, hidden, T)
            x = self.blocks(x).transpose(1, 2)  # (B, T, hidden)
        else:
            if actors is None or actor_mask is None:
                raise ValueError("trajectory attention needs each frame's actors and their mask")
            x, memory = self.embed(features), self.embed(actors)  # (B, T, hidden), (B, T, S, .)
            for block in self.blocks:
                x = block(x, memory, actor_mask)
        agent, action, loc = self.classify(x).split(self.sizes, dim=-1)
        return {"agent": agent, "action": action, "loc": loc}
