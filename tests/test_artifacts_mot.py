import re

import numpy as np
import pytest

from roadtrack.errors import UserError
from roadtrack.io.artifacts import finished_videos, load_events, load_stage, save_events, save_stage
from roadtrack.io.mot import read_mot, write_mot


def _detections(n=5):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (n, 2)).astype(np.float32)
    return dict(frames=np.arange(1, n + 1, dtype=np.int32),
                boxes=np.concatenate([xy, xy + 10], axis=1), scores=rng.random(n, np.float32),
                agent=rng.random((n, 10), np.float32), action=rng.random((n, 22), np.float32),
                loc=rng.random((n, 16), np.float32), embeddings=np.zeros((n, 0), np.float16),
                width=420, height=300, fps=10.0)


def test_stage_artifacts_round_trip_and_list_finished(tmp_path):
    dets = _detections()
    save_stage(tmp_path, "detections", "v1", **dets)
    back = load_stage(tmp_path, "detections", "v1")
    for key, value in dets.items():
        assert np.array_equal(back[key], np.asarray(value))
    save_events(tmp_path, "v1", {"tracks": []})
    assert load_events(tmp_path, "v1") == {"tracks": []}
    assert finished_videos(tmp_path, "detections") == ["v1"]
    assert not list((tmp_path / "detections").glob(".*"))  # no temporary files left


