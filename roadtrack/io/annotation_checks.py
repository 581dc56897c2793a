"""Checks of an annotation file's content, apart from the JSON parsing.

Type checks raise :class:`~roadtrack.errors.UserError` naming the file, the place (video, frame,
box or tube) and the field. Data that can be read but looks wrong (flipped boxes, duplicates) is
counted per kind across the file and reported as one :class:`~roadtrack.errors.InputWarning`
line per kind, naming the first place. The checks see the parsed per-video structure (plain dicts
and lists) and the per-video arrays, whichever parser made them; many-box checks are vectorised.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from itertools import chain

import numpy as np

from ..errors import InputWarning, UserError

BOX_TOLERANCE = 1.01
"""Normalised coordinates up to this value occur in the real files; they are clipped to 1."""

NUMBER = (int, float)

KINDS = {
    "video_twice": ("videos given twice under 'db'", "the last one is read, as json.load does"),
    "key_twice": ("keys given twice in one JSON object",
                  "the last value is read, as json.load does"),
    "flipped": ("boxes with x1 > x2 or y1 > y2",
                "kept as given, as the official evaluation reads them"),
    "uid_twice": ("boxes in a frame that already has a box of their tube_uid", "all are kept"),
    "tube_twice": ("tube boxes that another tube of the same class also holds",
                   "both tubes are kept"),
}
"""What each warning counts, and what the reader does with it."""


def describe(value) -> str:
    """A parsed JSON value for a message: ``-1``, ``the string 'val'``, ``a list``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {len(format(value, 'x'))} hex digits"  # str() refuses huge ints
    if isinstance(value, NUMBER):
        return repr(value)
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    return "a list" if isinstance(value, list) else "an object"


def show(key: str) -> str:
    """A name from the file (video, frame, box, tube key) for a one-line message: as it is when
    short and printable, else quoted and cut."""
    if len(key) <= 60 and key.isprintable() and key.strip() == key and key:
        return key
    return repr(key[:60]) + ("..." if len(key) > 60 else "")


def bad(where: str, field: str, value, expected: str, path) -> UserError:
    """The error for a field of the wrong type or value."""
    return UserError(f"{where}: {field} is {describe(value)}, not {expected}", path)


def check_types(values: Sequence, types: tuple, where: Callable[[int], str], field: str,
                expected: str, path) -> None:
    """Raise naming the first of ``values`` whose type is not exactly one of ``types`` (bool is
    no int here); a C-level pass over the values when all are good."""
    if set(map(type, values)) <= set(types):
        return
    i = next(i for i, v in enumerate(values) if type(v) not in types)
    raise bad(where(i), field, values[i], expected, path)


