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


_HUE_BIN = np.array([((2 * h + 15) // 30) % HUE_BINS + 1 for h in range(256)], np.uint8)
"""1 + the hue bin of each OpenCV hue (2-degree units; bin 0 spans -15..15 degrees)."""


def vivid_hue_labels(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB uint8 -> (H, W) uint8: 1 + the hue bin of each vivid pixel, 0 elsewhere."""
    hue, saturation, value = cv2.split(cv2.cvtColor(frame, cv2.COLOR_RGB2HSV))  # S, V 0..255
    vivid = cv2.compare(cv2.min(saturation, value), int(VIVID * 255), cv2.CMP_GT)  # 255 or 0
    return cv2.bitwise_and(cv2.LUT(hue, _HUE_BIN), vivid)


def box_colours(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB uint8 frame and (n, 4) x1 y1 x2 y2 boxes in its pixels -> (n, 2 * HUE_BINS)
    float16: the share of vivid pixels of each hue bin in the left half, then the right half.

    Counted inside each box when the boxes cover less than the frame, else with one integral
    image per hue (exact both ways)."""
    labels = vivid_hue_labels(frame)
    height, width = labels.shape
    corners = np.rint(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)).astype(np.int64)
    x1, x2 = (np.clip(corners[:, i], 0, width) for i in (0, 2))
    y1, y2 = (np.clip(corners[:, i], 0, height) for i in (1, 3))
    x2, y2 = np.maximum(x2, x1), np.maximum(y2, y1)
    middle = (x1 + x2) // 2
    halves = ((x1, middle), (middle, x2))
    if ((x2 - x1) * (y2 - y1)).sum() <= labels.size:
        counts = [np.array([np.bincount(labels[t:b, a:c].ravel(), minlength=HUE_BINS + 1)[1:]
                            for a, c, t, b in zip(left, right, y1, y2, strict=True)],
                           dtype=np.int64).reshape(-1, HUE_BINS)
                  for left, right in halves]  # 2 x (n, K)
    else:
        onehot = (labels[..., None] == np.arange(1, HUE_BINS + 1, dtype=np.uint8)).view(np.uint8)
        sums = cv2.integral(onehot)  # (H + 1, W + 1, K) int32 counts above and left of a corner
        counts = [sums[y2, right] - sums[y1, right] - sums[y2, left] + sums[y1, left]
                  for left, right in halves]
    shares = [c / np.maximum((right - left) * (y2 - y1), 1)[:, None]
              for c, (left, right) in zip(counts, halves, strict=True)]
    return np.concatenate(shares, axis=1).astype(np.float16)
