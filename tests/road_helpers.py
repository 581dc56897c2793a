"""Test helpers: tiny ROAD++ annotation dicts in the official schema and file writers (the
literal reference evaluator and its synthetic data are in ``tests/reference/road.py``)."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

from roadtrack.labels import roadpp

TYPES = ["agent", "action", "loc", "duplex", "triplet"]


def annotation(videos: dict[str, dict]) -> dict:
    """An official-schema annotation dict from a compact spec.

    ``videos[name] = {"numf": n, "split": "val", "unannotated": [frames],
    "objects": [{"uid": "a", "agent": "Car", "action": "MovAway", "loc": "VehLane",
    "boxes": {frame: [x1, y1, x2, y2] normalised}}]}``. ``all_*_labels`` hold the used names
    reversed plus one unused name, so ids need the name mapping.
    """
    space = roadpp()
    data = {"label_types": TYPES, "db": {}}
    for t in TYPES + ["av_action"]:
        used = list(space.names(t))
        data[f"{t}_labels"] = used
        data[f"all_{t}_labels"] = ["Unused" + t] + used[::-1]
    index = {t: {n: i for i, n in enumerate(data[f"all_{t}_labels"])} for t in TYPES}
    for name, spec in videos.items():
        numf = spec["numf"]
        skip = set(spec.get("unannotated", []))
        frames = {str(n): {"annotated": 0 if n in skip else 1, "width": 1920, "height": 1280,
                           "rgb_image_id": n, "input_image_id": n, "av_action_ids": [],
                           "annos": {}} for n in range(1, numf + 1)}
        tubes = {t: {} for t in TYPES}
        for obj in spec.get("objects", []):
            names = {"agent": obj["agent"], "action": obj["action"], "loc": obj["loc"],
                     "duplex": f"{obj['agent']}-{obj['action']}",
                     "triplet": f"{obj['agent']}-{obj['action']}-{obj['loc']}"}
            ids = {t: [index[t][names[t]]] if names[t] in index[t] else [] for t in TYPES}
            for n, box in obj["boxes"].items():
                key = f"{obj['uid']}_{n}"
                frames[str(n)]["annos"][key] = {"box": list(box), "tube_uid": obj["uid"],
                                                **{f"{t}_ids": ids[t] for t in TYPES}}
                for t in TYPES:
                    for label in ids[t]:
                        tube = tubes[t].setdefault(f"{obj['uid']}-{label}",
                                                   {"label_id": label, "annos": {}})
                        tube["annos"][str(n)] = key
        data["db"][name] = {"split_ids": [spec.get("split", "val")], "numf": numf,
                            "frames": frames, **{f"{t}_tubes": tubes[t] for t in TYPES},
                            "av_action_tubes": {}}
    return data


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def write_pickle(path: Path, data) -> Path:
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


def moving_object(uid: str, first: int, last: int, x: float = 0.1, y: float = 0.2,
                  size: float = 0.2, agent: str = "Car", action: str = "MovAway",
                  loc: str = "VehLane", skip=(), speed: float = 0.002) -> dict:
    """An object sliding right by ``speed`` per frame over ``first..last`` (minus ``skip``)."""
    boxes = {n: [x + speed * (n - first), y, x + speed * (n - first) + size, y + size]
             for n in range(first, last + 1) if n not in skip}
    return {"uid": uid, "agent": agent, "action": action, "loc": loc, "boxes": boxes}
