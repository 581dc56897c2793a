"""Set-prediction loss: Hungarian matching (``lap``) of queries to ground-truth agents per clip
and per stage, then agentness, box and multi-label losses over every stage."""
from __future__ import annotations

import lap
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import generalized_box_iou, generalized_box_iou_loss, sigmoid_focal_loss

from ..labels import BOX_TYPES


@torch.no_grad()
def match_cost(agentness: torch.Tensor, boxes: torch.Tensor, gt_boxes: torch.Tensor,
               cost_agentness: float, cost_l1: float, cost_giou: float) -> torch.Tensor:
    """(Q, n) matching cost of one clip, on its device: cost_l1 * L1 - cost_agentness *
    p(agent) - cost_giou * GIoU. agentness: (Q,) logits; boxes: (Q, 4) and gt_boxes: (n, 4)
    normalised x1 y1 x2 y2."""
    return (cost_l1 * torch.cdist(boxes.float(), gt_boxes.float(), p=1)
            - cost_agentness * agentness.float().sigmoid()[:, None]
            - cost_giou * generalized_box_iou(boxes.float(), gt_boxes.float()))


def solve_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) int64 (m,) of the cheapest assignment of a (Q, n) cost, m = min(Q, n)."""
    cost = np.nan_to_num(cost.astype(np.float64), nan=1e6, posinf=1e6, neginf=-1e6)
    _, row_to_col, _ = lap.lapjv(cost, extend_cost=True)
    rows = np.flatnonzero(row_to_col >= 0)
    return rows.astype(np.int64), row_to_col[rows].astype(np.int64)


@torch.no_grad()
def hungarian_match(agentness: torch.Tensor, boxes: torch.Tensor, gt_boxes: torch.Tensor,
                    cost_agentness: float, cost_l1: float, cost_giou: float):
    """Match the queries of one clip to its ground truth (see :func:`match_cost`).

    Returns (query indices, gt indices), both (m,) int64 with m = min(Q, n).
    """
    if len(gt_boxes) == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    cost = match_cost(agentness, boxes, gt_boxes, cost_agentness, cost_l1, cost_giou)
    rows, cols = solve_assignment(cost.cpu().double().numpy())
    return torch.as_tensor(rows), torch.as_tensor(cols)


class SetCriterion(nn.Module):
    """forward(stage outputs, targets) -> dict of scalar losses summed over stages.

    Each stage output: ``agentness`` (B, Q) logits, ``boxes`` (B, Q, 4) normalised x1 y1 x2 y2,
    ``agent``/``action``/``loc`` (B, Q, K) logits. Targets: list of B dicts with ``boxes`` (n, 4)
    normalised and ``agent``/``action``/``loc`` (n, K) multi-hot. The returned parts
    ``loss_agentness``, ``loss_l1``, ``loss_giou``, ``loss_agent``, ``loss_action``, ``loss_loc``
    are already weighted; ``loss`` is their sum.

    The losses are sums over matched boxes divided by the number of boxes. ``count_boxes`` turns
    this process's box count into that divisor; under DDP the trainer sets it to the mean count
    over the ranks (as DETR does), so that the averaged gradient is the whole batch's gradient.
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg  # roadtrack.models.config.LossConfig
        self.count_boxes = float
        if cfg.agentness not in ("focal", "ce"):
            raise ValueError(f"unknown agentness loss {cfg.agentness!r} (focal or ce)")

    def _agentness_loss(self, logits: torch.Tensor, positive: torch.Tensor, num_boxes: float):
        cfg = self.cfg
        if cfg.agentness == "focal":
            return sigmoid_focal_loss(logits, positive, alpha=cfg.focal_alpha,
                                      gamma=cfg.focal_gamma, reduction="sum") / num_boxes
        weight = torch.where(positive > 0, 1.0, cfg.no_object_weight)
        loss = F.binary_cross_entropy_with_logits(logits, positive, weight=weight,
                                                  reduction="sum")
        return loss / weight.sum()

    @torch.no_grad()
    def match(self, stage_outputs: list[dict], targets: list[dict]) -> list[torch.Tensor]:
        """Hungarian matching of every stage and clip with one copy to the host and one back.

        Returns per stage a (3, m) int64 tensor on the outputs' device: clip, query and row in
        the concatenated ground truth of each match.
        """
        cfg = self.cfg
        device = stage_outputs[0]["agentness"].device
        costs = [match_cost(out["agentness"][b], out["boxes"][b], t["boxes"].to(device),
                            cfg.cost_agentness, cfg.cost_l1, cfg.cost_giou).flatten()
                 for out in stage_outputs for b, t in enumerate(targets) if len(t["boxes"])]
        flat = torch.cat(costs).cpu().numpy() if costs else np.zeros(0)  # the one wait
        sizes = [len(t["boxes"]) for t in targets]
        first_gt = np.cumsum([0, *sizes])
        found, at = [], 0
        for out in stage_outputs:
            Q = out["agentness"].shape[1]
            parts = [np.zeros((3, 0), np.int64)]
            for b, n in enumerate(sizes):
                if n:
                    rows, cols = solve_assignment(flat[at: at + Q * n].reshape(Q, n))
                    at += Q * n
                    parts.append(np.stack([np.full_like(rows, b), rows, cols + first_gt[b]]))
            found.append(np.concatenate(parts, axis=1))
        widths = [m.shape[1] for m in found]
        both = torch.from_numpy(np.concatenate(found, axis=1))
        if device.type == "cuda":
            both = both.pin_memory()
        return list(both.to(device, non_blocking=True).split(widths, dim=1))

    def stage_losses(self, out: dict, gt: dict, matched: torch.Tensor, num_boxes: float) -> dict:
        """One stage's losses; ``gt``: the batch's concatenated targets on the device,
        ``matched``: (3, m) clip, query and ``gt`` row of each match (:meth:`match`)."""
        cfg = self.cfg
        B, Q = out["agentness"].shape
        device = out["agentness"].device
        batch_idx, query_idx, gt_idx = matched
        gt_parts = {k: gt[k][gt_idx] for k in ("boxes", *BOX_TYPES)}

        positive = torch.zeros(B, Q, device=device, dtype=out["agentness"].dtype)
        positive[batch_idx, query_idx] = 1.0
        losses = {"loss_agentness": cfg.weight_agentness
                  * self._agentness_loss(out["agentness"], positive, num_boxes)}

        pred_boxes = out["boxes"][batch_idx, query_idx]  # (m, 4)
        gt_boxes = gt_parts["boxes"].to(pred_boxes.dtype)
        if len(gt_boxes):
            losses["loss_l1"] = cfg.weight_l1 * F.l1_loss(pred_boxes, gt_boxes,
                                                          reduction="sum") / num_boxes
            losses["loss_giou"] = cfg.weight_giou * generalized_box_iou_loss(
                pred_boxes, gt_boxes, reduction="sum") / num_boxes
        else:  # keep the graph (and every parameter's gradient slot) without a box loss
            zero = out["boxes"].sum() * 0.0
            losses["loss_l1"] = zero
            losses["loss_giou"] = zero
        for name in BOX_TYPES:
            logits = out[name][batch_idx, query_idx]  # (m, K)
            weight = getattr(cfg, f"weight_{name}")
            if len(logits):  # the mean over boxes and classes
                labels = gt_parts[name].to(logits.dtype)
                losses[f"loss_{name}"] = weight * F.binary_cross_entropy_with_logits(
                    logits, labels, reduction="sum") / (num_boxes * logits.shape[1])
            else:
                losses[f"loss_{name}"] = out[name].sum() * 0.0
        return losses

    def forward(self, stage_outputs: list[dict], targets: list[dict]) -> dict:
        total: dict[str, torch.Tensor] = {}
        queries = stage_outputs[0]["agentness"].shape[1]
        matched = sum(min(len(t["boxes"]), queries) for t in targets)  # one box per query at most
        num_boxes = max(self.count_boxes(float(matched)), 1.0)
        device = stage_outputs[0]["agentness"].device
        gt = {k: torch.cat([t[k] for t in targets]).to(device) for k in ("boxes", *BOX_TYPES)}
        matches = self.match(stage_outputs, targets)
        for out, matched in zip(stage_outputs, matches, strict=True):
            for key, value in self.stage_losses(out, gt, matched, num_boxes).items():
                total[key] = total[key] + value if key in total else value
        total["loss"] = sum(total.values())
        return total
