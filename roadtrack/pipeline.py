"""The staged pipeline over a folder of videos: detect, track, events (see ``roadtrack run``)."""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import UserError

RUN_FILE = "run.yaml"


def recorded_videos_dir(run: str | Path) -> Path:
    """The videos folder a run folder was made from (its ``run.yaml``)."""
    path = Path(run) / RUN_FILE
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return Path(data["inputs"]["videos"])
    except FileNotFoundError:
        raise UserError("run folder has no run.yaml; give --videos", run) from None
    except (KeyError, TypeError, yaml.YAMLError):
        raise UserError("run.yaml does not say where the videos are; give --videos", path) \
            from None