def test_incomplete_and_corrupt_artifacts(tmp_path):
    dets = _detections()
    del dets["scores"]
    with pytest.raises(ValueError):
        save_stage(tmp_path, "detections", "v1", **dets)
    assert finished_videos(tmp_path, "detections") == []
    (tmp_path / "detections").mkdir(exist_ok=True)
    (tmp_path / "detections" / "v2.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(UserError, match="corrupt artifact"):
        load_stage(tmp_path, "detections", "v2")
    ragged = _detections()
    ragged["scores"] = ragged["scores"][:3]
    from roadtrack.io.artifacts import save_arrays
    save_arrays(tmp_path / "detections" / "v3.npz", **ragged)
    with pytest.raises(UserError, match="rows"):
        load_stage(tmp_path, "detections", "v3")


def test_mot_round_trip(tmp_path):
    frames = np.array([1, 1, 2, 3])
    ids = np.array([1, 2, 1, 1])
    boxes = np.array([[10, 20, 30, 40], [50, 60, 5, 6], [11, 21, 30, 40], [12, 22, 30, 40.5]])
    write_mot(tmp_path / "t.txt", frames, ids, boxes, np.array([0.9, 0.8, 0.7, 0.6]))
    table = read_mot(tmp_path / "t.txt")
    assert table.frames.tolist() == frames.tolist() and table.ids.tolist() == ids.tolist()
    assert np.allclose(table.boxes_xywh, boxes)
    assert np.allclose(table.boxes_xyxy[1], [50, 60, 55, 66])


@pytest.mark.parametrize("text,expected", [
    ("", "empty"),
    ("1,-1,10,20,30\n", "fewer than 6 columns"),
    ("1,-1,a,b,c,d,1\n", "not numeric"),
])
def test_bad_mot_files(tmp_path, text, expected):
    path = tmp_path / "det.txt"
    path.write_text(text)
    with pytest.raises(UserError, match=expected) as err:
        read_mot(path)
    assert str(path) in str(err.value)


def test_bad_rows_are_dropped_with_a_counted_warning(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("2,-1,1,1,5,5,0.9\n1,-1,nan,1,5,5,0.9\n1,-1,1,1,0,5,0.9\n1,-1,3,3,4,4,0.5\n")
    with pytest.warns(UserWarning, match="skipped 2 rows"):
        table = read_mot(path)
    assert table.frames.tolist() == [1, 2]  # sorted by frame


def test_a_line_with_another_column_count_is_an_error_naming_it(tmp_path):
    # the column count was the minimum over lines: one 6-column line cut every score to 1.0
    path = tmp_path / "det.txt"
    path.write_text("1,-1,1,1,5,5,0.3,-1,-1,-1\n2,-1,1,1,5,5,0.4,-1,-1,-1\n3,-1,1,1,5,5\n")
    with pytest.raises(UserError, match="line 3: 6 column.s. where line 1 has 10") as err:
        read_mot(path)
    assert str(path) in str(err.value)
    path.write_text("1,-1,1,1,5,5,0.3\n\n2,-1,1,1,5,5,0.4,-1\n")  # a longer line too
    with pytest.raises(UserError, match="line 3: 8 column.s. where line 1 has 7"):
        read_mot(path)
    path.write_text("1 -1 1 1 5 5 0.3\n2,-1,1,1,5,5,0.4\n")  # separators mixed
    with pytest.raises(UserError, match="line 2: 1 column.s. where line 1 has 7"):
        read_mot(path)


@pytest.mark.parametrize("text,expected", [
    ("1,-1,1,1,5,5,1\n1.5,-1,1,1,5,5,1\n", "line 2: frame numbers must be integers >= 1, not 1.5"),
    ("0,-1,1,1,5,5,1\n", "line 1: frame numbers must be integers >= 1, not 0"),
    ("-3,-1,1,1,5,5,1\n", "line 1: frame numbers must be integers >= 1, not -3"),
    ("3e9,-1,1,1,5,5,1\n", "line 1: frame numbers must be integers <= 2147483647"),
    ("1,2.5,1,1,5,5,1\n", "line 1: ids must be integers"),
    ("1,1e300,1,1,5,5,1\n", "line 1: ids must be integers"),
    ("1,-1,1,1,5,5,1\n\n\n2,-1,1,x,5,5,1\n", "line 4, column 4: not numeric"),
    ("1,-1,1,1,5,5,1,\n", "line 1, column 8: not numeric"),
    ("1,-1,1,1,5,5,1\n\xff\xfe\x00garbage\n", "line 2: not text"),
])
def test_frames_and_ids_must_be_integers_and_fields_numbers(tmp_path, text, expected):
    path = tmp_path / "gt.txt"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(UserError, match=re.escape(expected)) as err:
        read_mot(path)
    assert str(err.value).startswith(str(path))


def test_zero_based_frames_are_shifted_when_asked(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,7,1,1,5,5,1\n0,7,2,2,5,5,1\n")
    table = read_mot(path, first_frame=0)
    assert table.frames.tolist() == [1, 2] and table.lines.tolist() == [2, 1]
    assert table.boxes_xywh[:, 0].tolist() == [2, 1]
    path.write_text("0,7,2,2,5,5,1\n-1,7,2,2,5,5,1\n")
    with pytest.raises(UserError, match="line 2: frame numbers must be integers >= 0"):
        read_mot(path, first_frame=0)


def test_blank_lines_bom_whitespace_and_crlf(tmp_path):
    path = tmp_path / "det.txt"
    path.write_bytes(b"\xef\xbb\xbf3,-1,1,1,5,5,0.5\r\n\r\n  \n1,-1,2,2,6,6,0.25\r\n")
    table = read_mot(path)
    assert table.frames.tolist() == [1, 3] and table.lines.tolist() == [4, 1]
    assert table.scores.tolist() == [0.25, 0.5]
    path.write_text("1 -1 1 1 5 5 0.5\n2\t-1\t1\t1\t5\t5\t0.5\n")
    assert read_mot(path).frames.tolist() == [1, 2]
    path.write_text("\n \n")
    with pytest.raises(UserError, match="MOT file is empty"):
        read_mot(path)
    assert len(read_mot(path, allow_empty=True)) == 0


def test_large_file_is_read_in_blocks(tmp_path, monkeypatch):
    from roadtrack.io import mot

    monkeypatch.setattr(mot, "CHUNK_BYTES", 64)  # many blocks, lines cut across them
    rows = [f"{f},{f % 3},{f}.5,2,5,5,0.{f}" for f in range(1, 200)]
    path = tmp_path / "gt.txt"
    path.write_text("\n".join(rows))  # no newline at the end
    table = read_mot(path)
    assert table.frames.tolist() == list(range(1, 200))
    assert table.lines.tolist() == list(range(1, 200))
    assert table.boxes_xywh[-1, 0] == 199.5
    path.write_text("\n".join(rows[:150] + ["150,1,1,1,5"] + rows[151:]))
    with pytest.raises(UserError, match="line 151: 5 column"):
        read_mot(path)
    path.write_bytes(b"1" * 200)  # no newline at all
    with pytest.raises(UserError, match="line longer than"):
        read_mot(path)


def test_a_lone_carriage_return_ends_a_line(tmp_path):
    # loadtxt splits lines at \r: counted as a line break here too, so rows keep their lines
    path = tmp_path / "det.txt"
    path.write_bytes(b"1 -1 1 1 5 5\r2 -1 1 1 5 5\n3 -1 1 1 5 5")
    table = read_mot(path)
    assert table.frames.tolist() == [1, 2, 3] and table.lines.tolist() == [1, 2, 3]


def test_whitespace_file_checks_lines_after_the_first_block(tmp_path, monkeypatch):
    # found by tests/test_fuzz_mot.py: the separator None (whitespace) read as "not set yet",
    # so each block re-took its own first line's column count (a traceback, exit 1)
    from roadtrack.io import mot

    monkeypatch.setattr(mot, "CHUNK_BYTES", 16)
    path = tmp_path / "det.txt"
    path.write_text("1\t1\t10\t10\t40\t9\t1\n2\t1\t\t10\t40\t9.00000\n")  # 2 fields short
    with pytest.raises(UserError, match="line 2: 5 column.s. where line 1 has 7"):
        read_mot(path)
