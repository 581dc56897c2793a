"""The run config (roadtrack.engine.config over roadtrack.config): defaults, checked keys and
kinds, one-line errors naming key and file, frozen sections."""
import dataclasses

import pytest

from roadtrack.engine.config import RunConfig, load_run_config, run_config_from_dict
from roadtrack.errors import UserError
from roadtrack.events.config import EventsConfig
from roadtrack.models.config import ModelConfig
from roadtrack.tracking.config import TrackerConfig
from roadtrack.tracking.config import load_config as load_tracker


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_fill_what_the_file_leaves_out(tmp_path):
    cfg = load_run_config(write(tmp_path, "model:\n  decoder:\n    num_queries: 7\ntrain:\n"
                                          "  lr: 1\n"))
    assert isinstance(cfg, RunConfig) and isinstance(cfg.model, ModelConfig)
    assert isinstance(cfg.track, TrackerConfig) and isinstance(cfg.events, EventsConfig)
    assert cfg.model.decoder.num_queries == 7
    assert cfg.model.decoder.num_stages == 6  # default kept beside the override
    assert cfg.model.backbone.depths == [3, 4, 6, 3]
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.track == load_tracker("bytetrack")  # no track section: the default preset
    assert load_run_config(write(tmp_path, "")) == run_config_from_dict({}) == RunConfig()


@pytest.mark.parametrize("text,key", [
    ("train:\n  lrr: 0.1\n", "train.lrr"),
    ("model:\n  decoder:\n    num_querys: 3\n", "model.decoder.num_querys"),
    ("modle: {}\n", "modle"),
])
def test_unknown_keys_name_key_and_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_run_config(path)
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
        load_run_config(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="cannot read config"):
        load_run_config(tmp_path / "nope.yaml")


def test_model_section_dataclass_and_errors():
    cfg = run_config_from_dict({"model": {"decoder": {"dim": 32}}}).model
    assert cfg.decoder.dim == 32 and cfg.classes.action == 22
    with pytest.raises(UserError, match=r"model.decoder.dim: must be a multiple of 8 .* got 30"):
        run_config_from_dict({"model": {"decoder": {"dim": 30}}})
    with pytest.raises(UserError, match=r"model.num_frames: must be a multiple of "
                                        r"model.backbone.alpha \(4\), got 6"):
        run_config_from_dict({"model": {"num_frames": 6}})
    with pytest.raises(UserError, match="unknown config key 'model.backbone.widht'"):
        run_config_from_dict({"model": {"backbone": {"widht": 3}}})


def test_sections_are_frozen_and_changes_are_checked_again():
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.decoder.num_stages = 0  # type: ignore[misc]
    assert cfg.with_values("train", max_steps=10).train.max_steps == 10
    assert cfg.train.max_steps == 10000  # the original is untouched
    with pytest.raises(UserError, match="train.max_steps: must be an integer >= 1, got 0"):
        cfg.with_values("train", max_steps=0)


