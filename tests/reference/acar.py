"""Literal transcription of ACAR-Net's HR2O and the actor-context part of ``ACARHead.forward``
in seed 002 (``models/heads/acar.py``): the reference for ``roadtrack.events.relation``. Kept as
written there (one mini-batch sample at a time, every RoI present); do not optimise.

The seed's RoI pooling of actors from the backbone's map and its final ``fc2`` are left out:
roadtrack's actors come as feature vectors and its temporal head classifies. ``actor_context``
takes the (reduced) context map and actor features that the seed's loop body works on.
"""
from __future__ import annotations

import torch
from torch import nn


class HR2O_NL(nn.Module):  # noqa: N801 - the seed's name
    def __init__(self, hidden_dim=512, kernel_size=3, mlp_1x1=False):
        super(HR2O_NL, self).__init__()  # noqa: UP008 - as in the seed

        self.hidden_dim = hidden_dim

        padding = kernel_size // 2
        self.conv_q = nn.Conv2d(hidden_dim, hidden_dim, kernel_size, padding=padding, bias=False)
        self.conv_k = nn.Conv2d(hidden_dim, hidden_dim, kernel_size, padding=padding, bias=False)
        self.conv_v = nn.Conv2d(hidden_dim, hidden_dim, kernel_size, padding=padding, bias=False)

        self.conv = nn.Conv2d(
            hidden_dim, hidden_dim,
            1 if mlp_1x1 else kernel_size,
            padding=0 if mlp_1x1 else padding,
            bias=False
        )
        self.norm = nn.GroupNorm(1, hidden_dim, affine=True)
        self.dp = nn.Dropout(0.2)

    def forward(self, x):
        query = self.conv_q(x).unsqueeze(1)
        key = self.conv_k(x).unsqueeze(0)
        att = (query * key).sum(2) / (self.hidden_dim ** 0.5)
        att = nn.Softmax(dim=1)(att)
        value = self.conv_v(x)
        virt_feats = (att.unsqueeze(2) * value).sum(1)

        virt_feats = self.norm(virt_feats)
        virt_feats = nn.functional.relu(virt_feats)
        virt_feats = self.conv(virt_feats)
        virt_feats = self.dp(virt_feats)

        x = x + virt_feats
        return x


class ACARHeadRef(nn.Module):
    """The seed's ACARHead layers after RoI pooling (``downsample='max2x2'``)."""

    def __init__(self, reduce_dim=1024, hidden_dim=512, depth=2, kernel_size=3, mlp_1x1=False):
        super().__init__()
        self.conv1 = nn.Conv2d(reduce_dim * 2, hidden_dim, 1, bias=False)
        self.conv2 = nn.Conv2d(hidden_dim, hidden_dim, 3, bias=False)
        self.downsample = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        layers = []
        for _ in range(depth):
            layers.append(HR2O_NL(hidden_dim, kernel_size, mlp_1x1))
        self.hr2o = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(reduce_dim, hidden_dim, bias=False)

    def actor_context(self, bg, actor_feats):
        """bg (reduce_dim, h, w) one sample's context map, actor_feats (n_rois, reduce_dim) ->
        (n_rois, 2 * hidden_dim): the seed's loop body, then fc1 and the concatenation."""
        n_rois = actor_feats.shape[0]
        bg_feats = bg.unsqueeze(0).repeat((n_rois, 1, 1, 1))
        tiled_actor_feats = actor_feats.unsqueeze(2).unsqueeze(2).expand_as(bg_feats)
        interact_feats = torch.cat([bg_feats, tiled_actor_feats], dim=1)

        interact_feats = self.conv1(interact_feats)
        interact_feats = nn.functional.relu(interact_feats)
        interact_feats = self.conv2(interact_feats)
        interact_feats = nn.functional.relu(interact_feats)

        interact_feats = self.downsample(interact_feats)

        interact_feats = self.hr2o(interact_feats)
        interact_feats = self.gap(interact_feats)
        high_order_feats = interact_feats.view(n_rois, -1)

        outputs = self.fc1(actor_feats)
        outputs = nn.functional.relu(outputs)
        outputs = torch.cat([outputs, high_order_feats], dim=1)
        return outputs


def layout_context(emb, boxes, grid):
    """roadtrack's context map (not in the seed), one cell at a time: emb (n, R) actor features,
    boxes (n, 4) in [0, 1] -> (R, grid, grid), each cell the features of the actors whose boxes
    cover it weighted by the share covered, divided by the total share where that exceeds 1."""
    out = torch.zeros(emb.shape[1], grid, grid, dtype=emb.dtype)
    for y in range(grid):
        for x in range(grid):
            total = 0.0
            for i in range(len(emb)):
                x1, y1, x2, y2 = (float(v) for v in boxes[i])
                ox = max(0.0, min(x2, (x + 1) / grid) - max(x1, x / grid)) * grid
                oy = max(0.0, min(y2, (y + 1) / grid) - max(y1, y / grid)) * grid
                out[:, y, x] += ox * oy * emb[i]
                total += ox * oy
            out[:, y, x] /= max(total, 1.0)
    return out
