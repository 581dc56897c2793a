"""Literal transcription of the STMixer formulas in seed 000 (the reference for parity tests and
``tools/bench_stm.py``). Kept as written there, slow copies included; do not optimise."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AdaptiveMixingRef(nn.Module):
    def __init__(self, in_dim, in_points, n_groups, query_dim=None, out_dim=None, out_points=None,
                 sampling_rate=None):
        super().__init__()
        out_dim = out_dim if out_dim is not None else in_dim
        out_points = out_points if out_points is not None else in_points
        query_dim = query_dim if query_dim is not None else in_dim
        sampling_rate = sampling_rate if sampling_rate is not None else 1
        self.query_dim = query_dim
        self.in_dim = in_dim
        self.in_points = in_points // sampling_rate
        self.n_groups = n_groups
        self.out_dim = out_dim
        self.out_points = out_points
        self.eff_in_dim = in_dim // n_groups
        self.eff_out_dim = out_dim // n_groups
        self.pad_bias_dim = 0
        self.pad_bias_points = 0
        self.eff_in_dim = self.eff_in_dim + self.pad_bias_dim
        self.in_points = self.in_points + self.pad_bias_points
        self.m_parameters = self.eff_in_dim * self.eff_out_dim
        self.s_parameters = self.in_points * self.out_points
        self.total_parameters = self.m_parameters + self.s_parameters
        self.parameter_generator = nn.Sequential(
            nn.Linear(self.query_dim, self.n_groups * self.total_parameters))
        self.out_proj = nn.Linear(self.eff_out_dim * self.out_points * self.n_groups,
                                  self.query_dim, bias=True)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x, query):
        B, N, _g, P, C = x.size()
        G = self.n_groups
        params = self.parameter_generator(query)
        params = params.reshape(B * N, G, -1)
        out = x.reshape(B * N, G, P, C)
        M, S = params.split([self.m_parameters, self.s_parameters], 2)
        M = M.reshape(B * N, G, self.eff_in_dim, self.eff_out_dim)
        S = S.reshape(B * N, G, self.out_points, self.in_points)
        out = torch.matmul(out, M)
        out = F.layer_norm(out, [out.size(-2), out.size(-1)])
        out = self.act(out)
        out = torch.matmul(S, out)
        out = F.layer_norm(out, [out.size(-2), out.size(-1)])
        out = self.act(out)
        out = out.reshape(B, N, -1)
        out = self.out_proj(out)
        return query + out


def make_sample_points_ref(offset, num_group, xyzr):
    B, L, _ = offset.shape
    offset = offset.view(B, L, 1, num_group, 3)
    roi_cc = xyzr[..., :2]
    scale = 2.00 ** xyzr[..., 2:3]
    ratio = 2.00 ** torch.cat([xyzr[..., 3:4] * -0.5, xyzr[..., 3:4] * 0.5], dim=-1)
    roi_wh = scale * ratio
    roi_lvl = xyzr[..., 2:3].view(B, L, 1)
    roi_lvl = roi_lvl.view(B, L, 1, 1, 1)
    offset_yx = offset[..., :2] * roi_wh.view(B, L, 1, 1, 2)
    sample_yx = roi_cc.contiguous().view(B, L, 1, 1, 2) + offset_yx
    sample_lvl = roi_lvl + offset[..., 2:3]
    return torch.cat([sample_yx, sample_lvl], dim=-1)


def translate_to_linear_weight_ref(ref, num_total, tau=2.0):
    grid = torch.arange(num_total, device=ref.device, dtype=ref.dtype).view(
        *[len(ref.shape) * [1, ] + [-1, ]])
    ref = ref.unsqueeze(-1).clone()
    l2 = (ref - grid).pow(2.0).div(tau).abs().neg()
    weight = torch.softmax(l2, dim=-1)
    return weight


def mhaq3d_ref(sample_points, value, weight=None, n_points=1):
    B, Hq, Wq, n_heads_points, _ = sample_points.shape
    B, Ck, Tk, Hk, Wk = value.shape
    n_heads = n_heads_points // n_points
    sample_points = sample_points.view(B, Hq, Wq, n_heads, n_points, 2) \
        .permute(0, 3, 1, 2, 4, 5).contiguous().flatten(0, 1)
    sample_points = sample_points.repeat(Tk, 1, 1, 1, 1)
    sample_points = sample_points.flatten(2, 3)
    sample_points = sample_points * 2.0 - 1.0
    value = value.view(B * n_heads, Ck // n_heads, Tk, Hk, Wk).permute(2, 0, 1, 3, 4).flatten(0, 1)
    out = F.grid_sample(value, sample_points, mode='bilinear', padding_mode='zeros',
                        align_corners=False)
    if weight is not None:
        weight = weight.view(B, Hq, Wq, n_heads, n_points) \
            .permute(0, 3, 1, 2, 4).flatten(0, 1).flatten(2, 3).unsqueeze(1).repeat(Tk, 1, 1, 1)
        out *= weight
    return out.view(Tk, B, n_heads, Ck // n_heads, Hq, Wq, n_points).permute(1, 3, 2, 0, 6, 4, 5)


def sample4d_ref(sample_points, values, featmap_strides, n_points=1, num_levels=None,
                 mapping_stride=3.0, tau=2.0):
    B, Hq, Wq, n_heads_points, _ = sample_points.shape
    B, C, t, _, _ = values[0].shape
    n_heads = n_heads_points // n_points
    if num_levels is None:
        num_levels = len(values)
    sample_points_xy = sample_points[..., 0:2]
    sample_points_lvl = sample_points[..., 2].clone()
    sample_points_lvl_mapped = sample_points_lvl - mapping_stride
    sample_points_lvl_weight = translate_to_linear_weight_ref(sample_points_lvl_mapped, num_levels,
                                                              tau=tau)
    sample_points_lvl_weight_list = sample_points_lvl_weight.unbind(-1)
    out = sample_points.new_zeros(B, C // n_heads, n_heads, t, n_points, Hq, Wq)
    for i in range(num_levels):
        value = values[i]
        lvl_weights = sample_points_lvl_weight_list[i]
        stride = featmap_strides[i]
        mapping_size = value.new_tensor([value.size(4), value.size(3)]).view(1, 1, 1, 1, -1) \
            * stride
        normalized_xy = sample_points_xy / mapping_size
        out += mhaq3d_ref(normalized_xy, value, weight=lvl_weights, n_points=n_points)
    return out, None
