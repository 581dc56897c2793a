"""``roadtrack track``: find the detection inputs, track each sequence, write the outputs.

Inputs (``--dets PATH``):

- a MOTChallenge ``det.txt`` file -> one sequence named after ``<seq>/det/det.txt`` or the stem;
- a folder of sequences in MOT layout, ``<seq>/det/det.txt``;
- a run folder with ``detections/<video>.npz`` artifacts (``roadtrack.io.artifacts``); the
  per-class option uses the argmax of each row's ``agent`` probabilities.

Outputs: ``DIR/<seq>.txt`` in MOTChallenge format for every sequence, ``DIR/tracker.yaml`` (the
resolved settings; ``--config`` takes it back), and for a run folder ``<run>/tracks/<video>.npz``
(the kept detection rows plus ``track_ids`` and ``det_index``).
All inputs are read and checked before anything is written; every file is written atomically.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from ..boxes import xyxy_to_xywh
from ..errors import UserError
from ..io.artifacts import CAMERA_MOTION, artifact_path, finished_videos, load_stage, save_stage
from ..io.atomic import write_text_atomic
from ..io.mot import read_mot, write_mot
from ..io.runs import DETECTIONS, TRACKS
from ..report import table
from .cmc import IDENTITY, WORK_WIDTH, MotionEstimator
from .config import TrackerConfig
from .sequence import SequenceTracks, check_frames, track_sequence
from .tracker import input_score_range

CONFIG_NAME = "tracker.yaml"  # the resolved settings, written beside the MOT files


def save_config(path: Path, config: TrackerConfig) -> None:
    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


@dataclass
class Detections:
    """One sequence's detections as flat per-row arrays."""

    name: str
    source: Path
    frames: np.ndarray  # (N,) 1-based
    boxes: np.ndarray  # (N, 4) x1 y1 x2 y2
    scores: np.ndarray  # (N,)
    features: np.ndarray | None = None  # (N, D)
    classes: np.ndarray | None = None  # (N,) agent class index
    artifact: dict | None = None  # the whole detection artifact, for run folders
    run: Path | None = None

    @property
    def num_frames(self) -> int:
        return int(self.frames.max()) if len(self.frames) else 0


