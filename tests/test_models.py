"""Detector model: contract shapes, losses, gradients, matching, overfitting one clip."""
import dataclasses

import pytest
import torch

from roadtrack.configs import run_config
from roadtrack.engine.config import load_run_config
from roadtrack.models import Detector, build_detector, normalize_clip
from roadtrack.models.criterion import hungarian_match
from roadtrack.models.stm.geometry import refine_xyzr, whole_frame_xyzr, xyzr_to_xyxy

TINY = run_config("synthetic_tiny")
FULL = run_config("roadpp_stmixer_slowfast_r50")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**decoder):
    cfg = load_run_config(TINY).model
    return dataclasses.replace(cfg, decoder=dataclasses.replace(cfg.decoder, **decoder))


def targets(batch: int):
    """Two agents in the first clip, none in the others."""
    first = {"boxes": torch.tensor([[0.1, 0.2, 0.45, 0.6], [0.6, 0.5, 0.9, 0.8]]),
             "agent": torch.eye(10)[[1, 3]],
             "action": torch.eye(22)[[0, 5]] + torch.eye(22)[[4, 6]],
             "loc": torch.eye(16)[[2, 7]]}
    empty = {"boxes": torch.zeros(0, 4), "agent": torch.zeros(0, 10),
             "action": torch.zeros(0, 22), "loc": torch.zeros(0, 16)}
    return [first] + [empty] * (batch - 1)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_detector(tiny_config())


def test_inference_outputs_follow_contract(tiny):
    tiny.eval()
    B, T, H, W = 2, tiny.num_frames, 64, 96
    with torch.no_grad():
        out = tiny(torch.randn(B, 3, T, H, W))
    Q, D = tiny.cfg.decoder.num_queries, tiny.embed_dim
    assert tiny.labels_shape == {"agent": 10, "action": 22, "loc": 16}
    assert out["boxes"].shape == (B, Q, 4) and out["scores"].shape == (B, Q)
    for name, n in tiny.labels_shape.items():
        assert out[name].shape == (B, Q, n)
        assert 0 <= out[name].min() and out[name].max() <= 1
    assert out["embeddings"].shape == (B, Q, D)
    assert out["feature_stride"] == 4
    assert out["features"].shape == (B, D, H // 4, W // 4)
    boxes = out["boxes"]
    assert 0 <= boxes.min() and boxes.max() <= 1
    assert (boxes[..., 2:] >= boxes[..., :2]).all()
    assert (0 < out["scores"]).all() and (out["scores"] < 1).all()


def test_bad_clip_sizes_are_rejected(tiny):
    tiny.eval()
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny(torch.randn(1, 3, tiny.num_frames, 64, 80))
    with pytest.raises(ValueError, match="frames"):
        tiny(torch.randn(1, 3, tiny.num_frames + 1, 64, 64))


def test_training_losses_and_every_parameter_gets_gradient():
    torch.manual_seed(1)
    model = build_detector(tiny_config())
    model.train()
    losses = model(torch.randn(2, 3, model.num_frames, 64, 64), targets(2))
    keys = {"loss", "loss_agentness", "loss_agent", "loss_action", "loss_loc", "loss_l1",
            "loss_giou"}
    assert keys <= set(losses)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    parts = sum(v for k, v in losses.items() if k != "loss")
    torch.testing.assert_close(losses["loss"], parts)
    losses["loss"].backward()
    # By design two kinds of parameters have no gradient at initialisation: the hidden layers of
    # the box-delta heads (their last layer starts at zero) and stage 0's IoF temperature (all
    # boxes start as the whole frame, the bias is the same for every key and softmax ignores it:
    # at most a rounding-level gradient).
    def no_grad_names():
        return {name for name, p in model.named_parameters()
                if p.grad is None or p.grad.abs().sum() == 0}

    delta_hidden = {n for n, _ in model.named_parameters() if ".heads.delta." in n
                    and ".3." not in n}
    at_init = no_grad_names()
    assert delta_hidden <= at_init <= delta_hidden | {"stages.0.iof_tau"}
    torch.optim.SGD(model.parameters(), lr=1e-3).step()
    model.zero_grad()
    model(torch.randn(2, 3, model.num_frames, 64, 64), targets(2))["loss"].backward()
    assert no_grad_names() <= {"stages.0.iof_tau"}


def test_ce_agentness_and_clip_without_agents():
    torch.manual_seed(2)
    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, agentness="ce"))
    model = build_detector(cfg)
    model.train()
    losses = model(torch.randn(1, 3, model.num_frames, 64, 64), targets(2)[1:])
    assert losses["loss_l1"] == 0 and losses["loss_agent"] == 0
    assert losses["loss_agentness"] > 0
    losses["loss"].backward()
    model.eval()  # validation loss: the same dict outside training mode
    with torch.no_grad():
        val = model.losses(torch.randn(2, 3, model.num_frames, 64, 64), targets(2))
    assert val["loss_l1"] > 0 and torch.isfinite(val["loss"])


