"""`roadtrack validate`: every rule of ROADPP.md section 4, all problems at once."""
import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.eval.submission import check_submission, check_tube, screen_tubes
from roadtrack.labels import roadpp

from .road_helpers import annotation, moving_object, write_json, write_pickle


def good_tube(label=1, first=3, n=5):
    frames = np.arange(first, first + n)
    boxes = np.tile([10.0, 20.0, 110.0, 220.0], (n, 1))
    return {"label_id": label, "score": 0.7, "frames": frames, "boxes": boxes,
            "scores": np.full(n, 0.7)}


@pytest.fixture()
def anno(tmp_path):
    return write_json(tmp_path / "anno.json", annotation({
        "v1": {"numf": 10, "objects": [moving_object("a", 1, 10)]},
        "v2": {"numf": 10, "split": "train"}}))


def run(*args):
    return CliRunner().invoke(main, ["validate", *map(str, args)])


def test_valid_submission_with_lists_or_arrays(tmp_path, anno):
    as_lists = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in good_tube().items()}
    sub = {"agent": {"v1": [good_tube(), as_lists], "v2": []}, "triplet": {"v1": [], "v2": []}}
    result = run(write_pickle(tmp_path / "s.pkl", sub), "--anno", anno)
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "2 tubes" in result.output
    videos = tmp_path / "videos.txt"
    videos.write_text("v1\n\n")
    result = run(tmp_path / "s.pkl", "--videos", videos)
    assert result.exit_code == 0, result.output
    assert "not evaluated" in result.output  # v2 is not in the list: a warning only


BROKEN = [
    ({"label_id": 10}, "label_id 10 outside 0..9"),
    ({"label_id": 1.0}, "label_id 1.0 is not an integer"),
    ({"score": float("nan")}, "score nan is not finite"),
    ({"score": "high"}, "score 'high' is not a number"),
    ({"frames": np.arange(0, 5)}, "frame 0 is not 1-based"),
    ({"frames": np.array([3, 4, 6, 7, 8])}, "not contiguous (gap after frame 4)"),
    ({"frames": np.array([3, 5, 4, 6, 7])}, "not sorted and unique"),
    ({"frames": np.array([3.5, 4, 5, 6, 7])}, "not whole numbers"),
    ({"frames": np.arange(3, 7)}, "5 boxes for 4 frames"),
    ({"boxes": [[1, 2, 3, 4], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]},
     "boxes is not an (n, 4) numeric array"),
    ({"boxes": np.tile([10.0, 20.0, np.nan, 220.0], (5, 1))}, "NaN or infinite"),
    ({"boxes": np.tile([110.0, 20.0, 10.0, 220.0], (5, 1))}, "without x1 < x2 and y1 < y2"),
    ({"boxes": np.tile([10.0, 20.0, 900.0, 220.0], (5, 1))}, "outside the 840x600 frame"),
    ({"scores": np.full(4, 0.5)}, "4 per-frame scores for 5 frames"),
    ({"frames": np.array([], dtype=int), "boxes": np.zeros((0, 4))}, "has no frames"),
]


@pytest.mark.parametrize("change,message", BROKEN)
def test_each_rule(change, message):
    tube = {**good_tube(), **change}
    problems = check_tube(tube, 10, (840, 600))
    assert any(message in p for p in problems), problems
    assert screen_tubes([good_tube(), tube], 10, (840, 600)) == [1]


def test_screen_passes_valid_tubes_and_allows_gaps_when_asked():
    tubes = [good_tube(), good_tube(first=1, n=1), {**good_tube(), "frames": [1, 2, 5, 6, 9]}]
    assert screen_tubes(tubes, 10, (840, 600)) == [2]
    assert screen_tubes(tubes, 10, (840, 600), require_contiguous=False) == []


def test_all_problems_at_once_and_exit_code(tmp_path, anno):
    sub = {"agent": {"v1": [good_tube(label=99), {**good_tube(), "score": np.inf},
                            "not a tube", {"label_id": 1}]},
           "triplet": {"v1": (), "v2": {"a": 1}}, "events": {}}
    result = run(write_pickle(tmp_path / "s.pkl", sub), "--anno", anno)
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    expected = ["unknown label type 'events'", "agent: 1 videos missing: v2",
                "agent/v1 tube 0: label_id 99 outside", "agent/v1 tube 1: score inf",
                "agent/v1 tube 2: is a str", "agent/v1 tube 3: lacks key 'score'",
                "triplet/v2: is a dict, not a list"]
    for text in expected:
        assert any(text in ln for ln in lines), (text, lines)
    assert lines[-1].endswith(f": {len(lines) - 1} problems")
    assert "Traceback" not in result.output


def test_bad_files_and_options(tmp_path, anno):
    sub = write_pickle(tmp_path / "s.pkl", {"agent": {"v1": [], "v2": []}})
    assert run(sub).exit_code == 2
    missing = run(tmp_path / "none.pkl", "--anno", anno)
    assert missing.exit_code == 2 and "cannot read" in missing.output
    result = run(write_pickle(tmp_path / "list.pkl", [1, 2]), "--anno", anno)
    assert result.exit_code == 1 and "top level is a list" in result.output
    other = write_json(tmp_path / "coco.json", {"images": [], "annotations": []})
    result = run(sub, "--anno", other)
    assert result.exit_code == 2 and "coco.json: missing key" in result.output
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    result = run(sub, "--videos", empty)
    assert result.exit_code == 2 and "video list is empty" in result.output
    result = run(sub, "--videos", "v1,v3")  # names joined by commas
    assert result.exit_code == 1 and "agent: 1 videos missing: v3" in result.output


def test_annotation_of_another_dataset_lists_its_videos_missing(tmp_path):
    road = annotation({"2014-06-25-16-45-34_stereo_centre_02": {"numf": 5}})
    for t in ("action", "loc"):  # ROAD's own, shorter label lists
        road[f"{t}_labels"] = road[f"{t}_labels"][:12]
    other = write_json(tmp_path / "road_trainval_v1.0.json", road)
    sub = write_pickle(tmp_path / "s.pkl", {"agent": {"train_00001": [good_tube()]}})
    result = run(sub, "--anno", other)
    assert result.exit_code == 1
    assert "agent: 1 videos missing: 2014-06-25-16-45-34_stereo_centre_02" in result.output
    assert "not evaluated" in result.output


def test_check_submission_uses_the_label_space():
    space = roadpp()
    sub = {"triplet": {"v": [good_tube(label=85), good_tube(label=86)]}}
    problems, _ = check_submission(sub, ["v"], space)
    assert problems == ["triplet/v tube 1: label_id 86 outside 0..85"]
