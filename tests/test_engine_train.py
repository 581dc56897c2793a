"""The training loop on a toy contract detector: loss falls, resume is exact, bad input is clear."""
import csv
import itertools

import pytest
import torch

from roadtrack.engine.checkpoint import load_checkpoint
from roadtrack.engine.config import run_config_from_dict
from roadtrack.engine.train import lr_factor, train
from roadtrack.errors import UserError

from .train_helpers import copy_dataset, edit_annotation, toy_builder


def _config(**train):
    return run_config_from_dict({
        "model": {},
        "data": {"input_size": [64, 64], "workers": 0},
        "train": {"max_steps": 12, "lr": 3e-3, "warmup_steps": 2, "log_every": 2, "batch_size": 4,
                  "checkpoint_every": 4, **train}})


@pytest.fixture
def data(synth_root):
    return synth_root


def _rows(run):
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_loss_falls_and_the_run_folder_is_complete(data, tmp_path):
    summary = train(_config(max_steps=24), data, tmp_path / "run", builder=toy_builder(),
                    progress=False)
    rows = [r for r in _rows(tmp_path / "run") if r["split"] == "train"]
    assert float(rows[-1]["loss"]) < 0.8 * float(rows[0]["loss"])
    assert summary.steps == 24 and summary.stopped_by == "max_steps"
    assert "val_loss" in summary.val and 0 <= summary.val["frame_map_agent"] <= 100
    val_rows = [r for r in _rows(tmp_path / "run") if r["split"] == "val"]
    assert float(val_rows[-1]["frame_map_agent"]) == pytest.approx(summary.val["frame_map_agent"],
                                                                    abs=1e-3)
    assert list((tmp_path / "run" / "val" / "detections").glob("*.npz"))
    for name in ("run.yaml", "metrics.csv", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (tmp_path / "run" / name).is_file()
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 24 and state["labels"]["agent_labels"][1] == "Car"


def test_resume_repeats_the_uninterrupted_run_exactly(data, tmp_path):
    whole = train(_config(), data, tmp_path / "a", builder=toy_builder(), progress=False)
    part = train(_config(), data, tmp_path / "b", stop_at_step=5, builder=toy_builder(),
                 progress=False)
    assert part.steps == 5
    rest = train(_config(), data, tmp_path / "b", resume=True, builder=toy_builder(),
                 progress=False)
    assert rest.steps == 12 and rest.train_loss == whole.train_loss
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in _rows(tmp_path / "a")] == [r["loss"] for r in _rows(tmp_path / "b")]


def test_workers_do_not_change_the_result(data, tmp_path):
    cfg = _config(max_steps=4)
    one = train(cfg, data, tmp_path / "w0", builder=toy_builder(), progress=False)
    two = train(cfg.with_values("data", workers=2), data, tmp_path / "w2", builder=toy_builder(),
                progress=False)
    assert one.train_loss == two.train_loss


def test_time_budget_stops_with_a_checkpoint(data, tmp_path):
    summary = train(_config(max_steps=10_000), data, tmp_path / "run", max_minutes=1e-9,
                    builder=toy_builder(), progress=False)
    assert summary.stopped_by == "time budget" and summary.steps == 1
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 1


@pytest.mark.parametrize("span,decayed", [("budget", True), ("steps", False)])
def test_decay_can_span_the_time_budget(data, tmp_path, span, decayed):
    summary = train(_config(max_steps=100_000, decay_span=span, log_every=1000), data,
                    tmp_path / "run", max_minutes=0.05, builder=toy_builder(), progress=False)
    assert summary.stopped_by == "time budget" and summary.steps > 3
    lr = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["optimizer"][
        "param_groups"][0]["lr"]
    assert (lr < 0.1 * 3e-3) == decayed


def test_unknown_decay_span_is_refused(data, tmp_path):
    with pytest.raises(UserError, match="train.decay_span"):
        train(_config(decay_span="epochs"), data, tmp_path / "run", builder=toy_builder(),
              progress=False)
    assert not (tmp_path / "run").exists()


def test_schedule_warms_up_then_decays():
    f = [lr_factor(s, 10, 110, "cosine", 0.01) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(f[10:])) and f[-1] < 0.02
    assert lr_factor(60, 10, 110, "linear", 0.0) == pytest.approx(0.5)
    # a spent time budget ends the decay early; step progress wins when it is further along
    assert lr_factor(20, 10, 110, "linear", 0.0, time_progress=0.5) == pytest.approx(0.5)
    assert lr_factor(20, 10, 110, "cosine", 0.01, time_progress=1.0) == pytest.approx(0.01)
    assert lr_factor(100, 10, 110, "linear", 0.0, time_progress=0.1) == pytest.approx(0.1)


def _snapshot(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_bad_input_leaves_the_run_folder_intact(data, tmp_path):
    run = tmp_path / "run"
    train(_config(max_steps=2), data, run, builder=toy_builder(), progress=False)
    before = _snapshot(run)
    with pytest.raises(UserError, match="already holds a training run"):
        train(_config(max_steps=2), data, run, builder=toy_builder(), progress=False)
    with pytest.raises(UserError, match="unknown config key 'train.lrr'"):
        run_config_from_dict({"train": {"lrr": 1}})
    # a label space that does not match the checkpoint
    other = copy_dataset(data, tmp_path / "other")
    edit_annotation(other, lambda d: d["agent_labels"].reverse())
    with pytest.raises(UserError, match="label space does not match"):
        train(_config(max_steps=4), other, run, resume=True, builder=toy_builder(),
              progress=False)
    # frames missing from the data
    broken = copy_dataset(data, tmp_path / "broken")
    (broken / "rgb-images" / "train_00002" / "00003.jpg").unlink()
    with pytest.raises(UserError, match="missing frame 00003.jpg"):
        train(_config(max_steps=4), broken, run, resume=True, builder=toy_builder(),
              progress=False)
    # a corrupt checkpoint
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    before[last.relative_to(run)] = last.read_bytes()
    with pytest.raises(UserError, match="truncated or damaged checkpoint"):
        train(_config(max_steps=4), data, run, resume=True, builder=toy_builder(),
              progress=False)
    assert _snapshot(run) == before