def test_tiny_model_overfits_one_clip():
    torch.manual_seed(0)
    model = build_detector(tiny_config(num_queries=12))
    model.train()
    clip = torch.randn(1, 3, model.num_frames, 64, 64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    history = []
    for _ in range(60):
        losses = model(clip, targets(1))
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        history.append(losses["loss"].item())
    assert min(history[-5:]) < history[0] / 4
    model.eval()
    with torch.no_grad():
        out = model(clip)
    best = out["scores"][0].argsort(descending=True)[:2]
    boxes = out["boxes"][0, best]
    gt = targets(1)[0]["boxes"]
    from torchvision.ops import box_iou
    assert box_iou(boxes, gt).max(dim=0).values.min() > 0.5


def test_hungarian_match_picks_the_cheapest_assignment():
    boxes = torch.tensor([[0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 0.9, 0.9], [0.1, 0.6, 0.3, 0.8]])
    gt = torch.tensor([[0.5, 0.5, 0.9, 0.9], [0.1, 0.6, 0.3, 0.8]])
    rows, cols = hungarian_match(torch.zeros(3), boxes, gt, 2.0, 2.0, 2.0)
    assert dict(zip(rows.tolist(), cols.tolist(), strict=True)) == {1: 0, 2: 1}
    # more ground truth than queries: every query matched once
    rows, cols = hungarian_match(torch.zeros(1), boxes[:1], gt, 2.0, 2.0, 2.0)
    assert rows.tolist() == [0] and len(cols) == 1
    rows, cols = hungarian_match(torch.zeros(3), boxes, torch.zeros(0, 4), 2.0, 2.0, 2.0)
    assert len(rows) == len(cols) == 0


def test_box_geometry_round_trip():
    xyzr = whole_frame_xyzr(1, 2, 320, 224)
    torch.testing.assert_close(xyzr_to_xyxy(xyzr)[0, 0], torch.tensor([0.0, 0.0, 320.0, 224.0]),
                               atol=1e-3, rtol=0)
    moved = refine_xyzr(xyzr, torch.tensor([0.1, 0.0, -1.0, 0.0]).expand(1, 2, 4))
    box = xyzr_to_xyxy(moved)[0, 0]
    side = 2 ** xyzr[0, 0, 2].item()
    # z - 1 halves w and h; x moves by 0.1 box sides
    torch.testing.assert_close(box[2] - box[0], torch.tensor(160.0), atol=1e-3, rtol=0)
    torch.testing.assert_close((box[0] + box[2]) / 2, torch.tensor(160.0 + 0.1 * side),
                               atol=1e-3, rtol=0)


def test_normalize_clip():
    frames = torch.zeros(2, 4, 8, 6, 3, dtype=torch.uint8)
    frames[..., 0] = 255
    x = normalize_clip(frames)
    assert x.shape == (2, 3, 4, 8, 6) and x.dtype == torch.float32
    torch.testing.assert_close(x[0, 0, 0, 0, 0], torch.tensor((1 - 0.485) / 0.229))
    torch.testing.assert_close(x[0, 1, 0, 0, 0], torch.tensor(-0.456 / 0.224))


def test_mc3_backbone_alternative():
    torch.manual_seed(0)
    cfg = tiny_config(num_queries=6, num_stages=1)
    cfg = dataclasses.replace(cfg, backbone=dataclasses.replace(cfg.backbone, name="mc3_18",
                                                                  norm="auto"))
    model = build_detector(cfg)
    assert model.feature_frames == model.num_frames  # mc3 keeps T
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, model.num_frames, 64, 64))
    assert out["boxes"].shape == (1, 6, 4) and out["features"].shape == (1, 64, 16, 16)


