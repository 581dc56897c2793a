"""``roadtrack run`` (detect -> track -> events) with the real tiny detector, shrunk: resume after
an interruption, rerunning later stages alone, and bad input."""
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.engine.colour import HUE_BINS
from roadtrack.io import artifacts
from roadtrack.io.artifacts import finished_videos, load_stage

from .train_helpers import copy_dataset, halfway_broken_copy, tiny_config

STAGE_DIRS = ("detections", "tracks", "events")


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def detector(synth_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    config = tiny_config(tmp, max_steps=3)
    with open(config, "a") as f:  # an untrained detector scores low: track all it finds
        f.write("track: {min_score: 0.0, high_score: 0.0, low_score: null, "
                "new_track_score: 0.0}\n")
    code, out = _run("train", "--config", config, "--data", synth_root, "--out", tmp / "det")
    assert code == 0, out
    return config, tmp / "det"


def _contents(run):
    """Every artifact of a run folder, loaded, for comparing two runs."""
    out = {}
    for stage in ("detections", "tracks"):
        for video in finished_videos(run, stage):
            out[(stage, video)] = load_stage(run, stage, video)
    for video in finished_videos(run, "events"):
        out[("events", video)] = json.loads((run / "events" / f"{video}.json").read_text())
    return out


def _same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if key[0] == "events":
            assert a[key] == b[key]
        else:
            assert a[key].keys() == b[key].keys()
            for field in a[key]:
                assert np.array_equal(a[key][field], b[key][field]), (key, field)


def test_run_writes_every_stage(detector, synth_root, tmp_path):
    config, det = detector
    code, out = _run("run", "--config", config, "--videos", synth_root, "--out", tmp_path / "run",
                     "--weights", det)
    assert code == 0, out
    assert "detect" in out and "track" in out and "events" in out
    for stage in STAGE_DIRS:
        assert finished_videos(tmp_path / "run", stage) == ["train_00000", "train_00001",
                                                            "train_00002"]
    tracks = load_stage(tmp_path / "run", "tracks", "train_00000")
    dets = load_stage(tmp_path / "run", "detections", "train_00000")
    assert len(tracks["frames"]) > 0
    assert np.array_equal(dets["boxes"][tracks["det_index"]], tracks["boxes"])
    assert "roi_features" in dets
    assert dets["colour"].shape == (len(dets["boxes"]), 2 * HUE_BINS)
    assert np.array_equal(dets["colour"][tracks["det_index"]], tracks["colour"])


def test_interrupted_run_resumes_to_the_same_result(detector, synth_root, tmp_path, monkeypatch):
    config, det = detector
    code, out = _run("run", "--config", config, "--videos", synth_root, "--out", tmp_path / "whole",
                     "--weights", det)
    assert code == 0, out
    real_save = artifacts.save_arrays
    calls = {"n": 0}

    def dying_save(*args, **kwargs):  # the process dies while writing the second detections
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(artifacts, "save_arrays", dying_save)
    code, out = _run("run", "--config", config, "--videos", synth_root, "--out", tmp_path / "cut",
                     "--weights", det)
    assert code != 0
    assert finished_videos(tmp_path / "cut", "detections") == ["train_00000"]
    assert not [p for p in (tmp_path / "cut").rglob(".*tmp*")]  # nothing half-written
    monkeypatch.setattr(artifacts, "save_arrays", real_save)
    code, out = _run("run", "--config", config, "--videos", synth_root, "--out", tmp_path / "cut",
                     "--weights", det)
    assert code == 0, out
    (row,) = [line for line in out.split("\n") if line.startswith("detect ")]  # not the bar's
    assert row.split()[1:3] == ["2", "1"]  # the detect row: 2 videos, one skipped
    _same(_contents(tmp_path / "whole"), _contents(tmp_path / "cut"))


def test_from_track_keeps_detections(detector, synth_root, tmp_path):
    config, det = detector
    run = tmp_path / "run"
    assert _run("run", "--config", config, "--videos", synth_root, "--out", run,
                "--weights", det)[0] == 0
    before = {p.name: p.stat().st_mtime_ns for p in (run / "detections").iterdir()}
    track_before = {p.name: p.stat().st_mtime_ns for p in (run / "tracks").iterdir()}
    code, out = _run("run", "--config", config, "--videos", synth_root, "--out", run,
                     "--weights", det, "--from", "track")
    assert code == 0, out
    assert before == {p.name: p.stat().st_mtime_ns for p in (run / "detections").iterdir()}
    after = {p.name: p.stat().st_mtime_ns for p in (run / "tracks").iterdir()}
    assert all(after[k] != track_before[k] for k in after)


def test_run_folder_of_another_detector_is_refused(detector, synth_root, tmp_path):
    config, det = detector
    run = tmp_path / "run"
    assert _run("run", "--config", config, "--videos", synth_root, "--out", run,
                "--weights", det)[0] == 0
    code, out = _run("run", "--config", config, "--videos", synth_root, "--out", run,
                     "--weights", det / "checkpoints" / "last.pt", "--from", "track")
    assert code == 2 and "other weights" in out


def test_empty_folder_is_an_error(detector, tmp_path):
    config, det = detector
    (tmp_path / "empty").mkdir()
    code, out = _run("run", "--config", config, "--videos", tmp_path / "empty",
                     "--out", tmp_path / "r1", "--weights", det)
    assert code == 2 and "no videos" in out and "Traceback" not in out


def test_broken_videos_are_tabled_and_the_others_run_through(detector, synth_root, tmp_path):
    config, det = detector
    data = copy_dataset(synth_root, tmp_path / "data", frames=False)
    unreadable = data / "videos" / "train_00002.mp4"
    unreadable.write_bytes(unreadable.read_bytes()[: unreadable.stat().st_size // 3])
    mp4 = data / "videos" / "train_00001.mp4"
    halfway_broken_copy(mp4, data / "videos" / "train_00001.avi", fourcc="MJPG")
    mp4.unlink()
    run = tmp_path / "run"
    code, out = _run("run", "--config", config, "--videos", data / "videos", "--out", run,
                     "--weights", det)
    assert code == 1 and "Traceback" not in out, out
    table = out[out.index("2 video(s) failed"):].splitlines()
    assert "train_00001.avi" in table[3] and "decoding failed at frame" in table[3]
    assert "train_00002.mp4" in table[4] and "cannot open video" in table[4]
    for stage in STAGE_DIRS:  # the good video went through every stage
        assert finished_videos(run, stage) == ["train_00000"]
    # a rerun retries only the two (and fails them again); with --strict it stops at the first
    code, out = _run("run", "--config", config, "--videos", data / "videos", "--out", run,
                     "--weights", det)
    assert code == 1 and "2 video(s) failed" in out
    assert re.search(r"^detect +0 +1 +2 ", out, re.MULTILINE)  # videos done, skipped, failed
    code, out = _run("run", "--config", config, "--videos", data / "videos", "--out", run,
                     "--weights", det, "--strict")
    assert code == 2 and out.strip().splitlines()[-1].startswith("roadtrack: error: ")
    assert "train_00002.mp4: cannot open video" in out and "failed;" not in out
    # the detect command alone behaves the same way
    code, out = _run("detect", "--weights", det, "--videos", data / "videos", "--out",
                     tmp_path / "det-only")
    assert code == 1 and "2 video(s) failed" in out
    assert finished_videos(tmp_path / "det-only", "detections") == ["train_00000"]


def test_name_collision_is_an_error_before_any_work(detector, synth_root, tmp_path):
    config, det = detector
    data = copy_dataset(synth_root, tmp_path / "data", frames=False)
    (data / "videos" / "Train_00001.mov").write_bytes(
        (data / "videos" / "train_00001.mp4").read_bytes())
    code, out = _run("run", "--config", config, "--videos", data / "videos",
                     "--out", tmp_path / "run", "--weights", det)
    assert code == 2 and len(out.strip().splitlines()) == 1, out
    assert "Train_00001.mov and train_00001.mp4 are both video 'train_00001'" in out
    assert not (tmp_path / "run").exists()


def test_gapped_frame_folder_gives_real_frame_numbers_downstream(detector, synth_root,
                                                                    tmp_path):
    config, det = detector
    data = copy_dataset(synth_root, tmp_path / "data")
    for n in (5, 6):
        (data / "rgb-images" / "train_00000" / f"{n:05d}.jpg").unlink()
    run = tmp_path / "run"
    code, out = _run("run", "--config", config, "--videos", data, "--out", run, "--weights", det,
                     "--video", "train_00000")
    assert code == 0, out
    assert "warning: " in out and "train_00000: 2 of frames 1-30 have no image (5-6)" in out
    for stage in ("detections", "tracks"):
        frames = set(load_stage(run, stage, "train_00000")["frames"].tolist())
        assert frames and frames <= set(range(1, 31)) - {5, 6} and max(frames) == 30, stage
    mot = np.loadtxt(run / "mot" / "train_00000.txt", delimiter=",", ndmin=2)
    assert not set(mot[:, 0].astype(int)) & {5, 6}


def test_broken_artifact_fails_its_video_in_later_stages(detector, synth_root, tmp_path):
    config, det = detector
    run = tmp_path / "run"
    assert _run("run", "--config", config, "--videos", synth_root, "--out", run,
                "--weights", det)[0] == 0
    (run / "detections" / "train_00001.npz").write_bytes(b"broken")
    code, out = _run("run", "--config", config, "--videos", synth_root, "--out", run,
                     "--weights", det, "--from", "track")
    assert code == 1 and "train_00001  track" in out and "corrupt artifact" in out, out
    assert finished_videos(run, "events") == ["train_00000", "train_00002"]


def test_loader_workers_fork_safely_after_in_process_synthesis(tmp_path):
    """Forked loader workers deadlocked in OpenCV when the same process had synthesised the
    data first (as ``roadtrack demo`` does); the parent now settles OpenCV's threads first."""
    import subprocess
    import sys

    script = f"""
import multiprocessing as mp
from roadtrack.synth.dataset import write_dataset
from roadtrack.engine.train import _quiet_worker, before_forking_workers
write_dataset({str(tmp_path / 'data')!r}, num_videos=1, num_frames=10)
before_forking_workers()
child = mp.get_context('fork').Process(target=_quiet_worker, args=(0,))
child.start()
child.join(30)
print('hung' if child.is_alive() else 'ok')
child.kill()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
