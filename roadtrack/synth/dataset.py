"""``roadtrack synth``: a synthetic ROAD++ dataset in the official layout.

    DIR/road_waymo_trainval_v1.0.json   annotations in the exact ROAD++ schema
    DIR/videos/<video>.mp4              the videos (10 fps)
    DIR/rgb-images/<video>/00001.jpg    their frames, 1-based

Everything is written into a hidden sibling folder that is renamed to DIR at the end, so an
interrupted run leaves nothing half-written. The same seed gives the same bytes.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import OutputInUse, UserError
from ..io.annotations import ANNOTATION_NAMES
from ..labels import ALL_TYPES, LABEL_TYPES, LabelSpace, roadpp
from .ego import ego_motion
from .layout import draw_background
from .simulate import BoxRecord, render_frame, simulate_video

CAMERAS = ("static", "moving")
ANNOTATION_NAME = ANNOTATION_NAMES[0]  # written in the ROAD++ schema, under its name
FPS = 10
JPEG_QUALITY = 92
EXTRA_CLASSES = {
    "agent": ["OthTL", "Animal"],
    "action": ["Pass", "Park"],
    "loc": ["BusLane", "OthLoc"],
    "duplex": [],
    "triplet": [],
    "av_action": ["AV-Ovtak"],
}
"""Annotated classes outside the used lists, so readers must map ids by name."""


def write_dataset(out_dir: str | Path, num_videos: int = 24, num_frames: int = 100,
                  width: int = 420, height: int = 300, seed: int = 0, val_fraction: float = 0.3,
                  write_frames: bool = True, progress: bool = False,
                  camera: str = "static") -> str:
    """Write the dataset and return a one-line summary.

    ``camera``: ``static`` (the ego car stands: AV-Stop throughout) or ``moving`` (it drives,
    stops, turns and changes lanes, ``roadtrack.synth.ego``; the agents are the same as with a
    static camera of the same seed)."""
    if camera not in CAMERAS:
        raise ValueError(f"camera must be one of {', '.join(CAMERAS)}, got {camera!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise OutputInUse("exists and is not an empty folder", out_dir)
    started = time.perf_counter()
    tmp = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "videos").mkdir(parents=True)
    try:
        names = [f"train_{i:05d}" for i in range(num_videos)]
        val = _val_videos(names, val_fraction, np.random.default_rng([seed, 1 << 20]))
        videos = {}
        bar = tqdm(names, desc="synth", unit="video", disable=not progress)
        for i, name in enumerate(bar):
            rng = np.random.default_rng([seed, i])
            frames_dir = tmp / "rgb-images" / name if write_frames else None
            av_actions, cameras = ["AV-Stop"] * num_frames, None  # the camera stands still
            if camera == "moving":  # its own stream: the scene stays that of the static camera
                av_actions, cameras = ego_motion(np.random.default_rng([seed, i, 2]), num_frames,
                                                 width, height)
            records = _write_video(rng, tmp / "videos" / f"{name}.mp4", frames_dir,
                                   num_frames, width, height, cameras)
            videos[name] = ("val" if name in val else "train", records, av_actions)
        annotation = build_annotation(videos, roadpp(), width, height,
                                      np.random.default_rng([seed, 1 << 21]))
        with open(tmp / ANNOTATION_NAME, "w") as f:
            json.dump(annotation, f, separators=(",", ":"))
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    boxes = sum(len(r) for _, recs, _ in videos.values() for r in recs)
    agents = sum(len({b.uid for r in recs for b in r}) for _, recs, _ in videos.values())
    return (f"wrote {num_videos} videos ({num_videos - len(val)} train, {len(val)} val) of "
            f"{num_frames} frames at {width}x{height}: {boxes} boxes of {agents} agents to "
            f"{out_dir} in {time.perf_counter() - started:.1f} s")


def _val_videos(names: list[str], fraction: float, rng: np.random.Generator) -> set[str]:
    count = int(round(len(names) * fraction))
    if fraction > 0 and len(names) >= 2:
        count = min(max(count, 1), len(names) - 1)
    return {names[i] for i in rng.permutation(len(names))[:count]}


def _write_video(rng, video_path: Path, frames_dir: Path | None, num_frames: int, width: int,
                 height: int, cameras: np.ndarray | None = None) -> list[list[BoxRecord]]:
    background = draw_background(width, height, rng)
    agents = simulate_video(rng, num_frames)
    noise = [rng.integers(0, 7, size=(height, width, 3), dtype=np.uint8) for _ in range(4)]
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), FPS,
                             (width, height))
    if not writer.isOpened():
        raise UserError("OpenCV cannot write mp4 video here", video_path)
    if frames_dir is not None:
        frames_dir.mkdir(parents=True)
    records = []
    try:
        for index in range(num_frames):
            img, boxes = render_frame(background, agents, index, unit=height / 300,
                                      camera=None if cameras is None else cameras[index])
            img = cv2.subtract(cv2.add(img, noise[index % 4]), noise[(index + 2) % 4])
            bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
            writer.write(bgr)
            if frames_dir is not None:
                cv2.imwrite(str(frames_dir / f"{index + 1:05d}.jpg"), bgr,
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            records.append(boxes)
    finally:
        writer.release()
    return records


def build_annotation(videos: dict[str, tuple[str, list[list[BoxRecord]], list[str]]],
                     labels: LabelSpace, width: int, height: int, rng: np.random.Generator
                     ) -> dict:
    """The annotation dict in the ROAD++ schema for each video's split, per-frame box records
    and per-frame AV action."""
    seen = {t: set() for t in ALL_TYPES}
    for _, frames, _ in videos.values():
        for boxes in frames:
            for b in boxes:
                for t, name in _names(b, labels).items():
                    seen[t].add(name)
    all_names = {}
    for t in ALL_TYPES:
        names = sorted(set(labels.names(t)) | seen[t] | set(EXTRA_CLASSES[t]))
        all_names[t] = [names[i] for i in rng.permutation(len(names))]
    all_id = {t: {n: i for i, n in enumerate(all_names[t])} for t in ALL_TYPES}
    db = {}
    for name, (split, frames, av_actions) in videos.items():
        frames_json, tubes = {}, {f"{t}_tubes": {} for t in ALL_TYPES}
        for n, boxes in enumerate(frames, start=1):
            frame = {"annotated": 1, "rgb_image_id": n, "width": width, "height": height,
                     "av_action_ids": [all_id["av_action"][av_actions[n - 1]]],
                     "input_image_id": n}
            annos = {}
            for b in boxes:
                key = f"b{b.uid}{n:05d}"
                box = {"box": [round(b.box[0] / width, 6), round(b.box[1] / height, 6),
                               round(b.box[2] / width, 6), round(b.box[3] / height, 6)]}
                names = _names(b, labels)
                for t in LABEL_TYPES:
                    ids = [all_id[t][names[t]]] if t in names else []
                    box[f"{t}_ids"] = ids
                    for label_id in ids:
                        tube = tubes[f"{t}_tubes"].setdefault(
                            f"{b.uid}-{label_id}", {"label_id": label_id, "annos": {}})
                        tube["annos"][str(n)] = key
                box["tube_uid"] = b.uid
                annos[key] = box
            if annos:
                frame["annos"] = annos
            frames_json[str(n)] = frame
        db[name] = {"split_ids": [split], "numf": len(frames), "frames": frames_json, **tubes}

    out = {"label_types": list(LABEL_TYPES)}
    for t in ALL_TYPES:
        out[f"{t}_labels"] = list(labels.names(t))
        out[f"all_{t}_labels"] = all_names[t]
    out["duplex_childs"] = labels.duplex_children().tolist()
    out["triplet_childs"] = labels.triplet_children().tolist()
    out["all_input_labels"] = all_names["agent"] + all_names["action"] + all_names["loc"]
    out["db"] = db
    return out


def _names(b: BoxRecord, labels: LabelSpace) -> dict[str, str]:
    """Label names of a box; duplex and triplet only where the combination is a ROAD++ class."""
    names = {"agent": b.agent, "action": b.action}
    if labels.index("duplex", f"{b.agent}-{b.action}") >= 0:
        names["duplex"] = f"{b.agent}-{b.action}"
    if b.loc is not None:
        names["loc"] = b.loc
        if labels.index("triplet", f"{b.agent}-{b.action}-{b.loc}") >= 0:
            names["triplet"] = f"{b.agent}-{b.action}-{b.loc}"
    return names