def test_full_config_is_the_stmixer_default():
    cfg = load_run_config(FULL).model
    dec = cfg.decoder
    assert (dec.num_queries, dec.num_stages, dec.dim, dec.spatial_points,
            dec.groups, dec.mapping_stride, dec.tau) == (100, 6, 256, 32, 4, 3.0, 2.0)
    assert cfg.backbone.depths == [3, 4, 6, 3]
    from roadtrack.models.backbones import SlowFast
    backbone = SlowFast(**{k: getattr(cfg.backbone, k)
                           for k in ("depths", "width", "alpha", "beta")})
    n_params = sum(p.numel() for p in backbone.parameters())
    assert 30e6 < n_params < 40e6  # SlowFast-R50 (4x8 style, ~34 M)
    levels = backbone(torch.randn(1, 3, 8, 64, 64))
    assert [lv.shape[2:] for lv in levels] == [(2, 16, 16), (2, 8, 8), (2, 4, 4), (2, 2, 2)]
    from roadtrack.models.stm.stage import DecoderStage
    stage = DecoderStage(dec.dim, dec.num_heads, dec.ffn_dim, dec.spatial_points,
                         frames=8, groups=dec.groups, out_multiplier=dec.out_multiplier,
                         mapping_stride=3.0, tau=2.0, classes={"agent": 10, "action": 22,
                                                              "loc": 16})
    decoder_params = dec.num_stages * sum(p.numel() for p in stage.parameters())
    assert 150e6 < decoder_params < 170e6  # STMixer's decoder: about 159 M parameters
    assert issubclass(Detector, torch.nn.Module)


@pytest.mark.parametrize("points", [4, 9, 6])  # perfect squares and not
def test_decoder_runs_with_any_point_count(points):
    torch.manual_seed(points)
    model = build_detector(tiny_config(num_queries=5, num_stages=1, spatial_points=points))
    offsets = model.stages[0].sampling_mixing.offset_generator.bias.view(4, points, 3)
    assert offsets[..., :2].abs().max() <= 0.5 and offsets[..., 2].abs().max() == 0
    assert offsets[..., :2].std() > 0  # points spread over the box, not stacked
    model.train()
    losses = model(torch.randn(1, 3, model.num_frames, 64, 64), targets(1))
    losses["loss"].backward()
    assert model.stages[0].sampling_mixing.offset_generator.weight.grad.abs().sum() > 0


def test_mixed_precision_forward_and_float_outputs(tiny):
    tiny.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = tiny(torch.randn(1, 3, tiny.num_frames, 64, 64), targets(1))
        losses["loss"].backward()
        tiny.eval()
        with torch.no_grad():
            out = tiny(torch.randn(1, 3, tiny.num_frames, 64, 64))
    tiny.zero_grad(set_to_none=True)
    assert torch.isfinite(losses["loss"])
    assert all(v.dtype == torch.float32 for v in out.values() if torch.is_tensor(v))


def test_losses_of_batch_halves_average_to_the_whole_batch_with_the_mean_box_count():
    """What DDP relies on: two ranks dividing by the mean box count over ranks average to the
    single-process loss (and gradient) of the whole batch; each dividing by its own does not."""
    torch.manual_seed(3)
    criterion = build_detector(tiny_config()).criterion
    counts = [3, 1, 0, 5]  # boxes per clip: 4 in the first half, 5 in the second
    targets_ = []
    for n in counts:
        xy = torch.rand(n, 2) * 0.5
        targets_.append({"boxes": torch.cat([xy, xy + 0.1 + torch.rand(n, 2) * 0.3], dim=1),
                         "agent": (torch.rand(n, 10) > 0.8).float(),
                         "action": (torch.rand(n, 22) > 0.8).float(),
                         "loc": (torch.rand(n, 16) > 0.8).float()})
    B, Q = len(counts), 6
    xy = torch.rand(2, B, Q, 2) * 0.5
    stages = [{"agentness": torch.randn(B, Q), "boxes": torch.cat([xy[i], xy[i] + 0.3], dim=2),
               "agent": torch.randn(B, Q, 10), "action": torch.randn(B, Q, 22),
               "loc": torch.randn(B, Q, 16)} for i in range(2)]

    def half(part: slice) -> dict:
        return criterion([{k: v[part] for k, v in s.items()} for s in stages], targets_[part])

    whole = criterion(stages, targets_)
    own = [half(slice(0, 2)), half(slice(2, 4))]
    criterion.count_boxes = lambda n: (4 + 5) / 2
    shared = [half(slice(0, 2)), half(slice(2, 4))]
    for key, value in whole.items():
        torch.testing.assert_close((shared[0][key] + shared[1][key]) / 2, value)
    assert not torch.isclose((own[0]["loss"] + own[1]["loss"]) / 2, whole["loss"])
