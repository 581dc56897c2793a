"""Literal transcription of trajectory attention (seed 004: MotionFormer, Patrick et al. 2021,
eq. 6-7) and of its Orthoformer prototype selection, for the parity tests of
``roadtrack.events.trajectory``. Slow loops, kept as written; do not optimise.

Notation of the paper, one head at a time, d the head's width:
    y~_{st,t'} = sum_{s'} softmax_{s'}(q_st . k_{s't'} / sqrt(d)) v_{s't'}       (trajectory tokens)
    q~_st = y~_{st,t} W_q,  k~_{st,t'} = y~_{st,t'} W_k,  v~_{st,t'} = y~_{st,t'} W_v
    y_st = sum_{t'} softmax_{t'}(q~_st . k~_{st,t'} / sqrt(d)) v~_{st,t'}
Here the query "s" is the track (one query per frame), s' runs over the actors of frame t' that
exist (mask) and t' over the track's frames within +-reach of t. Orthoformer replaces step 1 by
    y~_{t,t'} = sum_r softmax_r(q_t . p_r / sqrt(d)) sum_{s'} softmax_{s'}(p_r . k_{s't'} / sqrt(d))
                v_{s't'}
with prototypes p_r chosen greedily among the queries (each the most orthogonal to those chosen).
"""
from __future__ import annotations

import math

import torch


def softmax(values: list[torch.Tensor]) -> list[torch.Tensor]:
    top = max(float(v) for v in values)
    exps = [torch.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def linear(x: torch.Tensor, layer) -> torch.Tensor:
    return layer.weight @ x + layer.bias


def greedy_prototypes(q: list[torch.Tensor], count: int) -> list[int]:
    """Indices of the prototypes among queries ``q`` (each (d,)): the first query, then each time
    the query whose largest |cosine| to those chosen is the smallest (ties: the earliest)."""
    chosen = [0]
    while len(chosen) < min(count, len(q)):
        best, best_score = -1, math.inf
        for i, qi in enumerate(q):
            if i in chosen:
                continue
            score = max(abs(float(qi @ q[j] / (qi.norm() * q[j].norm()))) for j in chosen)
            if score < best_score:
                best, best_score = i, score
        chosen.append(best)
    return chosen


def trajectory_attention(module, x, actors, mask, prototypes: int = 0) -> torch.Tensor:
    """One sample: x (T, D), actors (T, S, D), mask (T, S) bool -> (T, D), with the weights of
    ``module`` (a ``TrajectoryAttention``: q, kv, proj_q, proj_kv, proj). Rows of frames without
    actors are zero."""
    T, S, D = actors.shape
    h = module.heads
    d = D // h
    heads = [slice(i * d, (i + 1) * d) for i in range(h)]
    frames = [t for t in range(T) if mask[t].any()]
    q = {t: linear(x[t], module.q) for t in frames}
    k, v = {}, {}
    for t in frames:
        for s in range(S):
            if mask[t, s]:
                kv = linear(actors[t, s], module.kv)
                k[s, t], v[s, t] = kv[:D], kv[D:]

    def pool(query, t2, cut):
        """sum_{s'} softmax_{s'}(query . k_{s't2} / sqrt(d)) v_{s't2}, one head"""
        keys = [s for s in range(S) if (s, t2) in k]
        weights = softmax([query @ k[s, t2][cut] / math.sqrt(d) for s in keys])
        return sum(w * v[s, t2][cut] for w, s in zip(weights, keys, strict=True))

    # step 1: trajectory tokens y~[t][t'] (D,), all heads side by side
    protos = {}
    for cut in heads:
        picks = greedy_prototypes([q[t][cut] for t in frames], prototypes) if prototypes else []
        protos[cut.start] = [q[frames[i]][cut] for i in picks]
    y_traj: dict[int, dict[int, torch.Tensor]] = {}
    for t in frames:
        y_traj[t] = {}
        for t2 in frames:
            if abs(t2 - t) > module.reach:
                continue
            parts = []
            for cut in heads:
                if prototypes:
                    ps = protos[cut.start]
                    weights = softmax([q[t][cut] @ p / math.sqrt(d) for p in ps])
                    parts.append(sum(w * pool(p, t2, cut) for w, p in zip(weights, ps,
                                                                         strict=True)))
                else:
                    parts.append(pool(q[t][cut], t2, cut))
            y_traj[t][t2] = torch.cat(parts)
    # step 2: 1-D attention along each query's trajectory
    out = torch.zeros(T, D, dtype=x.dtype)
    for t in frames:
        q2 = linear(y_traj[t][t], module.proj_q)
        near = sorted(y_traj[t])
        kv2 = {t2: linear(y_traj[t][t2], module.proj_kv) for t2 in near}
        y = []
        for cut in heads:
            weights = softmax([q2[cut] @ kv2[t2][:D][cut] / math.sqrt(d) for t2 in near])
            y.append(sum(w * kv2[t2][D:][cut] for w, t2 in zip(weights, near, strict=True)))
        out[t] = linear(torch.cat(y), module.proj)
    return out
