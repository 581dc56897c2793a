"""Pretrained backbones: published SlowFast layouts (pytorchvideo, PySlowFast .pyth, Caffe2 .pkl)
and roadtrack's own load into roadtrack's SlowFast and give the same features; torchvision's
weights come from torch's hub cache; frozen BatchNorm, frozen stages, folding; bad files are one
line. Nothing is downloaded: every reference file is written here."""
from __future__ import annotations

import dataclasses
import io
import pickle
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from torch import nn

from roadtrack.cli import main
from roadtrack.configs import run_config
from roadtrack.engine.config import load_run_config
from roadtrack.errors import UserError
from roadtrack.models.backbones import build_body
from roadtrack.models.backbones.frozen_bn import FrozenBatchNorm3d, fold_frozen_bn
from roadtrack.models.backbones.pretrained import load_backbone_weights, load_pretrained
from roadtrack.models.backbones.slowfast import SlowFast
from roadtrack.models.config import BackboneConfig

from .train_helpers import tiny_config

# a SlowFast of the published design, small: stages of 1, 2, 1, 1 blocks, width 16
SMALL = dict(depths=(1, 2, 1, 1), width=16, alpha=4, beta=0.25, fuse_kernel=7,
             lateral="conv_norm_relu")


def _randomise_norms(model: nn.Module) -> nn.Module:
    """BatchNorm statistics and affine parameters away from their defaults (so a misplaced one
    shows)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm3d, FrozenBatchNorm3d)):
                for t, (lo, hi) in ((m.running_mean, (-.2, .2)), (m.running_var, (.5, 1.5)),
                                    (m.weight, (.5, 1.5)), (m.bias, (-.2, .2))):
                    t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)
    return model.eval()


def _clip(frames: int = 8, size: int = 48) -> torch.Tensor:
    return torch.randn(1, 3, frames, size, size, generator=torch.Generator().manual_seed(2))


def _same_levels(a: list[torch.Tensor], b: list[torch.Tensor], tol: float = 1e-4) -> None:
    assert len(a) == len(b) == 4
    for x, y in zip(a, b, strict=True):
        assert x.shape == y.shape
        assert torch.allclose(x, y, atol=tol, rtol=0), (x - y).abs().max()


# -- the PySlowFast and Caffe2 layouts, written from a roadtrack SlowFast's tensors -------------

def _pyslowfast_name(name: str) -> str:
    """roadtrack SlowFast name -> PySlowFast's (written out here, independently of the loader)."""
    path = {"slow": 0, "fast": 1}
    if m := re.match(r"(slow|fast)_stem\.([01])\.(.*)", name):
        return f"s1.pathway{path[m[1]]}_stem.{'conv' if m[2] == '0' else 'bn'}.{m[3]}"
    if m := re.match(r"laterals\.(\d)\.([01])\.(.*)", name):
        return f"s{int(m[1]) + 1}_fuse.{'conv_f2s' if m[2] == '0' else 'bn'}.{m[3]}"
    m = re.match(r"(slow|fast)_stages\.(\d)\.(\d+)\.(conv|bn|downsample\.)(\d)\.(.*)", name)
    assert m, name
    prefix = f"s{int(m[2]) + 2}.pathway{path[m[1]]}_res{m[3]}."
    if m[4] == "downsample.":
        return prefix + ("branch1." if m[5] == "0" else "branch1_bn.") + m[6]
    letter = "abc"[int(m[5]) - 1]
    return prefix + f"branch2.{letter}{'_bn' if m[4] == 'bn' else ''}.{m[6]}"


def _caffe2_name(name: str, last_block: dict[int, int]) -> str:
    """PySlowFast name -> Caffe2 blob name (the model zoo's conventions)."""
    suffix = {"weight": "w", "bias": "b", "running_mean": "rm", "running_var": "riv"}
    module, _, param = name.rpartition(".")
    bn = module.endswith("bn")
    tail = {"weight": "s", "bias": "b"}[param] if bn and param in ("weight", "bias") \
        else suffix[param]
    if m := re.match(r"s1\.pathway(\d)_stem\.(conv|bn)$", module):
        t = "t_" if m[1] == "1" else ""
        return f"{t}conv1_{tail}" if m[2] == "conv" else f"{t}res_conv1_bn_{tail}"
    if m := re.match(r"s(\d)_fuse\.(conv_f2s|bn)$", module):
        base = "t_pool1_subsample" if m[1] == "1" else \
            f"t_res{m[1]}_{last_block[int(m[1])]}_branch2c_bn_subsample"
        return f"{base}_{tail}" if m[2] == "conv_f2s" else f"{base}_bn_{tail}"
    m = re.match(r"s(\d)\.pathway(\d)_res(\d+)\.branch(1|2\.[abc])(_bn)?$", module)
    assert m, name
    t = "t_" if m[2] == "1" else ""
    branch = m[4].replace(".", "")
    return f"{t}res{m[1]}_{m[3]}_branch{branch}{'_bn' if m[5] else ''}_{tail}"


