"""`roadtrack eval mot` on files from others: frames and ids checked per line (or --zero-based),
ragged files, an id twice in a frame, empty predictions, warnings as one line each."""
import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.io.annotations import load_annotation
from roadtrack.io.artifacts import save_stage

from .road_helpers import annotation, moving_object, write_json

GT = ["1,1,10,10,50,80,1,1,1", "1,2,200,10,50,80,1,1,1", "2,1,12,10,50,80,1,1,1",
      "2,2,203,10,50,80,1,1,1", "3,1,14,10,50,80,1,1,1", "3,2,206,10,50,80,1,1,1"]
PRED = ["1,5,11,10,50,80,0.9,-1,-1,-1", "1,6,201,11,50,80,0.8,-1,-1,-1",
        "2,5,13,10,50,80,0.9,-1,-1,-1", "3,5,15,10,50,80,0.9,-1,-1,-1",
        "3,6,205,12,50,80,0.7,-1,-1,-1"]


def write_case(root: Path, gt: list[str], pred: list[str]) -> tuple[Path, Path]:
    (root / "gt" / "S1").mkdir(parents=True, exist_ok=True)
    (root / "pred").mkdir(exist_ok=True)
    (root / "gt" / "S1" / "gt.txt").write_text("\n".join(gt) + "\n")
    (root / "pred" / "S1.txt").write_text("\n".join(pred) + ("\n" if pred else ""))
    return root / "gt", root / "pred"


def run(gt: Path, pred: Path, *extra):
    out = gt.parent / "m.json"
    res = CliRunner().invoke(main, ["eval", "mot", "--gt", str(gt), "--pred", str(pred),
                                    "--json", str(out), *extra])
    return res, (json.loads(out.read_text()) if res.exit_code == 0 else None)


def shift(lines: list[str], by: int) -> list[str]:
    return [",".join([str(int(ln.split(",")[0]) + by)] + ln.split(",")[1:]) for ln in lines]


def one_error_line(res, *parts: str) -> None:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roadtrack: error: "), res.output
    for part in parts:
        assert part in lines[0], (part, lines[0])


def test_fractional_and_zero_frames_are_errors_in_either_file(tmp_path):
    gt, pred = write_case(tmp_path, GT, PRED[:2] + ["2.5,5,13,10,50,80,0.9,-1,-1,-1"] + PRED[3:])
    res, _ = run(gt, pred)  # 2.5 was read as frame 2
    one_error_line(res, str(pred / "S1.txt"), "line 3: frame numbers must be integers >= 1, "
                                              "not 2.5")
    gt, pred = write_case(tmp_path, shift(GT, -1), PRED)  # a 0-based gt was shifted silently
    res, _ = run(gt, pred)
    one_error_line(res, str(gt / "S1" / "gt.txt"), "line 1: frame numbers must be integers >= 1,"
                                                   " not 0", "--zero-based")


def test_zero_based_files_score_as_their_one_based_twins(tmp_path):
    _, one = run(*write_case(tmp_path / "a", GT, PRED))
    res, zero = run(*write_case(tmp_path / "b", shift(GT, -1), shift(PRED, -1)), "--zero-based")
    assert res.exit_code == 0, res.output
    assert zero == one and one["overall"]["num_switches"] == 0
    assert one["overall"]["num_false_positives"] == 0 and one["overall"]["num_misses"] == 1
    res, _ = run(*write_case(tmp_path / "c", GT, shift(PRED, -1)[:1] + ["-1,5,1,1,5,5,1,-1,-1,-1"]),
                 "--zero-based")
    one_error_line(res, "S1.txt", "line 2: frame numbers must be integers >= 0, not -1")


def test_ragged_files_and_non_integer_ids(tmp_path):
    gt, pred = write_case(tmp_path, GT, PRED[:3] + ["3,5,15,10,50,80"] + PRED[4:])
    res, _ = run(gt, pred)  # every score became 1.0 and the file was scored
    one_error_line(res, "S1.txt", "line 4: 6 column(s) where line 1 has 10")
    gt, pred = write_case(tmp_path, GT[:1] + ["1,2.5,200,10,50,80,1,1,1"] + GT[2:], PRED)
    res, _ = run(gt, pred)
    one_error_line(res, "gt.txt", "line 2: ids must be integers")


