"""Clip augmentations after the BasicNeck of ACAR/ROAD++ entries: resize, random crop that drops
boxes keeping too little of their area, horizontal flip that mirrors left/right labels, box jitter.

A clip is ``frames`` (T, H, W, 3) uint8 with ``boxes`` (n, 4) x1 y1 x2 y2 normalised to [0, 1] on
the key frame and ``labels``: label type -> (n, C) multi-hot. Every random choice comes from the
``numpy.random.Generator`` passed in, so a sample is a pure function of its seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIRROR_PAIRS = (
    ("MovLft", "MovRht"), ("TurLft", "TurRht"), ("XingFmLft", "XingFmRht"), ("LftPav", "RhtPav"),
    ("IncatLft", "IncatRht"), ("LftParking", "rightParking"),
)
"""Class names that trade places when the picture is mirrored left to right."""

_MIRROR = {a: b for a, b in MIRROR_PAIRS} | {b: a for a, b in MIRROR_PAIRS}

MIN_BOX_SIDE = 1e-3
"""Normalised width/height below which an augmented box is dropped."""


def mirror_name(name: str) -> str:
    """The class name seen in a mirrored picture; duplex/triplet names swap piece by piece."""
    return "-".join(_MIRROR.get(piece, piece) for piece in name.split("-"))


def flip_permutation(names: tuple[str, ...] | list[str]) -> np.ndarray:
    """(C,) int: the index of each class's mirrored name; -1 where it is not in ``names``."""
    index = {name: i for i, name in enumerate(names)}
    return np.array([index.get(mirror_name(n), -1) for n in names], dtype=np.int64)


def flip_labels(multi_hot: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """(n, C) multi-hot of a mirrored clip; a class whose mirror is not in the space drops out."""
    out = np.zeros_like(multi_hot)
    keep = permutation >= 0
    out[:, permutation[keep]] = multi_hot[:, keep]
    return out


def flip_boxes(boxes: np.ndarray) -> np.ndarray:
    """(n, 4) normalised boxes mirrored left to right."""
    return np.stack([1.0 - boxes[:, 2], boxes[:, 1], 1.0 - boxes[:, 0], boxes[:, 3]], axis=1)


def jitter_boxes(boxes: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Move each side by up to ``scale`` times the box's width/height, clipped to [0, 1]."""
    if scale <= 0 or len(boxes) == 0:
        return boxes
    wh = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)  # (n, 4): w h w h
    moved = boxes + rng.uniform(-scale, scale, size=boxes.shape) * wh
    return np.clip(moved, 0.0, 1.0).astype(boxes.dtype)


def random_crop_box(rng: np.random.Generator, min_scale: float) -> np.ndarray:
    """(4,) normalised crop window: each side a uniform share of [min_scale, 1], uniform place."""
    w, h = rng.uniform(min_scale, 1.0, size=2)
    x1, y1 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
    return np.array([x1, y1, x1 + w, y1 + h])


def crop_boxes(boxes: np.ndarray, crop: np.ndarray, keep_threshold: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes seen through ``crop``: (m, 4) renormalised to the window and (n,) bool kept rows.

    A box is kept when the part inside the window is larger than ``keep_threshold`` times its own
    area (so a box wholly outside goes even at threshold 0).
    """
    inside = np.clip(boxes, np.tile(crop[:2], 2), np.tile(crop[2:], 2))  # (n, 4)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area_inside = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])
    keep = area_inside > keep_threshold * area
    size = np.tile(crop[2:] - crop[:2], 2)
    out = (inside[keep] - np.tile(crop[:2], 2)) / size
    return np.clip(out, 0.0, 1.0).astype(boxes.dtype), keep


def crop_frames(frames: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """(T, h, w, 3) pixels of the normalised window ``crop`` from (T, H, W, 3) frames."""
    height, width = frames.shape[1:3]
    x1, x2 = round(crop[0] * width), max(round(crop[2] * width), 1)
    y1, y2 = round(crop[1] * height), max(round(crop[3] * height), 1)
    return frames[:, y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T, H', W', 3) frames resized to ``size`` = (W', H') with bilinear filtering."""
    width, height = size
    if frames.shape[1:3] == (height, width):
        return np.ascontiguousarray(frames)
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR)
                     for f in frames])


@dataclass
class ClipTransform:
    """Resize (always) and, when ``train``, jitter, random crop and flip, in the neck's order:
    boxes are jittered first, then seen through the crop window, then mirrored."""

    size: tuple[int, int]  # (W, H) of the model input
    train: bool = False
    crop_prob: float = 0.0
    crop_min_scale: float = 0.6
    keep_threshold: float = 0.3
    flip_prob: float = 0.0
    box_jitter: float = 0.0
    flip_perms: dict[str, np.ndarray] | None = None  # label type -> flip_permutation; needed
    # for every label type when flip_prob > 0

    def __call__(self, frames: np.ndarray, boxes: np.ndarray, labels: dict[str, np.ndarray],
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        if self.train:
            boxes = jitter_boxes(boxes, self.box_jitter, rng)
            if rng.random() < self.crop_prob:
                crop = random_crop_box(rng, self.crop_min_scale)
                frames = crop_frames(frames, crop)
                boxes, keep = crop_boxes(boxes, crop, self.keep_threshold)
                labels = {t: m[keep] for t, m in labels.items()}
            if rng.random() < self.flip_prob:
                frames = frames[:, :, ::-1]
                boxes = flip_boxes(boxes)
                labels = {t: flip_labels(m, self.flip_perms[t]) for t, m in labels.items()}
            big = ((boxes[:, 2] - boxes[:, 0]) > MIN_BOX_SIDE) & \
                  ((boxes[:, 3] - boxes[:, 1]) > MIN_BOX_SIDE)
            boxes, labels = boxes[big], {t: m[big] for t, m in labels.items()}
        return resize_frames(frames, self.size), boxes, labels
