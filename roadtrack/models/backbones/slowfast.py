"""SlowFast video backbone (Feichtenhofer et al. 2019) giving a 4-level pyramid for STMixer.

The slow pathway sees every ``alpha``-th frame with ``width`` channels; the fast pathway sees
every frame with ``beta`` times the channels. After the stem and each of res2..res4 a temporal
strided convolution (lateral connection) carries fast features into the slow pathway. Level l
(res2..res5, strides 4, 8, 16, 32) is the slow output concatenated with the fast output max-pooled
over time, so every level has T // alpha frames.

With ``lateral="conv_norm_relu"``, ``fuse_kernel=7``, ``alpha=4``, ``beta=1/8`` and depths
[3, 4, 6, 3] ([3, 4, 23, 3]) this is SlowFast 8x8 R50 (R101) as PySlowFast and pytorchvideo
publish it, weight for weight (see :mod:`.pretrained`); ``lateral="conv"`` (a bare convolution)
is the smaller variant the synthetic configs use.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .frozen_bn import FrozenBatchNorm3d, freeze
from .temporal_conv import TemporalConv3d

LATERALS = ("conv", "conv_norm_relu")


def make_norm(kind: str, channels: int) -> nn.Module:
    """BatchNorm3d ("bn"), FrozenBatchNorm3d ("frozen_bn") or GroupNorm ("gn", up to 32 groups
    dividing ``channels``)."""
    if kind == "bn":
        return nn.BatchNorm3d(channels)
    if kind == "frozen_bn":
        return FrozenBatchNorm3d(channels)
    if kind == "gn":
        groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"unknown norm {kind!r} (bn, frozen_bn or gn)")


class Bottleneck(nn.Module):
    """1x1 (or 3x1x1) -> 1x3x3 (spatial stride) -> 1x1 expansion, with a residual."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, temporal_kernel: int = 1,
                 norm: str = "bn"):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = TemporalConv3d(inplanes, planes, (temporal_kernel, 1, 1),
                                    padding=(temporal_kernel // 2, 0, 0), bias=False)
        self.bn1 = make_norm(norm, planes)
        self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), stride=(1, stride, stride),
                               padding=(0, 1, 1), bias=False)
        self.bn2 = make_norm(norm, planes)
        self.conv3 = nn.Conv3d(planes, out, 1, bias=False)
        self.bn3 = make_norm(norm, out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv3d(inplanes, out, 1, stride=(1, stride, stride), bias=False),
                make_norm(norm, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + res)


def _stage(inplanes: int, planes: int, blocks: int, stride: int, temporal_kernel: int,
           norm: str) -> nn.Sequential:
    layers = [Bottleneck(inplanes, planes, stride, temporal_kernel, norm)]
    layers += [Bottleneck(planes * Bottleneck.expansion, planes, 1, temporal_kernel, norm)
               for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _stem(channels: int, temporal_kernel: int, norm: str) -> nn.Sequential:
    """7x7 stride-2 convolution and a 3x3 stride-2 max-pool: stride 4."""
    return nn.Sequential(
        TemporalConv3d(3, channels, (temporal_kernel, 7, 7), stride=(1, 2, 2),
                       padding=(temporal_kernel // 2, 3, 3), bias=False),
        make_norm(norm, channels), nn.ReLU(inplace=True),
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)))


def _lateral(fast_in: int, kernel: int, alpha: int, kind: str, norm: str) -> nn.Module:
    """Fast -> slow connection: a temporal stride-``alpha`` convolution to twice the channels
    ("conv"), followed by a norm and ReLU ("conv_norm_relu", as published)."""
    conv = TemporalConv3d(fast_in, 2 * fast_in, (kernel, 1, 1), stride=(alpha, 1, 1),
                          padding=(kernel // 2, 0, 0), bias=False)
    if kind == "conv":
        return conv
    if kind == "conv_norm_relu":
        return nn.Sequential(conv, make_norm(norm, 2 * fast_in), nn.ReLU(inplace=True))
    raise ValueError(f"unknown lateral {kind!r} ({' or '.join(LATERALS)})")


class SlowFast(nn.Module):
    """SlowFast with Bottleneck stages ``depths`` (R50: [3, 4, 6, 3]).

    forward(x (B, 3, T, H, W)) -> 4 levels (B, channels[l], T // alpha, H / s, W / s),
    s = 4, 8, 16, 32. T must be a multiple of ``alpha``. ``freeze_at`` N >= 0 stops gradients
    for both stems and the first N stages with the laterals feeding them (-1: none).
    """

    strides = (4, 8, 16, 32)

    def __init__(self, depths=(3, 4, 6, 3), width: int = 64, alpha: int = 4,
                 beta: float = 0.125, fuse_kernel: int = 5, norm: str = "bn",
                 lateral: str = "conv", freeze_at: int = -1):
        super().__init__()
        self.alpha = alpha
        fast_width = max(1, int(width * beta))
        # slow res2, res3 use 1x1 heads (no temporal kernel), res4, res5 3x1x1; fast: 3x1x1 always
        slow_temporal = (1, 1, 3, 3)
        stage_strides = (1, 2, 2, 2)
        planes = [width * 2 ** i for i in range(4)]
        fast_planes = [max(1, int(p * beta)) for p in planes]

        self.slow_stem = _stem(width, 1, norm)
        self.fast_stem = _stem(fast_width, 5, norm)
        self.laterals = nn.ModuleList()
        self.slow_stages = nn.ModuleList()
        self.fast_stages = nn.ModuleList()
        slow_in, fast_in = width, fast_width
        for i in range(4):
            self.laterals.append(_lateral(fast_in, fuse_kernel, alpha, lateral, norm))
            self.slow_stages.append(_stage(slow_in + 2 * fast_in, planes[i], depths[i],
                                           stage_strides[i], slow_temporal[i], norm))
            self.fast_stages.append(_stage(fast_in, fast_planes[i], depths[i], stage_strides[i],
                                           3, norm))
            slow_in = planes[i] * Bottleneck.expansion
            fast_in = fast_planes[i] * Bottleneck.expansion
        self.channels = [(p + f) * Bottleneck.expansion
                         for p, f in zip(planes, fast_planes, strict=True)]
        if freeze_at >= 0:
            freeze(self.slow_stem, self.fast_stem, *self.laterals[:freeze_at],
                   *self.slow_stages[:freeze_at], *self.fast_stages[:freeze_at])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        T = x.shape[2]
        if T % self.alpha:
            raise ValueError(f"clip length {T} is not a multiple of alpha {self.alpha}")
        slow = self.slow_stem(x[:, :, ::self.alpha])  # (B, width, T/alpha, H/4, W/4)
        fast = self.fast_stem(x)  # (B, width*beta, T, H/4, W/4)
        levels = []
        for lateral, slow_stage, fast_stage in zip(self.laterals, self.slow_stages,
                                                   self.fast_stages, strict=True):
            slow = slow_stage(torch.cat([slow, lateral(fast)], dim=1))
            fast = fast_stage(fast)
            pooled = F.max_pool3d(fast, (self.alpha, 1, 1), stride=(self.alpha, 1, 1))
            levels.append(torch.cat([slow, pooled], dim=1))
        return levels
