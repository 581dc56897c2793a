"""roadtrack.models.stm equals the literal STMixer formulas (tests/reference/stm.py) to 1e-5."""
import pytest
import torch

from roadtrack.models.stm import (
    AdaptiveMixing,
    layout_features,
    make_sample_points,
    mhaq3d,
    sample4d,
    translate_to_linear_weight,
)

from .reference.stm import (
    AdaptiveMixingRef,
    make_sample_points_ref,
    mhaq3d_ref,
    sample4d_ref,
    translate_to_linear_weight_ref,
)

TOL = {"atol": 1e-5, "rtol": 1e-5}


def _points(B, N, G, P, size, gen):
    pts = torch.rand(B, N, 1, G * P, 3, generator=gen)
    pts[..., :2] = pts[..., :2] * 1.4 * size - 0.2 * size  # some points outside the frame
    pts[..., 2] = pts[..., 2] * 7.0  # levels below, between and above the pyramid
    return pts


@pytest.mark.parametrize("P", [4, 9, 16, 7])  # perfect squares and not
def test_make_sample_points_matches_seed(P):
    gen = torch.Generator().manual_seed(P)
    B, L, G = 2, 5, 3
    offset = torch.randn(B, L, G * P * 3, generator=gen)
    xyzr = torch.randn(B, L, 4, generator=gen) * torch.tensor([50.0, 50.0, 2.0, 1.0]) + 4
    ours = make_sample_points(offset, num_group=G * P, xyzr=xyzr)
    assert ours.shape == (B, L, 1, G * P, 3)
    torch.testing.assert_close(ours, make_sample_points_ref(offset, G * P, xyzr), **TOL)


def test_translate_to_linear_weight_matches_seed():
    gen = torch.Generator().manual_seed(1)
    ref = torch.randn(2, 7, 1, 12, generator=gen) * 3
    for num_total, tau in [(4, 2.0), (3, 0.5)]:
        ours = translate_to_linear_weight(ref, num_total, tau=tau)
        assert ours.shape == (2, 7, 1, 12, num_total)
        torch.testing.assert_close(ours, translate_to_linear_weight_ref(ref, num_total, tau),
                                   **TOL)
        torch.testing.assert_close(ours.sum(-1), torch.ones(2, 7, 1, 12), **TOL)


@pytest.mark.parametrize("P,with_weight", [(4, True), (9, False), (5, True)])
def test_mhaq3d_matches_seed(P, with_weight):
    gen = torch.Generator().manual_seed(P)
    B, N, G, C, T = 2, 6, 2, 8, 3
    pts = torch.rand(B, N, 1, G * P, 2, generator=gen) * 1.2 - 0.1
    value = torch.randn(B, C, T, 7, 9, generator=gen)
    weight = torch.rand(B, N, 1, G * P, generator=gen) if with_weight else None
    ours = mhaq3d(pts, value, weight=weight, n_points=P)
    assert ours.shape == (B, C // G, G, T, P, N, 1)
    torch.testing.assert_close(ours, mhaq3d_ref(pts, value, weight=weight, n_points=P), **TOL)


@pytest.mark.parametrize("P,T,use_layout", [(4, 4, False), (16, 2, True), (6, 3, True),
                                             (9, 1, False)])
def test_sample4d_matches_seed(P, T, use_layout):
    gen = torch.Generator().manual_seed(P * 10 + T)
    B, N, G, C, size, strides = 2, 5, 4, 16, 64, [4, 8, 16, 32]
    values = [torch.randn(B, C, T, size // s, size // s, generator=gen) for s in strides]
    pts = _points(B, N, G, P, size, gen)
    ref, none = sample4d_ref(pts, values, strides, n_points=P, mapping_stride=3.0, tau=2.0)
    feats = layout_features(values, G) if use_layout else values
    ours = sample4d(pts, feats, strides, n_points=P, mapping_stride=3.0, tau=2.0)
    assert none is None and ours.shape == ref.shape == (B, C // G, G, T, P, N, 1)
    torch.testing.assert_close(ours, ref, **TOL)


def test_sample4d_layout_reused_and_gradients_match_seed():
    gen = torch.Generator().manual_seed(3)
    B, N, G, P, C, T, size, strides = 1, 4, 2, 4, 8, 2, 32, [4, 8, 16, 32]
    values = [torch.randn(B, C, T, size // s, size // s, generator=gen) for s in strides]
    pts = _points(B, N, G, P, size, gen)
    grads = []
    for fn in (sample4d_ref, sample4d):
        vs = [v.clone().requires_grad_() for v in values]
        p = pts.clone().requires_grad_()
        out = fn(p, vs, strides, n_points=P)
        out = out[0] if isinstance(out, tuple) else out
        (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        grads.append([p.grad] + [v.grad for v in vs])
    for ours, ref in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(ours, ref, **TOL)
    layout = layout_features(values, G)
    first = sample4d(pts, layout, strides, n_points=P)
    again = sample4d(pts * 0.5, layout, strides, n_points=P)  # second stage, same layout
    torch.testing.assert_close(first, sample4d_ref(pts, values, strides, n_points=P)[0], **TOL)
    torch.testing.assert_close(again, sample4d_ref(pts * 0.5, values, strides, n_points=P)[0],
                               **TOL)


@pytest.mark.parametrize("in_points,out_points,query_dim", [(8, 16, 32), (9, 9, 24), (4, 8, 16)])
def test_adaptive_mixing_matches_seed(in_points, out_points, query_dim):
    gen = torch.Generator().manual_seed(in_points)
    in_dim, groups, B, N = 16, 4, 2, 3
    ours = AdaptiveMixing(in_dim, in_points, groups, query_dim=query_dim, out_points=out_points)
    ref = AdaptiveMixingRef(in_dim, in_points, groups, query_dim=query_dim, out_points=out_points)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert {n: p.shape for n, p in ours.named_parameters()} == \
        {n: p.shape for n, p in ref.named_parameters()}
    with torch.no_grad():  # random weights: the zero init would hide the mixing
        for p in ours.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(B, N, groups, in_points, in_dim // groups, generator=gen)
    q = torch.randn(B, N, query_dim, generator=gen)
    torch.testing.assert_close(ours(x, q), ref(x, q), **TOL)


def test_adaptive_mixing_init_keeps_gradient():
    mixing = AdaptiveMixing(16, 8, 4, query_dim=32, out_points=16)
    gen = mixing.parameter_generator[-1]
    assert torch.count_nonzero(gen.weight) == 0 and torch.count_nonzero(gen.bias) > 0
    x = torch.randn(2, 3, 4, 8, 4)
    q = torch.randn(2, 3, 32, requires_grad=True)
    out = mixing(x, q)
    out.square().sum().backward()
    assert gen.weight.grad.abs().sum() > 0 and mixing.out_proj.weight.grad.abs().sum() > 0
    # output depends on the sampled features at init (not constant)
    assert not torch.allclose(mixing(x, q), mixing(x * 2 + 1, q))
