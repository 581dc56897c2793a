"""Shared fixtures: a small synthetic ROAD++ dataset made once per test session."""
from __future__ import annotations

import json
import os
from pathlib import Path

# Two xdist workers on two cores: one OpenMP thread each, or torch's threads spin against each
# other and CPU convolutions get tens of times slower (set before torch is first imported).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
from hypothesis import HealthCheck, settings

from roadtrack.synth.dataset import ANNOTATION_NAME, write_dataset

# Fuzz tests (test_fuzz_*.py) run a few hundred cases per generator in CI; a long run by hand:
# HYPOTHESIS_PROFILE=long python -m pytest tests -k fuzz
settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=20000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """3 videos x 30 frames at 210x150: annotation, videos/ and rgb-images/."""
    root = tmp_path_factory.mktemp("synth") / "data"
    write_dataset(root, num_videos=3, num_frames=30, width=210, height=150, seed=7)
    return root


@pytest.fixture(scope="session")
def synth_anno_path(synth_root) -> Path:
    return synth_root / ANNOTATION_NAME


@pytest.fixture
def anno_dict(synth_anno_path) -> dict:
    """A fresh, editable copy of the synthetic annotation."""
    return json.loads(synth_anno_path.read_text())


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: one torch thread is faster than two fighting another test worker (modules
    opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
