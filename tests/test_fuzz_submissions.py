"""Fuzzing submissions: broken or odd submissions never end in a traceback, and what the official
scorer scores is scored with its numbers.

Hypothesis builds submissions two ways: junk of every type at every level (top level, label
types, videos, tube lists, tubes, fields), and valid tubes with odd values (boxes out of the
frame, flipped or NaN; frames from 0, past the video's end, with gaps, unsorted, fractional;
labels out of range, fractional, strings, arrays; NaN scores; broken per-frame scores; missing
keys); it also mangles the pickle bytes and wraps them in zips with odd members. Through
``validate`` and ``eval road --pred`` (and junk through ``--frame-dets``) on the small synthetic
annotation, every case either gives a result or exits 2 with one line naming the file;
``validate`` exits 1 with its problem list; both agree on what the scorer fails on. Scorable
cases give the literal reference's numbers (tests/reference/road.py).

Exit codes: validate 0 valid (maybe warnings), 1 problems, 2 unreadable/unsafe file or bad
options; eval road 0 scored (maybe warnings), 2 refused.
"""
from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from roadtrack.cli import main
from roadtrack.errors import UserError
from roadtrack.eval.road import evaluate_road, to_json
from roadtrack.io.annotations import load_annotation

from .reference import road as road_ref

TYPES = ["agent", "action", "loc", "duplex", "triplet"]
NUMF = 30  # frames of each synthetic video (tests/conftest.py)

ODD = st.sampled_from([
    None, True, np.bool_(False), 0, -1, 3, 2 ** 70, -(2 ** 70), 1.5, float("nan"),
    float("inf"), -0.0, 1e300, "car", "", b"\x00", 1j, np.float32(0.5), np.int8(3),
    np.uint64(2 ** 63), np.array(2.0), np.array([1]), np.array([1, 2]), np.array([]),
    np.array(["a", "b"]), np.array([1.0, np.nan]), np.zeros((2, 3)), np.zeros((0, 4)),
    np.array([[1, 2, 3, 4]], dtype=object), np.array([1, None], dtype=object),
    [1, [2, 3]], [[1, 2, 3, 4], [1, 2, 3]], (1, 2), {"a": 1}, {1, 2}, frozenset(), [],
])
JUNK = st.recursive(
    ODD | st.floats() | st.integers() | st.text(max_size=4),
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(st.sampled_from(TYPES + ["label_id", "score", "frames",
                                                               "boxes", "scores", "x"])
                                     | st.text(max_size=3), inner, max_size=4)),
    max_leaves=8)
ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_,
                           np.complex128, np.float16]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))


@st.composite
def tubes(draw, videos_numf: int = NUMF, scorable_only: bool = False):
    """A valid tube of a few frames, then some of its fields made odd."""
    n = draw(st.integers(1, 8))
    first = draw(st.integers(1, videos_numf - n + 1))
    x, y = draw(st.floats(0, 700)), draw(st.floats(0, 450))
    w, h = draw(st.floats(5, 300)), draw(st.floats(5, 300))
    boxes = np.tile([x, y, min(x + w, 840.0), min(y + h, 600.0)], (n, 1))
    boxes += draw(hnp.arrays(np.float64, (n, 4), elements=st.floats(-4, 4)))
    tube = {"label_id": draw(st.integers(0, 9)), "score": draw(st.floats(0, 1)),
            "frames": np.arange(first, first + n), "boxes": boxes,
            "scores": np.full(n, 0.5)}
    for change in draw(st.lists(st.sampled_from(list(CHANGES)), max_size=3)):
        if scorable_only and change in UNSCORABLE:
            continue
        CHANGES[change](tube, draw)
    return tube


def _numbers(tube, key: str, ndim: int) -> np.ndarray | None:
    """The field as a float array when it still is one (an earlier change may have broken it)."""
    try:
        value = np.asarray(tube.get(key))
    except (TypeError, ValueError, OverflowError):
        return None
    if value.dtype.kind not in "iuf":
        return None
    value = value.astype(np.float64)
    ok = value.ndim == ndim and len(value) > 0 and (ndim == 1 or value.shape[1] == 4)
    return value if ok else None


