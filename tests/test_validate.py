"""`roadtrack validate`: every rule of ROADPP.md section 4, all problems at once."""
import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.io.submission import FAILS, MISSCORED, SUSPICIOUS, check_submission
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
    result = run(tmp_path / "s.pkl", "--video", videos)
    assert result.exit_code == 0, result.output
    assert "not evaluated" in result.output  # v2 is not in the list: a warning only


F, M, S = FAILS, MISSCORED, SUSPICIOUS
BROKEN = [  # (change, message, severity: what the official scorer does with it)
    ({"label_id": 10}, "label_id 10 is no class 0..9: the scorer ignores the tube", M),
    ({"label_id": "car"}, "label_id 'car' is no class", M),
    ({"label_id": 1.5}, "label_id 1.5 is no class", M),
    ({"label_id": 1.0}, "label_id 1.0 is not an integer (scored as class 1)", S),
    ({"label_id": np.array([1, 2])}, "label_id is an array of 2 values", F),
    ({"score": float("nan")}, "score nan is not finite", M),
    ({"score": "high"}, "score 'high' is not a number", F),
    ({"frames": np.arange(0, 5)}, "frame 0 is not 1-based", M),
    ({"frames": np.array([3, 4, 6, 7, 8])}, "not contiguous (gap after frame 4)", M),
    ({"frames": np.array([3, 5, 4, 6, 7])}, "not sorted and unique", F),
    ({"frames": np.array([3.5, 4, 5, 6, 7])}, "not whole numbers", F),
    ({"frames": ["3", "4", "5", "6", "7"]}, "frames is not a 1-D numeric array", F),
    ({"frames": np.arange(3, 7)}, "5 boxes for 4 frames", F),
    ({"boxes": [[1, 2, 3, 4], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]},
     "boxes is not an (n, 4) numeric array", F),
    ({"boxes": np.tile([10.0, 20.0, np.nan, 220.0], (5, 1))}, "NaN or infinite", F),
    ({"boxes": np.tile([110.0, 20.0, 10.0, 220.0], (5, 1))},
     "5 of 5 boxes without x1 < x2 and y1 < y2", M),
    ({"boxes": np.tile([10.0, 20.0, 900.0, 220.0], (5, 1))},
     "5 of 5 boxes partly outside the 840x600 frame (scored unclipped", S),
    ({"boxes": np.tile([845.0, 20.0, 900.0, 220.0], (5, 1))},
     "5 of 5 boxes wholly outside the 840x600 frame", S),
    ({"scores": np.full(4, 0.5)}, "4 per-frame scores for 5 frames (the scorer does not use", S),
    ({"frames": np.array([], dtype=int), "boxes": np.zeros((0, 4))}, "has no frames", F),
]


@pytest.mark.parametrize("change,message,severity", BROKEN)
def test_each_rule_and_what_the_scorer_does_with_it(change, message, severity):
    tube = {**good_tube(), **change}
    check = check_submission({"agent": {"v": [good_tube(), tube]}}, ["v"], roadpp())
    found = [(f.severity, f.line()) for f in check.findings]
    assert any(sev == severity and message in line for sev, line in found), found
    assert all(line.startswith("agent/v tube 1:") for _, line in found), found
    scored = len(check.tubes["agent"])  # the good tube, and this one unless the scorer skips it
    assert scored == (1 if severity == F or "is no class" in message else 2)


def test_gaps_are_fine_in_the_strict_protocol():
    tube = {**good_tube(), "frames": [1, 2, 5, 6, 9]}
    official = check_submission({"agent": {"v": [tube]}}, ["v"], roadpp())
    strict = check_submission({"agent": {"v": [tube]}}, ["v"], roadpp(), require_contiguous=False)
    assert [f.kind for f in official.findings] == ["gaps"] and strict.findings == []


def test_all_problems_at_once_and_exit_code(tmp_path, anno):
    sub = {"agent": {"v1": [good_tube(label=99), {**good_tube(), "score": np.inf},
                            "not a tube", {"label_id": 1}]},
           "triplet": {"v1": (), "v2": {"a": 1}}, "events": {}}
    result = run(write_pickle(tmp_path / "s.pkl", sub), "--anno", anno)
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    problems = [ln for ln in lines if not ln.startswith("roadtrack: warning:")]
    expected = ["agent: 1 videos missing: v2", "agent/v1 tube 0: label_id 99 is no class",
                "agent/v1 tube 1: score inf", "agent/v1 tube 2: is a str",
                "agent/v1 tube 3: lacks key 'score'", "triplet/v2: is a dict, not a list"]
    for text in expected:
        assert any(text in ln for ln in problems), (text, lines)
    assert any("unknown label type 'events', not scored" in ln for ln in lines)  # a warning
    assert problems[-1].endswith(f": {len(problems) - 1} problems: the official scorer fails "
                                 "on 6, mis-scores 2")
    assert "Traceback" not in result.output


def test_bad_files_and_options(tmp_path, anno):
    sub = write_pickle(tmp_path / "s.pkl", {"agent": {"v1": [], "v2": []}})
    assert run(sub).exit_code == 2
    missing = run(tmp_path / "none.pkl", "--anno", anno)
    assert missing.exit_code == 2 and "cannot read" in missing.output
    result = run(write_pickle(tmp_path / "list.pkl", [1, 2]), "--anno", anno)
    assert result.exit_code == 1 and "top level is a list" in result.output
    result = run(write_pickle(tmp_path / "none.pkl", None), "--anno", anno)
    assert result.exit_code == 1 and "top level is a NoneType" in result.output
    other = write_json(tmp_path / "coco.json", {"images": [], "annotations": []})
    result = run(sub, "--anno", other)
    assert result.exit_code == 2 and "coco.json: missing key" in result.output
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    result = run(sub, "--video", empty)
    assert result.exit_code == 2 and "video list is empty" in result.output
    result = run(sub, "--video", "v1,v3")  # names joined by commas
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
    check = check_submission(sub, ["v"], space)
    assert [p.line() for p in check.problems] == [
        "triplet/v tube 1: label_id 86 is no class 0..85: the scorer ignores the tube"]


def test_frames_past_the_end_of_a_video(tmp_path, anno):
    """The scorer compares them as given: they lengthen the tube's temporal union (an error)."""
    sub = write_pickle(tmp_path / "s.pkl", {"agent": {"v1": [good_tube(first=8, n=5)],
                                                      "v2": []}})
    result = run(sub, "--anno", anno)
    assert result.exit_code == 1
    assert "agent/v1 tube 0: frame 12 is past the video's last frame 10" in result.output
    assert run(sub, "--video", "v1,v2").exit_code == 0  # a list gives no frame counts
