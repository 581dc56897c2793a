"""decoder.mixing: deformable, multi-scale deformable attention in the STMixer stages: equal to
the seed's MSDeformAttn (tests/reference/msdeform.py) to 1e-5, gradients, config, training."""
import dataclasses

import pytest
import torch
import yaml
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.engine.checkpoint import load_checkpoint
from roadtrack.engine.config import load_run_config
from roadtrack.errors import UserError
from roadtrack.io.artifacts import finished_videos
from roadtrack.models import build_detector
from roadtrack.models.stm import layout_features
from roadtrack.models.stm.stage import SamplingMixing

from .reference.msdeform import deformable_mixing_ref
from .reference.stm import make_sample_points_ref
from .train_helpers import tiny_config

TOL = {"atol": 1e-5, "rtol": 1e-5}
STRIDES = [4, 8, 16, 32]


def _inputs(B, N, D, T, size, gen):
    levels = [torch.randn(B, D, T, size // s, size // s, generator=gen) for s in STRIDES]
    spatial = torch.randn(B, N, D, generator=gen)
    temporal = torch.randn(B, N, D, generator=gen)
    xy = torch.rand(B, N, 2, generator=gen) * size
    z = torch.rand(B, N, 1, generator=gen) * 4 + 2.5  # boxes of 6..90 pixels
    r = torch.randn(B, N, 1, generator=gen) * 0.5
    return levels, spatial, temporal, torch.cat([xy, z, r], dim=-1)


def _module(D, P, T, G, gen):
    module = SamplingMixing(D, P, T, G, out_multiplier=2, mapping_stride=3.0, tau=2.0,
                            mixing="deformable")
    with torch.no_grad():  # random weights everywhere: non-uniform attention, far points
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return module


@pytest.mark.parametrize("P,T,G,batched", [(4, 2, 4, False), (3, 3, 2, True),
                                           (8, 1, 4, False)])
def test_deformable_mixing_matches_the_seeds_msdeformattn(P, T, G, batched):
    gen = torch.Generator().manual_seed(P * 100 + T * 10 + G)
    B, N, D, size = 2, 5, 16, 64
    module = _module(D, P, T, G, gen)
    levels, spatial, temporal, xyzr = _inputs(B, N, D, T, size, gen)
    layout = layout_features(levels, G, batched=batched)  # batched: the GPU's layout
    ours_s, ours_t = module(layout, STRIDES, spatial, temporal, xyzr)
    points = make_sample_points_ref(module.offset_generator(spatial), G * P, xyzr)
    assert ((points[..., :2] < 0) | (points[..., :2] > size)).any()  # some read padding
    value_proj = module.value_proj.proj
    for ours, query, mixing, norm in [(ours_s, spatial, module.mixing_s, module.norm_s),
                                      (ours_t, temporal, module.mixing_t, module.norm_t)]:
        ref = deformable_mixing_ref(levels, STRIDES, points, query, value_proj,
                                    mixing.attention_weights, mixing.output_proj, P)
        assert ours.shape == (B, N, D)
        torch.testing.assert_close(ours, norm(ref), **TOL)


@pytest.mark.parametrize("init", [True, False])
def test_gradients_reach_every_parameter(init):
    gen = torch.Generator().manual_seed(3)
    D, P, T, G = 16, 4, 2, 4
    module = _module(D, P, T, G, gen)
    if init:
        module.init_weights()  # the stage's start: uniform attention, zero biases
    levels, spatial, temporal, xyzr = _inputs(2, 3, D, T, 64, gen)
    levels = [level.requires_grad_() for level in levels]
    spatial.requires_grad_()
    out_s, out_t = module(layout_features(levels, G), STRIDES, spatial, temporal, xyzr)
    weights = torch.randn(out_s.shape, generator=gen)
    ((out_s + 2 * out_t) * weights).sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(level.grad.abs().sum() > 0 for level in levels)


def test_bad_mixing_is_one_line_naming_the_key(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("base: synthetic_tiny\nmodel:\n  decoder:\n    mixing: attention\n")
    with pytest.raises(UserError) as err:
        load_run_config(path)
    assert str(err.value) == (f"{path}: model.decoder.mixing: must be one of adaptive, "
                              "deformable, got 'attention'")


def test_adaptive_stays_the_default_model_and_mixing_is_architecture():
    tiny = load_run_config("synthetic_tiny").model
    deform = load_run_config("synthetic_tiny_msdeform").model
    assert tiny.decoder.mixing == "adaptive" and deform.decoder.mixing == "deformable"
    assert dataclasses.replace(deform.decoder, mixing="adaptive") == tiny.decoder
    assert tiny.architecture() != deform.architecture()  # no resume across the two
    torch.manual_seed(0)
    keys = {k for k in build_detector(tiny).state_dict() if ".sampling_mixing." in k}
    assert not any("value_proj" in k or "attention_weights" in k for k in keys)
    assert "stages.0.sampling_mixing.mixing_s.parameter_generator.0.weight" in keys
    deform_keys = {k for k in build_detector(deform).state_dict() if ".sampling_mixing." in k}
    assert "stages.2.sampling_mixing.value_proj.proj.weight" in deform_keys
    assert "stages.0.sampling_mixing.mixing_t.attention_weights.weight" in deform_keys


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_tiny_deformable_detector_trains_resumes_and_detects(synth_root, tmp_path):
    def config(name, mixing, **train):
        path = tmp_path / name
        cfg = yaml.safe_load(open(tiny_config(tmp_path, **train)))
        cfg["model"]["decoder"]["mixing"] = mixing
        path.write_text(yaml.safe_dump(cfg))
        return path

    run = tmp_path / "run"
    code, out = _run("train", "--config", config("d.yaml", "deformable"), "--data", synth_root,
                     "--out", run)
    assert code == 0 and "trained 2 steps" in out, out
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert any(".value_proj." in k for k in state["model"])
    code, out = _run("train", "--config", config("a.yaml", "adaptive", max_steps=3), "--data",
                     synth_root, "--out", run, "--resume")
    assert code == 2 and "model section differs" in out, out
    code, out = _run("train", "--config", config("d3.yaml", "deformable", max_steps=3), "--data",
                     synth_root, "--out", run, "--resume")
    assert code == 0 and "trained 3 steps" in out, out
    code, out = _run("detect", "--weights", run, "--videos", synth_root, "--out",
                     tmp_path / "det", "--video", "train_00001")
    assert code == 0 and "frames/s" in out, out
    assert finished_videos(tmp_path / "det", "detections") == ["train_00001"]


def test_deformable_detector_in_mixed_precision_gives_float_outputs():
    cfg = load_run_config("synthetic_tiny_msdeform").model
    torch.manual_seed(4)
    model = build_detector(dataclasses.replace(cfg, decoder=dataclasses.replace(
        cfg.decoder, num_queries=5, num_stages=1)))
    clips = torch.randn(1, 3, model.num_frames, 64, 64)
    target = {"boxes": torch.tensor([[0.1, 0.2, 0.5, 0.6]]), "agent": torch.eye(10)[[1]],
              "action": torch.eye(22)[[3]], "loc": torch.eye(16)[[2]]}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.train()
        losses = model(clips, [target])
        losses["loss"].backward()
        model.eval()
        with torch.no_grad():
            out = model(clips)
    assert torch.isfinite(losses["loss"])
    assert model.stages[0].sampling_mixing.mixing_s.attention_weights.weight.grad.abs().sum() > 0
    assert all(v.dtype == torch.float32 for v in out.values() if torch.is_tensor(v))
