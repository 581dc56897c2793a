"""Run folders: two kinds, each refusing the other with one line naming the folder's run.yaml."""
import pytest
import yaml

from roadtrack.errors import UserError
from roadtrack.io.runs import PipelineRun, TrainingRun, recorded_videos_dir

# run.yaml as written before its kind was recorded
OLD_TRAINING = {"config": {"model": {}}, "labels": {"agent_labels": ["Car"]}, "world_size": 1}
OLD_PIPELINE = {"config": {"model": {}}, "labels": {"agent_labels": ["Car"]},
                "detect": {"weights": "/w/last.pt", "videos": "/data/videos"}}


def write(folder, content):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.yaml").write_text(yaml.safe_dump(content, sort_keys=False))
    return folder


def test_old_folders_load_as_their_kind(tmp_path):
    training = write(tmp_path / "t", OLD_TRAINING)
    pipeline = write(tmp_path / "p", OLD_PIPELINE)
    assert TrainingRun(training).read() == OLD_TRAINING
    assert PipelineRun(pipeline).read() == OLD_PIPELINE
    assert recorded_videos_dir(pipeline).as_posix() == "/data/videos"


@pytest.mark.parametrize("kind, content, reader, message", [
    ("pipeline", OLD_PIPELINE, TrainingRun,
     "run.yaml records a detect/run output (a pipeline run), not a training run (made by train)"),
    ("training", OLD_TRAINING, PipelineRun,
     "run.yaml records a training run (made by train), not a detect/run output (a pipeline run)"),
])
def test_a_folder_of_the_other_kind_is_refused(tmp_path, kind, content, reader, message):
    folder = write(tmp_path / kind, content)
    with pytest.raises(UserError) as err:
        reader(folder).read()
    assert str(err.value) == f"{folder}: {message}"


def test_training_run_needs_its_record(tmp_path):
    with pytest.raises(UserError, match="no run.yaml: not a training run folder"):
        TrainingRun(tmp_path).read()
    write(tmp_path, {"world_size": 1})
    with pytest.raises(UserError, match="lacks the 'config' section"):
        TrainingRun(tmp_path).read()
    (tmp_path / "run.yaml").write_text("config: [1\n")
    with pytest.raises(UserError, match="malformed run.yaml"):
        TrainingRun(tmp_path).read()


def test_records_written_carry_their_kind(tmp_path):
    run = TrainingRun(tmp_path / "t")
    run.folder.mkdir()
    run.write(OLD_TRAINING, {"roadtrack": "x"})
    assert yaml.safe_load(run.record_path.read_text())["kind"] == "training"
    assert run.read()["versions"] == {"roadtrack": "x"}
    pipeline = PipelineRun(write(tmp_path / "p", OLD_PIPELINE))
    pipeline.update(pipeline={"videos": "/other"})
    content = yaml.safe_load(pipeline.record_path.read_text())
    assert content == {"kind": "pipeline", **OLD_PIPELINE, "pipeline": {"videos": "/other"}}
    assert pipeline.videos_dir().as_posix() == "/other"


def test_pipeline_folder_without_record(tmp_path):
    run = PipelineRun(tmp_path / "new")
    assert run.read() == {} and not run.has_record()
    with pytest.raises(UserError, match="does not say where the videos are"):
        run.videos_dir()
    assert run.artifact("track", "v1") == tmp_path / "new" / "tracks" / "v1.npz"
    assert run.artifact("events", "v1") == tmp_path / "new" / "events" / "v1.json"


def test_failures_of_a_batch_replace_its_old_ones(tmp_path):
    run = PipelineRun(tmp_path)
    run.record_failures([{"video": "a", "stage": "detect"}, {"video": "b", "stage": "track"}],
                        ["a", "b", "c"])
    run.record_failures([{"video": "c", "stage": "events"}], ["b", "c"])
    assert [f["video"] for f in run.read()["failed"]] == ["a", "c"]
    run.record_failures([], ["a", "c"])
    assert "failed" not in run.read()


def test_best_checkpoint_falls_back_to_last(tmp_path):
    run = TrainingRun(tmp_path)
    assert run.checkpoint("best") == tmp_path / "checkpoints" / "last.pt"
    run.checkpoints.mkdir()
    run.best.write_bytes(b"")
    assert run.checkpoint("best") == run.best
    assert run.checkpoint("last") == run.last


def test_detect_from_a_pipeline_folder_is_one_line(tmp_path):
    from click.testing import CliRunner

    from roadtrack.cli import main

    folder = write(tmp_path / "det", OLD_PIPELINE)
    result = CliRunner().invoke(main, ["detect", "--weights", str(folder),
                                       "--videos", str(tmp_path), "--out", str(tmp_path / "out")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert f"{folder}: run.yaml records a detect/run output" in lines[0]
    assert not (tmp_path / "out").exists()