def _source_state(model: SlowFast) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes bytes as Python 2's str (BINSTRING), as Caffe2's pickles hold arrays' data."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_bytes(self, obj):
        self.write(pickle.BINSTRING + len(obj).to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def _write_caffe2(path: Path, blobs: dict) -> None:
    data = io.BytesIO()
    _Py2Pickler(data, protocol=2).dump({"blobs": blobs})
    path.write_bytes(data.getvalue())


@pytest.fixture(scope="module")
def source() -> SlowFast:
    torch.manual_seed(0)
    return _randomise_norms(SlowFast(**SMALL))


def _load_and_compare(source: SlowFast, path) -> list[str]:
    """Load ``path`` into a fresh SlowFast, check its pyramid equals ``source``'s exactly, and
    return the load report."""
    target = SlowFast(**SMALL).eval()
    report = load_pretrained(target, path)
    with torch.no_grad():
        _same_levels(target(_clip()), source(_clip()), tol=0)
    return report


def test_pyslowfast_pyth_loads_and_gives_the_same_features(source, tmp_path):
    state = {_pyslowfast_name(k): v for k, v in _source_state(source).items()}
    state["head.projection.weight"] = torch.zeros(400, 512)
    path = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"model_state": state, "epoch": 196, "cfg": "MODEL: ..."}, path)
    report = _load_and_compare(source, path)
    assert "PySlowFast layout" in report[0]
    assert any("classification head" in line for line in report)


def test_caffe2_pickle_loads_through_the_safe_unpickler(source, tmp_path):
    last_block = {i + 1: d - 1 for i, d in enumerate(SMALL["depths"])}
    blobs = {_caffe2_name(_pyslowfast_name(k), last_block): v.numpy()
             for k, v in _source_state(source).items()}
    blobs.update({"conv1_w_momentum": np.zeros(3, np.float32), "model_iter": np.array(5),
                  "lr": np.array(0.1, np.float32),
                  "pred_w": np.zeros((400, 512), np.float32)})
    path = tmp_path / "SLOWFAST_8x8_R50.pkl"
    _write_caffe2(path, blobs)
    report = _load_and_compare(source, path)
    assert "Caffe2" in report[0]
    assert any("optimiser state" in line for line in report)


def test_a_caffe2_pickle_that_calls_code_is_refused(tmp_path):
    class Gadget:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "evil.pkl"
    _write_caffe2(path, {"conv1_w": Gadget()})
    with pytest.raises(UserError, match=r"refusing to load (__builtin__|builtins)\.print") as err:
        load_pretrained(SlowFast(**SMALL), path)
    assert str(path) in str(err.value)


def test_roadtrack_run_checkpoint_loads_the_backbone_body_only(source, tmp_path):
    state = {f"backbone.body.{k}": v for k, v in source.state_dict().items()}
    state["backbone.proj.0.weight"] = torch.zeros(8, 8, 1, 1, 1)
    state["stages.0.cls.weight"] = torch.zeros(3, 8)
    path = tmp_path / "last.pt"
    torch.save({"model": state, "step": 10}, path)
    report = _load_and_compare(source, path)
    assert "roadtrack layout" in report[0]
    assert any("skipped      2 tensors  not the backbone body" in line for line in report)


def test_frozen_batchnorm_takes_batchnorm_weights_and_folds_exactly(source, tmp_path):
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    frozen = SlowFast(**SMALL, norm="frozen_bn").eval()
    load_pretrained(frozen, path)
    clip = _clip()
    with torch.no_grad():
        _same_levels(frozen(clip), source(clip), tol=1e-5)
        before = frozen(clip)
        folded = fold_frozen_bn(frozen)
        assert folded == sum(isinstance(m, nn.BatchNorm3d) for m in source.modules())
        assert not any(isinstance(m, FrozenBatchNorm3d) for m in frozen.modules())
        _same_levels(frozen(clip), before, tol=1e-4)


def test_freeze_at_stops_gradients_of_the_stem_and_first_stages():
    body = build_body(BackboneConfig(**{**SMALL, "depths": [1, 2, 1, 1]}, freeze_at=1))
    frozen = {n for n, p in body.named_parameters() if not p.requires_grad}
    assert frozen and all(re.match(r"(slow_stem|fast_stem|laterals\.0|slow_stages\.0|"
                                   r"fast_stages\.0)\.", n) for n in frozen)
    assert all(p.requires_grad for n, p in body.named_parameters() if n.startswith("slow_stages.1"))
    # auto: frozen BN and stem + res2 frozen with pretrained weights; neither without
    auto = BackboneConfig(pretrained="x.pyth")
    assert (auto.norm_kind(), auto.frozen_stages()) == ("frozen_bn", 1)
    assert (BackboneConfig().norm_kind(), BackboneConfig().frozen_stages()) == ("bn", -1)


