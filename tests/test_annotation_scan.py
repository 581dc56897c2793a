"""The compiled scanner of annotation entries (``roadtrack/io/_scan.c``): it reads the plain form
of a video entry, giving what the msgspec reader gives, and hands every other form on (None), so
that the readers behind it give the usual result, error or warning."""
import copy
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import roadtrack.io.annotation_fast as fast
from roadtrack.io.annotation_video import MAX_FRAMES

from .test_annotation_fast import assert_same_everywhere
from .test_fuzz_annotations import BASE

scan = pytest.importorskip("roadtrack.io._scan", reason="package built without the C scanner")

ENTRY = BASE["db"]["v2"]
"""Three frames (two with two boxes each), agent and action tubes, the other tubes empty."""


def _scan(text: bytes):
    return scan.scan_entry(text, MAX_FRAMES)


def _changed(change) -> dict:
    entry = copy.deepcopy(ENTRY)
    change(entry)
    return entry


def _text(entry) -> str:
    return entry if isinstance(entry, str) else json.dumps(entry)


def _file(tmp_path, entry_text: str):
    """An annotation file of BASE's label lists with this one entry as video 'v2'."""
    header = json.dumps({k: v for k, v in BASE.items() if k != "db"})
    path = tmp_path / "anno.json"
    path.write_text(f'{header[:-1]}, "db": {{"v2": {entry_text}}}}}')
    return path


def _box(entry, frame="1", key="b1a") -> dict:
    return entry["frames"][frame]["annos"][key]


def _set(path: tuple, value):
    def change(entry):
        node = entry
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _twice(text: str, anchor: str, repeat: str) -> str:
    """``text`` with ``repeat`` (a key and value) written again before its first ``anchor``."""
    assert anchor in text
    return text.replace(anchor, repeat + ", " + anchor, 1)


PLAIN = {
    "compact": json.dumps(ENTRY, separators=(",", ":")),
    "indented": json.dumps(ENTRY, indent=2),
    "fields in reverse order": json.dumps(
        json.loads(json.dumps(ENTRY), object_pairs_hook=lambda pairs: dict(reversed(pairs)))),
    "annos null": _changed(_set(("frames", "3", "annos"), None)),
    "annos empty": _changed(_set(("frames", "3", "annos"), {})),
    "integer box": _changed(_set(("frames", "1", "annos", "b1b", "box"), [0, 0, 1, 1])),
    "exponents": json.dumps(ENTRY).replace("0.2, ", "2e-1, ").replace("0.4]", "4.0E-1]"),
    "no split_ids": _changed(lambda e: e.pop("split_ids")),
    "frame ids and AV actions": _changed(_set(("frames", "2"), {
        **ENTRY["frames"]["2"], "rgb_image_id": 2, "input_image_id": 7, "av_action_ids": [1]})),
    "untyped fields": _changed(lambda e: e.update(
        av_action_tubes={"t": {"label_id": 1, "annos": {"1": "x"}}}, frame_labels=[1, [2.5]],
        location="city", weather={"sky": None, "wet": True})),
    "size from a later frame": _changed(lambda e: e["frames"]["1"].update(width=0, height=5)),
    "no size": _changed(lambda e: [f.pop(k) for f in e["frames"].values()
                                   for k in ("width", "height")]),
    "float annotated": _changed(_set(("frames", "3", "annotated"), 0.5)),
    "negative zero": _changed(_set(("frames", "1", "annos", "b1b", "box"), [-0.0, 0, 0.5, 0.5])),
    "a tube of an unused class refers to no box": _changed(_set(
        ("agent_tubes", "u9"), {"label_id": len(BASE["all_agent_labels"]) - 1,
                                "annos": {"2": "no-such-box", "4": "b1a"}})),
    "unusual frame keys in an unused tube": _changed(_set(
        ("agent_tubes", "u9"), {"label_id": len(BASE["all_agent_labels"]) - 1,
                                "annos": {"2": "b2a", "01": "b1a", "1": "b1a", "x": "b1a"}})),
    "a flipped box": _changed(_set(("frames", "2", "annos", "b2a", "box"), [0.5, 0.2, 0.1, 0.4])),
}

