"""One option name, one meaning across the commands; the old spellings still work for a release,
hidden from --help, each with one deprecation line, and never together with the new one."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.errors import UserError


def _cli(*args) -> tuple[int, list[str], list[str]]:
    """Exit code, the error lines and the warning lines of ``roadtrack ARGS``."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    lines = result.stderr.splitlines()
    return (result.exit_code, [x for x in lines if x.startswith("roadtrack: error: ")],
            [x for x in lines if x.startswith("roadtrack: warning: ")])


def _fails_with(args, needle: str, warning: str | None = None) -> None:
    """``args`` ends in one error line holding ``needle``; ``warning``: the one deprecation line."""
    code, errors, warnings = _cli(*args)
    assert code == 2 and len(errors) == 1 and needle in errors[0], (errors, warnings)
    assert warnings == ([f"roadtrack: warning: {warning}"] if warning else [])


@pytest.mark.parametrize("command, hidden", [
    ("train", ["CONFIG"]), ("run", ["CONFIG", "--video-list"]), ("train-events", ["CONFIG"]),
    ("detect", ["--run"]), ("submit", ["RUN", "--videos"]), ("viz", ["RUN"]),
    ("validate", ["--videos", "--subset"]), ("synth", ["--videos"]),
    ("eval mot", ["--seqs", "--subset"]), ("eval road", ["--subset"]),
])
def test_old_spellings_are_not_in_help(command, hidden):
    result = CliRunner().invoke(main, [*command.split(), "--help"], prog_name="roadtrack")
    assert result.exit_code == 0
    usage = result.output.splitlines()[0]  # no old positional
    positional = " SUBMISSION" if command == "validate" else ""
    assert usage == f"Usage: roadtrack {command} [OPTIONS]{positional}"
    for old in hidden:
        assert old.isupper() or old not in result.output, (command, old)


def test_track_config_is_said_to_be_tracker_settings():
    text = CliRunner().invoke(main, ["track", "--help"]).output
    assert "tracker settings (not a run config)" in " ".join(text.split())


@pytest.mark.parametrize("command", [
    ["train", "--out", "o"],
    ["run", "--videos", "v", "--weights", "w", "--out", "o"],
    ["train-events", "--data", "d", "--run", "r", "--out", "o"],
])
def test_config_option_and_its_old_positional(command, tmp_path):
    config = tmp_path / "nothere.yaml"
    _fails_with([*command, "--config", config], str(config))
    _fails_with([command[0], config, *command[1:]], str(config),
                "the positional CONFIG is deprecated; use --config")
    _fails_with([command[0], config, *command[1:], "--config", config],
                "the positional CONFIG is the old spelling of --config: give only --config")


def test_detect_weights_and_its_old_run(tmp_path):
    args = ["detect", "--videos", tmp_path, "--out", tmp_path / "out"]
    none = tmp_path / "none"
    _fails_with([*args, "--weights", none], f"{none}: no such training run folder or checkpoint")
    _fails_with([*args, "--run", none], f"{none}: no such training run folder or checkpoint",
                "--run is deprecated; use --weights")
    ckpt = tmp_path / "x.pt"
    ckpt.write_bytes(b"")
    _fails_with([*args, "--weights", ckpt], f"{ckpt}: a checkpoint file needs --config")
    _fails_with([*args, "--weights", ckpt, "--checkpoint", "best"],
                f"{ckpt}: --checkpoint picks best or last in a training run folder; --weights is "
                "a checkpoint file")
    _fails_with([*args, "--run", none, "--weights", ckpt], "--run is the old spelling of --weights")


@pytest.fixture
def calls(monkeypatch):
    """The library calls of ``run`` and ``submit`` recorded, each then ending the command."""
    import roadtrack.cli
    import roadtrack.pipeline

    seen = []

    def record(name):
        def call(*args, **kwargs):
            seen.append((name, args, kwargs))
            raise UserError("stop")
        return call

    monkeypatch.setattr(roadtrack.cli, "_load_detector", lambda *a, **k: None)
    monkeypatch.setattr(roadtrack.pipeline, "run_pipeline", record("run_pipeline"))
    monkeypatch.setattr(roadtrack.cli, "submit_run", record("submit_run"))
    return seen