def _frames(tube, draw):
    f = _numbers(tube, "frames", 1)
    if f is None:
        return
    how = draw(st.sampled_from(["zero", "negative", "past", "gap", "unsorted", "fraction",
                                "float", "list"]))
    if how == "zero":
        tube["frames"] = f - f[0]
    elif how == "negative":
        tube["frames"] = f - f[0] - 3
    elif how == "past":
        tube["frames"] = f + NUMF - f[0]
    elif how == "gap" and len(f) > 2:
        tube["frames"] = np.concatenate([f[:1], f[1:] + draw(st.integers(1, 5))])
    elif how == "unsorted" and len(f) > 1:
        tube["frames"] = f[::-1]
    elif how == "fraction":
        tube["frames"] = f + 0.5
    elif how == "float":
        tube["frames"] = f.astype(np.float32)
    else:
        tube["frames"] = f.tolist()


def _boxes(tube, draw):
    b = _numbers(tube, "boxes", 2)
    if b is None:
        return
    row = draw(st.integers(0, len(b) - 1))
    how = draw(st.sampled_from(["out", "issue", "wholly", "flip", "nan", "int", "list"]))
    if how == "out":
        b[row] += draw(hnp.arrays(np.float64, 4, elements=st.floats(-50, 50)))
    elif how == "issue":
        b[row] = draw(st.sampled_from([[100, -3, 845, 200], [10, 10, 840.4, 30]]))
    elif how == "wholly":
        b[row] = [845, 10, 900, 50]
    elif how == "flip":
        b[row] = b[row, [2, 3, 0, 1]]
    elif how == "nan":
        b[row, draw(st.integers(0, 3))] = draw(st.sampled_from([np.nan, np.inf]))
    elif how == "int" and np.isfinite(b).all():
        b = np.round(b).astype(np.int64)
    else:
        b = b.tolist()
    tube["boxes"] = b


CHANGES = {
    "label": lambda t, d: t.update(label_id=d(st.sampled_from(
        [-1, 10, 99, 2.0, 2.5, np.float32(3.0), np.int16(4), True, "car", None,
         np.array(5), np.array([6]), [1], np.nan]))),
    "label array": lambda t, d: t.update(label_id=np.array([1, 2])),
    "score": lambda t, d: t.update(score=d(st.sampled_from(
        [float("nan"), float("inf"), -float("inf"), np.float32(0.25), np.float64(0.75), 3,
         np.int64(2), np.array(0.5)]))),
    "bad score": lambda t, d: t.update(score=d(st.sampled_from(["high", None, [0.5], True,
                                                                 np.array([0.5]), 1j]))),
    "frames": _frames,
    "boxes": _boxes,
    "per-frame": lambda t, d: t.update(scores=d(st.sampled_from(
        [np.full(1, 0.5), np.full(3, np.nan), "x", None]))),
    "no per-frame": lambda t, d: t.pop("scores", None),
    "no key": lambda t, d: t.pop(d(st.sampled_from(["label_id", "score", "frames", "boxes"])),
                                 None),
    "extra key": lambda t, d: t.update(extra=d(ODD)),
    "junk field": lambda t, d: t.update({d(st.sampled_from(["frames", "boxes", "scores"])):
                                         d(ODD | ARRAYS)}),
}
UNSCORABLE = {"label array", "bad score", "no key", "junk field"}


