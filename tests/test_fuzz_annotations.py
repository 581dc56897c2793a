"""Fuzzing the annotation reader: broken annotation JSON never ends in a traceback.

A small valid ROAD++ annotation is broken by hypothesis: values of every type put at every level,
keys deleted, renamed or given twice, text truncated, prefixed with a byte-order mark or spliced
with bytes. ``load_annotation`` and ``roadtrack info`` must then either read it correctly
(checked against ``json.loads`` of the same text) or refuse it with one line naming the file
(exit 2); warnings are one line naming the file.
"""
import copy
import json
import warnings

import numpy as np
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from roadtrack.cli import main
from roadtrack.errors import InputWarning, UserError
from roadtrack.io.annotations import load_annotation
from roadtrack.labels import ALL_TYPES, LABEL_TYPES, name_mapping, roadpp


def _base() -> dict:
    """Two videos of three frames, boxes with every label type, tubes; ROAD++ label lists."""
    labels = roadpp()
    doc = {"label_types": list(LABEL_TYPES)}
    for t in ALL_TYPES:
        doc[f"{t}_labels"] = list(labels.names(t))
        doc[f"all_{t}_labels"] = list(reversed(labels.names(t))) + [f"extra-{t}"]

    def box(x, uid, agent):
        return {"box": [x, 0.2, x + 0.1, 0.4], "agent_ids": [agent], "action_ids": [1, 2],
                "loc_ids": [0], "duplex_ids": [], "triplet_ids": [3], "tube_uid": uid}

    doc["db"] = {}
    for v, split in (("v1", ["train"]), ("v2", ["val", "all"])):
        frames = {str(n): {"annotated": int(n < 3), "width": 1920, "height": 1280,
                           "annos": {f"b{n}a": box(0.1 * n, "u1", 0),
                                     f"b{n}b": box(0.5, "u2", 10)}}
                  for n in (1, 2)}
        frames["3"] = {"annotated": 0, "width": 1920, "height": 1280}
        tubes = {f"{t}_tubes": {} for t in LABEL_TYPES}
        tubes["agent_tubes"] = {"u1-0": {"label_id": 0, "annos": {"1": "b1a", "2": "b2a"}},
                                "u2-10": {"label_id": 10, "annos": {"1": "b1b"}}}
        tubes["action_tubes"] = {"u1-1": {"label_id": 1, "annos": {"2": "b2a"}}}
        doc["db"][v] = {"split_ids": split, "numf": 3, "frames": frames, **tubes}
    return doc


BASE = _base()


def _paths(node, at=()) -> list[tuple]:
    """Every place in ``node`` (of long lists only the first and last item)."""
    out = [at] if at else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, at + (key,))
    elif isinstance(node, list):
        for i in sorted({0, len(node) - 1}) if node else []:
            out += _paths(node[i], at + (i,))
    return out


def _at(doc, path):
    for key in path:
        doc = doc[key]
    return doc


PATHS = _paths(BASE)
OBJECT_PATHS = [p for p in [()] + PATHS if isinstance(_at(BASE, p), dict)]


class Repeated(list):
    """An object written with a key given twice: (key, value) pairs."""


SPECIAL = st.sampled_from([-1, 0, 1, 1.7, -0.0, 1e13, 2 ** 64, 10 ** 30, 1e308, "car", "val",
                           "1", "", "0.5", "\n", "\ud7ff", True, False, None, [], {},
                           float("nan"), float("inf"), [0.3, 0.2, 0.1, 0.4], "u2"])
LEAVES = SPECIAL | st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) \
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4)
VALUES = st.recursive(LEAVES, lambda kids: st.lists(kids, max_size=4)
                      | st.dictionaries(st.text(max_size=3), kids, max_size=3), max_leaves=6)
NAMES = st.sampled_from(["1", "3", "4", "0", "01", "b1a", "u1-0", "v1", "numf", "box"]) \
    | st.text(max_size=4)

EDITS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(PATHS), VALUES),
    st.tuples(st.just("delete"), st.sampled_from(PATHS), st.none()),
    st.tuples(st.just("rename"), st.sampled_from(PATHS), NAMES),
    st.tuples(st.just("repeat"), st.sampled_from(OBJECT_PATHS), st.none() | VALUES),
)
TEXT_EDITS = st.one_of(
    st.none(),
    st.tuples(st.just("bom"), st.none(), st.none()),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.sampled_from([b"", b"}", b"}}"])),
    st.tuples(st.just("splice"), st.floats(0, 1), st.binary(min_size=1, max_size=3)),
)


