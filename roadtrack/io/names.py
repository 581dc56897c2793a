"""Video names: of a file or frame folder, and lists of them given on the command line."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError


def read_video_list(value: str | Path) -> list[str]:
    """Names from a file (one per line) or a comma-separated list."""
    path = Path(value)
    if path.is_file():
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not names:
            raise UserError("video list is empty", path)
        return names
    names = [n.strip() for n in str(value).split(",") if n.strip()]
    if not names:
        raise UserError(f"no video names in {value!r}")
    return names


def video_name(path: str | Path) -> str:
    """The name of the video a file or frame folder holds: the file's stem or the folder's name,
    lower-cased (``Clip.MP4`` and ``clip/`` are both ``clip``)."""
    path = Path(path)
    return (path.name if path.is_dir() else path.stem).lower()
