"""Fuzzing the config readers: broken run configs and tracker configs (wrong types and ranges
for every key of every section, unknown keys, non-mapping sections, YAML syntax errors, empty
files, random bytes) give a checked config or one line naming the file, never a traceback; and
``roadtrack train`` on them fails before writing anything into --out."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from roadtrack.cli import main
from roadtrack.configs import run_config
from roadtrack.engine.config import RunConfig, load_run_config, run_config_from_dict
from roadtrack.errors import UserError
from roadtrack.tracking import config as tracking_config
from roadtrack.tracking.config import TrackerConfig

BASE = yaml.safe_load(run_config("synthetic_tiny").read_text())


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    """Relative file names (a ``track.preset`` such as 'README.md') name nothing here."""
    monkeypatch.chdir(tmp_path)


def _paths(cls, prefix=()) -> list[tuple]:
    """Every section and key of a dataclass tree as a tuple path."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
            else f.default
        out.append(prefix + (f.name,))
        if dataclasses.is_dataclass(default):
            out += _paths(type(default), prefix + (f.name,))
    return out


KEYS = _paths(RunConfig) + [("track", "preset")]

scalars = st.one_of(
    st.integers(-3, 3), st.integers(), st.integers(-(2**1100), 2**1100),
    st.floats(), st.floats(-2, 2), st.booleans(), st.none(), st.text(max_size=8),
    st.sampled_from(["1e-4", "-1", "nan", ".inf", "auto", "best", "bytetrack", "", "slowfast"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


def _default(path: tuple):
    """The default value of a key (a tracker key's for ``track.*``)."""
    node = RunConfig()
    for key in path:
        node = "bytetrack" if key == "preset" else getattr(node, key)
    return node


def typed(default):
    """Values of the default's type, edges and out-of-range ones most of all."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.one_of(st.integers(-2, 3), st.integers(-70, 70), st.integers())
    if isinstance(default, float):
        return st.one_of(st.floats(-1.5, 2.5), st.sampled_from([0.0, 1.0, -0.0, 1e-300]),
                         st.floats(), st.integers(-2, 3))
    if isinstance(default, str):
        return st.one_of(st.text(max_size=8), st.text("ab/.", min_size=250, max_size=300),
                         st.sampled_from(
            ["auto", "on", "off", "best", "last", "cosine", "budget", "bf16", "gn", "mc3_18",
             "ema", "filterpy", "sort", "deepsort", "val", "\x00"]))
    if isinstance(default, list):
        return st.lists(st.one_of(st.integers(-64, 1024), st.sampled_from([0, 32, 64, 0.5])),
                        max_size=5)
    return values


def _set(config: dict, path: tuple, value) -> None:
    """config[path[0]]...[path[-1]] = value, making (or replacing by) mappings on the way."""
    node = config
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


@st.composite
def broken_configs(draw) -> bytes:
    """The bytes of a config file: the tiny config with a few keys changed, or broken text."""
    kind = draw(st.sampled_from(["values", "values", "values", "unknown", "text", "bytes",
                                 "cut", "empty"]))
    if kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"# nothing\n", b"~\n", b"---\n"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "text":
        return draw(st.text(max_size=64)).encode("utf-8", "surrogatepass")
    config = copy.deepcopy(BASE)
    if kind == "unknown":
        key = draw(st.one_of(st.text(min_size=1, max_size=10), st.integers(), st.booleans()))
        section = draw(st.sampled_from([(), *[p for p in KEYS if len(p) < 3]]))
        _set(config, section + (key,), draw(values))
    else:
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from(KEYS))
            _set(config, key, draw(st.one_of(typed(_default(key)), values)))
    text = yaml.safe_dump(config, allow_unicode=True)
    if kind == "cut":
        text = text[: draw(st.integers(0, len(text)))] + draw(st.sampled_from(["", "[", "{a", ":"]))
    return text.encode("utf-8", "surrogatepass")


def _load(path: Path):
    """load_run_config's result, or its one-line error (which must name ``path``)."""
    try:
        return load_run_config(path)
    except UserError as err:
        message = str(err)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        return message


@settings()
@given(content=broken_configs())
def test_run_configs_load_checked_or_fail_with_one_line_naming_the_file(tmp_path, content):
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    result = _load(path)
    if isinstance(result, RunConfig):  # valid: what run records store reads back the same
        assert run_config_from_dict(result.to_dict()) == result


@settings()
@given(content=broken_configs())
def test_train_on_a_broken_config_is_one_line_and_writes_nothing(tmp_path, content):
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    expected = _load(path)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--config", str(path),
                                       "--data", str(tmp_path / "no-data"),
                                       "--out", str(out), "--procs", "1"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, (result.output, result.exception)
    if isinstance(expected, str):
        assert lines[0] == f"roadtrack: error: {expected}"
    else:  # a valid config gets as far as the missing data folder
        assert lines[0] == f"roadtrack: error: {tmp_path / 'no-data'}: no such data folder"
    assert not out.exists()


tracker_values = st.dictionaries(
    st.sampled_from([f.name for f in dataclasses.fields(TrackerConfig)] + ["max_agee", "x"]),
    values, max_size=4)


@settings()
@given(data=tracker_values, raw=st.one_of(st.none(), st.binary(max_size=32)))
def test_tracker_configs_load_or_fail_with_one_line_naming_the_file(tmp_path, data, raw):
    path = tmp_path / "tracker.yaml"
    path.write_bytes(raw if raw is not None else yaml.safe_dump(data).encode())
    try:
        config = tracking_config.load_config(path)
    except UserError as err:
        assert str(err).startswith(f"{path}: ") and "\n" not in str(err), str(err)
    else:
        assert isinstance(config, TrackerConfig) and config.n_init >= 1

