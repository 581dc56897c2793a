"""The 3-D deformable attention neck (seed 001): the seed's numbers, gradients, odd sizes, config
checks, and the tiny detector training and detecting with it by config alone."""
import dataclasses

import pytest
import torch
import yaml
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.engine.config import load_run_config, run_config_from_dict
from roadtrack.errors import UserError
from roadtrack.io.artifacts import finished_videos
from roadtrack.models import build_detector
from roadtrack.models.config import ModelConfig, NeckConfig
from roadtrack.models.neck import DeformableAttention3D, DeformableNeck

from .reference import deformable3d as seed
from .train_helpers import tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _seed_in_grid_sample_order(*args, **kwargs):
    """The seed's normalize_grid with its (frame, row, column) turned into grid_sample's order:
    the one place where roadtrack's module differs from the seed on purpose."""
    return _SEED_NORMALIZE(*args, **kwargs).flip(-1)


_SEED_NORMALIZE = seed.normalize_grid


@pytest.mark.parametrize("shape, downsample, kernel, heads, groups", [
    ((2, 16, 3, 9, 10), (1, 2, 2), (3, 4, 4), 4, 2),
    ((1, 8, 4, 8, 11), (2, 4, 4), (4, 6, 6), 2, 2),
    ((2, 16, 1, 7, 5), (1, 1, 1), (3, 3, 3), 4, 4),
])
def test_attention_matches_the_seed(monkeypatch, shape, downsample, kernel, heads, groups):
    torch.manual_seed(0)
    dim = shape[1]
    ref = seed.DeformableAttention3D(dim=dim, dim_head=8, heads=heads, offset_groups=groups,
                                     downsample_factor=downsample, offset_kernel_size=kernel)
    ours = DeformableAttention3D(dim, heads, 8, groups, downsample, kernel)
    ours.load_state_dict(ref.state_dict())  # same names, same shapes
    with torch.no_grad():  # offsets of a cell or so, so that the sampling matters
        ref.to_offsets[2].weight.mul_(3.0)
        ours.to_offsets[2].weight.mul_(3.0)
    x = torch.randn(shape)
    monkeypatch.setattr(seed, "normalize_grid", _seed_in_grid_sample_order)
    want = ref(x)
    got = ours(x)
    values = got - ours.to_out.bias.view(1, -1, 1, 1, 1)
    assert got.shape == x.shape and values.abs().amin(dim=(2, 3, 4)).max() > 1e-3  # keys read
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    monkeypatch.setattr(seed, "normalize_grid", _SEED_NORMALIZE)
    assert not torch.allclose(ref(x), want, atol=1e-3)  # the seed's own order reads elsewhere


