"""MOTChallenge text files: ``frame, id, left, top, width, height, score, x, y, z`` per line.

Detections (``det.txt``) carry id -1; ground truth (``gt.txt``) carries class and visibility in
columns 8 and 9 from MOT16 on. Frames are 1-based.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import UserError
from .atomic import write_text_atomic


@dataclass
class MotTable:
    """Rows of a MOTChallenge file, sorted by frame (stable)."""

    frames: np.ndarray  # (N,) int64, 1-based
    ids: np.ndarray  # (N,) int64; -1 in detection files
    boxes_xywh: np.ndarray  # (N, 4) float64 left top width height
    scores: np.ndarray  # (N,) float64 (column 7; the 'consider' flag in MOT16+ gt files)
    extra: np.ndarray  # (N, K) float64: the columns after the score (class, visibility, ...)
    lines: np.ndarray  # (N,) int64 line of the file each row came from, 1-based

    def __len__(self) -> int:
        return len(self.frames)

    @cached_property
    def boxes_xyxy(self) -> np.ndarray:
        b = self.boxes_xywh
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)

    def select(self, mask: np.ndarray) -> MotTable:
        return MotTable(self.frames[mask], self.ids[mask], self.boxes_xywh[mask],
                        self.scores[mask], self.extra[mask], self.lines[mask])


CHUNK_BYTES = 1 << 23  # text parsed at a time: memory stays at the table's own size
MAX_FRAME = 2**31 - 1  # frames and ids beyond int32 / 2**53 are not numbers a tracker writes
MAX_ID = 2**53


def read_mot(path: str | Path, drop_invalid: bool = True, first_frame: int = 1,
             allow_empty: bool = False, frame_hint: str = "") -> MotTable:
    """Read a MOTChallenge file, checking every line.

    Every line has the column count of the first (at least 6; a 6-column file gets score 1),
    every field is a number, frames are whole numbers >= ``first_frame`` (returned 1-based:
    ``first_frame=0`` shifts them by one) and ids whole numbers; anything else raises UserError
    naming the file and the line (``frame_hint`` is added when a frame is too small). Blank
    lines are skipped. Rows with non-finite values or boxes without area are dropped with one
    warning giving their count (``drop_invalid``), or raise. An empty file raises unless
    ``allow_empty``.
    """
    path = Path(path)
    try:
        parsed = _parse(path)
    except OSError as err:
        raise UserError(f"cannot read MOT file: {err.strerror or err}", path) from None
    if parsed is None:
        if not allow_empty:
            raise UserError("MOT file is empty", path)
        parsed = np.zeros((0, 7)), np.zeros(0, dtype=np.int64)
    table, lines = parsed
    ncols = table.shape[1]
    valid = np.isfinite(table).all(axis=1) & (table[:, 4] > 0) & (table[:, 5] > 0)
    if not valid.all():
        first = int(lines[np.flatnonzero(~valid)[0]])
        if not drop_invalid:
            raise UserError(f"line {first}: non-finite value or box without area", path)
        warnings.warn(f"{path}: skipped {int((~valid).sum())} rows with non-finite values or "
                      f"boxes without area (first at line {first})", stacklevel=2)
        table, lines = table[valid], lines[valid]
    frames = _whole(table[:, 0], lines, "frame", first_frame, MAX_FRAME, path, frame_hint)
    ids = _whole(table[:, 1], lines, "id", -MAX_ID, MAX_ID, path)
    if (np.diff(frames) < 0).any():
        order = np.argsort(frames, kind="stable")
        table, lines, frames, ids = table[order], lines[order], frames[order], ids[order]
    if first_frame != 1:
        frames += 1 - first_frame
    scores = table[:, 6] if ncols > 6 else np.ones(len(table))
    return MotTable(frames=frames, ids=ids, boxes_xywh=table[:, 2:6], scores=scores,
                    extra=table[:, 7:], lines=lines)


def _whole(values: np.ndarray, lines: np.ndarray, name: str, low: int, high: int, path: Path,
           hint: str = "") -> np.ndarray:
    """(N,) float64 -> (N,) int64, or UserError at the first value that is not a whole number in
    [low, high]."""
    bad = (values != np.round(values)) | (values < low) | (values > high)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        v = values[k]
        what = f"{name} numbers must be integers >= {low}" if v <= high else \
            f"{name} numbers must be integers <= {high}"
        if name == "id":
            what = "ids must be integers (|id| <= 2**53)"
        raise UserError(f"line {int(lines[k])}: {what}, not {v:g}{hint if v < low else ''}",
                        path)
    return values.astype(np.int64)


def _parse(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """All data lines of the file as (N, C) float64 and their line numbers (N,), or None when
    it has none; UserError at the first line whose column count differs from the first data
    line's, or with a field that is not a number. The table is allocated once, for as many rows
    as the file has lines, and filled block by block."""
    table: np.ndarray | None = None
    numbers = np.zeros(0, dtype=np.int64)
    filled = 0
    sep: str | None = None
    ncols = first_line = 0  # 0 until the first data line
    line0 = 0  # lines before this block
    with open(path, "rb") as fh:
        for data in _blocks(fh, path):
            text = _decode(data, path, line0)
            if "\r" in text:  # \r\n and a lone \r end lines too (loadtxt would split there)
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            lines = text.split("\n")
            if lines[-1] == "":
                lines.pop()
            keep = [k for k, ln in enumerate(lines) if ln and not ln.isspace()]
            rows = lines if len(keep) == len(lines) else [lines[k] for k in keep]
            line_numbers = np.asarray(keep, dtype=np.int64) + (line0 + 1)
            line0 += len(lines)
            if not rows:
                continue
            if not ncols:  # the first data line sets the separator and the column count
                sep = "," if "," in rows[0] else None
                ncols, first_line = _count(rows[0], sep), int(line_numbers[0])
                if ncols < 6:
                    raise UserError(f"line {first_line}: fewer than 6 columns "
                                    "(frame,id,left,top,width,height)", path)
            block = _numbers(rows, sep, ncols, first_line, line_numbers, path)
            if len(block) != len(rows):  # a line break loadtxt saw and we did not
                raise UserError(f"lines {int(line_numbers[0])}-{int(line_numbers[-1])}: "
                                "unreadable line breaks", path)
            if block.shape[1] != ncols:  # loadtxt checked the lines of this block against its first
                raise UserError(f"line {int(line_numbers[0])}: {block.shape[1]} column(s) where "
                                f"line {first_line} has {ncols}", path)
            end = filled + len(block)
            if table is None or end > len(table):  # first block (or a file that grew meanwhile)
                size = max(end, _count_lines(path) - line0 + end)
                table = _grow(table, filled, (size, ncols), np.float64)
                numbers = _grow(numbers, filled, (size,), np.int64)
            table[filled:end] = block
            numbers[filled:end] = line_numbers
            filled = end
    if table is None:
        return None
    return table[:filled], numbers[:filled]


def _grow(array: np.ndarray | None, filled: int, shape: tuple, dtype) -> np.ndarray:
    out = np.empty(shape, dtype=dtype)
    if array is not None:
        out[:filled] = array[:filled]
    return out


def _count_lines(path: Path) -> int:
    """Lines in the file (a last line without a newline included): an upper bound on rows."""
    count, last = 0, b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK_BYTES):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _blocks(fh, path: Path):
    """Yield the file's bytes in blocks of whole lines (the last one may lack its newline)."""
    rest = b""
    while block := fh.read(CHUNK_BYTES):
        data = rest + block
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) > CHUNK_BYTES:
            raise UserError(f"a line longer than {CHUNK_BYTES >> 20} MiB: not a MOT file", path)
        if cut:
            yield data[:cut]
        rest = data[cut:]
    if rest:
        yield rest


