"""What each synthetic agent does: scripted paths whose motion shows the action label.

A :class:`Script` is built segment by segment (drive, brake, wait, turn) and unrolls into one
:class:`Step` per frame. Speeds shrink with distance (``depth_scale``) as they would on camera.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import layout as L

VEHICLES = ("Car", "SmalVeh", "MedVeh", "LarVeh", "Bus", "EmVeh")


@dataclass(frozen=True)
class Step:
    """One frame of one agent: ground point, direction of travel and what it is doing."""

    u: float
    v: float
    heading: float  # radians, 0 = up the image (away), pi/2 = right, pi = down, -pi/2 = left
    action: str
    moving: bool
    lights: frozenset = frozenset()  # subset of {"brake", "left", "right", "siren"}


@dataclass
class Script:
    """A path under construction: segments append steps from the current position."""

    u: float
    v: float
    heading: float
    steps: list[Step] = field(default_factory=list)

    def _emit(self, action: str, moving: bool, lights=()):
        self.steps.append(Step(self.u, self.v, self.heading, action, moving, frozenset(lights)))

    def drive(self, u: float, v: float, speed: float, action: str, lights=(), ease_in=0):
        """Move in a straight line to (u, v) at ``speed`` per frame (scaled with depth)."""
        du, dv = u - self.u, v - self.v
        dist = math.hypot(du, dv)
        if dist < 1e-9:
            return self
        self.heading = math.atan2(du, -dv)
        travelled, frame = 0.0, 0
        while travelled < dist:
            frame += 1
            ramp = min(1.0, frame / ease_in) if ease_in else 1.0
            travelled = min(dist, travelled + speed * ramp * L.depth_scale(self.v))
            t = travelled / dist
            self.u, self.v = u - du * (1 - t), v - dv * (1 - t)
            self._emit(action, True, lights)
        return self

    def brake(self, u: float, v: float, speed: float, action: str = "Brake", lights=("brake",)):
        """Slow from ``speed`` to a stop exactly at (u, v)."""
        du, dv = u - self.u, v - self.v
        dist = math.hypot(du, dv)
        if dist < 1e-9:
            return self
        self.heading = math.atan2(du, -dv)
        frames = max(2, int(round(2 * dist / (speed * L.depth_scale(self.v)))))
        u0, v0 = self.u, self.v
        for k in range(1, frames + 1):
            t = 1 - (1 - k / frames) ** 2
            self.u, self.v = u0 + du * t, v0 + dv * t
            self._emit(action, k < frames, lights)
        return self

    def wait(self, frames: int, action: str, lights=()):
        for _ in range(max(0, frames)):
            self._emit(action, False, lights)
        return self

    def turn(self, direction: str, radius: float, speed: float, action: str):
        """A quarter circle to the left or right, keeping ``speed``."""
        sign = -1.0 if direction == "left" else 1.0
        # centre of the arc lies perpendicular to the heading, on the side we turn to
        cu = self.u + sign * radius * math.cos(self.heading)
        cv = self.v + sign * radius * math.sin(self.heading)
        start = math.atan2(self.v - cv, self.u - cu)
        frames = max(3, int(round((math.pi / 2) * radius / (speed * L.depth_scale(self.v)))))
        for k in range(1, frames + 1):
            angle = start + sign * (math.pi / 2) * k / frames
            self.u, self.v = cu + radius * math.cos(angle), cv + radius * math.sin(angle)
            self.heading += sign * (math.pi / 2) / frames
            self._emit(action, True)
        return self


def _lane_u(rng: np.random.Generator, lane: str, spread: float = 0.012) -> float:
    return L.LANE_CENTRE[lane] + float(rng.uniform(-spread, spread))


def _vehicle_speed(rng, kind: str) -> float:
    base = {"Bus": 0.008, "LarVeh": 0.008, "MedVeh": 0.010}.get(kind, 0.012)
    return base * float(rng.uniform(0.8, 1.25))


def _away_lane(rng, kind) -> str:
    """Buses keep to the outgoing lane, lorries to the ego lane, others to either."""
    if kind in ("Bus", "LarVeh"):
        return "OutgoLane" if kind == "Bus" else "VehLane"
    return str(rng.choice(["VehLane", "OutgoLane"]))


def drive_away(rng, kind):
    lane = _away_lane(rng, kind)
    return Script(_lane_u(rng, lane), 1.12, 0.0).drive(
        _lane_u(rng, lane, 0.0), L.HORIZON - 0.02, _vehicle_speed(rng, kind), "MovAway")


def drive_towards(rng, kind):
    u = _lane_u(rng, "IncomLane")
    return Script(u, L.HORIZON - 0.02, math.pi).drive(u, 1.15, _vehicle_speed(rng, kind), "MovTow")


def stop_at_line(rng, kind):
    """Drive away, brake for the stop line (brake lights on), wait, move off again."""
    lane = _away_lane(rng, kind)
    u, speed = _lane_u(rng, lane), _vehicle_speed(rng, kind)
    s = Script(u, float(rng.uniform(0.95, 1.12)), 0.0)
    s.drive(u, L.STOP_LINE + 0.22, speed, "MovAway")
    s.brake(u, L.STOP_LINE + 0.02, speed,
            "Brake" if kind in ("Car", "MedVeh", "Bus") else "MovAway")
    s.wait(int(rng.integers(12, 35)), "Stop", ("brake",))
    return s.drive(u, L.HORIZON - 0.02, speed, "MovAway", ease_in=8)


def oncoming_stop(rng, kind):
    """Come towards, stop in the incoming lane (hazard lights or an indicator on), drive on."""
    u, speed = _lane_u(rng, "IncomLane"), _vehicle_speed(rng, kind)
    s = Script(u, L.HORIZON - 0.02, math.pi)
    stop_v = float(rng.uniform(0.55, 0.8))
    s.drive(u, stop_v - 0.12, speed, "MovTow")
    s.brake(u, stop_v, speed, action="Stop")
    signal = str(rng.choice(["Stop", "HazLit", "IncatLft", "IncatRht"])) \
        if kind in ("Car", "MedVeh") else "Stop"
    lights = {"Stop": ("brake",), "HazLit": ("left", "right"), "IncatLft": ("left",),
              "IncatRht": ("right",)}[signal]
    s.wait(int(rng.integers(15, 40)), signal, lights)
    return s.drive(u, 1.15, speed, "MovTow", ease_in=8)


def hazard_stop(rng, kind):
    """Stand in the outgoing lane with hazard lights on, then drive away."""
    u, v = _lane_u(rng, "OutgoLane"), float(rng.uniform(0.55, 0.95))
    s = Script(u, v, 0.0).wait(int(rng.integers(20, 60)), "HazLit", ("left", "right"))
    return s.drive(u, L.HORIZON - 0.02, _vehicle_speed(rng, kind), "MovAway", ease_in=8)


def cross_junction(rng, kind):
    """Cross the junction on the crossing road, from the left or from the right."""
    speed = _vehicle_speed(rng, kind) * 1.3
    if rng.random() < 0.5:
        v = L.CROSS_ROW["from_left"]
        return Script(-0.12, v, math.pi / 2).drive(1.12, v, speed, "XingFmLft")
    v = L.CROSS_ROW["from_right"]
    return Script(1.12, v, -math.pi / 2).drive(-0.12, v, speed, "XingFmRht")


def turn_at_junction(rng, kind):
    """Drive away in the ego lane, indicate, turn left or right into the crossing road."""
    u, speed = _lane_u(rng, "VehLane", 0.006), _vehicle_speed(rng, kind)
    left = rng.random() < 0.5
    s = Script(u, float(rng.uniform(0.95, 1.12)), 0.0)
    signal, lights = ("IncatLft", ("left",)) if left else ("IncatRht", ("right",))
    s.drive(u, 0.62, speed, "MovAway")
    s.drive(u, L.JUNCTION[1] - 0.005, speed * 0.8, signal, lights)  # into the junction
    if left:  # left turners wait for a gap in the oncoming traffic
        s.wait(int(rng.integers(0, 25)), "Stop", ("left", "brake"))
        s.turn("left", abs(s.v - L.CROSS_ROW["from_right"]), speed, "TurLft")
        return s.drive(-0.12, s.v, speed, "XingFmRht")
    s.turn("right", abs(s.v - L.CROSS_ROW["from_left"]), speed, "TurRht")
    return s.drive(1.12, s.v, speed, "XingFmLft")


def change_lane(rng, kind):
    """Drive away, indicate, move one lane left or right, drive on."""
    left = rng.random() < 0.5
    start, end = ("OutgoLane", "VehLane") if left else ("VehLane", "OutgoLane")
    speed = _vehicle_speed(rng, kind)
    s = Script(_lane_u(rng, start, 0.004), float(rng.uniform(1.0, 1.12)), 0.0)
    side = "left" if left else "right"
    s.drive(s.u, 0.88, speed, "MovAway")
    s.drive(s.u, 0.74, speed, "IncatLft" if left else "IncatRht", (side,))
    s.drive(L.LANE_CENTRE[end], 0.58, speed, "MovLft" if left else "MovRht", (side,))
    return s.drive(s.u, L.HORIZON - 0.02, speed, "MovAway")


PARKING_SPOTS = (0.58, 0.70, 0.82, 0.94)


def parked(rng, kind, v: float):
    return Script(_lane_u(rng, "parking", 0.005), v, 0.0).wait(10_000, "Stop")


def emergency_stop(rng, kind):
    u = _lane_u(rng, str(rng.choice(["IncomLane", "OutgoLane"])))
    return Script(u, float(rng.uniform(0.5, 0.9)), 0.0).wait(10_000, "Stop", ("siren",))


def walk_pavement(rng, kind):
    side = str(rng.choice(["LftPav", "RhtPav"]))
    u, speed = _lane_u(rng, side, 0.03), 0.004 * float(rng.uniform(0.8, 1.2))
    push = rng.random() < 0.2
    if rng.random() < 0.5:
        action = "PushObj" if push else "MovAway"
        return Script(u, 1.08, 0.0).drive(u, L.HORIZON - 0.02, speed, action)
    action = "PushObj" if push else "MovTow"
    return Script(u, L.HORIZON - 0.02, math.pi).drive(u, 1.08, speed, action)


def cross_zebra(rng, kind):
    """Wait at the kerb, cross the zebra, walk on along the far pavement."""
    v = float(rng.uniform(*L.ZEBRA))
    speed = 0.005 * float(rng.uniform(0.8, 1.2))
    from_right = rng.random() < 0.6
    near, far = ("RhtPav", "LftPav") if from_right else ("LftPav", "RhtPav")
    s = Script(_lane_u(rng, near, 0.02), float(rng.uniform(0.9, 1.08)), 0.0)
    s.drive(s.u, v, speed * 0.8, "MovAway")
    s.wait(int(rng.integers(8, 25)), "Wait2X")
    s.drive(_lane_u(rng, far, 0.02), v, speed, "XingFmRht" if from_right else "XingFmLft")
    return s.drive(s.u, L.HORIZON - 0.02, speed * 0.8, "MovAway")


def stand(rng, kind):
    """Stand at the bus stop, on a pavement, at the corner or beside a car, then walk off."""
    spot = int(rng.integers(4))
    if spot == 0:  # the bus stop
        s = Script(float(rng.uniform(0.19, 0.28)), float(rng.uniform(0.53, 0.59)), 0.0)
    elif spot == 1:
        s = Script(_lane_u(rng, str(rng.choice(["LftPav", "RhtPav"])), 0.03),
                   float(rng.uniform(0.65, 0.95)), 0.0)
    elif spot == 2:  # the pavement along the crossing road
        s = Script(float(rng.choice([rng.uniform(0.02, 0.14), rng.uniform(0.86, 0.98)])),
                   float(rng.uniform(*L.JUNCTION_PAV[1])), 0.0)
    else:  # in the outgoing lane, beside a stopped car
        s = Script(_lane_u(rng, "OutgoLane", 0.01), float(rng.uniform(0.6, 0.9)), 0.0)
    s.wait(int(rng.integers(30, 90)), "Stop")
    return s.drive(s.u, 1.08, 0.004, "MovTow")


def walk_across(rng, kind):
    """Walk sideways along the pavement of the crossing road, over the main road."""
    v = float(rng.uniform(*L.JUNCTION_PAV[1]))
    speed = 0.004 * float(rng.uniform(0.8, 1.2))
    if rng.random() < 0.5:
        return Script(-0.03, v, math.pi / 2).drive(1.03, v, speed, "Mov")
    return Script(1.03, v, -math.pi / 2).drive(-0.03, v, speed, "Mov")


def cross_at_junction(rng, kind):
    """Cross the main road inside the junction, or wait at its edge and cross the side road."""
    speed = 0.005 * float(rng.uniform(0.8, 1.2))
    if rng.random() < 0.5:
        v = float(rng.uniform(L.JUNCTION[1] - 0.03, L.JUNCTION[1] - 0.005))
        if rng.random() < 0.5:
            return Script(L.LANE_CENTRE["LftPav"], v, math.pi / 2).drive(
                L.LANE_CENTRE["RhtPav"], v, speed, "XingFmLft")
        return Script(L.LANE_CENTRE["RhtPav"], v, -math.pi / 2).drive(
            L.LANE_CENTRE["LftPav"], v, speed, "XingFmRht")
    u = _lane_u(rng, str(rng.choice(["LftPav", "RhtPav"])), 0.02)
    s = Script(u, float(rng.uniform(0.85, 1.05)), 0.0)
    s.drive(u, L.JUNCTION[1] - 0.005, speed * 0.8, "MovAway")
    s.wait(int(rng.integers(8, 25)), "Wait2X")
    s.drive(u, L.JUNCTION[0], speed, "Xing")
    return s.drive(u, L.HORIZON - 0.02, speed * 0.8, "MovAway")


def ride(rng, kind):
    speed = 0.007 * float(rng.uniform(0.85, 1.2))
    choice = rng.random()
    if choice < 0.5:
        u = _lane_u(rng, "OutgoCycLane", 0.004)
        return Script(u, 1.08, 0.0).drive(u, L.HORIZON - 0.02, speed, "MovAway")
    u = _lane_u(rng, "RhtPav" if choice < 0.8 else "IncomLane", 0.02)
    return Script(u, L.HORIZON - 0.02, math.pi).drive(u, 1.08, speed, "MovTow")


def motorbike_parked(rng, kind):
    return Script(float(rng.uniform(0.74, 0.82)), float(rng.uniform(0.55, 0.95)), 0.0).wait(
        10_000, "Stop")


SCENARIOS = {
    "Car": [(drive_away, 3), (drive_towards, 3), (stop_at_line, 2), (oncoming_stop, 1),
            (cross_junction, 2), (turn_at_junction, 2), (change_lane, 2)],
    "SmalVeh": [(drive_away, 1), (drive_towards, 1)],
    "MedVeh": [(drive_away, 2), (drive_towards, 2), (stop_at_line, 1), (cross_junction, 1),
               (oncoming_stop, 1), (turn_at_junction, 1)],
    "LarVeh": [(drive_away, 1), (drive_towards, 1), (stop_at_line, 1)],
    "Bus": [(drive_away, 1), (drive_towards, 1), (stop_at_line, 1), (oncoming_stop, 1),
            (hazard_stop, 1)],
    "EmVeh": [(emergency_stop, 1)],
    "Ped": [(walk_pavement, 3), (cross_zebra, 2), (stand, 2), (walk_across, 1),
            (cross_at_junction, 2)],
    "Cyc": [(ride, 1)],
    "Mobike": [(motorbike_parked, 1)],
}
STATIC = {"parked": parked}

AGENT_WEIGHTS = {"Car": 0.34, "Ped": 0.26, "Cyc": 0.08, "MedVeh": 0.08, "Bus": 0.06,
                 "LarVeh": 0.06, "SmalVeh": 0.04, "EmVeh": 0.04, "Mobike": 0.04}


def random_script(rng: np.random.Generator, kind: str) -> Script:
    options = SCENARIOS[kind]
    weights = np.array([w for _, w in options], dtype=float)
    make = options[int(rng.choice(len(options), p=weights / weights.sum()))][0]
    return make(rng, kind)


def traffic_light_states(rng: np.random.Generator, num_frames: int) -> list[str]:
    """Red, Green, Amber, Red... with a random phase: the action of a TL at each frame."""
    cycle = ["Red"] * int(rng.integers(25, 40)) + ["Green"] * int(rng.integers(25, 40)) \
        + ["Amber"] * int(rng.integers(6, 10))
    offset = int(rng.integers(len(cycle)))
    return [cycle[(offset + n) % len(cycle)] for n in range(num_frames)]