def test_keys_are_read_where_the_grid_says():
    """Zero offsets, no downsampling, one frame: the sampled keys are the input at each cell's
    own position scaled by grid_sample's half-pixel edges, never another axis's positions."""
    torch.manual_seed(0)
    attn = DeformableAttention3D(8, 2, 4, 2, (1, 1, 1), (3, 3, 3))
    with torch.no_grad():
        attn.to_offsets[2].weight.zero_()
    x = torch.randn(1, 8, 1, 5, 7)
    seen = {}
    attn.to_k.register_forward_hook(lambda _m, args, _out: seen.setdefault("kv", args[0]))
    attn(x)
    kv = seen["kv"]  # (1, 8, 1, 5, 7)
    # cell i of n sits at 2 i / (n - 1) - 1: pixel i n / (n - 1) - 1/2, so interior cells blend
    # neighbours but the columns stay in the column axis: the middle row/column is exact
    assert torch.allclose(kv[..., 2, 3], 0.5 * x[..., 2, 3], atol=1e-6)  # frame axis: edge (-1)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    cfg = NeckConfig(name="deformable3d", depth=2, levels=[0, 2], downsample=[1, 2, 2],
                     offset_kernel=[3, 4, 4], heads=4, dim_head=8, offset_groups=2)
    neck = DeformableNeck(cfg, 16)
    levels = [torch.randn(2, 16, 2, 12 // 2**i, 10 // 2**i) for i in range(4)]
    out = neck(levels)
    assert out[1] is levels[1] and out[3] is levels[3]
    sum(o.square().mean() for o in out).backward()
    missing = [n for n, p in neck.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


@pytest.mark.parametrize("size", [(1, 7, 5), (3, 13, 9), (1, 3, 2), (5, 1, 1)])
def test_odd_sizes_keep_their_shape(size):
    """Maps not divisible by (or smaller than) the downsample factors."""
    torch.manual_seed(0)
    attn = DeformableAttention3D(16, 4, 8, 4, (2, 4, 4), (4, 6, 6))
    x = torch.randn(2, 16, *size, requires_grad=True)
    out = attn(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("neck, key", [
    ({"name": "deformable"}, "model.neck.name"),
    ({"levels": [0, 4]}, "model.neck.levels"),
    ({"levels": []}, "model.neck.levels"),
    ({"downsample": [1, 0, 2]}, "model.neck.downsample"),
    ({"downsample": [2, 2], "offset_kernel": [4, 4]}, "model.neck.downsample"),
    ({"offset_kernel": [3, 5, 6]}, "model.neck.offset_kernel"),
    ({"offset_kernel": [1, 6, 6]}, "model.neck.offset_kernel"),
    ({"heads": 6, "offset_groups": 4}, "model.neck.heads"),
    ({"depth": 0}, "model.neck.depth"),
    ({"dim_head": "x"}, "model.neck.dim_head"),
    ({"name": "deformable3d", "heads": 12, "offset_groups": 12}, "model.neck.offset_groups"),
])
def test_bad_neck_value_is_one_line_naming_the_key(neck, key):
    with pytest.raises(UserError) as err:
        run_config_from_dict({"model": {"decoder": {"dim": 64, "num_heads": 4}, "neck": neck}},
                             "run.yaml")
    message = str(err.value)
    assert "\n" not in message and key in message and "run.yaml" in message


def test_no_neck_is_todays_model_and_the_neck_is_architecture():
    plain = ModelConfig()
    assert ModelConfig(neck=NeckConfig(depth=3)).architecture() == plain.architecture()
    old = dict(plain.architecture())
    del old["neck"]  # a checkpoint from before the neck
    from roadtrack.config import section_from_dict
    assert section_from_dict(ModelConfig, old, "model.").architecture() == plain.architecture()
    with_neck = ModelConfig(neck=NeckConfig(name="deformable3d"))
    assert with_neck.architecture() != plain.architecture()
    cfg = load_run_config("synthetic_tiny").model
    keys = set(build_detector(cfg).state_dict())
    assert not any(k.startswith("neck.") for k in keys)
    neck_cfg = load_run_config("synthetic_tiny_deformable3d").model
    assert neck_cfg.neck.name == "deformable3d"
    assert dataclasses.replace(neck_cfg, neck=cfg.neck) == cfg  # only the neck differs
    neck_keys = set(build_detector(neck_cfg).state_dict())
    assert keys < neck_keys and all(k.startswith("neck.") for k in neck_keys - keys)


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_tiny_detector_with_the_neck_trains_resumes_and_detects(synth_root, tmp_path):
    plain = tiny_config(tmp_path)  # 64x64, 2 steps
    cfg = yaml.safe_load(open(plain))
    cfg["model"]["neck"] = load_run_config("synthetic_tiny_deformable3d").model.neck.__dict__
    config = tmp_path / "neck.yaml"
    config.write_text(yaml.safe_dump(cfg))
    code, out = _run("train", "--config", config, "--data", synth_root, "--out", tmp_path / "run")
    assert code == 0 and "trained 2 steps" in out, out
    code, out = _run("train", "--config", plain, "--data", synth_root, "--out", tmp_path / "run",
                     "--resume")
    assert code == 2 and "differs from the checkpoint" in out, out
    code, out = _run("detect", "--weights", tmp_path / "run", "--videos", synth_root / "videos",
                     "--out", tmp_path / "det", "--video", "train_00001")
    assert code == 0, out
    assert finished_videos(tmp_path / "det", "detections") == ["train_00001"]


def test_neck_on_a_torchvision_backbone():
    torch.manual_seed(0)
    cfg = load_run_config("synthetic_tiny_deformable3d").model
    cfg = dataclasses.replace(
        cfg, backbone=dataclasses.replace(cfg.backbone, name="mc3_18", norm="auto"),
        decoder=dataclasses.replace(cfg.decoder, num_queries=6, num_stages=1))
    model = build_detector(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, model.num_frames, 64, 96))
    assert out["boxes"].shape == (1, 6, 4) and torch.isfinite(out["boxes"]).all()


def test_low_precision_weights_and_autocast():
    """``detect --half`` turns the weights to fp16 (bf16 here: the CPU's); training uses
    autocast. Sample points stay float32 either way."""
    torch.manual_seed(0)
    attn = DeformableAttention3D(16, 4, 8, 4, (1, 2, 2), (3, 4, 4))
    x = torch.randn(2, 16, 2, 9, 7)
    want = attn(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = attn(x)
    low = attn.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert low.dtype == torch.bfloat16
    for got in (mixed, low):
        torch.testing.assert_close(got.float(), want, atol=0.05, rtol=0.05)