def test_video_names_repeat_split_at_commas_and_come_from_files(calls, tmp_path):
    config, listed = tmp_path / "c.yaml", tmp_path / "names.txt"
    config.write_text("{}\n")
    listed.write_text("v4\n\nv5\n")
    args = ["run", "--config", config, "--videos", tmp_path, "--weights", tmp_path, "--out",
            tmp_path / "o"]
    _fails_with([*args, "--video", "v1", "--video", "v2,v3", "--video", listed], "stop")
    _fails_with([*args, "--video-list", "v1,v2"], "stop", "--video-list is deprecated; use --video")
    _fails_with([*args], "stop")
    assert [c[1][6] for c in calls] == [["v1", "v2", "v3", "v4", "v5"], ["v1", "v2"], None]
    _fails_with([*args, "--video-list", "v1", "--video", "v2"],
                "--video-list is the old spelling of --video: give only --video")


def test_submit_run_and_video_and_their_old_spellings(calls, tmp_path):
    run, out = tmp_path / "run", tmp_path / "s.pkl"
    _fails_with(["submit", "--run", run, "--out", out, "--video", "a,b"], "stop")
    code, errors, warnings = _cli("submit", run, "--out", out, "--videos", "a,b")
    assert code == 2 and errors == ["roadtrack: error: stop"]
    assert sorted(warnings) == ["roadtrack: warning: --videos is deprecated; use --video",
                                "roadtrack: warning: the positional RUN is deprecated; use --run"]
    assert calls[0][1] == calls[1][1] == (run, out, ["a", "b"], False)


def test_viz_run_and_its_old_positional_and_the_videos_flag_named(tmp_path):
    args = ["--video", "v", "--out", tmp_path / "v.mp4"]
    needle = f"{tmp_path}: run.yaml does not say where the videos are; give --videos DIR"
    _fails_with(["viz", "--run", tmp_path, *args], needle)
    _fails_with(["viz", tmp_path, *args], needle, "the positional RUN is deprecated; use --run")


def test_eval_mot_video_and_split_and_their_old_spellings(tmp_path, synth_anno_path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    mot = ["eval", "mot", "--gt", tmp_path / "gt", "--pred", tmp_path / "pred"]
    _fails_with([*mot, "--video", "S9"], "sequence 'S9' has no gt.txt")
    _fails_with([*mot, "--seqs", "S9,S1"], "sequence 'S9' has no gt.txt",
                "--seqs is deprecated; use --video")
    road = ["eval", "mot", "--anno", synth_anno_path, "--run", tmp_path]
    _fails_with([*road, "--split", "nosuch"], "no videos of split 'nosuch'")
    _fails_with([*road, "--subset", "nosuch"], "no videos of split 'nosuch'",
                "--subset is deprecated; use --split")
    _fails_with([*road, "--subset", "a", "--split", "b"], "--subset is the old spelling of --split")
    _fails_with([*road, "--video", "v"], "--video is for --gt/--pred sequences")


def test_eval_road_split_and_its_old_spelling_and_the_flags_named(tmp_path, synth_anno_path):
    args = ["eval", "road", "--anno", synth_anno_path, "--pred", tmp_path / "p.pkl"]
    _fails_with([*args, "--split", "nosuch"], "no videos of split 'nosuch'")
    _fails_with([*args, "--subset", "nosuch"], "no videos of split 'nosuch'",
                "--subset is deprecated; use --split")
    _fails_with([*args, "--run", tmp_path], "--run brings its own tubes and detections")


def test_validate_video_and_split_and_their_old_spellings(tmp_path, synth_anno_path):
    empty = tmp_path / "s.pkl"
    empty.write_bytes(b"")
    _fails_with(["validate", empty, "--video", "v1"], str(empty))
    _fails_with(["validate", empty, "--videos", "v1"], str(empty),
                "--videos is deprecated; use --video")
    _fails_with(["validate", empty], "give exactly one of --anno and --video")
    anno = ["validate", empty, "--anno", synth_anno_path]
    _fails_with([*anno, "--split", "nosuch"], "no videos of split 'nosuch'")
    _fails_with([*anno, "--subset", "nosuch"], "no videos of split 'nosuch'",
                "--subset is deprecated; use --split")


def test_synth_num_videos_and_its_old_spelling(tmp_path):
    small = ["--frames", "8", "--size", "64x64", "--no-frames"]
    for name, flag in (("a", "--num-videos"), ("b", "--videos")):
        result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path / name), flag, "2",
                                           *small])
        assert result.exit_code == 0, result.output
        assert ("deprecated" in result.stderr) == (flag == "--videos")
        (anno,) = (tmp_path / name).glob("*.json")
        assert len(json.loads(anno.read_text())["db"]) == 2
    _fails_with(["synth", "--out", tmp_path / "a"], "not an empty folder; choose another --out")
