"""Run folders: the two layouts roadtrack writes, their paths and their ``run.yaml`` records.

:class:`TrainingRun` (``roadtrack train``)::

    run.yaml             kind: training; config (resolved), labels, data, world_size, ...,
                         versions, command
    checkpoints/last.pt  checkpoints/best.pt
    metrics.csv          tensorboard/
    val/                 a pipeline-layout folder: the validation detections

:class:`PipelineRun` (``roadtrack detect`` / ``roadtrack run``)::

    run.yaml             kind: pipeline; config and labels of the detector; detect (weights,
                         videos, settings, versions); pipeline (videos, track, events,
                         event_head); failed (videos left out, see ``roadtrack.batch``)
    detections/<video>.npz  tracks/<video>.npz  events/<video>.json  mot/<video>.txt

Folders written before ``kind`` was recorded are told apart by their sections (a pipeline record
has ``detect``, ``pipeline`` or ``failed``). A pipeline folder needs no ``run.yaml``: ``track`` and
the evaluators read stage folders alone.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from ..errors import NotRecorded, UserError
from .atomic import write_text_atomic

RUN_FILE = "run.yaml"

DETECTIONS, TRACKS, EVENTS, MOT = "detections", "tracks", "events", "mot"
"""The stage folders of a pipeline run (``MOT``: the tracks as MOTChallenge text files)."""
STAGE_FOLDERS = {"detect": DETECTIONS, "track": TRACKS, "events": EVENTS}
"""The folder each stage writes its artifacts to."""
ARTIFACT_SUFFIXES = {DETECTIONS: ".npz", TRACKS: ".npz", EVENTS: ".json"}

TRAINING, PIPELINE = "training", "pipeline"
_PIPELINE_SECTIONS = ("detect", "pipeline", "failed")
_WHAT = {TRAINING: "a training run (made by train)",
         PIPELINE: "a detect/run output (a pipeline run)"}


def artifact_path(run: str | Path, folder: str, video: str) -> Path:
    """Where stage folder ``folder`` (DETECTIONS, TRACKS, EVENTS) keeps ``video``'s artifact."""
    return Path(run) / folder / f"{video}{ARTIFACT_SUFFIXES[folder]}"


def finished_videos(run: str | Path, folder: str) -> list[str]:
    """Videos whose artifact exists in stage folder ``folder`` (temporary files are ignored)."""
    path, suffix = Path(run) / folder, ARTIFACT_SUFFIXES[folder]
    if not path.is_dir():
        return []
    return sorted(p.name[: -len(suffix)] for p in path.glob(f"*{suffix}")
                  if not p.name.startswith("."))


def _read_record(path: Path) -> dict | None:
    """A ``run.yaml`` as a mapping; None when there is none."""
    if not path.is_file():
        return None
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"malformed run.yaml ({str(err).splitlines()[0]})", path) from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise UserError("run.yaml is not a mapping", path)
    return content


def record_kind(content: dict) -> str | None:
    """TRAINING or PIPELINE: what a ``run.yaml`` records (inferred for older folders)."""
    kind = content.get("kind")
    if kind in _WHAT:
        return kind
    if any(key in content for key in _PIPELINE_SECTIONS):
        return PIPELINE
    return TRAINING if "config" in content else None


def _refuse_other(content: dict, kind: str, folder: Path) -> None:
    found = record_kind(content)
    if found is not None and found != kind:
        raise UserError(f"run.yaml records {_WHAT[found]}, not {_WHAT[kind]}", folder)


class TrainingRun:
    """The folder ``roadtrack train`` writes (see the module docstring)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.record_path = self.folder / RUN_FILE
        self.checkpoints = self.folder / "checkpoints"
        self.last = self.checkpoints / "last.pt"
        self.best = self.checkpoints / "best.pt"
        self.metrics = self.folder / "metrics.csv"
        self.tensorboard = self.folder / "tensorboard"
        self.val = self.folder / "val"

    def checkpoint(self, which: str) -> Path:
        """``checkpoints/<which>.pt``; ``best`` falls back to last.pt when there is no best.pt."""
        path = self.checkpoints / f"{which}.pt"
        return self.last if which == "best" and not path.exists() else path

    def read(self) -> dict:
        """The run's record, which holds at least ``config``; anything else raises UserError."""
        content = _read_record(self.record_path)
        if content is None:
            raise UserError("no run.yaml: not a training run folder", self.folder)
        _refuse_other(content, TRAINING, self.folder)
        if "config" not in content:
            raise UserError("run.yaml lacks the 'config' section", self.record_path)
        return content

    def write(self, content: dict, versions: dict) -> None:
        """Write the record (``content`` plus ``versions`` and the command line)."""
        content = {"kind": TRAINING, **content, "versions": versions,
                   "command": " ".join(sys.argv)}
        write_text_atomic(self.record_path, yaml.safe_dump(content, sort_keys=False))


class PipelineRun:
    """The folder ``roadtrack detect`` and ``roadtrack run`` write (see the module docstring)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.record_path = self.folder / RUN_FILE
        self.mot = self.folder / MOT

    def stage_dir(self, stage: str) -> Path:
        """The artifact folder of ``stage`` (detect, track or events)."""
        return self.folder / STAGE_FOLDERS[stage]

    def artifact(self, stage: str, video: str) -> Path:
        """``stage``'s (detect, track or events) artifact of ``video``."""
        return artifact_path(self.folder, STAGE_FOLDERS[stage], video)

    def has_record(self) -> bool:
        return self.record_path.is_file()

    def read(self) -> dict:
        """The run's record; empty when the folder has no ``run.yaml`` (yet)."""
        content = _read_record(self.record_path)
        if content is None:
            return {}
        _refuse_other(content, PIPELINE, self.folder)
        return content

    def update(self, **sections) -> None:
        """Set top-level sections of the record (None removes one), keeping the others."""
        content = self.read()
        content.update(sections)
        content = {k: v for k, v in content.items() if k not in sections or v is not None}
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.record_path, yaml.safe_dump({"kind": PIPELINE, **content},
                                                           sort_keys=False))

    def videos_dir(self) -> Path:
        """The videos folder the run was made from."""
        content = self.read()
        for section in ("pipeline", "detect"):
            videos = (content.get(section) or {}).get("videos")
            if videos:
                return Path(videos)
        raise NotRecorded("run.yaml does not say where the videos are", self.folder)

    def record_failures(self, failures: list[dict], videos) -> None:
        """Bring ``failed:`` up to date after a batch over ``videos``: their old entries give way
        to ``failures``, other videos' entries stay."""
        batch = set(videos)
        old = self.read().get("failed")
        kept = [f for f in old if isinstance(f, dict) and f.get("video") not in batch] \
            if isinstance(old, list) else []
        self.update(failed=(kept + list(failures)) or None)


def recorded_videos_dir(run: str | Path) -> Path:
    """The videos folder a pipeline run was made from (its ``run.yaml``)."""
    return PipelineRun(run).videos_dir()
