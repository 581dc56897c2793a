"""Atomic writes: all or nothing, with the mode the user's umask gives."""
from __future__ import annotations

import os
import stat

import pytest

from roadtrack.io.atomic import atomic_path, write_json_atomic, write_text_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_honour_the_umask(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "a.txt", "hello")
        write_json_atomic(tmp_path / "b.json", {"x": 1})
        with atomic_path(tmp_path / "c.npz", suffix=".npz") as tmp:
            tmp.write_bytes(b"data")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.json", "c.npz"):
        assert _mode(tmp_path / name) == expected, name


def test_a_failed_write_leaves_nothing(tmp_path):
    (tmp_path / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "keep.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert (tmp_path / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
