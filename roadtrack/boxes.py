"""Box conversions and vectorised IoU, in numpy (no torch: the tracker and evaluators use these).

Conventions: ``xyxy`` = x1 y1 x2 y2; ``xywh`` = left top width height (MOTChallenge);
``xyah`` = centre x, centre y, aspect ratio w/h, height (DeepSORT's Kalman state).
"""
from __future__ import annotations

import numpy as np


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) left top width height -> (N, 4) x1 y1 x2 y2."""
    boxes = np.asarray(boxes, dtype=np.float64)
    out = boxes.copy()
    out[..., 2:4] = boxes[..., 0:2] + boxes[..., 2:4]
    return out


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) x1 y1 x2 y2 -> (N, 4) left top width height."""
    boxes = np.asarray(boxes, dtype=np.float64)
    out = boxes.copy()
    out[..., 2:4] = boxes[..., 2:4] - boxes[..., 0:2]
    return out


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) x1 y1 x2 y2 -> (N, 4) centre x, centre y, w/h, h."""
    boxes = np.asarray(boxes, dtype=np.float64)
    wh = boxes[..., 2:4] - boxes[..., 0:2]
    out = np.empty_like(boxes)
    out[..., 0:2] = boxes[..., 0:2] + wh / 2
    out[..., 2] = wh[..., 0] / wh[..., 1]
    out[..., 3] = wh[..., 1]
    return out


def xyah_to_xyxy(state: np.ndarray) -> np.ndarray:
    """(N, >=4) centre x, centre y, w/h, h -> (N, 4) x1 y1 x2 y2."""
    state = np.asarray(state, dtype=np.float64)
    half = state[..., 2:4] / 2
    half[..., 0] *= state[..., 3]
    centre = state[..., 0:2]
    return np.concatenate([centre - half, centre + half], axis=-1)


def box_area(boxes: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """(N, 4) xyxy -> (N,) areas; ``plus_one`` uses the old pixel convention w = x2 - x1 + 1."""
    boxes = np.asarray(boxes, dtype=np.float64)
    wh = boxes[..., 2:4] - boxes[..., 0:2]
    if plus_one:
        wh += 1.0
    np.maximum(wh, 0.0, out=wh)
    return wh[..., 0] * wh[..., 1]


def iou_matrix(a: np.ndarray, b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), xyxy -> (N, M).

    Empty inputs give an empty (N, M) matrix; boxes without area give IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    # few, plain ufunc calls: the tracker calls this every frame
    lo = np.maximum(a[:, None, 0:2], b[:, 0:2])  # (N, M, 2)
    wh = np.minimum(a[:, None, 2:4], b[:, 2:4])
    wh -= lo
    if plus_one:
        wh += 1.0
    np.maximum(wh, 0.0, out=wh)
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    union = box_area(a, plus_one)[:, None] + box_area(b, plus_one)
    union -= inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_pairs(a: np.ndarray, b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """IoU of row i of ``a`` with row i of ``b``: (N, 4), (N, 4) xyxy -> (N,)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    pad = 1.0 if plus_one else 0.0
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + pad, 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + pad, 0, None)
    inter = iw * ih
    union = box_area(a, plus_one) + box_area(b, plus_one) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def scale_boxes(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Multiply x coordinates by ``sx`` and y coordinates by ``sy``: (N, 4) -> (N, 4)."""
    return np.asarray(boxes, dtype=np.float64) * np.array([sx, sy, sx, sy])
