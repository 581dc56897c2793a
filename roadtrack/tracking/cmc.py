"""Camera-motion compensation (CMC): one affine per frame pair, applied to the Kalman state.

As in BoT-SORT (Aharon et al. 2022), the image motion between consecutive frames is fitted with
one 2x3 affine ``A`` (previous frame -> current frame pixel coordinates), estimated on a
downscaled grey frame either from sparse optical flow (Shi-Tomasi corners tracked with
pyramidal Lucas-Kanade, a RANSAC fit of a rotation + uniform scale + translation) or with ECC
(``cv2.findTransformECC``, a full affine: driving on zooms the view). Detection boxes can be
masked out so that moving agents do not pull the fit. :func:`warp_state` then moves every
track's state into the current frame before the Kalman prediction.

OpenCV is imported inside the estimators only: ``roadtrack track`` without frames never loads it.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

METHODS = ("none", "sparse-flow", "ecc")
IDENTITY = np.eye(2, 3)
WORK_WIDTH = 280
"""Frames are shrunk to about this width before estimating (840x600 -> 280x200: a third)."""


def warp_state(mean: np.ndarray, cov: np.ndarray, affine: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Move Kalman states into the next frame's pixel coordinates.

    mean (..., 8) cx cy a h and their velocities, cov (..., 8, 8) (batched arrays, or one
    filterpy ``KalmanFilter``'s ``x`` and ``P``); affine (2, 3). The centre maps through the whole
    affine, the centre velocity through its linear part; the height and its velocity scale with
    ``sqrt(|det|)``, the aspect ratio w/h is kept (exact for rotation + uniform scale).
    """
    linear = np.asarray(affine, dtype=np.float64)[:, :2]
    scale = float(np.sqrt(abs(np.linalg.det(linear))))
    m = np.zeros((8, 8))  # block diagonal: (cx, cy), a, h, (vx, vy), va, vh
    m[0:2, 0:2] = m[4:6, 4:6] = linear
    m[2, 2] = m[6, 6] = 1.0
    m[3, 3] = m[7, 7] = scale
    mean = np.asarray(mean) @ m.T
    mean[..., :2] += np.asarray(affine)[:, 2]
    return mean, m @ np.asarray(cov) @ m.T


def to_grey(frame: np.ndarray, width: int = WORK_WIDTH) -> np.ndarray:
    """RGB or grey (H, W[, 3]) uint8 -> grey (h, w) uint8 about ``width`` wide (never wider)."""
    import cv2  # lazy: see the module docstring

    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    shrink = grey.shape[1] / width
    if shrink > 1.0:
        size = (max(1, round(grey.shape[1] / shrink)), max(1, round(grey.shape[0] / shrink)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey


def _to_full(affine: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """An affine between working frames -> the same motion between full frames (2, 3).

    Pixel centres: working x = (full x + 0.5) / factor - 0.5, i.e. ``S @ p``; full = S^-1 A S.
    """
    s = np.diag([1 / factor[0], 1 / factor[1], 1.0])
    s[:2, 2] = 0.5 / factor - 0.5
    a = np.vstack([affine, [0, 0, 1]])
    return (np.linalg.inv(s) @ a @ s)[:2]


def _mask(shape: tuple[int, ...], boxes: np.ndarray | None, factor: np.ndarray
          ) -> np.ndarray | None:
    """uint8 (h, w) 255 outside the boxes (M, 4) x1 y1 x2 y2 full pixels; None without boxes."""
    if boxes is None or not len(boxes):
        return None
    mask = np.full(shape[:2], 255, np.uint8)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / np.tile(factor, 2)
    b = np.clip(np.round(b), 0, [shape[1], shape[0], shape[1], shape[0]]).astype(int)
    for x1, y1, x2, y2 in b:
        mask[y1:y2, x1:x2] = 0
    return mask


class MotionEstimator:
    """Feed frames in order; each call returns the affine (2, 3) from the previous frame to this
    one in full-frame pixels (the identity for the first frame and where the fit fails).

    ``boxes`` (M, 4): this frame's detections, masked out of the fit when given (sparse flow
    picks corners in the previous frame, so it uses the previous call's boxes; ECC this call's).
    ``full_size`` (W, H): the frames' full size when they are handed in already shrunk.
    """

    def __init__(self, method: str = "sparse-flow", width: int = WORK_WIDTH,
                 full_size: tuple[int, int] | None = None, max_corners: int = 200):
        if method not in METHODS[1:]:
            raise ValueError(f"camera motion method must be one of {METHODS[1:]}, got {method!r}")
        self.method, self.width, self.max_corners = method, width, max_corners
        self.full_size = full_size
        self.previous: np.ndarray | None = None
        self.previous_mask: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
        grey = to_grey(frame, self.width)
        full = self.full_size or (frame.shape[1], frame.shape[0])
        factor = np.array([full[0] / grey.shape[1], full[1] / grey.shape[0]])  # full / working
        mask = _mask(grey.shape, boxes, factor)
        previous, previous_mask = self.previous, self.previous_mask
        self.previous, self.previous_mask = grey, mask
        if previous is None or previous.shape != grey.shape:
            return IDENTITY.copy()
        fit = self._sparse_flow(previous, grey, previous_mask) if self.method == "sparse-flow" \
            else self._ecc(previous, grey, mask)
        return IDENTITY.copy() if fit is None else _to_full(fit, factor)

    def _sparse_flow(self, previous, grey, mask):
        import cv2  # lazy: see the module docstring

        corners = cv2.goodFeaturesToTrack(previous, self.max_corners, 0.01, 5, mask=mask,
                                          blockSize=3)
        if corners is None or len(corners) < 6:
            return None
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, grey, corners,
                                                    None, winSize=(15, 15),  # type: ignore
                                                    maxLevel=2)
        ok = status.reshape(-1) == 1
        if ok.sum() < 6:
            return None
        fit, _ = cv2.estimateAffinePartial2D(corners[ok], moved[ok], method=cv2.RANSAC,
                                             ransacReprojThreshold=1.0, refineIters=10)
        return fit

    def _ecc(self, previous, grey, mask):
        import cv2  # lazy: see the module docstring

        warp: np.ndarray = np.eye(2, 3, dtype=np.float32)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
        try:
            # ECC finds W with template(x) ~ input(W x): template = current, input = previous,
            # so W maps current -> previous pixels and is inverted below.
            _, found = cv2.findTransformECC(grey, previous, warp, cv2.MOTION_AFFINE, criteria,
                                            mask, 1)
        except cv2.error:  # did not converge (a blank or cut frame)
            return None
        return cv2.invertAffineTransform(np.asarray(found))


def estimate_motion(frames: Iterable[np.ndarray], method: str = "sparse-flow",
                    boxes: Iterable[np.ndarray | None] | None = None,
                    width: int = WORK_WIDTH) -> np.ndarray:
    """(F, 2, 3): per frame the affine from the previous frame (the identity for the first).

    frames: RGB or grey uint8 frames in order; boxes: per frame the detections to mask, or None.
    """
    estimator = MotionEstimator(method, width)
    box_iter: Iterator = iter(boxes) if boxes is not None else iter(())
    out = [estimator(frame, next(box_iter, None)) for frame in frames]
    return np.stack(out) if out else np.zeros((0, 2, 3))
