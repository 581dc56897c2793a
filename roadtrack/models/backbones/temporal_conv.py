"""A Conv3d whose temporal kernel is computed tap by tap on the CPU.

oneDNN's CPU backward pass for 3-D convolutions with a temporal kernel above 1 is an order of
magnitude slower than its forward pass (the SlowFast fast stem, 5x7x7 on 2 frames: 13 ms forward,
190 ms forward + backward on one thread). A temporal kernel of size kt is a sum of kt convolutions
with temporal size 1 on shifted frames; taps that would only read the zero padding are skipped.
The result equals nn.Conv3d's (up to float summation order) and the parameters are the same. On
other devices (cuDNN), and where no gradient is needed (oneDNN's forward pass alone is faster),
the layer is a plain nn.Conv3d.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def tap_range(tap: int, stride: int, padding: int, frames_in: int, frames_out: int):
    """Output frames [first, stop) whose input frame ``t * stride + tap - padding`` exists, and
    the first of those input frames; None when the tap only ever reads padding."""
    first = max(0, -(-(padding - tap) // stride))  # ceil((padding - tap) / stride), at least 0
    stop = min(frames_out, (frames_in - 1 + padding - tap) // stride + 1)
    if stop <= first:
        return None
    return first, stop, first * stride + tap - padding


class TemporalConv3d(nn.Conv3d):
    """nn.Conv3d (no groups, no dilation) computed as a sum over temporal taps on the CPU.

    forward(x (B, C_in, T, H, W)) -> (B, C_out, T_out, H_out, W_out), as nn.Conv3d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kt = self.kernel_size[0]
        backward = torch.is_grad_enabled() and (self.weight.requires_grad or x.requires_grad)
        plain = (x.device.type != "cpu" or not backward or kt == 1 or self.groups != 1
                 or self.dilation != (1, 1, 1) or self.padding_mode != "zeros"
                 or self.padding[0] >= kt)  # tap `padding` always reads frame 0 otherwise
        if plain:
            return super().forward(x)
        st, pt = self.stride[0], self.padding[0]
        frames_in = x.shape[2]
        frames_out = (frames_in + 2 * pt - kt) // st + 1
        spatial_stride = (1, *self.stride[1:])
        spatial_padding = (0, *self.padding[1:])
        out = None
        for tap in range(kt):
            span = tap_range(tap, st, pt, frames_in, frames_out)
            if span is None:
                continue
            first, stop, start_in = span
            frames = x[:, :, start_in:start_in + (stop - first - 1) * st + 1:st]
            part = F.conv3d(frames, self.weight[:, :, tap:tap + 1], None, spatial_stride,
                            spatial_padding)  # (B, C_out, stop - first, H_out, W_out)
            part = F.pad(part, (0, 0, 0, 0, first, frames_out - stop))
            out = part if out is None else out + part
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1, 1)
        return out