def _edit(doc, edit):
    """Apply one edit; edits of places an earlier edit removed are skipped."""
    how, path, value = edit
    try:
        parent = _at(doc, path[:-1]) if path else None
    except (KeyError, IndexError, TypeError):
        return doc
    if how == "repeat":
        try:
            target = _at(doc, path)
        except (KeyError, IndexError, TypeError):
            return doc
        if not isinstance(target, dict) or not target:
            return doc
        key = next(iter(target))
        pairs = Repeated(list(target.items()) + [(key, target[key] if value is None else value)])
        if not path:
            return pairs
        parent[path[-1]] = pairs
        return doc
    if not isinstance(parent, (dict, list)) or isinstance(parent, Repeated):
        return doc
    key = path[-1]
    if isinstance(parent, dict) != isinstance(key, str) or (
            isinstance(parent, list) and key >= len(parent)) or (
            isinstance(parent, dict) and key not in parent):
        return doc
    if how == "set":
        parent[key] = value
    elif how == "delete":
        del parent[key]
    elif how == "rename" and isinstance(parent, dict):
        parent[value] = parent.pop(key)
    return doc


def _dump(value) -> str:
    """JSON text; Repeated objects keep their repeated key."""
    if isinstance(value, (dict, Repeated)):
        items = value.items() if isinstance(value, dict) else value
        return "{" + ", ".join(f"{json.dumps(k)}: {_dump(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(_dump, value)) + "]"
    return json.dumps(value)


def _text_edit(data: bytes, edit) -> bytes:
    if edit is None:
        return data
    how, where, extra = edit
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    cut = int(where * len(data))
    if how == "truncate":
        return data[:cut] + extra
    return data[:cut] + extra + data[cut:]


def _check_correct(anno, data: bytes) -> None:
    """What was read agrees with json.loads of the same text (the reader's parser, yajl, also
    takes vertical tab and form feed for whitespace; it refuses them inside strings)."""
    doc = json.loads(data.decode("utf-8-sig").translate({0x0B: " ", 0x0C: " "}))
    assert sorted(anno.videos) == sorted(doc["db"])
    for name, video in anno.videos.items():
        raw = doc["db"][name]
        assert video.numf == raw["numf"] and video.split_ids == tuple(raw.get("split_ids", []))
        boxes = [(int(n), b) for n, f in raw["frames"].items()
                 for b in (f.get("annos") or {}).values()]
        boxes.sort(key=lambda nb: nb[0])
        assert video.frames.tolist() == [n for n, _ in boxes]
        assert np.array_equal(video.boxes, np.clip([b["box"] for _, b in boxes], 0, 1)
                              .reshape(-1, 4))
        assert [video.uids[i] for i in video.track_ids] == [b["tube_uid"] for _, b in boxes]
        annotated = [int(n) for n, f in raw["frames"].items() if f.get("annotated", 0) > 0]
        assert video.annotated_frames().tolist() == sorted(annotated)
        for t in LABEL_TYPES:
            mapping = name_mapping(doc[f"all_{t}_labels"], anno.labels.names(t))
            want = np.zeros_like(video.labels[t])
            for row, (_, b) in enumerate(boxes):
                used = mapping[b[f"{t}_ids"]] if b[f"{t}_ids"] else []
                want[row, [u for u in used if u >= 0]] = True
            assert np.array_equal(video.labels[t], want)
            used_tubes = [tube for tube in raw.get(f"{t}_tubes", {}).values()
                          if mapping[tube["label_id"]] >= 0]
            assert len(video.tubes[t]) == len(used_tubes)


@given(edits=st.lists(EDITS, min_size=1, max_size=3), text_edit=TEXT_EDITS)
@example(edits=[("set", ("label_types",), [])], text_edit=("splice", 0.0, b"\x0b"))
def test_broken_annotations_are_read_correctly_or_refused_in_one_line(tmp_path, edits,
                                                                      text_edit):
    doc = copy.deepcopy(BASE)
    for edit in edits:
        doc = _edit(doc, edit)
    data = _text_edit(_dump(doc).encode(), text_edit)
    path = tmp_path / "anno.json"
    path.write_bytes(data)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            anno, error = load_annotation(path), None
        except UserError as err:
            anno, error = None, str(err)
    messages = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    for line in messages + ([error] if error else []):
        assert line.startswith(f"{path}: ") and "\n" not in line, line
    if anno is not None:
        _check_correct(anno, data)

    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    if error is not None:
        assert result.exit_code == 2 and result.output == f"roadtrack: error: {error}\n"
    else:
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines() == [f"roadtrack: warning: {m}" for m in messages]
