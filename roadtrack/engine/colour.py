"""Vivid-colour descriptor of each detection: how much of each half of its box is lit.

Lamps tell actions that boxes and motion do not: traffic-light states, brake lights, blinking
indicators, hazard lights, sirens. A pixel is *vivid* when saturated and bright (HSV saturation
and value above 0.5); its hue picks one of ``HUE_BINS`` bins of the colour circle. For each box
the descriptor is the share of vivid pixels of each hue in the box's left and right halves,
counted exactly with one integral image per hue (OpenCV), so a blinking left indicator is an
amber share in the left half that comes and goes over the frames; the event head reads it
along the track.
"""
from __future__ import annotations

import cv2
import numpy as np

HUE_BINS = 12
"""Hue bins of 30 degrees, the first centred on red."""

VIVID = 0.5
"""Saturation and value a pixel needs to count."""


def vivid_hue_labels(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB uint8 -> (H, W) uint8: 1 + the hue bin of each vivid pixel, 0 elsewhere."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)  # hue in 2-degree units (0..179), S, V 0..255
    hue2 = hsv[..., 0].astype(np.int16) * 2  # degrees
    bins = ((hue2 + 15) // 30) % HUE_BINS  # bin 0 spans -15..15 degrees
    vivid = (hsv[..., 1] > VIVID * 255) & (hsv[..., 2] > VIVID * 255)
    return np.where(vivid, bins + 1, 0).astype(np.uint8)


def box_colours(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB uint8 frame and (n, 4) x1 y1 x2 y2 boxes in its pixels -> (n, 2 * HUE_BINS)
    float16: the share of vivid pixels of each hue bin in the left half, then the right half."""
    labels = vivid_hue_labels(frame)
    height, width = labels.shape
    sums = np.stack([cv2.integral((labels == k + 1).view(np.uint8)) for k in range(HUE_BINS)])
    # (K, H + 1, W + 1) int32 counts above and left of each corner
    corners = np.rint(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)).astype(np.int64)
    x1, x2 = (np.clip(corners[:, i], 0, width) for i in (0, 2))
    y1, y2 = (np.clip(corners[:, i], 0, height) for i in (1, 3))
    x2, y2 = np.maximum(x2, x1), np.maximum(y2, y1)
    middle = (x1 + x2) // 2

    def share(left: np.ndarray, right: np.ndarray) -> np.ndarray:  # (n,) x ranges -> (n, K)
        count = sums[:, y2, right] - sums[:, y1, right] - sums[:, y2, left] + sums[:, y1, left]
        area = np.maximum((right - left) * (y2 - y1), 1)
        return (count / area).T

    return np.concatenate([share(x1, middle), share(middle, x2)], axis=1).astype(np.float16)
