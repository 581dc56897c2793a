"""The road scene every synthetic video shares: a main road seen from behind the ego car, a
crossing road (the junction), pavements, a cycle lane, a zebra crossing, parking bays and a bus
stop. Positions are normalised image coordinates (u right, v down, both in [0, 1]).

Locations are looked up from where an agent's ground point (bottom centre of its box) stands.
"""
from __future__ import annotations

import cv2
import numpy as np

HORIZON = 0.10
"""Above this the image is sky and far buildings; agents enter and leave the road here."""

# Columns of the main road and its sides (u ranges), left to right.
LEFT_VERGE = (0.00, 0.16)
LEFT_PAV = (0.16, 0.30)
INCOMING_LANE = (0.30, 0.44)
EGO_LANE = (0.44, 0.58)
OUTGOING_LANE = (0.58, 0.68)
CYCLE_LANE = (0.68, 0.72)
RIGHT_PAV = (0.72, 0.84)
PARKING = (0.84, 0.98)
PARKING_TOP = 0.52

# Rows (v ranges) of the crossing road, its pavements, the zebra crossing and the bus stop.
JUNCTION = (0.30, 0.45)
JUNCTION_PAV = ((0.26, 0.30), (0.45, 0.49))
ZEBRA = (0.60, 0.68)
BUS_STOP = ((0.16, 0.30), (0.52, 0.60))  # (u range, v range)
STOP_LINE = 0.48

LANE_CENTRE = {
    "IncomLane": 0.37, "VehLane": 0.51, "OutgoLane": 0.63, "OutgoCycLane": 0.70,
    "LftPav": 0.23, "RhtPav": 0.78, "parking": 0.91,
}
CROSS_ROW = {"from_left": 0.41, "from_right": 0.34}
"""Rows of the crossing road's two directions: traffic from the left drives on the lower one."""


def inside(x: float, lo_hi: tuple[float, float]) -> bool:
    return lo_hi[0] <= x < lo_hi[1]


def location(u: float, v: float, agent: str) -> str | None:
    """The ROAD++ location name of a ground point, or None where no location applies."""
    if agent == "TL" or v < HORIZON:
        return None
    if inside(v, JUNCTION):
        return "Jun"
    if any(inside(v, row) for row in JUNCTION_PAV) and (u < INCOMING_LANE[0] or u >= RIGHT_PAV[0]):
        return "Pav"
    if agent == "Ped" and inside(v, ZEBRA) and INCOMING_LANE[0] <= u < CYCLE_LANE[1]:
        return "xing"
    if inside(u, BUS_STOP[0]) and inside(v, BUS_STOP[1]):
        return "BusStop"
    for name, span in (("LftPav", LEFT_PAV), ("IncomLane", INCOMING_LANE), ("VehLane", EGO_LANE),
                       ("OutgoLane", OUTGOING_LANE), ("OutgoCycLane", CYCLE_LANE),
                       ("RhtPav", RIGHT_PAV)):
        if inside(u, span):
            return name
    if inside(u, PARKING) and v >= PARKING_TOP:
        return "parking"
    if u < LEFT_PAV[0]:
        return "Pav"
    return "RhtPav"


def depth_scale(v: float) -> float:
    """How big an agent standing at row ``v`` looks relative to one at the bottom edge."""
    return 0.45 + 0.55 * float(np.clip(v, HORIZON, 1.2))


def draw_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """The static scene of one video as an RGB image, colours jittered per video."""
    def jitter(rgb, amount=12):
        return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)

    img = np.zeros((height, width, 3), np.uint8)

    def fill(u_range, v_range, colour):
        x1, x2 = int(u_range[0] * width), int(u_range[1] * width)
        y1, y2 = int(v_range[0] * height), int(v_range[1] * height)
        img[y1:y2, x1:x2] = colour

    full = (0.0, 1.0)
    road, pav = jitter((88, 88, 92)), jitter((170, 168, 160))
    fill(full, full, jitter((70, 120, 60)))  # verges
    fill(LEFT_PAV, full, pav)
    fill(RIGHT_PAV, full, pav)
    fill((INCOMING_LANE[0], OUTGOING_LANE[1]), full, road)
    fill(CYCLE_LANE, full, jitter((60, 130, 80)))
    fill((PARKING[0], PARKING[1]), (PARKING_TOP, 1.0), jitter((110, 110, 115)))
    for row in JUNCTION_PAV:
        fill(full, row, pav)
    fill(full, JUNCTION, road)
    fill(full, (0.0, HORIZON), jitter((150, 190, 230), 20))  # sky
    for _ in range(6):  # far buildings on the horizon
        x = rng.uniform(0, 1)
        fill((x, x + rng.uniform(0.05, 0.15)), (rng.uniform(0.02, 0.07), HORIZON),
             jitter((120, 110, 100), 40))
    white, yellow = (235, 235, 235), (230, 200, 40)

    def px(u, v):
        return int(u * width), int(v * height)

    cv2.line(img, px(INCOMING_LANE[1] - 0.004, HORIZON), px(INCOMING_LANE[1] - 0.004, 1), yellow, 1)
    cv2.line(img, px(INCOMING_LANE[1] + 0.004, HORIZON), px(INCOMING_LANE[1] + 0.004, 1), yellow, 1)
    for v in np.arange(HORIZON, 1.0, 0.06):
        if not inside(v, JUNCTION):
            cv2.line(img, px(EGO_LANE[1], v), px(EGO_LANE[1], v + 0.03), white, 1)
    for u in np.arange(0.0, 1.0, 0.05):
        v = (CROSS_ROW["from_left"] + CROSS_ROW["from_right"]) / 2
        cv2.line(img, px(u, v), px(u + 0.025, v), white, 1)
    cv2.line(img, px(EGO_LANE[0], STOP_LINE), px(OUTGOING_LANE[1], STOP_LINE), white, 2)
    for u in np.arange(INCOMING_LANE[0] + 0.01, CYCLE_LANE[1], 0.04):  # zebra stripes
        cv2.rectangle(img, px(u, ZEBRA[0]), px(u + 0.02, ZEBRA[1]), white, -1)
    for v in np.arange(PARKING_TOP, 1.0, 0.12):
        cv2.line(img, px(PARKING[0], v), px(PARKING[1], v), white, 1)
    cv2.rectangle(img, px(BUS_STOP[0][0] + 0.01, BUS_STOP[1][0]), px(BUS_STOP[0][0] + 0.04,
                  BUS_STOP[1][1]), jitter((60, 90, 160)), -1)  # bus shelter
    return img
