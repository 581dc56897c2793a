"""The ``events`` section of a YAML config file."""
from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import UserError
from .train import EventsConfig


def events_config(path: str | Path) -> EventsConfig:
    """Read ``events:`` from a config file (other sections belong to other stages)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise UserError("no such config file", path) from None
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"cannot read config ({type(err).__name__})", path) from None
    if not isinstance(data, dict):
        raise UserError("config is not a mapping", path)
    try:
        return EventsConfig.from_dict(data.get("events"))
    except UserError as err:
        raise UserError(str(err), path) from None
