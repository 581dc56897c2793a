"""The one exception type for user errors: bad files, bad options, bad data.

The CLI turns a :class:`UserError` into one line on stderr and a non-zero exit; anything else is
a bug and keeps its traceback.
"""
from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem the user can fix. ``str(err)`` is the whole message, naming the file when any."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class OutputInUse(UserError):
    """The output folder already holds other results (another training run, detections of
    another detector); the CLI adds how to go on."""


class NotRecorded(UserError):
    """A run folder does not record something the caller must then supply."""


class InputWarning(UserWarning):
    """Something odd in a file from someone else that roadtrack reads around. The message names
    the file; the CLI prints each as one ``roadtrack: warning:`` line."""
