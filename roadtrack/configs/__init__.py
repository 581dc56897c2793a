"""The configs shipped inside the package, read with ``importlib.resources``.

Run configs are ``<name>.yaml`` here (``synthetic_tiny``, ``roadpp_stmixer_slowfast_r50``);
tracker presets are ``tracker/<name>.yaml`` (``bytetrack``, ``deepsort``, ``sort``). Regular and
editable installs give real files (``pathlib.Path``); the readers take any Traversable.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

SUFFIX = ".yaml"
TRACKER = "tracker"


def _yaml_names(folder: Traversable) -> list[str]:
    return sorted(item.name[: -len(SUFFIX)] for item in folder.iterdir()
                  if item.name.endswith(SUFFIX) and item.is_file())


def _named(folder: Traversable, name: str) -> Traversable | None:
    """``folder/<name>.yaml`` when ``name`` is one of its configs, else None."""
    return folder.joinpath(name + SUFFIX) if name in _yaml_names(folder) else None


def run_config_names() -> list[str]:
    """The names of the packaged run configs."""
    return _yaml_names(resources.files(__name__))


def run_config(name: str) -> Traversable | None:
    """The packaged run config ``name`` (e.g. ``synthetic_tiny``), None when there is none."""
    return _named(resources.files(__name__), name)


def tracker_preset_names() -> list[str]:
    """The names of the packaged tracker presets."""
    return _yaml_names(resources.files(__name__).joinpath(TRACKER))


def tracker_preset(name: str) -> Traversable | None:
    """The packaged tracker preset ``name`` (e.g. ``sort``), None when there is none."""
    return _named(resources.files(__name__).joinpath(TRACKER), name)


def resolve_config_source(value: str | Path) -> Path | Traversable:
    """Where to read the run config ``value``: the file when one exists at that path, else the
    packaged run config of that name (``synthetic_tiny``), else the path (whose reader then says
    that it cannot read it)."""
    path = Path(value)
    if _is_file(path):
        return path
    packaged = run_config(str(value))
    return path if packaged is None else packaged


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for names the system refuses (too long, a NUL)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False
