"""`roadtrack eval mot`: motmetrics' own expected TUD values, HOTA, ROAD++ runs, bad files."""
import json
import shutil
from pathlib import Path

import motmetrics
import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.eval.mot import Sequence, evaluate_sequences
from roadtrack.io.annotations import load_annotation
from roadtrack.io.artifacts import save_stage

from .road_helpers import annotation, moving_object, write_json

DATA = Path(motmetrics.__file__).parent / "data"
METRICS = ["idf1", "idp", "idr", "recall", "precision", "num_unique_objects", "mostly_tracked",
           "partially_tracked", "mostly_lost", "num_false_positives", "num_misses",
           "num_switches", "num_fragmentations", "mota", "motp"]
# motmetrics/tests/test_metrics.py::test_motchallenge_files (motmetrics 1.4.0), rows
# TUD-Campus, TUD-Stadtmitte, OVERALL, for the 15 metrics above
EXPECTED = [
    [0.557659, 0.729730, 0.451253, 0.582173, 0.941441, 8, 1, 6, 1, 13, 150, 7, 7, 0.526462,
     0.277201],
    [0.644619, 0.819760, 0.531142, 0.608997, 0.939920, 10, 5, 4, 1, 45, 452, 7, 6, 0.564014,
     0.345904],
    [0.624296, 0.799176, 0.512211, 0.602640, 0.940268, 18, 6, 10, 2, 58, 602, 14, 13, 0.555116,
     0.330177],
]


def test_tud_sequences_reproduce_motmetrics_expected_values(tmp_path):
    out = tmp_path / "mot.json"
    result = CliRunner().invoke(main, ["eval", "mot", "--gt", str(DATA), "--pred", str(DATA),
                                       "--video", "TUD-Campus,TUD-Stadtmitte",
                                       "--pred-name", "test.txt", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    rows = [data["sequences"]["TUD-Campus"], data["sequences"]["TUD-Stadtmitte"],
            data["overall"]]
    for row, expected in zip(rows, EXPECTED, strict=True):
        for name, value in zip(METRICS, expected, strict=True):
            if isinstance(value, int):
                assert row[name] == value, name
            else:
                assert row[name] == pytest.approx(value, abs=5e-7), name
        assert 0 < row["hota"] < 1 and 0 < row["deta"] < 1 and 0 < row["assa"] < 1
    assert "OVERALL" in result.output and "TUD-Campus" in result.output


def test_folder_layouts_gt_subfolder_and_seq_txt(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    (gt / "TUD-Campus" / "gt").mkdir(parents=True)
    pred.mkdir()
    shutil.copy(DATA / "TUD-Campus" / "gt.txt", gt / "TUD-Campus" / "gt" / "gt.txt")
    shutil.copy(DATA / "TUD-Campus" / "test.txt", pred / "TUD-Campus.txt")
    out = tmp_path / "m.json"
    result = CliRunner().invoke(main, ["eval", "mot", "--gt", str(gt), "--pred", str(pred),
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert list(data["sequences"]) == ["TUD-Campus"]
    assert data["overall"]["mota"] == pytest.approx(EXPECTED[0][13], abs=5e-7)


def test_perfect_and_swapped_tracks():
    frames = np.repeat(np.arange(1, 21), 2)
    ids = np.tile([1, 2], 20)
    boxes = np.stack([np.where(ids == 1, 10.0, 300.0) + frames, np.full(40, 50.0),
                      np.where(ids == 1, 110.0, 400.0) + frames, np.full(40, 150.0)], 1)
    perfect = evaluate_sequences({"s": Sequence(frames, ids, boxes, frames, ids + 7, boxes)})
    assert perfect["overall"]["mota"] == 1.0 and perfect["overall"]["idf1"] == 1.0
    assert perfect["overall"]["hota"] == pytest.approx(1.0)
    swapped = np.where(frames > 10, 3 - ids, ids)  # identities swap half way
    result = evaluate_sequences({"s": Sequence(frames, ids, boxes, frames, swapped, boxes)})
    assert result["overall"]["num_switches"] == 2
    assert result["overall"]["idf1"] == pytest.approx(0.5)
    assert result["overall"]["assa"] < 0.75 and result["overall"]["deta"] == pytest.approx(1.0)


def test_road_run_tracks_per_video_and_class(tmp_path):
    objects = [moving_object("a", 1, 20), moving_object("b", 3, 18, x=0.5, agent="Ped",
                                                        action="Wait2X", loc="Pav")]
    anno_path = write_json(tmp_path / "anno.json",
                           annotation({"v1": {"numf": 20, "objects": objects,
                                              "unannotated": [5, 6]}}))
    anno = load_annotation(anno_path)
    video = anno.videos["v1"]
    n = video.num_boxes
    extra = np.array([5])  # a track row in an unannotated frame must not count
    rows = np.r_[np.arange(n), np.flatnonzero(video.frames == 4)[:1]]
    frames = np.r_[video.frames, extra]
    run = tmp_path / "run"
    save_stage(run, "tracks", "v1", frames=frames,
               boxes=(video.boxes[rows] * [1920, 1280, 1920, 1280]).astype(np.float32),
               scores=np.ones(len(rows), np.float32),
               agent=video.labels["agent"][rows].astype(np.float32),
               action=video.labels["action"][rows].astype(np.float32),
               loc=video.labels["loc"][rows].astype(np.float32),
               embeddings=np.zeros((len(rows), 0), np.float16), width=1920, height=1280,
               fps=10.0, track_ids=video.track_ids[rows] + 100, det_index=np.arange(len(rows)))
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["eval", "mot", "--anno", str(anno_path), "--run",
                                       str(run), "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["overall"]["mota"] == 1.0 and data["overall"]["num_unique_objects"] == 2
    assert set(data["classes"]) == {"Car", "Ped"}
    assert data["classes"]["Ped"]["idf1"] == 1.0
    assert data["sequences"]["v1"]["num_false_positives"] == 0


def test_missing_column_and_missing_files_give_one_line(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    (gt / "S1").mkdir(parents=True)
    pred.mkdir()
    (gt / "S1" / "gt.txt").write_text("1,1,10,10,50,50,1,-1,-1,-1\n")
    (pred / "S1.txt").write_text("1,1,10,10,50\n")
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "mot", "--gt", str(gt), "--pred", str(pred)])
    assert result.exit_code == 2 and "S1.txt: line 1: fewer than 6 columns" in result.output
    (pred / "S1.txt").unlink()
    result = runner.invoke(main, ["eval", "mot", "--gt", str(gt), "--pred", str(pred)])
    assert result.exit_code == 2 and "no predictions for sequence 'S1'" in result.output
    result = runner.invoke(main, ["eval", "mot", "--gt", str(gt)])
    assert result.exit_code == 2 and "--gt and --pred" in result.output
    assert "Traceback" not in result.output