_PLAIN_TEXT = json.dumps(ENTRY)
HANDED_ON = {
    "escaped uid": _PLAIN_TEXT.replace('"u1"', '"\\u0075\\u0031"'),
    "escaped newline in a key": _PLAIN_TEXT.replace('"b1a"', '"b1\\na"'),
    "non-ASCII uid": _changed(_set(("frames", "1", "annos", "b1a", "tube_uid"), "\u00fc")),
    "numf twice": _twice(_PLAIN_TEXT, '"frames"', '"numf": 3'),
    "frame twice": _twice(_PLAIN_TEXT, '"2": {"annotated"', '"2": {}'),
    "frame field twice": _twice(_PLAIN_TEXT, '"width"', '"width": 5'),
    "box key twice": _twice(_PLAIN_TEXT, '"b1b"', f'"b1a": {json.dumps(_box(ENTRY))}'),
    "box field twice": _twice(_PLAIN_TEXT, '"tube_uid"', '"tube_uid": "u7"'),
    "tube twice": _twice(_PLAIN_TEXT, '"u2-10"', '"u1-0": {"label_id": 0, "annos": {}}'),
    "tube field twice": _twice(_PLAIN_TEXT, '"annos": {"1": "b1a"', '"label_id": 3'),
    "tube frame twice": _twice(_PLAIN_TEXT, '"2": "b2a"}', '"1": "b1b"'),
    "tube frame twice, out of order": _twice(_PLAIN_TEXT, '"1": "b1a", "2": "b2a"}',
                                             '"2": "b2a"'),
    "unusual tube frame key twice": _PLAIN_TEXT.replace(
        '"annos": {"1": "b1b"}', '"annos": {"01": "b1b", "1": "b1b", "01": "b1b"}', 1),
    "untyped key twice": _PLAIN_TEXT[:-1] + ', "weather": {"sky": 1, "sky": 2}}',
    "unknown video field": _changed(_set(("note",), 1)),
    "unknown frame field": _changed(_set(("frames", "1", "note"), 1)),
    "unknown box field": _changed(_set(("frames", "1", "annos", "b1a", "note"), 1)),
    "unknown tube field": _changed(_set(("agent_tubes", "u1-0", "note"), 1)),
    "float label id": _changed(_set(("frames", "1", "annos", "b1a", "agent_ids"), [1.0])),
    "label ids not a list": _changed(_set(("frames", "1", "annos", "b1a", "agent_ids"), 1)),
    "float numf": _changed(_set(("numf",), 3.0)),
    "float width": _changed(_set(("frames", "1", "width"), 1920.5)),
    "negative width": _changed(_set(("frames", "1", "width"), -1)),
    "19-digit integer": _changed(_set(("frames", "1", "rgb_image_id"), 10 ** 18)),
    "infinite box value": _PLAIN_TEXT.replace("0.2, ", "1e400, ", 1),
    "box value beyond 2**63": _changed(_set(("frames", "1", "annos", "b1a", "box"),
                                            [0.1, 0.2, 0.3, 1e19])),
    "three box values": _changed(_set(("frames", "1", "annos", "b1a", "box"), [0.1, 0.2, 0.3])),
    "box of strings": _changed(_set(("frames", "1", "annos", "b1a", "box"), ["0.1"] * 4)),
    "no tube_uid": _changed(lambda e: _box(e).pop("tube_uid")),
    "no label_id": _changed(lambda e: e["agent_tubes"]["u1-0"].pop("label_id")),
    "no frames": _changed(lambda e: e.pop("frames")),
    "frame key 0": _PLAIN_TEXT.replace('"3": {"annotated"', '"0": {"annotated"'),
    "frame key 01": _PLAIN_TEXT.replace('"1": {"annotated"', '"01": {"annotated"'),
    "frame beyond numf": _changed(_set(("numf",), 2)),
    "tube box key a number": _changed(_set(("agent_tubes", "u1-0", "annos", "1"), 7)),
    "vertical tab": _PLAIN_TEXT.replace('"numf": ', '"numf":\x0b'),
    "split_ids of numbers": _changed(_set(("split_ids",), [1])),
}

REFUSED_BY_CHECKS = {
    "a used tube refers to no box": _changed(_set(("agent_tubes", "u1-0", "annos", "3"), "b1a")),
    "label id out of range": _changed(_set(("frames", "1", "annos", "b1a", "agent_ids"), [99])),
    "box outside": _changed(_set(("frames", "1", "annos", "b1a", "box"), [0.1, 0.2, 0.3, 1.5])),
}
"""Entries in the plain form that a check refuses after the scan (label ranges are known only
to the caller): handed on too, so that the msgspec reader names the problem."""


def _vouched(path) -> list[bool]:
    """Whether the scanner vouched for each entry the fast reader read from ``path``."""
    results = []

    def scanned(*args):
        results.append(real(*args))
        return results[-1]

    real = fast._scanned
    with mock.patch.object(fast, "_scanned", scanned):
        assert_same_everywhere(path)
    return [r is not None for r in results]


