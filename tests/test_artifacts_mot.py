import numpy as np
import pytest

from roadtrack.errors import UserError
from roadtrack.io.artifacts import (finished_videos, load_events, load_stage, save_events,
                                    save_stage)
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
