"""Fuzzing MOTChallenge text through `roadtrack eval mot` and `roadtrack track` (CliRunner).

Generated files: ragged columns, non-numeric and non-ASCII fields, fractional, zero, negative and
huge frames and ids, NaN/inf, widths <= 0, repeated ids, blank lines, CR/CRLF endings, a BOM,
separators mixed, empty files and binary garbage. Property: never a traceback; either the
result an independent reading of the rules predicts (rows counted through the metrics), or exit 2
with one line naming the broken file.
"""
import json
import math
import re

from click.testing import CliRunner
from hypothesis import event, given, settings
from hypothesis import strategies as st

from roadtrack.cli import main

MAX_FRAME, MAX_ID = 2**31 - 1, 2**53

GT_ROWS = ["1,1,10,10,40,80,1,1,1", "1,2,100,10,40,80,1,1,1", "2,1,12,10,40,80,1,1,1",
           "2,2,103,10,40,80,1,1,1", "3,1,14,10,40,80,1,1,1", "4,2,110,10,40,80,1,1,1"]
PRED_ROWS = ["1,7,11,10,40,80,0.9,-1,-1,-1", "1,8,101,11,40,80,0.8,-1,-1,-1",
             "2,7,13,10,40,80,0.9,-1,-1,-1", "3,8,105,12,40,80,0.7,-1,-1,-1",
             "5,9,300,12,40,80,0.7,-1,-1,-1"]

NUMBER = st.one_of(st.integers(-3, 60).map(str),
                   st.floats(-50, 400, allow_nan=False).map(lambda v: f"{v:.2f}"))
JUNK = st.sampled_from(["", "nan", "NaN", "inf", "-inf", "1.5", "0", "-1", "-7", "2.0", "1e9",
                        "3e9", "1e300", "99999999999999999999", "abc", "1_0", "0x10", "\u0663",
                        " 4 ", "+3", "é", "\x00", "1e", "--1", ".5", "4.", "NULL"])
SEPARATORS = st.sampled_from([",", ",", ",", ", ", "\t", " ", ";"])
ENDINGS = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r"])


@st.composite
def mot_bytes(draw, rows: list[str], small_frames: bool = False) -> bytes:
    """A MOT file: the given rows, sometimes mutated field by field and line by line."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.binary(max_size=80))
    lines = [r.split(",") for r in draw(st.lists(st.sampled_from(rows), max_size=8))]
    for fields in lines:
        for k in range(len(fields)):
            if draw(st.integers(0, 9)) == 0:
                fields[k] = draw(st.one_of(NUMBER, JUNK))
        if draw(st.integers(0, 14)) == 0:
            del fields[draw(st.integers(0, len(fields) - 1))]
        if draw(st.integers(0, 14)) == 0:
            fields.append(draw(NUMBER))
        if small_frames and fields and not _small(fields[0]):
            fields[0] = "1"  # the tracker steps through every frame up to the last
    sep = draw(SEPARATORS) if draw(st.integers(0, 4)) == 0 else ","
    text = []
    for fields in lines:
        line_sep = draw(SEPARATORS) if draw(st.integers(0, 19)) == 0 else sep
        text.append(line_sep.join(fields) + draw(ENDINGS))
        if draw(st.integers(0, 14)) == 0:
            text.append(draw(st.sampled_from(["\n", "  \n", "\t\r\n"])))
    data = "".join(text)
    if data and draw(st.booleans()):
        data = data.rstrip("\r\n")  # no newline at the end
    raw = data.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:
        raw = b"\xef\xbb\xbf" + raw
    return raw


def _small(field: str) -> bool:
    try:
        return abs(float(field)) < 1000
    except ValueError:
        return True


def expected_rows(raw: bytes, allow_empty: bool, unique_ids: bool):
    """The rows a reader of the rules keeps ((frame, id, score) each), or None for an error:
    every line has the first line's column count (>= 6), every field is an ASCII number; rows
    with a non-finite value or width/height <= 0 are dropped; frames are integers from 1, ids
    integers; with ``unique_ids`` an id at most once per frame."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = [ln for ln in text.split("\n") if ln and not ln.isspace()]
    if not lines:
        return [] if allow_empty else None
    sep = "," if "," in lines[0] else None
    ncols = len(lines[0].split(sep))
    if ncols < 6:
        return None
    rows = []
    for line in lines:
        fields = line.split(sep)
        if len(fields) != ncols:
            return None
        try:
            values = [float(f) for f in fields]
        except ValueError:
            return None
        if any("_" in f or not f.isascii() for f in fields):
            return None
        rows.append(values)
    kept = [r for r in rows if all(math.isfinite(v) for v in r) and r[4] > 0 and r[5] > 0]
    for r in kept:
        if r[0] != int(r[0]) or not 1 <= r[0] <= MAX_FRAME or r[1] != int(r[1]) \
                or abs(r[1]) > MAX_ID:
            return None
    keys = [(r[0], r[1]) for r in kept]
    if unique_ids and len(set(keys)) < len(keys):
        return None
    return [(int(r[0]), int(r[1]), r[6] if ncols > 6 else 1.0) for r in kept]