@pytest.mark.parametrize("case", list(PLAIN))
def test_the_plain_form_is_scanned_and_reads_as_on_every_other_path(tmp_path, case):
    text = _text(PLAIN[case])
    assert _scan(text.encode()) is not None
    vouched = _vouched(_file(tmp_path, text))
    assert vouched and all(vouched)


@pytest.mark.parametrize("case", list(HANDED_ON))
def test_other_forms_are_handed_on_and_read_as_on_every_other_path(tmp_path, case):
    text = _text(HANDED_ON[case])
    assert _scan(text.encode()) is None
    assert not any(_vouched(_file(tmp_path, text)))


@pytest.mark.parametrize("case", list(REFUSED_BY_CHECKS))
def test_entries_a_check_refuses_are_handed_on_after_the_scan(tmp_path, case):
    text = _text(REFUSED_BY_CHECKS[case])
    assert _scan(text.encode()) is not None
    assert not any(_vouched(_file(tmp_path, text)))


@pytest.mark.parametrize("text", [_PLAIN_TEXT + " x", _PLAIN_TEXT[:-1], "", "[]", "{}",
                                  _PLAIN_TEXT.replace(": 3,", ": 03,", 1),
                                  _PLAIN_TEXT.replace(": 3,", ": -,", 1),
                                  _PLAIN_TEXT.replace("0.2, ", "0.e1, ", 1),
                                  _PLAIN_TEXT[:-1] + ', "weather": tru}'])
def test_text_that_is_not_an_entry_is_handed_on(text):
    assert _scan(text.encode()) is None


def test_more_frames_than_the_limit_are_handed_on():
    text = json.dumps(ENTRY).encode()  # numf 3
    assert scan.scan_entry(text, 3) is not None
    assert scan.scan_entry(text, 2) is None
    many = _changed(_set(("frames", str(MAX_FRAMES + 1)), {"annotated": 1}))
    assert _scan(json.dumps({**many, "numf": MAX_FRAMES + 1}).encode()) is None


def test_the_arrays_of_an_entry():
    numf, width, height, splits, annotated, frames, boxes, uid_index, uids, labels, tubes = \
        _scan(json.dumps(ENTRY).encode())
    assert (numf, width, height, splits) == (3, 1920, 1280, ["val", "all"])
    assert np.frombuffer(annotated, np.int64).tolist() == [1, 2]
    assert np.frombuffer(frames, np.int32).tolist() == [1, 1, 2, 2]
    want = [b["box"] for f in ENTRY["frames"].values() for b in (f.get("annos") or {}).values()]
    assert np.frombuffer(boxes, np.float64).reshape(-1, 4).tolist() == want
    assert [uids[i] for i in np.frombuffer(uid_index, np.int32)] == ["u1", "u2", "u1", "u2"]
    rows, ids = (np.frombuffer(part, np.int64).tolist() for part in labels[1])  # action_ids
    assert (rows, ids) == ([0, 0, 1, 1, 2, 2, 3, 3], [1, 2] * 4)
    labels_of, sizes, refs = (np.frombuffer(part, np.int64).tolist() for part in tubes[0])
    assert (labels_of, sizes, refs) == ([0, 10], [2, 1], [0, 2, 1])


def _number_texts():
    """Texts of JSON numbers in the forms writers use: shortest repr, fixed digits, exponents,
    more digits than a double holds."""
    value = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
    digits = st.integers(0, 25)
    return st.one_of(
        value.map(repr),
        st.tuples(value.filter(lambda v: abs(v) < 1e6), digits).map(lambda a: f"{a[0]:.{a[1]}f}"),
        st.tuples(value, digits, st.sampled_from("eE")).map(
            lambda a: f"{a[0]:.{a[1]}e}".replace("e", a[2])),
        st.from_regex(r"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?",
                      fullmatch=True),
    ).filter(lambda text: re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?", text)
             is not None)


@given(st.lists(_number_texts(), min_size=4, max_size=4))
def test_box_numbers_are_the_nearest_doubles(texts):
    """The scanner's quick conversion and its fallback both give the correctly rounded double
    (Python's float; of an integer literal, as msgspec, the float of the integer: -0 is 0.0),
    bit for bit; integers beyond 18 digits and infinite values hand on."""
    text = json.dumps(ENTRY).replace("[0.1, 0.2, 0.2, 0.4]", f"[{', '.join(texts)}]", 1)
    assert text != json.dumps(ENTRY)
    values = [float(int(t)) if re.fullmatch(r"-?\d+", t) else float(t) for t in texts]
    parts = _scan(text.encode())
    long_integer = any(re.fullmatch(r"-?\d{19,}", t) for t in texts)
    if long_integer or not all(abs(v) < 2.0 ** 63 for v in values):
        assert parts is None
        return
    got = np.frombuffer(parts[6], np.float64)[:4]
    assert [struct.pack("<d", v) for v in got] == [struct.pack("<d", v) for v in values]


