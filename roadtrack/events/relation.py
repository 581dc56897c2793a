"""ACAR-Net's actor-context relation head (Pan et al. 2021) for the event head's per-frame inputs.

As in ACAR's ``ACARHead``: each actor's features are reduced, tiled over a context map and
concatenated with it, encoded by a 1x1 and a 3x3 convolution, max-pooled 2x, related to the other
actors of the frame by HR2O (non-local attention among the actors at every map position, a
residual per block), averaged over the map and concatenated with the actor's own projected
features. roadtrack's detect stage keeps no feature map, so the context map is the frame's actor
layout: each actor's reduced features spread over the grid cells its box covers, averaged where
boxes overlap. Each track frame's output joins its inputs to the temporal head.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import EventsConfig


class HR2O(nn.Module):
    """One high-order relation block: (G, N, C, H, W) actor-context maps of N actors in each of G
    frames, (G, N) bool present -> (G, N, C, H, W). Absent actors are never attended to."""

    def __init__(self, dim: int, kernel: int = 3, dropout: float = 0.2):
        super().__init__()
        pad = kernel // 2
        self.conv_q = nn.Conv2d(dim, dim, kernel, padding=pad, bias=False)
        self.conv_k = nn.Conv2d(dim, dim, kernel, padding=pad, bias=False)
        self.conv_v = nn.Conv2d(dim, dim, kernel, padding=pad, bias=False)
        self.conv = nn.Conv2d(dim, dim, kernel, padding=pad, bias=False)
        self.norm = nn.GroupNorm(1, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        g, n, c, h, w = x.shape
        flat = x.flatten(0, 1)  # (G*N, C, H, W)
        q, k, v = (conv(flat).view(g, n, c, h, w) for conv in (self.conv_q, self.conv_k,
                                                               self.conv_v))
        att = torch.einsum("gichw,gjchw->gijhw", q, k) / c ** 0.5  # (G, N, N, H, W)
        att = att.masked_fill(~present[:, None, :, None, None], float("-inf")).softmax(dim=2)
        virt = torch.einsum("gijhw,gjchw->gichw", att, v).flatten(0, 1)  # (G*N, C, H, W)
        virt = self.drop(self.conv(F.relu(self.norm(virt))))
        return x + virt.view(g, n, c, h, w)


def box_cover(boxes: torch.Tensor, grid: int) -> torch.Tensor:
    """(..., 4) x1 y1 x2 y2 in [0, 1] -> (..., grid, grid): the share of each cell (row y, column
    x) that the box covers."""
    lo = torch.arange(grid, dtype=boxes.dtype, device=boxes.device) / grid  # (grid,)
    hi = lo + 1 / grid
    x = (torch.minimum(boxes[..., 2:3], hi) - torch.maximum(boxes[..., 0:1], lo)).clamp(min=0)
    y = (torch.minimum(boxes[..., 3:4], hi) - torch.maximum(boxes[..., 1:2], lo)).clamp(min=0)
    return (y[..., :, None] * x[..., None, :]) * grid ** 2  # (..., grid, grid)


class ActorRelation(nn.Module):
    """(B, T, F) track inputs, (B, T, K, F) other actors' inputs, (B, T, K+1, 4) boxes (slot 0:
    the track), (B, T, K+1) present -> (B, T, 2 * hidden) relation features of the track."""

    def __init__(self, in_dim: int, grid: int = 8, reduce: int = 32,
                 hidden: int = 32, depth: int = 2, kernel: int = 3):
        super().__init__()
        self.grid, self.out_dim = grid, 2 * hidden
        self.reduce = nn.Linear(in_dim, reduce, bias=False)  # ACAR's conv_reduce on RoI features
        self.conv1 = nn.Conv2d(2 * reduce, hidden, 1, bias=False)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, bias=False)
        self.downsample = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.hr2o = nn.ModuleList(HR2O(hidden, kernel) for _ in range(depth))
        self.fc1 = nn.Linear(reduce, hidden, bias=False)

    def forward(self, feats: torch.Tensor, actors: torch.Tensor, boxes: torch.Tensor,
                present: torch.Tensor) -> torch.Tensor:
        b, t, n = present.shape
        present = present.clone()
        present[..., 0] = True  # the track itself, also on a window's padding frames
        emb = self.reduce(torch.cat([feats[:, :, None], actors], dim=2))  # (B, T, N, R)
        cover = box_cover(boxes, self.grid) * present[..., None, None]  # (B, T, N, G, G)
        context = torch.einsum("btnyx,btnr->btryx", cover, emb) \
            / cover.sum(2).clamp(min=1)[:, :, None]  # (B, T, R, G, G)
        # conv1 (1x1) of [context, tiled actor] = conv1's context half + its actor half
        w_context, w_actor = self.conv1.weight[:, :, 0, 0].split(emb.shape[-1], dim=1)
        pair = torch.einsum("cr,btryx->btcyx", w_context, context)[:, :, None] \
            + (emb @ w_actor.T)[..., None, None]  # (B, T, N, C, G, G)
        x = F.relu(self.conv2(F.relu(pair.flatten(0, 2))))  # (BTN, C, G-2, G-2)
        x = self.downsample(x)
        x = x.view(b * t, n, *x.shape[1:])  # (BT, N, C, H, W)
        for block in self.hr2o:
            x = block(x, present.view(b * t, n))
        high = x[:, 0].mean(dim=(-2, -1)).view(b, t, -1)  # (B, T, C): the track's own actor
        return torch.cat([F.relu(self.fc1(emb[:, :, 0])), high], dim=-1)  # (B, T, 2C)


def make_relation(config: EventsConfig, in_dim: int) -> ActorRelation | None:
    """The relation module that ``config.relation`` asks for, or None."""
    if config.relation == "none":
        return None
    a = config.acar  # a.actors sets the actor table's width (:func:`.actors.actors_needed`)
    return ActorRelation(in_dim, a.grid, a.reduce, a.hidden, a.depth, a.kernel)