@st.composite
def submissions(draw, videos, scorable_only: bool = False):
    """A submission for ``videos`` with odd tubes; unless ``scorable_only``, odd structure."""
    types = draw(st.lists(st.sampled_from(["agent", "agent", "triplet", "Agent"]), min_size=1,
                          max_size=3, unique=True)) if not scorable_only else ["agent"]
    sub = {}
    for t in types:
        sub[t] = {v: draw(st.lists(tubes(scorable_only=scorable_only), max_size=4))
                  for v in videos}
    if not scorable_only:
        how = draw(st.sampled_from(["as is", "as is", "drop video", "extra video",
                                    "junk tubes", "junk video", "junk type", "junk top",
                                    "tuple", "junk tube"]))
        t = types[0]
        if how == "drop video":
            sub[t].pop(videos[draw(st.integers(0, len(videos) - 1))])
        elif how == "extra video":
            sub[t]["other_00001"] = []
        elif how == "junk tubes":
            sub[t][videos[0]] = draw(JUNK)
        elif how == "junk video":
            sub[t] = draw(JUNK)
        elif how == "junk type":
            sub[draw(JUNK.filter(lambda k: isinstance(k, (str, int, float))))] = draw(JUNK)
        elif how == "junk top":
            sub = draw(JUNK)
        elif how == "tuple":
            sub[t][videos[0]] = tuple(sub[t][videos[0]])
        elif how == "junk tube" and sub[t][videos[0]]:
            sub[t][videos[0]][0] = draw(JUNK)
    return sub


class _Loaded:
    """The synthetic annotation, loaded once (with a short repr for failure reports)."""

    def __init__(self, path):
        self.annotation = load_annotation(path)
        self.videos = self.annotation.split(None)

    def __repr__(self):
        return "<synthetic annotation>"


@pytest.fixture(scope="module")
def anno(synth_anno_path):
    return _Loaded(synth_anno_path)


@pytest.fixture(scope="module", autouse=True)
def _annotation_read_once():
    """Every case reads the same annotation: the commands get it from a cache (they would read
    it twice a case, most of a case's time)."""
    from roadtrack.eval import road
    from roadtrack.io import annotations

    read, cache = annotations.load_annotation, {}

    def cached(path, videos=None, keep_tubes=True, splits=None):
        if videos is not None:
            return read(path, videos, keep_tubes)
        key = (str(path), keep_tubes, None if splits is None else tuple(splits))
        if key not in cache:
            cache[key] = read(path, keep_tubes=keep_tubes, splits=splits)
        return cache[key]

    patch = pytest.MonkeyPatch()
    patch.setattr(annotations, "load_annotation", cached)
    patch.setattr(road, "load_annotation", cached)
    yield
    patch.undo()


def _cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.output  # no traceback
    return result.exit_code, [ln for ln in result.output.splitlines() if ln.strip()]


def _outcomes(path, anno_path):
    """validate's and eval road's exit codes, with every line checked against the rules."""
    code, lines = _cli("validate", path, "--anno", anno_path)
    assert code in (0, 1, 2), lines
    warnings = [ln for ln in lines if ln.startswith("roadtrack: warning: ")]
    assert all(ln.startswith(f"roadtrack: warning: {path}: ") for ln in warnings), lines
    rest = [ln for ln in lines if ln not in warnings]
    if code == 2:
        assert len(rest) == 1 and rest[0].startswith(f"roadtrack: error: {path}: "), lines
    elif code == 1:
        assert rest and all(ln.startswith(f"{path}: ") for ln in rest), lines
        assert rest[-1].startswith(f"{path}: {len(rest) - 1} problems: "), lines
    else:
        assert rest == [rest[0]] and rest[0].startswith(f"{path}: valid: "), lines
    fails = code == 2 or (code == 1 and "the official scorer fails on 0," not in rest[-1])
    ecode, elines = _cli("eval", "road", "--anno", anno_path, "--pred", path)
    ewarn = [ln for ln in elines if ln.startswith("roadtrack: warning: ")]
    assert all(ln.startswith(f"roadtrack: warning: {path}: ") for ln in ewarn), elines
    if ecode == 2:
        errors = [ln for ln in elines if ln not in ewarn]
        assert len(errors) == 1 and errors[0].startswith(f"roadtrack: error: {path}: "), elines
        if code == 2:
            assert errors == rest  # the same unreadable-file line
    else:
        assert ecode == 0 and any(ln.startswith("challenge score") for ln in elines), elines
    assert (ecode == 2) == fails, (lines, elines)  # both agree on what the scorer fails on
    event(f"validate exit {code}, eval road exit {ecode}")
    return code, ecode


