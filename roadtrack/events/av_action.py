"""The AV's own action per frame (ROAD++ AV actions) from the camera motion the tracker estimated.

Three motion features per frame, from the affine ``A`` (2, 3) that maps the previous frame's
pixels to this frame's (``roadtrack.tracking.cmc``), smoothed over a few frames:

- ``forward``: log of the scale change ``sqrt|det A|`` (driving on makes the road grow);
- ``turn``: the rotation angle of ``A`` (radians; positive, clockwise on screen, is a left turn);
- ``side``: how far the bottom centre of the frame (where the ego car is) moves sideways, as a
  share of the width (positive, the road sliding right, is a move to the left).

A fixed decision list turns them into scores that sum to one: a turn first (its sign gives left
or right), else a sideways move (a lane change), else driving on, else a stop. Each step is a
logistic of how far the feature is past its threshold, so the scores rank frames by how clear
the motion is (frame-mAP needs a ranking). The thresholds sit halfway between standing still
and the slowest motion of each kind the synthetic ego car makes (``roadtrack.synth.ego``); on
real video a yaw looks more like a sideways slide than a rotation, so they would need refitting
there.
"""
from __future__ import annotations

import numpy as np

from .series import smooth

AV_ACTIONS = ("AV-Stop", "AV-Mov", "AV-TurRht", "AV-TurLft", "AV-MovRht", "AV-MovLft")
"""The ROAD++ AV action labels, in the order of ``av_action_labels``."""
WINDOW = 5  # frames of the centred moving average
# (threshold, logistic width) of |turn| (radians a frame), |side| (width a frame), forward
TURN = (0.005, 0.001)
SIDE = (0.003, 0.0008)
FORWARD = (0.0012, 0.0003)


def motion_features(camera_motion: np.ndarray, width: int, height: int) -> np.ndarray:
    """(F, 2, 3) affines -> (F, 3) forward, turn, side per frame, smoothed."""
    a = np.asarray(camera_motion, dtype=np.float64).reshape(-1, 2, 3)
    det = np.abs(a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0])
    forward = 0.5 * np.log(np.maximum(det, 1e-12))
    turn = np.arctan2(a[:, 1, 0], a[:, 0, 0])
    bottom = np.array([width / 2, height])
    side = (a[:, 0, :2] @ bottom + a[:, 0, 2] - bottom[0]) / width
    return smooth(np.stack([forward, turn, side], axis=1), WINDOW)


def _past(x: np.ndarray, threshold_width: tuple[float, float]) -> np.ndarray:
    threshold, width = threshold_width
    return 1.0 / (1.0 + np.exp(-(x - threshold) / width))


def classify(features: np.ndarray) -> np.ndarray:
    """(F, 3) features -> (F, 6) scores over :data:`AV_ACTIONS`, each row summing to one."""
    forward, turn, side = features.T
    p_turn = _past(np.abs(turn), TURN)
    p_side = (1 - p_turn) * _past(np.abs(side), SIDE)
    rest = 1 - p_turn - p_side  # neither turning nor sliding sideways
    p_move = rest * _past(forward, FORWARD)
    p_stop = rest - p_move
    left_turn, left_side = turn > 0, side > 0
    return np.stack([p_stop, p_move, p_turn * ~left_turn, p_turn * left_turn,
                     p_side * ~left_side, p_side * left_side], axis=1)


def av_actions(camera_motion: np.ndarray, width: int, height: int) -> dict:
    """The ``av_action`` part of an events document: per frame 1..F its label and scores."""
    scores = classify(motion_features(camera_motion, width, height))
    return {"classes": list(AV_ACTIONS),
            "labels": [AV_ACTIONS[k] for k in scores.argmax(axis=1)],
            "scores": np.round(scores, 5).tolist()}