@dataclass
class TrackSummary:
    sequences: int
    frames: int
    tracks: int
    rows: int
    seconds: float  # time inside the tracker
    per_sequence: list = field(default_factory=list)  # [name, frames, detections, rows, tracks]

    def table(self) -> str:
        return table(self.per_sequence, ["sequence", "frames", "detections", "track rows",
                                         "tracks"])

    def line(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else float("inf")
        return (f"tracked {self.sequences} sequence(s): {self.frames} frames, "
                f"{self.tracks} tracks, {self.rows} rows; tracker {fps:,.0f} frames/s")


def find_detections(path: str | Path) -> list[Detections]:
    """Read every sequence under ``path`` (see the module docstring); UserError when none."""
    path = Path(path)
    if path.is_file():
        return [_read_mot_sequence(path)]
    if not path.is_dir():
        raise UserError("no such file or folder", path)
    if (path / DETECTIONS).is_dir():
        videos = finished_videos(path, DETECTIONS)
        if not videos:
            raise UserError("run folder has no detections/<video>.npz artifacts", path)
        return [read_detection_artifact(path, v) for v in videos]
    files = sorted(path.glob("*/det/det.txt"))
    if not files:
        raise UserError("found neither <seq>/det/det.txt files nor a detections/ folder", path)
    return [_read_mot_sequence(f) for f in files]


def _read_mot_sequence(path: Path) -> Detections:
    table = read_mot(path)
    check_frames(table.frames, str(path))
    name = path.parent.parent.name if path.parent.name == "det" and path.parent.parent.name \
        else path.stem
    return Detections(name, path, table.frames, table.boxes_xyxy, table.scores)


def read_detection_artifact(run: Path, video: str) -> Detections:
    data = load_stage(run, DETECTIONS, video)
    source = artifact_path(run, DETECTIONS, video)
    boxes = np.asarray(data["boxes"], dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise UserError(f"field 'boxes' must have shape (N, 4), not {boxes.shape}", source)
    check_frames(data["frames"], str(source))
    feats = np.asarray(data["embeddings"], dtype=np.float32)
    agent = np.asarray(data["agent"])
    classes = agent.argmax(axis=1) if agent.ndim == 2 and agent.shape[1] > 0 and len(agent) \
        else None
    return Detections(video, source, np.asarray(data["frames"]), boxes,
                      np.asarray(data["scores"], dtype=np.float64),
                      feats if feats.ndim == 2 and feats.shape[1] > 0 else None,
                      classes, artifact=data, run=run)


def track_detections(det: Detections, config: TrackerConfig,
                     progress: Callable[[int], None] | None = None,
                     camera_motion: np.ndarray | None = None,
                     score_range: tuple[float, float] | None = None) -> SequenceTracks:
    """Track one sequence; ``score_range`` defaults to its own (see track_sequence)."""
    return track_sequence(det.frames, det.boxes, det.scores, det.features,
                          det.classes if config.per_class else None, config, str(det.source),
                          progress, camera_motion, score_range)


def camera_motion(source, det: Detections, method: str, num_frames: int | None = None
                  ) -> np.ndarray:
    """(F, 2, 3) camera motion per frame 1..F from ``source`` (a
    ``roadtrack.io.video.VideoSource``), the boxes of ``det`` masked out; row n-1 maps frame
    n-1's pixels to frame n's. F is ``num_frames``, else the detections' last frame. The frames
    are decoded shrunk (one cheap pass)."""
    from ..io.video import grey_frames  # lazy: OpenCV only when frames are given

    info, last = source.info, max(num_frames or 0, det.num_frames)
    if info.num_frames < last:
        raise UserError(f"has frames up to {info.num_frames}, but the detections "
                        f"({det.source.name}) run to frame {last}", info.path)
    reduce = max([r for r in (1, 2, 4, 8) if info.width / r >= WORK_WIDTH] or [1])
    estimator = MotionEstimator(method, full_size=(info.width, info.height))
    order = np.argsort(det.frames, kind="stable")
    bounds = np.searchsorted(det.frames[order], np.arange(1, last + 2))
    motion = np.tile(IDENTITY, (last, 1, 1))
    for n, grey in grey_frames(source, reduce, last):
        motion[n - 1] = estimator(grey, det.boxes[order[bounds[n - 1]:bounds[n]]])
    return motion


def frame_sources(frames: str | Path, sequences: list[Detections]) -> list:
    """The frame folder of each sequence: ``frames`` itself when it holds images (one sequence
    only), else ``frames/<seq>/img1`` (MOTChallenge) or ``frames/<seq>``."""
    from ..io.video import FrameFolder, VideoReadError  # lazy: OpenCV only with frames

    frames = Path(frames)
    if not frames.is_dir():
        raise UserError("frame folder not found", frames)
    try:
        return [FrameFolder(frames)] if len(sequences) == 1 and any(
            p.suffix.lower() in (".jpg", ".jpeg", ".png") for p in frames.iterdir()) else [
            FrameFolder(_sequence_folder(frames, det.name)) for det in sequences]
    except VideoReadError as err:
        raise UserError(err.reason, err.path) from None


def write_tracks(det: Detections, result: SequenceTracks, out_dir: Path,
                 camera_motion: np.ndarray | None = None) -> None:
    """``out_dir/<name>.txt`` (MOTChallenge) and, for artifacts, ``<run>/tracks/<name>.npz``
    (with the per-frame ``camera_motion`` (F, 2, 3) when known: the events stage reads the AV's
    own action from it)."""
    rows = result.det_index
    write_mot(out_dir / f"{det.name}.txt", result.frames, result.track_ids,
              xyxy_to_xywh(result.boxes), det.scores[rows])
    if det.artifact is not None and det.run is not None:
        fields = {k: (v[rows] if v.ndim >= 1 and k not in ("width", "height", "fps") else v)
                  for k, v in det.artifact.items()}
        if camera_motion is not None:
            fields[CAMERA_MOTION] = camera_motion
        save_stage(det.run, TRACKS, det.name, **fields,
                   track_ids=result.track_ids.astype(np.int32), det_index=rows.astype(np.int64))


def _sequence_folder(frames: Path, name: str) -> Path:
    for folder in (frames / name / "img1", frames / name):
        if folder.is_dir():
            return folder
    raise UserError(f"no frames for sequence {name} (expected {name}/img1/)", frames)


def track_path(dets: str | Path, out_dir: str | Path, config: TrackerConfig,
               progress: bool = True, images: str | Path | None = None) -> TrackSummary:
    """Track every sequence found at ``dets`` and write the results (the CLI's one call).

    ``images``: the sequences' frames (see :func:`frame_sources`), for camera-motion
    compensation (``config.cmc``)."""
    sequences = find_detections(dets)
    motions: list[np.ndarray | None] = [None] * len(sequences)
    if images is not None and config.cmc != "none":  # all frames read before anything is written
        motions = [camera_motion(source, det, config.cmc) for source, det
                   in zip(frame_sources(images, sequences), sequences, strict=True)]
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError("output path exists and is not a folder", out_dir)
    total_frames = sum(d.num_frames for d in sequences)
    bar = None
    if progress:
        bar = tqdm(total=total_frames, unit="frame", desc="track", leave=False,
                   dynamic_ncols=True)
    frames = tracks = rows = 0
    seconds = 0.0
    per_sequence: list[list] = []
    save_config(out_dir / CONFIG_NAME, config)
    # one score range for all sequences: the detector's, as all its detections show it
    score_range = input_score_range(np.concatenate([d.scores for d in sequences]))
    try:
        for det, motion in zip(sequences, motions, strict=True):
            result = track_detections(det, config, None if bar is None else bar.update, motion,
                                      score_range)
            write_tracks(det, result, out_dir, motion)
            frames += result.num_frames
            tracks += result.num_tracks
            rows += len(result.det_index)
            seconds += result.seconds
            per_sequence.append([det.name, result.num_frames, len(det.frames),
                                 len(result.det_index), result.num_tracks])
    finally:
        if bar is not None:
            bar.close()
    return TrackSummary(len(sequences), frames, tracks, rows, seconds, per_sequence)
