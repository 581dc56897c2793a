"""The ego car's own motion in a moving-camera synthetic video, and its ROAD++ AV action.

The scene (background and agents, moving in their own "world" image) is seen through a camera
whose view is a similarity transform of the world: driving on zooms in about the focus of
expansion on the horizon, turning rotates the road about the ego car (the bottom centre), a lane
change slides it sideways by one lane. The ego car drives in segments, each one AV action:
stop, drive on, turn left or right, change lane left or right, within bounds that keep the
scene in view (at most 1.5x zoom, 10 degrees of turn, one lane either side).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import layout as L

AV_ACTIONS = ("AV-Stop", "AV-Mov", "AV-TurRht", "AV-TurLft", "AV-MovRht", "AV-MovLft")
"""The ROAD++ AV actions (``av_action_labels``), each a segment kind below."""

ZOOM_PER_FRAME = 0.004  # log zoom a frame when driving on
TURN_PER_FRAME = math.radians(0.6)
LANE_WIDTH = L.EGO_LANE[1] - L.EGO_LANE[0]  # of the image width
MAX_ZOOM = math.log(1.5)
MAX_TURN = math.radians(10)
SEGMENT_WEIGHTS = {"AV-Stop": 2, "AV-Mov": 3, "AV-TurRht": 1, "AV-TurLft": 1, "AV-MovRht": 1,
                   "AV-MovLft": 1}


@dataclass
class Pose:
    """Where the camera is: log zoom, turn (radians, left positive) and sideways offset (lanes,
    left positive)."""

    zoom: float = 0.0
    turn: float = 0.0
    lane: float = 0.0

    def affine(self, width: int, height: int) -> np.ndarray:
        """World pixels -> frame pixels (2, 3): zoom about the horizon centre, turn about the
        bottom centre, then the sideways shift (the scene slides right when the car moves left).
        """
        s = math.exp(self.zoom)
        zoom = np.array([[s, 0, (1 - s) * width / 2], [0, s, (1 - s) * height * L.HORIZON],
                         [0, 0, 1]])
        # turning left swings the road clockwise on screen (image y points down)
        c, n = math.cos(self.turn), math.sin(self.turn)
        px, py = width / 2, height
        turn = np.array([[c, -n, px - c * px + n * py], [n, c, py - n * px - c * py], [0, 0, 1]])
        shift = np.array([[1, 0, self.lane * LANE_WIDTH * width], [0, 1, 0], [0, 0, 1]])
        return (shift @ turn @ zoom)[:2]


def _step(pose: Pose, action: str, frames: int) -> Pose:
    """The pose one frame further into a segment of ``action`` lasting ``frames``."""
    zoom = pose.zoom + (0.0 if action == "AV-Stop" else
                        ZOOM_PER_FRAME * (1.0 if action == "AV-Mov" else 0.6))
    turn = pose.turn + {"AV-TurLft": 1, "AV-TurRht": -1}.get(action, 0) * TURN_PER_FRAME
    lane = pose.lane + {"AV-MovLft": 1, "AV-MovRht": -1}.get(action, 0) / frames
    return Pose(min(zoom, MAX_ZOOM), turn, lane)


def _feasible(pose: Pose, action: str, frames: int) -> bool:
    """Whether a segment keeps the camera within its bounds."""
    zoom_rate = {"AV-Stop": 0.0, "AV-Mov": 1.0}.get(action, 0.6) * ZOOM_PER_FRAME
    if pose.zoom + zoom_rate * frames > MAX_ZOOM:
        return False
    turn = pose.turn + {"AV-TurLft": 1, "AV-TurRht": -1}.get(action, 0) * TURN_PER_FRAME * frames
    lane = pose.lane + {"AV-MovLft": 1, "AV-MovRht": -1}.get(action, 0)
    return abs(turn) <= MAX_TURN + 1e-9 and abs(lane) <= 1 + 1e-9


def ego_motion(rng: np.random.Generator, num_frames: int, width: int, height: int
               ) -> tuple[list[str], np.ndarray]:
    """The AV action (F,) and the world -> frame affine (F, 2, 3) of every frame."""
    pose, actions, affines = Pose(), [], []
    names = list(SEGMENT_WEIGHTS)
    weights = np.array([SEGMENT_WEIGHTS[n] for n in names], dtype=float)
    while len(actions) < num_frames:
        action = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        frames = int(rng.integers(12, 31)) if action in ("AV-Stop", "AV-Mov") \
            else int(rng.integers(12, 19))
        if not _feasible(pose, action, frames):
            action = "AV-Stop"  # nowhere left to go: wait
        for _ in range(frames):
            pose = _step(pose, action, frames)
            actions.append(action)
            affines.append(pose.affine(width, height))
    return actions[:num_frames], np.stack(affines[:num_frames])
