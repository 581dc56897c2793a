import hashlib

import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.io.annotations import load_annotation
from roadtrack.synth.dataset import ANNOTATION_NAME


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _synth(tmp_path, name, seed):
    out = tmp_path / name
    result = CliRunner().invoke(main, ["synth", "--out", str(out), "--num-videos", "2",
                                       "--frames", "12", "--size", "128x96", "--seed", str(seed)])
    assert result.exit_code == 0, result.output
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = (_synth(tmp_path, n, s) for n, s in (("a", 3), ("b", 3), ("c", 4)))
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    assert sorted(p.name for p in a.iterdir()) == sorted([ANNOTATION_NAME, "rgb-images", "videos"])


def test_official_schema_keys(anno_dict):
    top = {"label_types", "db", "duplex_childs", "triplet_childs", "all_input_labels"}
    for t in ("agent", "action", "loc", "duplex", "triplet", "av_action"):
        top |= {f"{t}_labels", f"all_{t}_labels"}
    assert top <= set(anno_dict)
    video = next(iter(anno_dict["db"].values()))
    assert {"split_ids", "numf", "frames", "agent_tubes", "action_tubes", "loc_tubes",
            "duplex_tubes", "triplet_tubes", "av_action_tubes"} <= set(video)
    frame = video["frames"]["1"]
    assert {"annotated", "rgb_image_id", "width", "height", "av_action_ids",
            "input_image_id"} <= set(frame)
    box = next(b for f in video["frames"].values() for b in f.get("annos", {}).values())
    assert set(box) == {"box", "agent_ids", "action_ids", "loc_ids", "duplex_ids",
                        "triplet_ids", "tube_uid"}


def test_only_valid_events_and_actions_change_along_tracks(synth_root):
    anno = load_annotation(synth_root / ANNOTATION_NAME)
    labels = anno.labels
    changed = 0
    for video in anno.videos.values():
        has_triplet = video.labels["triplet"].any(axis=1)
        assert has_triplet.mean() > 0.4  # most boxes carry a valid event
        assert (video.labels["agent"].sum(axis=1) == 1).all()
        for track in np.unique(video.track_ids):
            rows = video.track_ids == track
            actions = {tuple(r) for r in video.labels["action"][rows]}
            changed += len(actions) > 1
    assert changed > 0
    assert len(labels.triplet) == 86


def test_agents_leave_the_frame_and_boxes_stay_inside(synth_root):
    anno = load_annotation(synth_root / ANNOTATION_NAME)
    partial_tracks = 0
    for video in anno.videos.values():
        assert (video.boxes >= 0).all() and (video.boxes <= 1).all()
        assert (video.boxes[:, 2] > video.boxes[:, 0]).all()
        for track in np.unique(video.track_ids):
            frames = video.frames[video.track_ids == track]
            partial_tracks += frames.min() > 1 or frames.max() < video.numf
    assert partial_tracks > 0  # agents enter and leave during the videos


def test_synth_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path / "x"), "--num-videos", "1"])
    assert result.exit_code == 2 and "not an empty folder" in result.output
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("size", ["10x10", "abc"])
def test_synth_rejects_bad_sizes(tmp_path, size):
    result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path / "y"), "--size", size])
    assert result.exit_code != 0 and not (tmp_path / "y").exists()
