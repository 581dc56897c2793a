"""Per-frame inputs of the event head, built from a track series (numpy only).

For each frame: box position and size (normalised by the frame), where its ground point (bottom
centre) stands, encoded by Gaussian bumps along each image axis so that the head can carve the
picture into lanes, pavements and crossings, their rates of change (the motion that tells moving
away from moving towards, stopping from driving, left from right), the detector's agentness and
class probabilities, whether the frame was observed or interpolated, and the RoI features and
vivid-colour descriptor (lamps; :mod:`roadtrack.engine.colour`) of the detection when the detect
stage saved them, with the colour's flicker: how far each share strays from its local mean, so
that blinking indicators stand out from steady paint of the same hue.
"""
from __future__ import annotations

import numpy as np

from .series import TrackSeries, smooth

MOTION_SPAN = 2
"""Rates of change are taken over frames t - 2 .. t + 2."""

EXTRA_FIELDS = ("roi_features", "colour")
"""Optional per-detection fields of a tracks artifact (beyond io.artifacts.TRACK_FIELDS) that the
head's inputs read when the detect stage saved them."""

FLICKER_SPAN = 7
"""Frames of the local mean that blinking lamps flicker around (body paint does not)."""

GROUND_BUMPS = 16
"""Gaussian bumps per image axis encoding the ground point (centres 1/32 .. 31/32)."""


def rate(values: np.ndarray, span: int = MOTION_SPAN) -> np.ndarray:
    """(n, k) -> (n, k) central difference per frame over +-``span`` frames, clamped at the ends."""
    n = len(values)
    idx = np.arange(n)
    hi, lo = np.minimum(idx + span, n - 1), np.maximum(idx - span, 0)
    steps = np.maximum(hi - lo, 1)[:, None]
    return (values[hi] - values[lo]) / steps


def geometry(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(n, 4) pixel boxes -> (n, 5): centre x, centre y, width, height (normalised), log w/h."""
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-3)
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-3)
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2 / width
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2 / height
    return np.stack([centre_x, centre_y, w / width, h / height, np.log(w / h)], axis=1)


def ground_point_code(boxes: np.ndarray, width: int, height: int,
                      bumps: int = GROUND_BUMPS) -> np.ndarray:
    """(n, 4) pixel boxes -> (n, 2 * bumps): the bottom centre's x and y, each as ``bumps``
    Gaussian responses (width one bump spacing) to evenly spaced centres."""
    ground = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2 / width, boxes[:, 3] / height], axis=1)
    centres = (np.arange(bumps) + 0.5) / bumps
    scaled = (ground[:, :, None] - centres) * bumps  # (n, 2, bumps) in bump spacings
    return np.exp(-0.5 * scaled ** 2).reshape(len(boxes), 2 * bumps)


def series_features(series: TrackSeries, width: int, height: int,
                    use_roi: bool = True) -> np.ndarray:
    """(n, F) float32 event-head inputs of one track."""
    geo = geometry(series.boxes, width, height)
    log_size = np.log(np.maximum(geo[:, 2:4], 1e-4))
    motion = np.concatenate([rate(geo[:, :2]) * 10, rate(log_size) * 10], axis=1)
    parts = [geo, ground_point_code(series.boxes, width, height), motion,
             series.scores[:, None], series.probs["agent"], series.probs["action"],
             series.probs["loc"], series.observed[:, None].astype(np.float64)]
    if use_roi and "roi_features" in series.extra:
        parts.append(series.extra["roi_features"])
    if "colour" in series.extra:
        colour = series.extra["colour"].astype(np.float64)
        flicker = smooth(np.abs(colour - smooth(colour, FLICKER_SPAN)), FLICKER_SPAN)
        parts += [colour, flicker]
    return np.concatenate(parts, axis=1).astype(np.float32)
