"""Torchvision's MC3-18 (mixed 3-D / 2-D convolutions, keeps T) as a 4-level backbone.

Random initialisation only (weights=None): nothing is downloaded. A 3x3 stride-2 max-pool after
the stem puts the levels at strides 4, 8, 16, 32 like SlowFast's.
"""
from __future__ import annotations

import torch
from torch import nn


class MC3Backbone(nn.Module):
    """forward(x (B, 3, T, H, W)) -> 4 levels (B, C_l, T, H / s, W / s), s = 4, 8, 16, 32."""

    strides = (4, 8, 16, 32)
    alpha = 1

    def __init__(self):
        super().__init__()
        from torchvision.models.video import mc3_18

        net = mc3_18(weights=None)
        self.stem = net.stem  # (1, 2, 2) stride
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        self.channels = [64, 128, 256, 512]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.pool(self.stem(x))
        levels = []
        for stage in self.stages:
            x = stage(x)
            levels.append(x)
        return levels
