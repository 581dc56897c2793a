"""Checkpoint files from others: one line naming the file for anything amiss, and no code runs."""
import os
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from roadtrack.engine.checkpoint import load_checkpoint
from roadtrack.errors import UserError
from roadtrack.events.head import EventHead
from roadtrack.events.stage import TrainedHead
from roadtrack.io.checkpoints import load_model_state, read_torch_file
from roadtrack.labels import roadpp


class _RunsCode:
    """Pickles as a call of ``os.system`` (what a hostile checkpoint would hold)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _good(tmp_path):
    path = tmp_path / "good.pt"
    torch.save({"model": nn.Linear(2, 3).state_dict(), "config": {}, "labels": {}}, path)
    return path


def _message(call, *args) -> str:
    with pytest.raises(UserError) as err:
        call(*args)
    message = str(err.value)
    assert "\n" not in message and len(message) < 300, message
    return message


@pytest.mark.parametrize("make, problem", [
    (lambda p, good: p.write_bytes(b"not a checkpoint"),
     "not a checkpoint (not a file written by torch.save)"),
    (lambda p, good: p.write_bytes(b""), "empty file, not a checkpoint"),
    (lambda p, good: p.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2]),
     "truncated or damaged checkpoint (its zip archive has no end)"),
    (lambda p, good: p.write_bytes(b"\x80\x04K\x03."),
     "not a checkpoint (not a file written by torch.save)"),
    (lambda p, good: torch.save([1, 2], p), "not a roadtrack checkpoint (needs keys"),
    (lambda p, good: torch.save({"model": 1, "config": {}, "labels": {}}, p),
     "not a roadtrack checkpoint ('model' is not a mapping)"),
])
def test_files_that_are_not_checkpoints_are_one_line(tmp_path, make, problem):
    path = tmp_path / "x.pt"
    make(path, _good(tmp_path))
    assert _message(load_checkpoint, path).startswith(f"{path}: {problem}")


def test_legacy_checkpoints_still_load(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"model": {"w": torch.ones(2)}, "config": {}, "labels": {}}, path,
               _use_new_zipfile_serialization=False)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(2))


def test_a_damaged_archive_is_one_line(tmp_path):
    good = _good(tmp_path)
    damaged = tmp_path / "damaged.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():  # every entry kept but the pickle, cut short
            data = src.read(item)
            dst.writestr(item, data[:10] if item.filename.endswith("data.pkl") else data)
    assert _message(load_checkpoint, damaged).startswith(
        f"{damaged}: truncated or damaged checkpoint (")


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"model": _RunsCode(marker), "config": {}, "labels": {}}, path)
    message = _message(load_checkpoint, path)
    assert message.startswith(f"{path}: refused: the checkpoint holds a ") and "system" in message
    assert not marker.exists()


def test_weights_of_another_architecture_are_summarised():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4))
    other = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 4)).state_dict()
    message = _message(load_model_state, model, other, "x.pt")
    assert message == ("x.pt: checkpoint does not fit the model: 2 tensors missing (first: "
                       "1.weight); 2 tensors the model lacks (first: 2.weight); 2 tensors of "
                       "other shapes (first: 0.weight [5, 2], the model's [3, 2])")
    load_model_state(model, nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4)).state_dict(), "y.pt")


def _head_file(path, **changes):
    labels = roadpp()
    sizes = [labels.num_classes(t) for t in ("agent", "action", "loc")]
    head = EventHead(5, *sizes, hidden=8, layers=1, kernel=3)
    ckpt = {"state": head.state_dict(), "in_dim": 5, "sizes": sizes,
            "mean": torch.zeros(5, dtype=torch.float64), "std": torch.ones(5, dtype=torch.float64),
            "labels": labels.to_dict(),
            "config": {"head": {"hidden": 8, "layers": 1, "kernel": 3, "dropout": 0.1,
                                "use_roi": False}}}
    torch.save({**ckpt, **changes}, path)
    return path


def test_event_heads_load_without_running_code_old_numpy_ones_too(tmp_path):
    new = TrainedHead(_head_file(tmp_path / "new.pt"))
    assert new.mean.dtype == np.float64 and new.mean.shape == (5,) and not new.use_roi
    old = TrainedHead(_head_file(tmp_path / "old.pt", mean=np.zeros(5), std=np.ones(5),
                                 sizes=(10, 22, 16)))
    assert np.array_equal(old.std, np.ones(5)) and old.labels == roadpp()
    marker = tmp_path / "ran"
    evil = _head_file(tmp_path / "evil.pt", mean=_RunsCode(marker))
    assert "refused: the event head checkpoint holds a" in _message(TrainedHead, evil)
    assert not marker.exists()


@pytest.mark.parametrize("changes, problem", [
    ({"mean": torch.zeros(4)}, "its sizes, mean and std disagree"),
    ({"sizes": [10, "x", 16]}, "its sizes, mean and std disagree"),
    ({"labels": {"agent_labels": 3}}, "unreadable sizes, mean, std or labels"),
    ({"config": {"head": {"hidden": -1}}}, "config.head.hidden: must be an integer >= 1"),
    ({"in_dim": 6, "mean": torch.zeros(6), "std": torch.ones(6)},
     "does not fit the model: 1 tensor of other shapes (first: embed.weight [8, 5]"),
])
def test_a_broken_event_head_is_one_line(tmp_path, changes, problem):
    path = _head_file(tmp_path / "head.pt", **changes)
    assert problem in _message(TrainedHead, path)


def test_event_heads_written_by_train_events_hold_tensors_and_plain_containers(
        tmp_path, monkeypatch):
    from roadtrack.events import train as events_train
    from roadtrack.events.config import EventsConfig

    rng = np.random.default_rng(0)
    labels = roadpp()
    sample = (rng.normal(size=(30, 7)).astype(np.float32),
              {t: (rng.uniform(size=(30, labels.num_classes(t))) > 0.8).astype(np.float32)
               for t in ("agent", "action", "loc")}, np.ones(30, bool), {})
    monkeypatch.setattr(events_train, "load_training_series", lambda *a: (labels, [sample]))
    config = EventsConfig.from_dict({"fit": {"steps": 2, "batch_size": 2, "window": 8}})
    events_train.fit_event_head(tmp_path, tmp_path, tmp_path, config, progress=False)
    saved = read_torch_file(tmp_path / "event_head.pt")  # weights_only, nothing admitted
    assert isinstance(saved["mean"], torch.Tensor) and saved["sizes"] == [10, 22, 16]
    assert TrainedHead(tmp_path / "event_head.pt").mean.shape == (7,)