# -- pytorchvideo -------------------------------------------------------------------------------

def test_pytorchvideo_slowfast_r50_gives_the_same_four_levels(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slowfast = pytest.importorskip("pytorchvideo.models.slowfast")
    torch.manual_seed(0)
    ref = _randomise_norms(slowfast.create_slowfast(slowfast_fusion_conv_kernel_size=(7, 1, 1)))
    path = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"model_state": ref.state_dict()}, path)
    # the full config's backbone is the published one (trainable BN here, to compare)
    full = load_run_config(run_config("roadpp_stmixer_slowfast_r50")).model.backbone
    cfg = dataclasses.replace(full, norm="bn", pretrained=str(path))
    ours = build_body(cfg).eval()
    report = load_backbone_weights(ours, cfg)
    assert "pytorchvideo layout" in report[0] and "missing      0" in report[-1]
    clip = _clip(8, 64)
    outs: dict = {}
    for i in range(1, 5):
        for p in range(2):
            ref.blocks[i].multipathway_blocks[p].register_forward_hook(
                lambda m, a, o, key=(i, p): outs.__setitem__(key, o))
    with torch.no_grad():
        x = [clip[:, :, ::4], clip]
        for block in ref.blocks[:5]:  # the head's pooling needs a larger clip
            x = block(x)
        want = [torch.cat([outs[i, 0], nn.functional.max_pool3d(outs[i, 1], (4, 1, 1))], 1)
                for i in range(1, 5)]
        _same_levels(ours(clip), want)


# -- torchvision --------------------------------------------------------------------------------

def test_torchvision_weights_come_from_the_hub_cache(tmp_path, monkeypatch):
    from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cfg = BackboneConfig(name="r2plus1d_18", pretrained="KINETICS400_V1")
    name = R2Plus1D_18_Weights.KINETICS400_V1.url.rsplit("/", 1)[1]
    want = tmp_path / "hub" / "checkpoints" / name
    with pytest.raises(UserError, match="not in torch's hub cache") as err:
        load_backbone_weights(build_body(cfg), cfg)
    assert str(want) in str(err.value) and "https://" in str(err.value)
    torch.manual_seed(3)
    net = r2plus1d_18(weights=None)
    want.parent.mkdir(parents=True)
    torch.save(net.state_dict(), want)
    body = build_body(cfg)
    report = load_backbone_weights(body, cfg)
    assert "classification head (fc.weight, fc.bias)" in "\n".join(report)
    assert torch.equal(body.stages[3][1].conv2[0][3].weight, net.layer4[1].conv2[0][3].weight)
    assert isinstance(body.stem[1], FrozenBatchNorm3d)  # norm: auto with pretrained weights
    levels = body.eval()(torch.randn(1, 3, 8, 32, 32))
    assert [tuple(x.shape[1:3]) for x in levels] == [(64, 1), (128, 1), (256, 1), (512, 1)]


@pytest.mark.parametrize("name", ["roadpp_stmixer_r2plus1d_18", "roadpp_stmixer_swin3d_t"])
def test_torchvision_configs_give_a_four_level_pyramid(name):
    model = load_run_config(run_config(name)).model
    body = build_body(model.backbone).eval()
    frames = model.num_frames // model.backbone.temporal_stride()
    with torch.no_grad():
        levels = body(torch.randn(1, 3, model.num_frames, 64, 64))
    assert [tuple(x.shape[1:]) for x in levels] == [
        (c, frames, 64 // s, 64 // s) for c, s in zip(body.channels, body.strides, strict=True)]


# -- bad files ----------------------------------------------------------------------------------

def _refused(path, match: str, body=None) -> None:
    with pytest.raises(UserError, match=match) as err:
        load_pretrained(body or SlowFast(**SMALL), path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_bad_files_are_one_line_naming_the_file(source, tmp_path):
    text = tmp_path / "notes.pyth"
    text.write_text("not weights\n")
    _refused(text, "neither a torch.save file nor a readable Caffe2 pickle")
    _refused(tmp_path / "absent.pkl", "no such pretrained weights file")
    plain = tmp_path / "list.pkl"
    plain.write_bytes(pickle.dumps([1, 2], protocol=2))
    _refused(plain, "a pickle without a Caffe2 'blobs' dict")
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 4)}, other)
    _refused(other, "not weights of this SlowFast: none of the file's 2 tensors fit")
    wide = tmp_path / "wide.pt"
    torch.save(SlowFast(**{**SMALL, "width": 32}).state_dict(), wide)
    _refused(wide, r"tensors do not fit this SlowFast \(first: slow_stem\.0\.weight \[32, 3")
    deep = tmp_path / "deep.pt"
    torch.save(SlowFast(**{**SMALL, "depths": (1, 2, 2, 1)}).state_dict(), deep)
    _refused(deep, r"another architecture .* have no place \(first: slow_stages\.2\.1\.")
    bare = tmp_path / "bare.pt"  # laterals without their BatchNorm
    torch.save(SlowFast(**{**SMALL, "lateral": "conv"}).state_dict(), bare)
    _refused(bare, r"no place \(first: laterals\.0\.weight\); .* missing \(first: laterals\.0\.0\.")


