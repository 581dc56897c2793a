"""``roadtrack train`` and ``roadtrack detect`` end to end with the real tiny detector (shrunk)."""
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.engine.checkpoint import load_checkpoint
from roadtrack.io.artifacts import finished_videos
from roadtrack.synth.dataset import ANNOTATION_NAME

from .train_helpers import copy_dataset, edit_annotation, tiny_config as _config


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
    code, out = _run("train", config, "--data", synth_root, "--out", tmp / "run")
    assert code == 0, out
    return config, tmp / "run"


def test_train_resume_detect_and_evaluate(synth_root, trained, tmp_path):
    _, run = trained
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    longer = _config(tmp_path, max_steps=3)
    code, out = _run("train", longer, "--data", synth_root, "--out", tmp_path / "run2")
    assert code == 0 and "trained 3 steps" in out
    code, out = _run("detect", "--run", run, "--videos", synth_root, "--out", tmp_path / "det")
    assert code == 0 and "frames/s" in out, out
    assert finished_videos(tmp_path / "det", "detections") == ["train_00000", "train_00001",
                                                              "train_00002"]
    code, out = _run("eval", "road", "--anno", synth_root / ANNOTATION_NAME, "--run",
                     tmp_path / "det", "--subset", "val", "--json", tmp_path / "e.json")
    assert code == 0, out
    assert "agent" in json.loads((tmp_path / "e.json").read_text())["frame_map"]


def test_resume_continues_a_run(synth_root, trained, tmp_path):
    _, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    code, out = _run("train", _config(tmp_path, max_steps=4), "--data", synth_root, "--out",
                     copy, "--resume")
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
    _one_line_error(*_run("train", bad, "--data", synth_root, "--out", tmp_path / "x"),
                    "unknown config key 'train.lrr'")
    data = copy_dataset(synth_root, tmp_path / "data")
    (data / "rgb-images" / "train_00001" / "00007.jpg").unlink()
    _one_line_error(*_run("train", config, "--data", data, "--out", run, "--resume"),
                    "missing frame 00007.jpg")
    edit_annotation(data, lambda d: d["db"].update(extra_video=d["db"]["train_00000"]))
    _one_line_error(*_run("train", config, "--data", data, "--out", tmp_path / "y"),
                    "'extra_video' named in the annotation")
    other = copy_dataset(synth_root, tmp_path / "other")
    edit_annotation(other, lambda d: d["loc_labels"].reverse())
    _one_line_error(*_run("train", config, "--data", other, "--out", run, "--resume"),
                    "label space does not match")
    _one_line_error(*_run("train", config, "--data", synth_root, "--out", run),
                    "already holds a training run")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((run / "checkpoints" / "last.pt").read_bytes()[:5000])
    _one_line_error(*_run("detect", "--weights", corrupt, "--config", config, "--videos",
                          synth_root, "--out", tmp_path / "d"), "truncated or damaged checkpoint")
    _one_line_error(*_run("detect", "--run", run, "--weights", corrupt, "--videos", synth_root,
                          "--out", tmp_path / "d"), "give either --run")
    wrong = yaml.safe_load(Path(config).read_text())
    wrong["model"]["classes"]["agent"] = 7
    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump(wrong))
    _one_line_error(*_run("detect", "--weights", run / "checkpoints" / "last.pt", "--config",
                          tmp_path / "wrong.yaml", "--videos", synth_root, "--out",
                          tmp_path / "d"), "label space does not match the checkpoint")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