@given(data=st.data())
def test_fuzz_broken_submissions_never_traceback(tmp_path_factory, synth_anno_path, anno,
                                                 data):
    sub = data.draw(submissions(anno.videos))
    path = tmp_path_factory.mktemp("fuzz") / "sub.pkl"
    path.write_bytes(pickle.dumps(sub, protocol=data.draw(st.integers(0, 5))))
    _outcomes(path, synth_anno_path)


@given(data=st.data())
def test_fuzz_scorable_submissions_get_the_official_numbers(tmp_path_factory, synth_anno_path,
                                                             anno, data):
    sub = data.draw(submissions(anno.videos, scorable_only=True))
    path = tmp_path_factory.mktemp("fuzz") / "sub.pkl"
    path.write_bytes(pickle.dumps(sub, protocol=4))
    try:
        ours = to_json(evaluate_road(anno.annotation, pred=path, thresholds=(0.1, 0.5)))
    except UserError as err:  # unsorted or fractional frames, NaN boxes: not reproduced
        assert "fails on this submission" in str(err), err
        assert "frames are not" in str(err) or "NaN or infinite" in str(err), err
        return
    ref = road_ref.reference_evaluate(synth_anno_path, path, None, thresholds=(0.1, 0.5))
    assert road_ref.max_difference(ours, ref) <= 1e-6


def _mangle(data: bytes, draw) -> bytes:
    how = draw(st.sampled_from(["truncate", "flip", "insert", "garbage", "empty", "zip"]))
    if how == "truncate":
        return data[:draw(st.integers(0, max(0, len(data) - 1)))]
    if how == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if how == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if how == "garbage":
        return draw(st.binary(max_size=64))
    if how == "empty":
        return b""
    buffer = io.BytesIO()
    members = draw(st.lists(st.sampled_from(["submission.pkl", "b.pkl", "README.md",
                                             "__MACOSX/._submission.pkl", "dir/", "x.PKL",
                                             "sub.pickle", "notes"]), max_size=4, unique=True))
    with zipfile.ZipFile(buffer, "w", draw(st.sampled_from([zipfile.ZIP_STORED,
                                                           zipfile.ZIP_DEFLATED]))) as archive:
        for name in members:
            archive.writestr(name, data if "pkl" in name.lower() or "pickle" in name else b"x")
    zipped = buffer.getvalue()
    if draw(st.booleans()):  # and damage the archive
        at = draw(st.integers(0, len(zipped) - 1))
        zipped = zipped[:at] + b"\xff" + zipped[at + 1:]
    return zipped


@given(data=st.data())
def test_fuzz_mangled_pickle_bytes_and_zips(tmp_path_factory, synth_anno_path, anno, data):
    sub = data.draw(submissions(anno.videos, scorable_only=True))
    raw = pickle.dumps(sub, protocol=data.draw(st.integers(0, 5)))
    path = tmp_path_factory.mktemp("fuzz") / "sub.pkl"
    path.write_bytes(_mangle(raw, data.draw))
    _outcomes(path, synth_anno_path)


@given(dets=JUNK | st.dictionaries(st.sampled_from(["agent_ness", "agent", "loc", "other"]),
                                   JUNK | st.dictionaries(st.sampled_from(
                                       ["train_0000000001", "train_0000100001", "x"]),
                                       JUNK | ARRAYS, max_size=3), max_size=3))
def test_fuzz_frame_detections_never_traceback(tmp_path_factory, synth_anno_path, dets):
    path = tmp_path_factory.mktemp("fuzz") / "dets.pkl"
    path.write_bytes(pickle.dumps(dets))
    code, lines = _cli("eval", "road", "--anno", synth_anno_path, "--frame-dets", path)
    errors = [ln for ln in lines if not ln.startswith("roadtrack: warning: ")]
    if code == 2:
        assert len(errors) == 1 and errors[0].startswith(f"roadtrack: error: {path}: "), lines
    else:
        assert code == 0 and any(ln.startswith("summary") for ln in lines), lines