def check_box_coords(coords: list, where: Callable[[int], str], path) -> np.ndarray:
    """The ``box`` values of N boxes -> (N, 4) float64 as given (x1 y1 x2 y2, normalised);
    raises unless each is 4 numbers in [-0.01, BOX_TOLERANCE]."""
    expected = "a list of 4 numbers"
    check_types(coords, (list,), where, "'box'", expected, path)
    if not set(map(len, coords)) <= {4}:
        i = next(i for i, c in enumerate(coords) if len(c) != 4)
        raise UserError(f"{where(i)}: 'box' has {len(coords[i])} value"
                        f"{'s' if len(coords[i]) != 1 else ''}, not 4", path)
    flat = list(chain.from_iterable(coords))
    check_types(flat, NUMBER, lambda k: where(k // 4), "a 'box' value", "a number", path)
    try:
        boxes = np.array(flat, dtype=np.float64).reshape(-1, 4)  # (N, 4)
    except OverflowError:  # an integer beyond float range: outside anyway
        boxes = np.clip(np.array([float(min(max(v, -2), 2)) for v in flat]), -2, 2).reshape(-1, 4)
    return check_box_range(boxes, coords, where, path)


def check_box_range(boxes: np.ndarray, coords: Sequence | np.ndarray, where: Callable[[int], str],
                    path) -> np.ndarray:
    """Raise unless each of (N, 4) ``boxes`` (read from ``coords``) is in [-0.01, BOX_TOLERANCE];
    returns them."""
    outside = ~((boxes >= -0.01) & (boxes <= BOX_TOLERANCE)).all(axis=1)  # (N,)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise UserError(f"{where(i)}: box {coords[i]} outside [0, {BOX_TOLERANCE}]", path)
    return boxes


def check_label_ids(id_lists: Sequence, num_ids: int, where: Callable[[int], str], field: str,
                    path, typed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Ragged lists of label ids of N boxes -> (M,) box index and (M,) id of every id; raises
    unless each is a list of integers in 0..num_ids-1 (``typed``: the parser made sure they are
    lists of integers in the int64 range)."""
    if not typed:
        check_types(id_lists, (list,), where, field, "a list of label ids", path)
    counts = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))  # (N,)
    owner = np.repeat(np.arange(len(id_lists)), counts)  # (M,)
    if typed:
        ids = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=len(owner))
        bad_id = (ids < 0) | (ids >= num_ids)  # (M,)
        if bad_id.any():
            k = int(np.flatnonzero(bad_id)[0])
            raise UserError(f"{where(owner[k])}: {field}: id {describe(int(ids[k]))} out of range "
                            f"0..{num_ids - 1}", path)
        return owner, ids
    flat = list(chain.from_iterable(id_lists))  # M ids
    check_types(flat, (int,), lambda k: where(owner[k]), f"a label id in {field}",
                "an integer", path)
    if flat and (min(flat) < 0 or max(flat) >= num_ids):
        k = next(k for k, v in enumerate(flat) if not 0 <= v < num_ids)
        raise UserError(f"{where(owner[k])}: {field}: id {describe(flat[k])} out of range "
                        f"0..{num_ids - 1}", path)
    return owner, np.array(flat, dtype=np.int64)


def first_repeat(keys: np.ndarray) -> tuple[int, int]:
    """(count, index of the first) of the entries of (N,) int ``keys`` whose value came earlier;
    (0, -1) when all differ."""
    order = np.argsort(keys, kind="stable")
    repeat = np.zeros(len(keys), dtype=bool)
    repeat[order[1:]] = keys[order[1:]] == keys[order[:-1]]
    if not repeat.any():
        return 0, -1
    return int(repeat.sum()), int(np.flatnonzero(repeat)[0])


class Findings:
    """Readable but suspicious data of one file: per kind of :data:`KINDS`, a count and the
    first place."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}

    def add(self, kind: str, count: int, first: str) -> None:
        if count:
            self.counts[kind] = self.counts.get(kind, 0) + count
            self.first.setdefault(kind, first)

    def check_boxes(self, boxes: np.ndarray, frames: np.ndarray, track_ids: np.ndarray,
                    where: Callable[[int], str]) -> None:
        """Flipped boxes and repeated tube_uids in a frame: (N, 4) boxes, (N,) frames and ids."""
        flipped = (boxes[:, 0] > boxes[:, 2]) | (boxes[:, 1] > boxes[:, 3])  # (N,)
        if flipped.any():
            self.add("flipped", int(flipped.sum()), where(int(np.flatnonzero(flipped)[0])))
        count, first = first_repeat(frames.astype(np.int64) * (int(track_ids.max(initial=0)) + 1)
                                    + track_ids)
        if count:
            self.add("uid_twice", count, where(first))

    def check_tubes(self, labels: np.ndarray, rows: list[np.ndarray], num_rows: int,
                    where: Callable[[int], str]) -> None:
        """Boxes held twice by tubes of one class: (T,) tube labels, T arrays of box rows."""
        if not rows:
            return
        lens = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))  # (T,)
        self.check_tube_runs(labels, lens, np.concatenate(rows), num_rows, where)

    def check_tube_runs(self, labels: np.ndarray, sizes: np.ndarray, rows: np.ndarray,
                        num_rows: int, where: Callable[[int], str]) -> None:
        """:meth:`check_tubes` of tubes given as (T,) labels, (T,) sizes and (R,) rows."""
        keys = np.repeat(labels.astype(np.int64), sizes) * num_rows + rows
        count, first = first_repeat(keys)
        if count:
            self.add("tube_twice", count, where(int(np.searchsorted(np.cumsum(sizes), first,
                                                                    side="right"))))

    def warn(self, path) -> None:
        """One warning line per kind found."""
        for kind, count in self.counts.items():
            what, action = KINDS[kind]
            warnings.warn(f"{path}: {what}: {count} ({action}); first: {self.first[kind]}",
                          InputWarning, stacklevel=3)


def locate(root, target) -> str:
    """The keys leading from ``root`` to the object ``target`` inside it: 'frames/12/annos'."""
    stack = [(root, "")]
    while stack:
        node, at = stack.pop()
        if node is target:
            return at.lstrip("/") or "top level"
        items = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((v, f"{at}/{show(str(k))}") for k, v in items
                     if isinstance(v, (dict, list)))
    return "?"