def test_train_pretrained_from_a_run_then_resume_detect_and_a_bad_file(synth_root, tmp_path):
    """Run a trains BatchNorm from scratch (norm: auto); run b starts from it with frozen
    BatchNorm and a frozen stem + res2, resumes, and detects with the BN folded."""
    config = Path(tiny_config(tmp_path))
    cfg = yaml.safe_load(config.read_text())
    cfg["model"]["backbone"]["norm"] = "auto"
    config.write_text(yaml.safe_dump(cfg))
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(main, [str(a) for a in args])
        return result.exit_code, result.output

    def train(out, *more):
        return run("train", "--config", config, "--data", synth_root, "--out", out, *more)

    code, out = train(tmp_path / "a")
    assert code == 0, out
    first = tmp_path / "a" / "checkpoints" / "last.pt"
    # a run saved before the backbone had norm/freeze_at/lateral/pretrained keys resumes
    shutil.copytree(tmp_path / "a", tmp_path / "old")
    state = torch.load(first, weights_only=True)
    backbone = state["config"]["model"]["backbone"]
    for key in ("lateral", "pretrained", "freeze_at"):
        backbone.pop(key)
    backbone["norm"] = "bn"
    torch.save(state, tmp_path / "old" / "checkpoints" / "last.pt")
    code, out = train(tmp_path / "old", "--resume")
    assert code == 0, out
    backbone["norm"] = "gn"  # another architecture is refused
    torch.save(state, tmp_path / "old" / "checkpoints" / "last.pt")
    code, out = train(tmp_path / "old", "--resume")
    assert code == 2 and "model section differs" in out, out
    code, out = train(tmp_path / "b", "--pretrained", first)
    assert code == 0, out
    assert "roadtrack layout" in out and "missing      0 tensors" in out
    a = torch.load(first, weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)["model"]
    stem = "backbone.body.slow_stem.0.weight"
    assert torch.equal(a[stem], b[stem])  # frozen (freeze_at: null -> stem + res2)
    later = "backbone.body.slow_stages.3.0.conv3.weight"
    assert not torch.equal(a[later], b[later])  # the rest trains
    assert "backbone.body.slow_stem.1.num_batches_tracked" not in b  # frozen BatchNorm
    assert torch.equal(a["backbone.body.slow_stem.1.running_var"],
                       b["backbone.body.slow_stem.1.running_var"])
    code, out = train(tmp_path / "b", "--pretrained", first, "--resume")
    assert code == 0, out
    code, out = run("detect", "--weights", tmp_path / "b", "--videos", synth_root / "videos",
                    "--out", tmp_path / "det", "--video", "train_00001")
    assert code == 0 and "frames/s" in out, out
    bad = tmp_path / "bad.pyth"
    bad.write_bytes(b"\x00" * 10)
    code, out = train(tmp_path / "c", "--pretrained", bad)
    assert code == 2 and out.count("\n") == 1 and str(bad) in out, out
    assert not (tmp_path / "c").exists()


def test_backbone_lr_multiplier_makes_groups_of_its_own():
    from roadtrack.engine.train import parameter_groups

    model = nn.ModuleDict({"backbone": nn.Conv3d(2, 2, 1), "head": nn.Linear(2, 2)})
    groups = parameter_groups(model, 1e-4, 1e-3, 0.1)
    lrs = sorted((g["lr"], g["weight_decay"], len(g["params"])) for g in groups)
    assert lrs == [(1e-4, 0.0, 1), (1e-4, 1e-4, 1), (1e-3, 0.0, 1), (1e-3, 1e-4, 1)]
    assert len(parameter_groups(model, 1e-4, 1e-3)) == 2  # as before without a multiplier
    model.backbone.weight.requires_grad_(False)
    assert sum(len(g["params"]) for g in parameter_groups(model, 1e-4, 1e-3, 0.1)) == 3


