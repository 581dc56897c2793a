"""Drawing synthetic agents with OpenCV, and the boxes they cover.

Vehicles are seen from above and behind: rotated bodies with windscreen, brake lights, indicators
and sirens. People, bicycles, motorbikes and traffic lights stand upright, feet at the ground
point. Each draw function returns the agent's box (x1, y1, x2, y2) in pixels before clipping.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .layout import depth_scale
from .scenarios import Step

# (width across, length along the heading) in units of height / 300, at the bottom edge.
VEHICLE_SIZE = {"Car": (22, 40), "SmalVeh": (15, 24), "MedVeh": (26, 52), "LarVeh": (30, 86),
                "Bus": (31, 82), "EmVeh": (26, 52)}
# (width, height) of upright agents.
UPRIGHT_SIZE = {"Ped": (10, 28), "Cyc": (12, 32), "Mobike": (15, 32), "TL": (10, 30)}

PALETTES = {
    "Car": [(200, 40, 40), (40, 70, 190), (30, 30, 30), (150, 150, 160), (20, 120, 60),
            (120, 30, 120), (200, 120, 30)],
    "SmalVeh": [(240, 150, 20), (90, 200, 90)],
    "MedVeh": [(235, 235, 235), (200, 200, 190)],
    "LarVeh": [(40, 60, 150), (60, 60, 60)],
    "Bus": [(210, 30, 30), (240, 200, 30)],
    "EmVeh": [(245, 245, 245)],
    "Ped": [(30, 60, 160), (160, 40, 40), (40, 120, 40), (90, 90, 90), (200, 170, 40)],
    "Cyc": [(250, 120, 0), (0, 150, 200)],
    "Mobike": [(20, 20, 20)],
    "TL": [(25, 25, 25)],
}
AMBER, RED_ON, RED_OFF = (255, 170, 0), (255, 30, 30), (110, 20, 20)


def pick_colour(rng: np.random.Generator, kind: str) -> tuple[int, int, int]:
    palette = PALETTES[kind]
    base = palette[int(rng.integers(len(palette)))]
    return tuple(int(np.clip(c + rng.integers(-15, 16), 0, 255)) for c in base)


def _blink(frame: int) -> bool:
    return (frame // 3) % 2 == 0


def _rotated(cx, cy, heading, across, along, offset_along=0.0, offset_across=0.0):
    """Corners (4, 2) int32 of a rectangle rotated to ``heading``, centred at an offset."""
    fwd = np.array([math.sin(heading), -math.cos(heading)])
    side = np.array([math.cos(heading), math.sin(heading)])
    centre = np.array([cx, cy]) + fwd * offset_along + side * offset_across
    corners = [centre + fwd * a * along / 2 + side * s * across / 2
               for a, s in ((1, -1), (1, 1), (-1, 1), (-1, -1))]
    return np.round(np.array(corners)).astype(np.int32)


def draw_vehicle(img, kind, colour, step: Step, frame: int, unit: float):
    h, w = img.shape[:2]
    scale = unit * depth_scale(step.v)
    across, along = (s * scale for s in VEHICLE_SIZE[kind])
    cx, cy, hd = step.u * w, step.v * h, step.heading
    body = _rotated(cx, cy, hd, across, along)
    cv2.fillPoly(img, [body], colour, lineType=cv2.LINE_AA)
    if kind == "LarVeh":  # cab in another colour
        cab = _rotated(cx, cy, hd, across, along * 0.22, along * 0.39)
        cv2.fillPoly(img, [cab], (200, 200, 210))
    if kind == "Bus":  # a row of windows down each side
        for k in range(-3, 4):
            for side in (-0.36, 0.36):
                cv2.fillPoly(img, [_rotated(cx, cy, hd, across * 0.18, along * 0.09,
                                            along * k * 0.12, across * side)], (170, 210, 240))
    glass = _rotated(cx, cy, hd, across * 0.8, along * 0.16, along * 0.22)
    cv2.fillPoly(img, [glass], (50, 70, 90))
    lamp = max(1, int(round(scale * 2.5)))
    rear = np.array([math.sin(hd), -math.cos(hd)]) * (-along / 2)
    side = np.array([math.cos(hd), math.sin(hd)]) * (across / 2 - lamp)
    fwd_pt = np.array([math.sin(hd), -math.cos(hd)]) * (along / 2)
    brake = RED_ON if "brake" in step.lights else RED_OFF
    for sgn in (-1, 1):
        p = np.array([cx, cy]) + rear + sgn * side
        cv2.circle(img, (int(p[0]), int(p[1])), lamp, brake, -1)
    for name, sgn in (("left", -1), ("right", 1)):
        if name in step.lights and _blink(frame):
            for end in (rear, fwd_pt):
                p = np.array([cx, cy]) + end * 0.92 + sgn * side * 1.05
                cv2.circle(img, (int(p[0]), int(p[1])), lamp + 1, AMBER, -1)
    if kind == "EmVeh":
        cv2.fillPoly(img, [_rotated(cx, cy, hd, across * 0.9, along * 0.12, -along * 0.1)],
                     (220, 30, 30))
        if "siren" in step.lights:
            c = (40, 90, 255) if _blink(frame) else (255, 40, 40)
            cv2.circle(img, (int(cx), int(cy)), max(2, int(scale * 4)), c, -1)
    xs, ys = body[:, 0], body[:, 1]
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def draw_upright(img, kind, colour, step: Step, frame: int, unit: float, light: str = ""):
    h, w = img.shape[:2]
    scale = unit * depth_scale(step.v)
    bw, bh = (s * scale for s in UPRIGHT_SIZE[kind])
    fx, fy = step.u * w, step.v * h  # feet
    x1, y1, x2, y2 = fx - bw / 2, fy - bh, fx + bw / 2, fy
    if kind == "TL":
        _draw_traffic_light(img, x1, y1, x2, y2, light)
    elif kind == "Ped":
        _draw_person(img, fx, fy, bw, bh, colour, step, frame, step.action == "PushObj")
    else:
        _draw_rider(img, fx, fy, bw, bh, colour, kind)
    return x1, y1, x2, y2


def _draw_person(img, fx, fy, bw, bh, colour, step, frame, push):
    skin = (230, 190, 150)
    head_r = max(1, int(bw * 0.3))
    hip_y = fy - bh * 0.38
    cv2.circle(img, (int(fx), int(fy - bh + head_r)), head_r, skin, -1, cv2.LINE_AA)
    cv2.rectangle(img, (int(fx - bw * 0.4), int(fy - bh + 2 * head_r)), (int(fx + bw * 0.4),
                  int(hip_y)), colour, -1)
    swing = bw * 0.45 * math.sin(frame * 0.9) if step.moving else bw * 0.12
    for s in (-1, 1):
        cv2.line(img, (int(fx), int(hip_y)), (int(fx + s * swing), int(fy)), (40, 40, 50),
                 max(1, int(bw * 0.22)))
    if push:  # a pram or trolley pushed ahead (outside the person's box)
        cv2.rectangle(img, (int(fx + bw * 0.7), int(fy - bh * 0.45)), (int(fx + bw * 1.6), int(fy)),
                      (120, 80, 160), -1)


def _draw_rider(img, fx, fy, bw, bh, colour, kind):
    wheel = max(2, int(bw * 0.32))
    for wy in (fy - wheel, fy - bh * 0.62 + wheel):
        cv2.circle(img, (int(fx), int(wy)), wheel, (20, 20, 20), max(1, int(bw * 0.12)))
    frame_col = (60, 60, 60) if kind == "Mobike" else (200, 200, 200)
    cv2.line(img, (int(fx), int(fy - wheel)), (int(fx), int(fy - bh * 0.62 + wheel)), frame_col,
             max(1, int(bw * (0.45 if kind == "Mobike" else 0.15))))
    cv2.rectangle(img, (int(fx - bw * 0.35), int(fy - bh * 0.8)), (int(fx + bw * 0.35),
                  int(fy - bh * 0.45)), colour, -1)
    helmet = (230, 230, 230) if kind == "Mobike" else (230, 190, 150)
    cv2.circle(img, (int(fx), int(fy - bh * 0.88)), max(1, int(bw * 0.28)), helmet, -1)


def _draw_traffic_light(img, x1, y1, x2, y2, state):
    height = y2 - y1
    top, bottom = y1, y1 + height * 0.62
    cv2.line(img, (int((x1 + x2) / 2), int(bottom)), (int((x1 + x2) / 2), int(y2)), (90, 90, 90),
             max(1, int((x2 - x1) * 0.2)))
    cv2.rectangle(img, (int(x1), int(top)), (int(x2), int(bottom)), (25, 25, 25), -1)
    r = max(1, int((x2 - x1) * 0.32))
    lamps = (("Red", (255, 30, 30)), ("Amber", (255, 170, 0)), ("Green", (40, 230, 60)))
    for k, (name, on) in enumerate(lamps):
        cy = top + (bottom - top) * (k + 0.5) / 3
        colour = on if name == state else tuple(c // 5 for c in on)
        cv2.circle(img, (int((x1 + x2) / 2), int(cy)), r, colour, -1)
