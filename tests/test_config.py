"""roadtrack.config: defaults, checked keys and kinds, one-line errors naming key and file."""
import pytest

from roadtrack.config import config_from_dict, load_config, model_config
from roadtrack.errors import UserError


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_fill_what_the_file_leaves_out(tmp_path):
    cfg = load_config(write(tmp_path, "model:\n  decoder:\n    num_queries: 7\ntrain:\n  lr: 1\n"))
    assert set(cfg) == {"model", "data", "train", "detect", "track", "events"}
    assert cfg["model"]["decoder"]["num_queries"] == 7
    assert cfg["model"]["decoder"]["num_stages"] == 6  # default kept beside the override
    assert cfg["model"]["backbone"]["depths"] == [3, 4, 6, 3]
    assert cfg["train"]["lr"] == 1.0 and isinstance(cfg["train"]["lr"], float)
    assert load_config(write(tmp_path, "")) == config_from_dict({})


@pytest.mark.parametrize("text,key", [
    ("train:\n  lrr: 0.1\n", "train.lrr"),
    ("model:\n  decoder:\n    num_querys: 3\n", "model.decoder.num_querys"),
    ("modle: {}\n", "modle"),
])
def test_unknown_keys_name_key_and_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_config(path)
    assert f"unknown config key '{key}'" in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text,needle", [
    ("model:\n  decoder:\n    dim: big\n", "model.decoder.dim"),
    ("model:\n  num_frames: 2.5\n", "model.num_frames"),
    ("model:\n  backbone: 3\n", "model.backbone"),
    ("model: [1, 2]\n", "model"),
    ("model:\n  decoder: {dim: [1\n", "not valid YAML"),
    ("- a\n- b\n", "must be a mapping"),
])
def test_bad_values_and_broken_files(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_config(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_model_section_dataclass_and_build_errors():
    cfg = model_config({"decoder": {"dim": 30}})
    assert cfg.decoder.dim == 30 and cfg.classes.action == 22
    from roadtrack.models import build_detector

    with pytest.raises(UserError, match="model.decoder.dim 30"):
        build_detector({"decoder": {"dim": 30}})
    with pytest.raises(UserError, match="model.num_frames 6 must be a multiple"):
        build_detector({"num_frames": 6})
    with pytest.raises(UserError, match="unknown config key 'model.backbone.widht'"):
        build_detector({"backbone": {"widht": 3}})


def test_events_section_is_checked_like_the_others(tmp_path):
    from roadtrack.events.config import events_config

    cfg = events_config(write(tmp_path, "events:\n  fit:\n    steps: 7\n"))
    assert cfg.fit.steps == 7 and cfg.tubes.min_length == 4
    with pytest.raises(UserError, match="events.tubes.min_lenght"):
        events_config(write(tmp_path, "events:\n  tubes:\n    min_lenght: 2\n"))
