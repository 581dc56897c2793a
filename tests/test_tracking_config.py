import pytest

from roadtrack.errors import UserError
from roadtrack.tracking.config import load_config, preset_names


def test_presets_load_with_their_published_settings():
    assert {"bytetrack", "deepsort", "sort"} <= set(preset_names())
    deep, sort, byte = load_config("deepsort"), load_config("sort"), load_config("bytetrack")
    assert (deep.n_init, deep.max_age, deep.max_cosine_distance, deep.budget) == (3, 70, 0.2, 100)
    assert deep.max_iou_distance == 0.7 and deep.iou_max_misses == 1
    assert not sort.appearance and sort.max_age == 1 and sort.max_iou_distance == 0.7
    assert (byte.high_score, byte.low_score, byte.new_track_score, byte.max_age) == \
        (0.6, 0.1, 0.7, 30)


def test_yaml_file_and_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("max_age: 5\ngallery: budget\n")
    cfg = load_config(path, per_class=True)
    assert (cfg.name, cfg.max_age, cfg.gallery, cfg.per_class) == ("mine", 5, "budget", True)


@pytest.mark.parametrize("text, message", [
    ("max_agee: 5\n", "unknown tracker config keys: max_agee"),
    ("max_age: five\n", "max_age: must be an integer, got 'five'"),
    ("n_init: 0\n", "n_init: must be an integer >= 1, got 0"),
    ("gallery: median\n", "gallery: must be one of budget, ema, got 'median'"),
    ("max_agee: 5\n", r"\(did you mean 'max_age'\?\)"),
    ("low_score: 0.7\n", r"low_score: must not exceed high_score \(0.6\)"),
    ("low_score: .nan\n", "low_score: must be a number or null, got nan"),
    ("output_box: centre\n", "output_box: must be one of detection, kalman, got 'centre'"),
    ("score_range: auto\n", "score_range: must be one of absolute, input, got 'auto'"),
    ("- 1\n- 2\n", "must be a mapping"),
    ("max_age: [1\n", "not valid YAML"),
])
def test_bad_configs_raise_one_clear_user_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(UserError, match="no tracker preset 'nope'.*bytetrack"):
        load_config("nope")
