"""Frozen BatchNorm for video backbones, freezing the first stages, and folding frozen BN into
the convolutions before it for inference.

A pretrained backbone fine-tuned at a few clips per GPU keeps its BatchNorm statistics and
affine parameters fixed (torchvision.ops.FrozenBatchNorm2d's idea, here for any rank: torchvision
has no 3-D one). At inference a frozen BN right after a convolution is an affine map per output
channel, so it folds into that convolution's weight and bias.
"""
from __future__ import annotations

import torch
from torch import nn


class FrozenBatchNorm3d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters (buffers, never trained).

    forward(x (B, C, ...)) -> (B, C, ...). Its state dict is BatchNorm's without
    ``num_batches_tracked``; loading a BatchNorm state dict drops that counter.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(C,) scale and shift with ``bn(x) = x * scale + shift``."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_shift()
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * scale.view(shape).to(x.dtype) + shift.view(shape).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


def freeze(*modules: nn.Module) -> None:
    """No gradients for the parameters of ``modules`` (their BatchNorms keep training mode: use
    frozen BN for fixed statistics)."""
    for module in modules:
        for param in module.parameters():
            param.requires_grad_(False)


@torch.no_grad()
def fold_frozen_bn(model: nn.Module) -> int:
    """Fold every FrozenBatchNorm3d that directly follows a convolution (its previous sibling in
    the parent module, as in Conv -> BN blocks) into that convolution, in place; the BN becomes
    an Identity. Returns the number folded. Outputs stay equal up to float rounding."""
    folded = 0
    for parent in list(model.modules()):
        names = list(parent._modules)
        for before, name in zip(names, names[1:], strict=False):
            conv, bn = parent._modules[before], parent._modules[name]
            if not isinstance(bn, FrozenBatchNorm3d) or type(conv) is nn.Identity \
                    or not isinstance(conv, nn.modules.conv._ConvNd) or conv.transposed:
                continue
            scale, shift = bn.scale_shift()  # (C_out,)
            conv.weight.mul_(scale.view(-1, *(1,) * (conv.weight.dim() - 1)))
            bias = shift if conv.bias is None else conv.bias * scale + shift
            conv.bias = nn.Parameter(bias, requires_grad=conv.weight.requires_grad)
            parent._modules[name] = nn.Identity()
            folded += 1
    return folded


def replace_batchnorm(model: nn.Module) -> None:
    """Every BatchNorm of ``model`` (built with random weights) becomes a FrozenBatchNorm3d."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                parent._modules[name] = FrozenBatchNorm3d(child.num_features, child.eps)
