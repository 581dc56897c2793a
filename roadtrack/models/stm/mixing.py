"""AdaptiveMixing (AdaMixer / STMixer): channel then point mixing with weights made from a query."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class AdaptiveMixing(nn.Module):
    """Mix sampled features with matrices generated from the query, project, add to the query.

    forward(x (B, N, G, P, C), query (B, N, query_dim)) -> (B, N, query_dim), with
    C = in_dim // n_groups. Channel mixing x @ M (M: C x C_out), then point mixing S @ . (S:
    out_points x in_points), each followed by a LayerNorm over (points, channels) without affine
    and a ReLU; then ``out_proj`` and the residual.
    """

    def __init__(self, in_dim, in_points, n_groups, query_dim=None, out_dim=None, out_points=None,
                 sampling_rate=None):
        super().__init__()
        out_dim = in_dim if out_dim is None else out_dim
        out_points = in_points if out_points is None else out_points
        query_dim = in_dim if query_dim is None else query_dim
        sampling_rate = 1 if sampling_rate is None else sampling_rate
        self.query_dim = query_dim
        self.in_dim = in_dim
        self.in_points = in_points // sampling_rate
        self.n_groups = n_groups
        self.out_dim = out_dim
        self.out_points = out_points
        self.eff_in_dim = in_dim // n_groups
        self.eff_out_dim = out_dim // n_groups
        self.m_parameters = self.eff_in_dim * self.eff_out_dim
        self.s_parameters = self.in_points * self.out_points
        self.total_parameters = self.m_parameters + self.s_parameters
        self.parameter_generator = nn.Sequential(
            nn.Linear(query_dim, n_groups * self.total_parameters))
        self.out_proj = nn.Linear(self.eff_out_dim * out_points * n_groups, query_dim)
        self.act = nn.ReLU(inplace=True)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self):
        # weight only: a zero bias as well would leave the output constant and without gradient,
        # so the bias gets nn.Linear's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) back here
        generator = self.parameter_generator[-1]
        nn.init.zeros_(generator.weight)
        bound = 1.0 / math.sqrt(generator.in_features)
        nn.init.uniform_(generator.bias, -bound, bound)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        B, N, G, P, C = x.shape
        params = self.parameter_generator(query).reshape(B * N, G, self.total_parameters)
        M, S = params.split([self.m_parameters, self.s_parameters], dim=2)
        M = M.reshape(B * N, G, self.eff_in_dim, self.eff_out_dim)
        S = S.reshape(B * N, G, self.out_points, self.in_points)
        out = x.reshape(B * N, G, P, C)
        out = self.act(F.layer_norm(out @ M, out.shape[-2:-1] + (self.eff_out_dim,)))  # channels
        out = self.act(F.layer_norm(S @ out, (self.out_points, self.eff_out_dim)))  # points
        return query + self.out_proj(out.reshape(B, N, -1))