def assert_one_error_line(res, path) -> None:
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    lines = res.output.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("roadtrack: error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"roadtrack: error: {path}: "), res.output
    assert all(ln.startswith("roadtrack: warning: ") for ln in lines if ln != errors[0])


def write_gt_pred(root, gt: bytes, pred: bytes):
    (root / "gt" / "S").mkdir(parents=True, exist_ok=True)
    (root / "pred").mkdir(exist_ok=True)
    (root / "gt" / "S" / "gt.txt").write_bytes(gt)
    (root / "pred" / "S.txt").write_bytes(pred)
    return root / "gt" / "S" / "gt.txt", root / "pred" / "S.txt"


def run_eval(root):
    out = root / "m.json"
    out.unlink(missing_ok=True)
    res = CliRunner().invoke(main, ["eval", "mot", "--gt", str(root / "gt"), "--pred",
                                    str(root / "pred"), "--json", str(out)])
    return res, out


@settings()
@given(st.booleans(), st.data())
def test_eval_mot_on_broken_ground_truth_or_predictions(tmp_path_factory, broken_gt, data):
    root = tmp_path_factory.mktemp("fuzz")
    gt = data.draw(mot_bytes(GT_ROWS)) if broken_gt else "\n".join(GT_ROWS).encode()
    pred = "\n".join(PRED_ROWS).encode() if broken_gt else data.draw(mot_bytes(PRED_ROWS))
    gt_path, pred_path = write_gt_pred(root, gt, pred)
    gt_rows = expected_rows(gt, allow_empty=False, unique_ids=True)
    pred_rows = expected_rows(pred, allow_empty=True, unique_ids=True)
    res, out = run_eval(root)
    event("error" if gt_rows is None or pred_rows is None else "scored")
    if gt_rows is None or pred_rows is None:
        assert_one_error_line(res, gt_path if gt_rows is None else pred_path)
        assert not out.exists()
        return
    assert res.exit_code == 0, (res.output, res.exception)
    o = json.loads(out.read_text())["overall"]
    num_gt = sum(score != 0 for _, _, score in gt_rows)  # the 7th column 0: ignored
    found = num_gt - o["num_misses"]  # every gt row is either found or missed
    assert o["num_unique_objects"] == len({i for _, i, s in gt_rows if s != 0})
    assert found + o["num_false_positives"] == len(pred_rows)  # ... and every prediction row
    assert "OVERALL" in res.output


@settings()
@given(st.data())
def test_track_on_broken_detections(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("fuzz")
    raw = data.draw(mot_bytes(PRED_ROWS, small_frames=True))
    det = root / "S" / "det" / "det.txt"
    det.parent.mkdir(parents=True)
    det.write_bytes(raw)
    rows = expected_rows(raw, allow_empty=False, unique_ids=False)
    res = CliRunner().invoke(main, ["track", "--dets", str(det), "--out", str(root / "out"),
                                    "--no-progress"])
    event("error" if rows is None else "tracked")
    if rows is None:
        assert_one_error_line(res, det)
        assert not (root / "out").exists()
        return
    assert res.exit_code == 0, (res.output, res.exception)
    frames = int(re.search(r"tracked 1 sequence\(s\): (\d+) frames", res.output)[1])
    assert frames == max((f for f, _, _ in rows), default=0)  # stepped to the last frame
    assert (root / "out" / "S.txt").is_file()
