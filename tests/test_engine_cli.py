"""``roadtrack train`` and ``roadtrack detect`` end to end with the real tiny detector (shrunk)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.engine.checkpoint import load_checkpoint
from roadtrack.io.artifacts import finished_videos, load_stage
from roadtrack.synth.dataset import ANNOTATION_NAME

from .train_helpers import copy_dataset, edit_annotation
from .train_helpers import tiny_config as _config


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def _one_line_error(code, output, needle):
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("roadtrack: error:") and needle in lines[0], \
        output


@pytest.fixture(scope="module")
def trained(synth_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    config = _config(tmp)
    code, out = _run("train", "--config", config, "--data", synth_root, "--out", tmp / "run")
    assert code == 0, out
    return config, tmp / "run"


def test_train_resume_detect_and_evaluate(synth_root, trained, tmp_path):
    _, run = trained
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    longer = _config(tmp_path, max_steps=3)
    code, out = _run("train", "--config", longer, "--data", synth_root, "--out", tmp_path / "run2")
    assert code == 0 and "trained 3 steps" in out
    code, out = _run("detect", "--weights", run, "--videos", synth_root, "--out", tmp_path / "det")
    assert code == 0 and "frames/s" in out, out
    assert finished_videos(tmp_path / "det", "detections") == ["train_00000", "train_00001",
                                                              "train_00002"]
    code, out = _run("eval", "road", "--anno", synth_root / ANNOTATION_NAME, "--run",
                     tmp_path / "det", "--split", "val", "--json", tmp_path / "e.json")
    assert code == 0, out
    assert "agent" in json.loads((tmp_path / "e.json").read_text())["frame_map"]


def test_resume_continues_a_run(synth_root, trained, tmp_path):
    _, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    code, out = _run("train", "--config", _config(tmp_path, max_steps=4), "--data", synth_root,
                     "--out", copy, "--resume")
    assert code == 0 and "trained 4 steps" in out, out
    assert load_checkpoint(copy / "checkpoints" / "last.pt")["step"] == 4


def test_detect_with_weights_and_config(synth_root, trained, tmp_path):
    config, run = trained
    code, out = _run("detect", "--weights", run / "checkpoints" / "last.pt", "--config", config,
                     "--videos", synth_root / "videos", "--out", tmp_path / "det",
                     "--video", "train_00001")
    assert code == 0, out
    assert finished_videos(tmp_path / "det", "detections") == ["train_00001"]


def test_bad_input_is_one_line_and_leaves_the_run_intact(synth_root, trained, tmp_path):
    config, run = trained
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lrr: 0.1\n")
    _one_line_error(*_run("train", "--config", bad, "--data", synth_root, "--out", tmp_path / "x"),
                    "unknown config key 'train.lrr'")
    data = copy_dataset(synth_root, tmp_path / "data")
    (data / "rgb-images" / "train_00001" / "00007.jpg").unlink()
    _one_line_error(*_run("train", "--config", config, "--data", data, "--out", run, "--resume"),
                    "missing frame 00007.jpg")
    edit_annotation(data, lambda d: d["db"].update(extra_video=d["db"]["train_00000"]))
    _one_line_error(*_run("train", "--config", config, "--data", data, "--out", tmp_path / "y"),
                    "'extra_video' named in the annotation")
    other = copy_dataset(synth_root, tmp_path / "other")
    edit_annotation(other, lambda d: d["loc_labels"].reverse())
    _one_line_error(*_run("train", "--config", config, "--data", other, "--out", run, "--resume"),
                    "label space does not match")
    _one_line_error(*_run("train", "--config", config, "--data", synth_root, "--out", run),
                    "already holds a training run")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((run / "checkpoints" / "last.pt").read_bytes()[:5000])
    _one_line_error(*_run("detect", "--weights", corrupt, "--config", config, "--videos",
                          synth_root, "--out", tmp_path / "d"), "truncated or damaged checkpoint")
    _one_line_error(*_run("detect", "--run", run, "--weights", corrupt, "--videos", synth_root,
                          "--out", tmp_path / "d"), "--run is the old spelling of --weights")
    _one_line_error(*_run("detect", "--weights", corrupt, "--videos", synth_root, "--out",
                          tmp_path / "d"), f"{corrupt}: a checkpoint file needs --config")
    _one_line_error(*_run("detect", "--weights", tmp_path / "none", "--config", config, "--videos",
                          synth_root, "--out", tmp_path / "d"),
                    "none: no such training run folder or checkpoint file (--weights)")
    wrong = yaml.safe_load(Path(config).read_text())
    wrong["model"]["classes"]["agent"] = 7
    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump(wrong))
    _one_line_error(*_run("detect", "--weights", run / "checkpoints" / "last.pt", "--config",
                          tmp_path / "wrong.yaml", "--videos", synth_root, "--out",
                          tmp_path / "d"), "label space does not match the checkpoint")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("section, key, value, problem", [
    ("train", "batch_size", 0, "train.batch_size: must be an integer >= 1, got 0"),
    ("train", "batch_size", -1, "train.batch_size: must be an integer >= 1, got -1"),
    ("train", "lr", -1, "train.lr: must be a number > 0, got -1.0"),
    ("data", "input_size", ["a", "b"], "data.input_size: must be a list of integers"),
    ("track", "hihg_score", 0.3,
     "unknown config key 'track.hihg_score' (did you mean 'track.high_score'?)"),
    ("events", "fit", {"steps": 0}, "events.fit.steps: must be an integer >= 1, got 0"),
])
def test_train_refuses_a_bad_config_before_writing_anything(synth_root, tmp_path, section, key,
                                                            value, problem):
    config = Path(_config(tmp_path))
    cfg = yaml.safe_load(config.read_text())
    cfg.setdefault(section, {})[key] = value
    config.write_text(yaml.safe_dump(cfg))
    code, out = _run("train", "--config", config, "--data", synth_root, "--out", tmp_path / "run")
    _one_line_error(code, out, f"roadtrack: error: {config}: {problem}")
    assert not (tmp_path / "run").exists()


def test_a_data_root_the_system_cannot_use_is_one_line(tmp_path):
    config = Path(_config(tmp_path))
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["root"] = str(tmp_path / ("x" * 300))
    config.write_text(yaml.safe_dump(cfg))
    _one_line_error(*_run("train", "--config", config, "--out", tmp_path / "run"),
                    "not a usable folder name (File name too long)")
    assert not (tmp_path / "run").exists()


def test_run_with_a_run_folder_applies_the_configs_detect_settings_and_says_so(
        synth_root, trained, tmp_path):
    config, run = trained
    cfg = yaml.safe_load(Path(config).read_text())
    cfg["detect"].update(score_threshold=0.0, max_per_frame=1)
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(cfg))
    code, out = _run("run", "--config", mine, "--weights", run, "--videos", synth_root, "--video",
                     "train_00001", "--out", tmp_path / "r")
    assert code == 0, out
    assert f"\ndetector {run / 'checkpoints'}" in out and \
        f"detect settings of {mine}" in out
    recorded = yaml.safe_load((tmp_path / "r" / "run.yaml").read_text())["detect"]["settings"]
    assert recorded["max_per_frame"] == 1 and recorded["score_threshold"] == 0.0
    frames = load_stage(tmp_path / "r", "detections", "train_00001")["frames"]
    assert len(frames) and np.bincount(frames).max() == 1  # 2 with the run's own settings
    cfg["model"]["decoder"]["num_stages"] += 1
    mine.write_text(yaml.safe_dump(cfg))
    _one_line_error(*_run("run", "--config", mine, "--weights", run, "--videos", synth_root,
                          "--out", tmp_path / "r2"), f"{mine}: model.decoder.num_stages: ")
    assert not (tmp_path / "r2").exists()