def test_an_id_twice_in_a_frame_is_an_error_naming_both_lines(tmp_path):
    gt, pred = write_case(tmp_path, GT, PRED + ["1,5,300,10,50,80,0.5,-1,-1,-1"])
    res, _ = run(gt, pred)
    one_error_line(res, "S1.txt", "lines 1 and 6: id 5 twice in frame 1")


def test_an_empty_prediction_file_scores_every_object_missed(tmp_path):
    res, data = run(*write_case(tmp_path, GT, []))  # was "MOT file is empty"
    assert res.exit_code == 0, res.output
    assert data["overall"]["num_misses"] == 6 and data["overall"]["mota"] == 0.0
    assert data["overall"]["hota"] == 0.0


def test_skipped_rows_warn_in_one_line_each(tmp_path):
    res, data = run(*write_case(tmp_path, GT + ["4,1,nan,10,50,80,1,1,1"], PRED))
    assert res.exit_code == 0, res.output
    warnings = [ln for ln in res.output.splitlines() if ln.startswith("roadtrack: warning: ")]
    assert len(warnings) == 1 and "gt.txt: skipped 1 rows" in warnings[0]
    assert "(first at line 7)" in warnings[0]
    assert data["overall"]["num_misses"] == 1


def _road_case(tmp_path, repeat_gt=False, repeat_track=False):
    tmp_path.mkdir()
    data = annotation({"v1": {"numf": 6, "objects": [moving_object("a", 1, 6)]}})
    frame = data["db"]["v1"]["frames"]["3"]["annos"]
    if repeat_gt:  # a second box of tube "a" in frame 3
        frame["a_3b"] = dict(frame["a_3"], box=[0.5, 0.5, 0.6, 0.6])
    anno_path = write_json(tmp_path / "anno.json", data)
    video = load_annotation(anno_path).videos["v1"]
    rows = np.flatnonzero(video.boxes[:, 0] < 0.4)  # the moving object's boxes
    frames, ids = video.frames[rows], video.track_ids[rows] + 1
    if repeat_track:
        frames, ids, rows = np.r_[frames, frames[:1]], np.r_[ids, ids[:1]], np.r_[rows, rows[:1]]
    n = len(rows)
    save_stage(tmp_path / "run", "tracks", "v1", frames=frames.astype(np.int32),
               boxes=(video.boxes[rows] * [1920, 1280, 1920, 1280]).astype(np.float32),
               scores=np.ones(n, np.float32),
               agent=video.labels["agent"][rows].astype(np.float32),
               action=video.labels["action"][rows].astype(np.float32),
               loc=video.labels["loc"][rows].astype(np.float32),
               embeddings=np.zeros((n, 0), np.float16), width=1920, height=1280, fps=10.0,
               track_ids=ids.astype(np.int32), det_index=np.arange(n))
    return CliRunner().invoke(main, ["eval", "mot", "--anno", str(anno_path), "--run",
                                     str(tmp_path / "run")])


def test_road_runs_repeated_tube_warns_and_repeated_track_fails(tmp_path):
    res = _road_case(tmp_path / "a", repeat_gt=True)
    assert res.exit_code == 0, res.output
    assert "roadtrack: warning: " in res.output and "1 boxes repeat a tube_uid" in res.output
    assert "100.00" in res.output  # the first box of the tube is scored: a perfect track
    res = _road_case(tmp_path / "b", repeat_track=True)
    one_error_line(res, "v1.npz", "a track_id appears twice in one frame")
    res = CliRunner().invoke(main, ["eval", "mot", "--anno", "x.json", "--run", "r",
                                    "--zero-based"])
    one_error_line(res, "--zero-based is for --gt/--pred files")
    res = CliRunner().invoke(main, ["eval", "mot", "--gt", "g", "--pred", "p", "--split", "val"])
    one_error_line(res, "--split is for --anno runs; with --gt/--pred give --video")