def test_the_stored_mapping_reads_back_to_the_same_config(tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text("max_age: 5\nhigh_score: 0.3\n")
    cfg = load_run_config(write(tmp_path, f"track:\n  preset: {preset}\n  n_init: 4\n"
                                          "events:\n  fit:\n    steps: 7\n"))
    again = run_config_from_dict(cfg.to_dict())  # what run.yaml and checkpoints hold
    assert again == cfg and again.track.max_age == 5 and again.events.fit.steps == 7


def test_events_section_is_checked_like_the_others(tmp_path):
    cfg = load_run_config(write(tmp_path, "events:\n  fit:\n    steps: 7\n")).events
    assert cfg.fit.steps == 7 and cfg.tubes.min_length == 4
    with pytest.raises(UserError, match="events.tubes.min_lenght"):
        load_run_config(write(tmp_path, "events:\n  tubes:\n    min_lenght: 2\n"))


def _error(path) -> str:
    with pytest.raises(UserError) as err:
        load_run_config(path)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("text, message", [
    ("data:\n  input_size: [a, b]\n",
     "data.input_size: must be a list of integers, got ['a', 'b']"),
    ("data:\n  input_size: [320]\n", "data.input_size: must be [W, H], positive multiples of 32"),
    ("data:\n  input_size: [320, 100]\n", "data.input_size: must be [W, H]"),
    ("train:\n  batch_size: 0\n", "train.batch_size: must be an integer >= 1, got 0"),
    ("train:\n  batch_size: -1\n", "train.batch_size: must be an integer >= 1, got -1"),
    ("train:\n  batch_size:\n", "train.batch_size: must be an integer, got None"),
    ("train:\n  lr: -1\n", "train.lr: must be a number > 0, got -1.0"),
    ("train:\n  lr: .nan\n", "train.lr: must be a number, got nan"),
    ("train:\n  betas: [0.9, 1.5]\n", "train.betas: must be two numbers in [0, 1)"),
    ("train:\n  amp: fp8\n", "train.amp: must be one of auto, bf16, fp16, off, got 'fp8'"),
    ("train:\n  seed: -3\n", "train.seed: must be an integer in [0, 4294967295], got -3"),
    ("detect:\n  nms_iou: 0\n", "detect.nms_iou: must be a number in (0, 1], got 0.0"),
    ("detect:\n  half: maybe\n", "detect.half: must be one of auto, on, off"),
    ("model:\n  backbone:\n    fuse_kernel: 4\n", "model.backbone.fuse_kernel: must be odd"),
    ("model:\n  backbone:\n    freeze_at: 5\n", "model.backbone.freeze_at: must be an integer in"),
    ("model:\n  backbone:\n    lateral: bn\n", "model.backbone.lateral: must be one of conv, "),
    ("model:\n  num_frames: 12\n  backbone:\n    name: r2plus1d_18\n",
     "model.num_frames: must be a multiple of the temporal stride of r2plus1d_18 (8)"),
    ("train:\n  backbone_lr_mult: -1\n", "train.backbone_lr_mult: must be a number >= 0"),
    ("model:\n  loss:\n    focal_gamma: -2\n", "model.loss.focal_gamma: must be a number >= 0"),
    ("events:\n  fit:\n    lr: 0\n", "events.fit.lr: must be a number > 0, got 0.0"),
    ("events:\n  head:\n    kernel: 4\n", "events.head.kernel: must be odd, got 4"),
    ("events:\n  tubes:\n    min_track_length: 0\n", "events.tubes.min_track_length: must be"),
    ("events: 3\n", "events: must be a mapping of keys to values, got 3"),
    ("track:\n  max_age: 0\n", "track.max_age: must be an integer >= 1, got 0"),
    ("track:\n  high_score: 0.05\n", "track.low_score: must not exceed high_score (0.05)"),
    ("track:\n  gallery: 3\n", "track.gallery: must be a string, got 3"),
    ("track: [1]\n", "track: must be a mapping, got [1]"),
    ("track:\n  preset: nope\n", "track.preset: no tracker preset 'nope'"),
    ("track:\n  preset: 3\n", "track.preset: must be a preset name or a YAML file, got 3"),
    (f"track:\n  preset: {'a' * 300}\n", "track.preset: no tracker preset 'aaaaaaa"),
    ("train: {lr: 1, 3: x}\n", "unknown config key 'train.3'"),
    ("\xef\n", "config is not UTF-8 text"),
    ("a: 2001-02-30\n", "not valid YAML: day is out of range for month"),
])
def test_every_range_and_type_of_every_section_is_one_line_naming_file_and_key(
        tmp_path, text, message):
    path = tmp_path / "x.yaml"
    path.write_bytes(text.encode("latin-1"))
    assert _error(path).startswith(f"{path}: {message}")


@pytest.mark.parametrize("text, message", [
    ("train:\n  lrr: 0.1\n", "unknown config key 'train.lrr' (did you mean 'train.lr'?)"),
    ("track:\n  hihg_score: 0.3\n",
     "unknown config key 'track.hihg_score' (did you mean 'track.high_score'?)"),
    ("events:\n  tubes:\n    min_lenght: 2\n",
     "unknown config key 'events.tubes.min_lenght' (did you mean 'events.tubes.min_length'?)"),
    ("trian:\n  lr: 1\n", "unknown config key 'trian' (did you mean 'train'?)"),
    ("train:\n  zzz: 1\n", "unknown config key 'train.zzz'"),
])
def test_unknown_keys_are_blamed_on_the_users_file_with_a_suggestion(tmp_path, text, message):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    assert _error(path) == f"{path}: {message}"


def test_a_tracker_preset_file_is_blamed_for_its_own_problems(tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text("max_age: 5\nhigh_score: 0.3\n")
    path = tmp_path / "x.yaml"
    path.write_text(f"track:\n  preset: {preset}\n  n_init: 4\n")
    track = load_run_config(path).track
    assert (track.name, track.max_age, track.high_score, track.n_init) == ("mine", 5, 0.3, 4)
    path.write_text(f"track:\n  preset: {preset}\n  low_score: 0.4\n")
    assert _error(path) == f"{path}: track.low_score: must not exceed high_score (0.3), got 0.4"
    preset.write_text("max_age: -1\nmax_agge: 3\n")
    assert _error(path) == (f"{preset}: unknown tracker config keys: max_agge "
                            "(did you mean 'max_age'?)")
    preset.write_text("max_age: -1\n")
    assert _error(path) == f"{preset}: max_age: must be an integer >= 1, got -1"


def test_numbers_that_yaml_reads_as_strings_pass(tmp_path):
    cfg = load_run_config(write(tmp_path, "train:\n  lr: 1e-4\n", "x.yaml"))
    assert cfg.train.lr == 1e-4
    assert "train.lr: must be a number" in _error(write(tmp_path, "train:\n  lr: 1e-4x\n"))


def test_a_yaml_alias_bomb_is_named_in_a_short_line(tmp_path):
    levels = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    path = write(tmp_path, f"train:\n  lr: [{', '.join(levels)}]\n", "bomb.yaml")
    message = _error(path)  # a million ones in the value: the message shows a few
    assert message.startswith(f"{path}: train.lr: must be a number, got [[1, 1, 1, 1, ...]")
    assert len(message) < len(str(path)) + 120


def test_a_base_config_is_merged_under_the_file_key_by_key(tmp_path):
    write(tmp_path, "train: {lr: 0.5, max_steps: 7}\nmodel: {decoder: {dim: 32, num_heads: 2}}\n",
          "parent.yaml")
    child = write(tmp_path, "base: parent.yaml\nmodel: {decoder: {dim: 48}}\nevents:\n")
    cfg = load_run_config(child)
    assert (cfg.train.lr, cfg.train.max_steps) == (0.5, 7)
    assert (cfg.model.decoder.dim, cfg.model.decoder.num_heads) == (48, 2)
    assert cfg.events == EventsConfig()
    grandchild = write(tmp_path, "base: run.yaml\ntrain: {max_steps: 9}\n", "grand.yaml")
    assert load_run_config(grandchild).train == dataclasses.replace(cfg.train, max_steps=9)


def test_a_packaged_base_is_found_by_name(tmp_path):
    packaged = load_run_config("synthetic_tiny")
    child = write(tmp_path, "base: synthetic_tiny\ntrain: {max_steps: 5}\n")
    cfg = load_run_config(child)
    assert cfg.train.max_steps == 5
    assert cfg.replace(train=packaged.train) == packaged


@pytest.mark.parametrize(("files", "needle", "blamed"), [
    ({"run.yaml": "base: [a]\n"}, "base: must name", "run.yaml"),
    ({"run.yaml": "base: nowhere.yaml\n"}, "cannot read config", "nowhere.yaml"),
    ({"run.yaml": "base: a.yaml\n", "a.yaml": "base: run.yaml\n"}, "leads back", "a.yaml"),
    ({"run.yaml": "base: a.yaml\n", "a.yaml": "train: {lrr: 1}\n"}, "train.lrr", "a.yaml"),
    ({"run.yaml": "base: a.yaml\n", "a.yaml": "- 1\n"}, "must be a mapping", "a.yaml"),
])
def test_a_broken_base_is_one_line_naming_the_file_at_fault(tmp_path, files, needle, blamed):
    for name, text in files.items():
        write(tmp_path, text, name)
    with pytest.raises(UserError, match=needle) as caught:
        load_run_config(tmp_path / "run.yaml")
    assert blamed in str(caught.value) and "\n" not in str(caught.value)
