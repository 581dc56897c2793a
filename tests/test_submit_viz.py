import pickle
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.io.annotations import load_annotation
from roadtrack.io.submission import build_submission, write_submission
from roadtrack.io.video import FrameFolder, VideoFile
from roadtrack.viz import render_run_video

from .gt_runs import make_gt_run


@pytest.fixture(scope="module")
def events_run(tmp_path_factory, synth_anno_path):
    return make_gt_run(tmp_path_factory.mktemp("events_run"), load_annotation(synth_anno_path),
                       3, with_events=True)


def test_submission_layout_and_pixels(events_run, tmp_path):
    run, anno = events_run
    sub = build_submission(run)
    assert set(sub) == {"agent", "action", "loc", "duplex", "triplet"}
    assert set(sub["agent"]) == set(anno.videos)
    for tubes in sub["triplet"].values():
        for tube in tubes:
            frames = tube["frames"]
            assert np.all(np.diff(frames) == 1) and frames[0] >= 1
            assert tube["boxes"].shape == (len(frames), 4) and len(tube["scores"]) == len(frames)
            assert (tube["boxes"][:, [0, 2]] <= 840).all()
            assert (tube["boxes"][:, [1, 3]] <= 600).all()
            assert 0 <= tube["label_id"] < 86
    path = write_submission(sub, tmp_path / "sub.pkl", zipped=True)
    with zipfile.ZipFile(path) as zf:
        again = pickle.loads(zf.read("sub.pkl"))
    assert set(again["agent"]) == set(sub["agent"])


def test_submit_cli_refuses_missing_videos_and_writes_nothing(events_run, tmp_path):
    run, _ = events_run
    out = tmp_path / "s.pkl"
    result = CliRunner().invoke(main, ["submit", "--run", str(run), "--out", str(out), "--video",
                                       "train_00000,val_99999"])
    assert result.exit_code == 2 and "val_99999" in result.output
    assert not out.exists()
    result = CliRunner().invoke(main, ["submit", "--run", str(run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()


def test_viz_draws_every_frame(events_run, synth_root, tmp_path):
    run, anno = events_run
    name = anno.split(None)[0]
    source = FrameFolder(synth_root / "rgb-images" / name)
    out = tmp_path / "viz.mp4"
    assert render_run_video(run, source, out) == anno.videos[name].numf
    video = VideoFile(out)
    assert video.info.num_frames == anno.videos[name].numf
    first = next(video.frames())[1]
    plain = source.read(1)
    assert np.abs(first.astype(int) - plain.astype(int)).max() > 100  # boxes were drawn


def test_submitted_file_passes_validate(events_run, tmp_path, synth_anno_path):
    run, _ = events_run
    out = tmp_path / "ok.pkl"
    assert CliRunner().invoke(main, ["submit", "--run", str(run), "--out", str(out)]).exit_code == 0
    result = CliRunner().invoke(main, ["validate", str(out), "--anno", str(synth_anno_path)])
    assert result.exit_code == 0, result.output
