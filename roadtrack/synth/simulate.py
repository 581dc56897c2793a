"""One synthetic video: which agents are where, doing what, at each frame.

``simulate_video`` places agents (scripted movers that enter over time, parked vehicles,
traffic lights), then ``render_frames`` draws them far to near and returns, per frame, the boxes
that are visible enough to annotate with their agent, action and location names.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import layout as L
from .render import draw_upright, draw_vehicle, pick_colour
from .scenarios import (
    AGENT_WEIGHTS,
    PARKING_SPOTS,
    STATIC,
    VEHICLES,
    Step,
    random_script,
    traffic_light_states,
)

MIN_VISIBLE = 0.4
"""A box is annotated while at least this share of it is inside the frame..."""
MAX_OCCLUDED = 0.7
"""...and nearer agents cover less than this share of it."""
WARM_UP = 250
"""Frames simulated before the first, so a video opens on a busy road."""


@dataclass
class Agent:
    uid: str
    kind: str
    colour: tuple[int, int, int]
    first: int  # frame index (0-based, may be negative) of steps[0]
    steps: list[Step]
    light_states: list[str] | None = None  # traffic lights only

    def step_at(self, index: int) -> Step | None:
        k = index - self.first
        return self.steps[k] if 0 <= k < len(self.steps) else None


@dataclass
class BoxRecord:
    """One annotated box: pixel box in the rendered frame, identity and label names."""

    uid: str
    box: tuple[float, float, float, float]  # x1 y1 x2 y2 pixels, clipped to the frame
    agent: str
    action: str
    loc: str | None


def simulate_video(rng: np.random.Generator, num_frames: int, busy: float = 0.09) -> list[Agent]:
    """Agents of one video; ``busy`` is the chance per frame that a new mover enters."""
    agents: list[Agent] = []

    def uid():
        return f"{int(rng.integers(16 ** 10)):010x}"

    for spot in ((0.80, 0.47), (0.21, 0.27))[: int(rng.integers(1, 3))]:
        states = traffic_light_states(rng, num_frames)
        steps = [Step(spot[0], spot[1], 0.0, s, False) for s in states]
        agents.append(Agent(uid(), "TL", (25, 25, 25), 0, steps, states))
    spots = rng.permutation(PARKING_SPOTS)[: int(rng.integers(1, 4))]
    for v in spots:
        kind = "Car" if rng.random() < 0.7 else "MedVeh"
        script = STATIC["parked"](rng, kind, float(v))
        agents.append(Agent(uid(), kind, pick_colour(rng, kind), -WARM_UP,
                            script.steps[: num_frames + WARM_UP]))
    kinds = list(AGENT_WEIGHTS)
    probs = np.array([AGENT_WEIGHTS[k] for k in kinds])
    for start in range(-WARM_UP, num_frames):
        if rng.random() >= busy:
            continue
        kind = kinds[int(rng.choice(len(kinds), p=probs / probs.sum()))]
        steps = random_script(rng, kind).steps[: num_frames - start]
        if steps:
            agents.append(Agent(uid(), kind, pick_colour(rng, kind), start, steps))
    return agents


def render_frame(background: np.ndarray, agents: list[Agent], index: int, unit: float,
                 camera: np.ndarray | None = None) -> tuple[np.ndarray, list[BoxRecord]]:
    """Draw frame ``index`` (0-based) and return it with its annotated boxes.

    ``camera`` (2, 3): the world -> frame affine of a moving camera (``roadtrack.synth.ego``);
    the scene is drawn in the world image, then seen through it (None: they are the same).
    """
    img = background.copy()
    h, w = img.shape[:2]
    present = [(a, s) for a in agents if (s := a.step_at(index)) is not None]
    present.sort(key=lambda item: item[1].v)  # far (small v) first: near agents cover them
    drawn = []
    for agent, step in present:
        if agent.kind in VEHICLES:
            box = draw_vehicle(img, agent.kind, agent.colour, step, index, unit)
        else:
            box = draw_upright(img, agent.kind, agent.colour, step, index, unit, step.action)
        box = np.array(box)
        if camera is not None:  # only what the world image holds can be seen
            box = np.stack([_seen(np.clip(box, 0, [w, h, w, h]), camera), _seen(box, camera)])
        drawn.append((agent, step, box))
    if camera is not None:
        img = cv2.warpAffine(img, camera, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    records = []
    for k, (agent, step, box) in enumerate(drawn):
        drawable, box = (box[0], box[1]) if camera is not None else (box, box)
        clipped = np.clip(drawable, [0, 0, 0, 0], [w, h, w, h])
        area = max(1e-6, (box[2] - box[0]) * (box[3] - box[1]))
        inside = max(0.0, clipped[2] - clipped[0]) * max(0.0, clipped[3] - clipped[1]) / area
        if clipped[2] - clipped[0] < 2 or clipped[3] - clipped[1] < 2 or inside < MIN_VISIBLE:
            continue
        if _covered(clipped, [d[2][-1] if camera is not None else d[2]
                              for d in drawn[k + 1:]]) > MAX_OCCLUDED:
            continue
        loc = L.location(step.u, step.v, agent.kind)
        records.append(BoxRecord(agent.uid, tuple(float(c) for c in clipped), agent.kind,
                                 step.action, loc))
    return img, records


def _seen(box: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """The frame box (4,) enclosing world box (4,) x1 y1 x2 y2 seen through ``camera`` (2, 3)."""
    corners = box[[[0, 1], [2, 1], [2, 3], [0, 3]]]  # (4, 2)
    seen = corners @ camera[:, :2].T + camera[:, 2]
    return np.concatenate([seen.min(axis=0), seen.max(axis=0)])


def _covered(box: np.ndarray, nearer: list[np.ndarray]) -> float:
    """Largest share of ``box`` that one nearer box covers."""
    if not nearer:
        return 0.0
    others = np.array(nearer)
    iw = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    return float((iw * ih).max() / max(1e-6, (box[2] - box[0]) * (box[3] - box[1])))
