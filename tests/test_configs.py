"""The configs shipped in the package: run configs by name, tracker presets."""
import pytest

from roadtrack import configs
from roadtrack.engine.config import load_run_config
from roadtrack.errors import UserError


def test_packaged_configs_are_listed_and_found_by_name():
    assert configs.run_config_names() == ["roadpp_stmixer_r2plus1d_18",
                                          "roadpp_stmixer_slowfast_r50",
                                          "roadpp_stmixer_swin3d_t", "synthetic_tiny",
                                          "synthetic_tiny_acar", "synthetic_tiny_deformable3d",
                                          "synthetic_tiny_msdeform", "synthetic_tiny_trajectory"]
    assert configs.tracker_preset_names() == ["bytetrack", "deepsort", "sort"]
    assert "max_age" in configs.tracker_preset("sort").read_text()
    assert configs.run_config("nope") is None
    assert configs.tracker_preset("../synthetic_tiny") is None


def test_a_run_config_is_a_file_or_else_a_packaged_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert configs.resolve_config_source("synthetic_tiny") == configs.run_config("synthetic_tiny")
    packaged = configs.run_config("synthetic_tiny")
    assert load_run_config("synthetic_tiny") == load_run_config(packaged)
    (tmp_path / "synthetic_tiny").write_text("train:\n  lrr: 1\n")  # an existing file wins
    with pytest.raises(UserError, match="lrr"):
        load_run_config("synthetic_tiny")
    with pytest.raises(UserError, match="cannot read config"):
        load_run_config("synthetic_tiny.yaml")
