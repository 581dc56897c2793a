import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.io.artifacts import load_stage, save_stage
from roadtrack.io.mot import read_mot

ROOT = Path(__file__).resolve().parents[1]
SHARED_MOT = ROOT.parent / "shared" / "data" / "mot15-det"


def _objects(num_frames=20, n=3, seed=0):
    """Rows (frame, x1, y1, x2, y2, score, object) of n objects moving right."""
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(1, num_frames + 1):
        for k in range(n):
            x, y = 10 + 5 * f + 120 * k, 40 + 20 * k
            rows.append([f, x, y, x + 40, y + 90, rng.uniform(0.9, 1.0), k])
    return np.array(rows)


def _write_det(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{int(f)},-1,{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{s:.3f},-1,-1,-1"
             for f, x1, y1, x2, y2, s, _ in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _invoke(*args):
    return CliRunner().invoke(main, ["track", *map(str, args), "--no-progress"])


def test_track_a_det_file_writes_mot_text_and_a_closing_line(tmp_path):
    det = _write_det(tmp_path / "seqA" / "det" / "det.txt", _objects())
    res = _invoke("--dets", det, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "20 frames, 3 tracks" in res.output and "frames/s" in res.output
    out = read_mot(tmp_path / "out" / "seqA.txt")
    assert len(out) == 60 and set(out.ids.tolist()) == {1, 2, 3}
    for k in (1, 2, 3):  # each track keeps to one object (same y band)
        assert np.ptp(out.boxes_xywh[out.ids == k, 1]) < 1


def test_track_a_folder_of_sequences_with_a_preset(tmp_path):
    _write_det(tmp_path / "in" / "a" / "det" / "det.txt", _objects(10, 2))
    _write_det(tmp_path / "in" / "b" / "det" / "det.txt", _objects(12, 3))
    res = _invoke("--dets", tmp_path / "in", "--out", tmp_path / "out", "--config", "sort")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "b.txt",
                                                                    "tracker.yaml"]
    assert "2 sequence(s): 22 frames, 5 tracks" in res.output and "[sort]" in res.output
    # the saved settings reproduce the run
    first = (tmp_path / "out" / "b.txt").read_text()
    res = _invoke("--dets", tmp_path / "in", "--out", tmp_path / "again", "--config",
                  tmp_path / "out" / "tracker.yaml")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "again" / "b.txt").read_text() == first


def _write_run(run: Path, video="vid1", num_frames=15, classes=None, dim=8):
    rows = _objects(num_frames)
    n = len(rows)
    rng = np.random.default_rng(1)
    agent = np.full((n, 4), 0.1, dtype=np.float32)
    agent[np.arange(n), rows[:, 6].astype(int) if classes is None else classes] = 0.9
    identity = rng.normal(size=(3, dim))
    save_stage(run, "detections", video, frames=rows[:, 0].astype(np.int32),
               boxes=rows[:, 1:5].astype(np.float32), scores=rows[:, 5].astype(np.float32),
               agent=agent, action=rng.random((n, 5)).astype(np.float32),
               loc=rng.random((n, 2)).astype(np.float32),
               embeddings=identity[rows[:, 6].astype(int)].astype(np.float16),
               width=640, height=480, fps=25.0)
    return rows


def test_track_a_run_folder_writes_track_artifacts_that_map_back(tmp_path):
    run = tmp_path / "run"
    _write_run(run)
    res = _invoke("--dets", run, "--out", tmp_path / "mot", "--per-class")
    assert res.exit_code == 0, res.output
    dets = load_stage(run, "detections", "vid1")
    tracks = load_stage(run, "tracks", "vid1")
    idx = tracks["det_index"]
    assert len(idx) == len(dets["frames"]) == 45
    for field in ("frames", "boxes", "scores", "agent", "action", "loc", "embeddings"):
        np.testing.assert_array_equal(tracks[field], dets[field][idx])
    assert int(tracks["width"]) == 640 and float(tracks["fps"]) == 25.0
    agent_class = dets["agent"].argmax(axis=1)[idx]
    for tid in np.unique(tracks["track_ids"]):  # per-class: one class per track
        assert len(set(agent_class[tracks["track_ids"] == tid].tolist())) == 1
    assert len(read_mot(tmp_path / "mot" / "vid1.txt")) == 45


def test_per_class_splits_a_track_whose_class_flips(tmp_path):
    run = tmp_path / "run"
    rows = _objects(15)
    flip = np.where((rows[:, 6] == 0) & (rows[:, 0] > 8), 3, rows[:, 6]).astype(int)
    _write_run(run, classes=flip)
    for flag, expected in (("--per-class", 4), ("--any-class", 3)):
        res = _invoke("--dets", run, "--out", tmp_path / "mot", flag)
        assert res.exit_code == 0, res.output
        assert len(np.unique(load_stage(run, "tracks", "vid1")["track_ids"])) == expected


def test_rows_with_nan_and_no_area_are_skipped_with_a_warning(tmp_path):
    det = _write_det(tmp_path / "s" / "det" / "det.txt", _objects(10, 2))
    lines = det.read_text().splitlines()
    lines[3] = "2,-1,nan,40,40,90,0.9,-1,-1,-1"
    lines[5] = "3,-1,10,40,0,90,0.9,-1,-1,-1"
    lines[7] = "4,-1,10,40,inf,90,0.9,-1,-1,-1"
    det.write_text("\n".join(lines) + "\n")
    res = _invoke("--dets", det, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "warning" in res.output and "skipped 3 rows" in res.output
    # 17 rows left; object 2's lone frame-1 row starts a track that never gets confirmed
    assert len(read_mot(tmp_path / "out" / "s.txt")) == 16


def test_frames_out_of_order_are_fine(tmp_path):
    rows = _objects(10, 2)
    det = _write_det(tmp_path / "s" / "det" / "det.txt", rows[::-1])
    res = _invoke("--dets", det, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "10 frames, 2 tracks" in res.output


@pytest.mark.parametrize("content, message", [
    ("", "MOT file is empty"),
    ("1,-1,10,20,30\n", "fewer than 6 columns"),
    ("1,-1,10,20,30,abc,1\n", "not numeric"),
    ("0,-1,10,20,30,40,1\n", "frame numbers must be integers >= 1"),
    ("1.5,-1,10,20,30,40,1\n", "line 1: frame numbers must be integers >= 1, not 1.5"),
    ("1,-1,10,20,30,40,0.9,-1,-1,-1\n2,-1,10,20,30,40\n",
     "line 2: 6 column(s) where line 1 has 10"),
])
def test_broken_det_files_fail_with_one_line_and_write_nothing(tmp_path, content, message):
    det = tmp_path / "s" / "det" / "det.txt"
    det.parent.mkdir(parents=True)
    det.write_text(content)
    res = _invoke("--dets", det, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert message in res.output and str(det) in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_one_broken_sequence_stops_the_folder_before_anything_is_written(tmp_path):
    _write_det(tmp_path / "in" / "a" / "det" / "det.txt", _objects(5, 1))
    bad = tmp_path / "in" / "b" / "det" / "det.txt"
    bad.parent.mkdir(parents=True)
    bad.write_text("")
    res = _invoke("--dets", tmp_path / "in", "--out", tmp_path / "out")
    assert res.exit_code == 2 and "MOT file is empty" in res.output
    assert not (tmp_path / "out").exists()


def test_broken_run_folder_artifacts(tmp_path):
    run = tmp_path / "run"
    (run / "detections").mkdir(parents=True)
    (run / "detections" / "v.npz").write_bytes(b"not a zip")
    res = _invoke("--dets", run, "--out", tmp_path / "out")
    assert res.exit_code == 2 and "corrupt artifact" in res.output
    np.savez(run / "detections" / "v.npz", frames=np.array([1]))
    res = _invoke("--dets", run, "--out", tmp_path / "out")
    assert res.exit_code == 2 and "lacks fields" in res.output
    assert not (run / "tracks").exists()


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "no such file or folder"),
    (lambda p: p.mkdir(), "found neither"),
    (lambda p: (p / "detections").mkdir(parents=True), "no detections/<video>.npz"),
])
def test_inputs_that_are_not_detections(tmp_path, setup, message):
    path = tmp_path / "in"
    setup(path)
    res = _invoke("--dets", path, "--out", tmp_path / "out")
    assert res.exit_code == 2 and message in res.output


def test_bad_config_is_one_line(tmp_path):
    det = _write_det(tmp_path / "s" / "det" / "det.txt", _objects(5, 1))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("max_agee: 3\n")
    res = _invoke("--dets", det, "--out", tmp_path / "out", "--config", cfg)
    assert res.exit_code == 2 and "unknown tracker config keys: max_agee" in res.output
    res = _invoke("--dets", det, "--out", tmp_path / "out", "--config", "nope")
    assert res.exit_code == 2 and "no tracker preset 'nope'" in res.output


def test_track_command_imports_no_torch_pandas_scipy(tmp_path):
    det = _write_det(tmp_path / "s" / "det" / "det.txt", _objects(5, 1))
    code = ("import sys; from roadtrack.cli import main\n"
            "try:\n    main(['track', '--dets', sys.argv[1], '--out', sys.argv[2]])\n"
            "except SystemExit:\n    pass\n"
            "heavy = {'torch', 'pandas', 'scipy', 'filterpy', 'motmetrics', 'cv2', 'matplotlib'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code, str(det), str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "out" / "s.txt").exists()


@pytest.mark.skipif(not SHARED_MOT.is_dir(), reason="shared MOT15 detections not present")
def test_real_mot15_sequence(tmp_path):
    det = SHARED_MOT / "KITTI-17" / "det" / "det.txt"
    res = _invoke("--dets", det, "--out", tmp_path)
    assert res.exit_code == 0, res.output
    out = read_mot(tmp_path / "KITTI-17.txt")
    src = read_mot(det)
    assert 0 < len(out) <= len(src)
    for f in np.unique(out.frames):  # one row per track per frame
        ids = out.ids[out.frames == f]
        assert len(ids) == len(set(ids.tolist()))


def test_run_folder_with_an_empty_video_and_bad_frames(tmp_path):
    run = tmp_path / "run"
    save_stage(run, "detections", "empty", frames=np.zeros(0, np.int32),
               boxes=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
               agent=np.zeros((0, 4), np.float32), action=np.zeros((0, 5), np.float32),
               loc=np.zeros((0, 2), np.float32), embeddings=np.zeros((0, 0), np.float16),
               width=640, height=480, fps=25.0)
    res = _invoke("--dets", run, "--out", tmp_path / "mot")
    assert res.exit_code == 0, res.output
    assert len(load_stage(run, "tracks", "empty")["track_ids"]) == 0
    assert (tmp_path / "mot" / "empty.txt").read_text() == ""
    _write_run(run, "zbad")  # sorted after "empty": checked before anything is written
    data = dict(np.load(run / "detections" / "zbad.npz"))
    data["frames"] = data["frames"] - 1  # frame 0 appears
    save_stage(run, "detections", "zbad", **data)
    res = _invoke("--dets", run, "--out", tmp_path / "mot2")
    assert res.exit_code == 2 and "zbad.npz: frame numbers must be integers >= 1" in res.output
    assert not (tmp_path / "mot2").exists()