def _as_msgspec_reads(text: bytes, parts) -> None:
    """The scanner's arrays are the fields the msgspec reader decodes from the same text."""
    video = fast.VIDEO.decode(text)  # raises where the scanner was too lenient
    g = fast._gather("v", video)
    (numf, width, height, splits, annotated, frames, boxes, uid_index, uids, labels,
     tubes) = parts
    assert (numf, width, height, splits) == (g.numf, g.width, g.height, list(g.split_ids))
    assert sorted(np.frombuffer(annotated, np.int64).tolist()) == \
        (np.flatnonzero(g.annotated) + 1).tolist()
    assert np.frombuffer(frames, np.int32).tolist() == g.box_frames
    assert np.frombuffer(boxes, np.float64).reshape(-1, 4).tolist() == [list(r[0]) for r in g.rows]
    assert [uids[i] for i in np.frombuffer(uid_index, np.int32)] == [r[1] for r in g.rows]
    row_of = {(f, b): i for i, (f, b) in enumerate(zip(g.frame_keys, g.box_keys, strict=True))}
    for k, t in enumerate(("agent", "action", "loc", "duplex", "triplet")):
        rows, ids = (np.frombuffer(part, np.int64).tolist() for part in labels[k])
        assert list(zip(rows, ids, strict=True)) == [(i, x) for i, r in enumerate(g.rows)
                                                      for x in r[2 + k]]
        entries = list(g.tubes(t))
        got = [np.frombuffer(part, np.int64).tolist() for part in tubes[k]]
        assert got == [[label for _, label, _ in entries], [len(a) for _, _, a in entries],
                       [row_of.get(ref, -1) for _, _, a in entries for ref in a.items()]]


MUTATION = st.tuples(st.sampled_from(["insert", "delete", "replace", "cut"]),
                     st.floats(0, 1), st.sampled_from(list(b'{}[]:,"\\ 019.eE-+tnul\x00\x80\n')))


@given(st.sampled_from(["compact", "indented", "untyped fields", "annos null"]),
       st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_entries_are_read_as_msgspec_reads_them_or_handed_on(case, mutations):
    """Bytes inserted, deleted, replaced or cut anywhere: the scanner never fails, and what it
    vouches for is what msgspec decodes (the C code was also run so under AddressSanitizer)."""
    data = bytearray(_text(PLAIN[case]).encode())
    for how, where, byte in mutations:
        at = int(where * len(data))
        if how == "insert":
            data[at:at] = bytes([byte])
        elif how == "delete":
            del data[at:at + 4]
        elif how == "replace" and at < len(data):
            data[at] = byte
        elif how == "cut":
            del data[at:]
    parts = _scan(bytes(data))
    if parts is not None:
        _as_msgspec_reads(bytes(data), parts)


@pytest.mark.parametrize("case", list(PLAIN))
def test_plain_entries_are_read_as_msgspec_reads_them(case):
    text = _text(PLAIN[case]).encode()
    _as_msgspec_reads(text, _scan(text))


def test_numbers_are_read_the_same_under_a_locale_with_a_decimal_comma(tmp_path):
    """The slow conversion (more than 15 digits) uses the C locale's strtod whatever locale the
    program set; a locale with a decimal comma is built with localedef where there is one."""
    localedef = shutil.which("localedef")
    if localedef is None or subprocess.run(
            [localedef, "-i", "de_DE", "-f", "UTF-8", str(tmp_path / "de_DE.UTF-8")],
            capture_output=True).returncode not in (0, 1):  # 1: built, with warnings
        pytest.skip("no localedef to build a locale with a decimal comma")
    text = "0.1234567890123456789"
    code = (
        "import locale, json, numpy as np\n"
        "locale.setlocale(locale.LC_NUMERIC, 'de_DE.UTF-8')\n"
        "assert locale.localeconv()['decimal_point'] == ','\n"
        "from roadtrack.io._scan import scan_entry\n"
        f"entry = json.dumps({ENTRY!r}).replace('[0.1, 0.2, 0.2, 0.4]', '[{text}, 0, 0, 0]', 1)\n"
        "print(repr(np.frombuffer(scan_entry(entry.encode(), 9)[6], np.float64)[0]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "LOCPATH": str(tmp_path)})
    if "unsupported locale setting" in result.stderr:
        pytest.skip("the built locale could not be set")
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.strip().removeprefix("np.float64(").rstrip(")")) == float(text)