def _count(line: str, sep: str | None) -> int:
    return line.count(",") + 1 if sep else len(line.split())


def _decode(data: bytes, path: Path, line0: int) -> str:
    """UTF-8 text (a byte-order mark at the start of the file is dropped)."""
    try:
        return data.decode("utf-8-sig" if line0 == 0 else "utf-8")
    except UnicodeDecodeError as err:
        line = line0 + data.count(b"\n", 0, err.start) + 1
        raise UserError(f"line {line}: not text (byte {data[err.start]:#04x})", path) from None


def _numbers(rows: list[str], sep: str | None, ncols: int, first_line: int,
             line_numbers: np.ndarray, path: Path) -> np.ndarray:
    """(N, C) float64 of the rows, or UserError naming the first line with another column count
    than ``ncols`` or a field that is not a number."""
    try:
        return np.loadtxt(rows, delimiter=sep, comments=None, ndmin=2, dtype=np.float64)
    except ValueError as err:
        # find the line (slow, errors only)
        for row, line in zip(rows, line_numbers.tolist(), strict=True):
            fields = row.split(sep)
            if len(fields) != ncols:
                raise UserError(f"line {line}: {len(fields)} column(s) where line {first_line} "
                                f"has {ncols}", path) from None
            for col, field in enumerate(fields, 1):
                if not _is_number(field):
                    raise UserError(f"line {line}, column {col}: not numeric "
                                    f"({field.strip()[:20]!r})", path) from None
        raise UserError(f"not numeric MOT data ({err})", path) from None


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return "_" not in field  # float() takes 1_000, loadtxt does not


def format_mot(frames: np.ndarray, ids: np.ndarray, boxes_xywh: np.ndarray,
               scores: np.ndarray | None = None) -> str:
    """MOTChallenge text for tracks: ``frame,id,left,top,width,height,score,-1,-1,-1``."""
    n = len(frames)
    scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64)
    rows = np.column_stack([frames, ids, np.asarray(boxes_xywh).reshape(-1, 4), scores])
    buf = io.StringIO()
    np.savetxt(buf, rows, fmt=["%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.4f"], delimiter=",")
    return "".join(line + ",-1,-1,-1\n" for line in buf.getvalue().splitlines())


def write_mot(path: str | Path, frames: np.ndarray, ids: np.ndarray, boxes_xywh: np.ndarray,
              scores: np.ndarray | None = None) -> None:
    """Write tracks atomically in MOTChallenge format."""
    write_text_atomic(path, format_mot(frames, ids, boxes_xywh, scores))
