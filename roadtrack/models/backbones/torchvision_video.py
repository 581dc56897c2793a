"""torchvision's video networks as 4-level backbones: MC3-18 and R(2+1)D-18 (video ResNets) and
Swin3D-T (a shifted-window video transformer).

Built with ``weights=None``: nothing is downloaded. Their Kinetics-400 weights load through
:mod:`.pretrained` from a file, or by weights name (``KINETICS400_V1``) from torch's hub cache
(``$TORCH_HOME/hub/checkpoints/``, where torchvision's own ``weights=`` download puts them).
Levels sit at strides 4, 8, 16, 32 and share one temporal length: a 3x3 stride-2 max-pool after
the video ResNets' stride-2 stem; R(2+1)D-18 halves time in layer2..4, so its finer levels are
average-pooled over time to the last one's T / 8 frames; Swin3D-T's 2x4x4 patches give T / 2.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UserError


def hub_weights_file(name: str, weights: str) -> Path:
    """Where torchvision keeps ``name``'s weights ``weights`` (e.g. KINETICS400_V1) once
    downloaded: ``<torch hub dir>/checkpoints/<file name of the weights' URL>``."""
    from torchvision.models import get_model_weights

    enum = get_model_weights(name)
    if weights not in enum.__members__:
        raise UserError(f"{name} has no weights {weights!r} (torchvision knows "
                        f"{', '.join(enum.__members__)})")
    url = enum[weights].url
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
    if not path.is_file():
        raise UserError(f"{name} weights {weights} are not in torch's hub cache: download {url} "
                        f"to {path} (or set TORCH_HOME, or give the file's path)")
    return path


def is_weights_name(name: str, spec: str) -> bool:
    """``spec`` names torchvision weights of ``name`` (rather than a file)."""
    from torchvision.models import get_model_weights

    return spec in get_model_weights(name).__members__ and not Path(spec).exists()


class VideoResNetBackbone(nn.Module):
    """MC3-18 or R(2+1)D-18: forward(x (B, 3, T, H, W)) -> 4 levels (B, C_l, T / alpha, H / s,
    W / s), s = 4, 8, 16, 32; alpha 1 (MC3-18) or 8 (R(2+1)D-18: T a multiple of 8)."""

    strides = (4, 8, 16, 32)

    def __init__(self, name: str = "mc3_18"):
        super().__init__()
        from torchvision.models import get_model

        net = get_model(name, weights=None)
        self.alpha = {"mc3_18": 1, "r2plus1d_18": 8}[name]
        self.stem = net.stem  # (1, 2, 2) stride
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        # torchvision's layer1..4 (weights map layerN -> stages.N-1)
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        self.channels = [64, 128, 256, 512]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        frames = x.shape[2] // self.alpha
        x = self.pool(self.stem(x))
        levels = []
        for stage in self.stages:
            x = stage(x)  # (B, C_l, T_l, H / s, W / s)
            step = x.shape[2] // frames
            levels.append(F.avg_pool3d(x, (step, 1, 1)) if step > 1 else x)
        return levels


class Swin3DBackbone(nn.Module):
    """Swin3D-T: forward(x (B, 3, T, H, W)) -> 4 levels (B, C_l, T / 2, H / s, W / s),
    C = 96, 192, 384, 768; the last level through the network's final LayerNorm."""

    strides = (4, 8, 16, 32)
    alpha = 2

    def __init__(self, name: str = "swin3d_t"):
        super().__init__()
        from torchvision.models import get_model

        net = get_model(name, weights=None)
        self.patch_embed, self.features, self.norm = net.patch_embed, net.features, net.norm
        self.channels = [96, 192, 384, 768]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)  # (B, T / 2, H / 4, W / 4, 96), channels last
        levels = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i % 2 == 0:  # stages 0, 2, 4, 6; patch merging between them
                levels.append(x)
        levels[-1] = self.norm(levels[-1])
        return [level.permute(0, 4, 1, 2, 3).contiguous() for level in levels]

