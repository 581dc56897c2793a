"""TemporalConv3d: the tap-by-tap CPU path equals nn.Conv3d, forward and backward."""
import itertools

import pytest
import torch
from torch import nn

from roadtrack.models.backbones.temporal_conv import TemporalConv3d, tap_range

CASES = [case for case in itertools.product((1, 3, 5), (1, 2, 4), (0, 1, 2), (1, 2, 3, 8))
         if case[2] < case[0] and case[3] + 2 * case[2] >= case[0]]


@pytest.mark.parametrize("kt,stride,pad,frames", CASES)
def test_matches_conv3d_forward_and_backward(kt, stride, pad, frames):
    torch.manual_seed(kt * 100 + stride * 10 + pad + frames)
    reference = nn.Conv3d(3, 4, (kt, 3, 3), stride=(stride, 2, 1), padding=(pad, 1, 0),
                          bias=True).double()
    layer = TemporalConv3d(3, 4, (kt, 3, 3), stride=(stride, 2, 1), padding=(pad, 1, 0),
                           bias=True).double()
    layer.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, frames, 9, 8, dtype=torch.double, requires_grad=True)
    want, got = reference(x), layer(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want)
    grad = torch.randn_like(want)
    want_grads = torch.autograd.grad(want, (x, reference.weight, reference.bias), grad)
    got_grads = torch.autograd.grad(got, (x, layer.weight, layer.bias), grad)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w)


def test_taps_reading_only_padding_are_skipped():
    # 5 taps, padding 2, two frames: taps 0 and 4 never see a frame
    spans = [tap_range(tap, 1, 2, frames_in=2, frames_out=2) for tap in range(5)]
    assert spans[0] is None and spans[4] is None
    assert spans[1] == (1, 2, 0) and spans[2] == (0, 2, 0) and spans[3] == (0, 1, 1)


def test_same_parameters_as_conv3d():
    plain = nn.Conv3d(8, 16, (3, 1, 1), padding=(1, 0, 0), bias=False)
    layer = TemporalConv3d(8, 16, (3, 1, 1), padding=(1, 0, 0), bias=False)
    assert layer.state_dict().keys() == plain.state_dict().keys()
    assert layer.weight.shape == plain.weight.shape
