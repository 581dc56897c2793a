"""Faster paths against the plain ones on the CPU: one-pass validation, channels_last training
steps, the batched sample4d layout."""
import pytest
import torch

from roadtrack.engine.config import load_run_config
from roadtrack.models import build_detector


@pytest.fixture(scope="module")
def tiny_model():
    cfg = load_run_config("synthetic_tiny")
    torch.manual_seed(0)
    return build_detector(cfg.model)


def _clips(model, batch=2, size=(64, 64)):
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 3, model.num_frames, size[1], size[0], generator=g)


def _targets(batch=2, classes=(10, 22, 16)):
    g = torch.Generator().manual_seed(2)
    out = []
    for _ in range(batch):
        xy = torch.rand(2, 2, generator=g) * 0.5
        out.append({"boxes": torch.cat([xy, xy + 0.3], 1),
                    **{k: (torch.rand(2, c, generator=g) > 0.7).float()
                       for k, c in zip(("agent", "action", "loc"), classes, strict=True)}})
    return out


def test_validation_pass_gives_the_loss_and_the_detections_of_two_passes(tiny_model):
    model = tiny_model.eval()
    clips, targets = _clips(model), _targets()
    with torch.no_grad():
        losses, out = model.losses_and_predictions(clips, targets)
        want_losses, want_out = model.losses(clips, targets), model(clips)
    for key in want_losses:
        torch.testing.assert_close(losses[key], want_losses[key])
    for key in ("boxes", "scores", "agent", "embeddings", "features"):
        torch.testing.assert_close(out[key], want_out[key])


def test_channels_last_training_step_equals_the_plain_one(tiny_model):
    import copy

    from roadtrack.engine.config import TrainConfig
    from roadtrack.engine.train import to_channels_last

    assert not TrainConfig().channels_last and not TrainConfig().compile  # opt-in
    plain = copy.deepcopy(tiny_model).train()
    fast = to_channels_last(copy.deepcopy(tiny_model).train())
    assert any(p.ndim == 5 and not p.is_contiguous() for p in fast.parameters())
    clips, targets = _clips(plain), _targets()
    results = []
    last = clips.contiguous(memory_format=torch.channels_last_3d)
    for model, x in ((plain, clips), (fast, last)):
        torch.manual_seed(3)  # the same dropout
        losses = model(x, targets)
        losses["loss"].backward()
        results.append((losses, {n: p.grad for n, p in model.named_parameters()
                                 if p.grad is not None}))
    (want, want_grads), (got, got_grads) = results
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5)
    assert want_grads.keys() == got_grads.keys()
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, rtol=1e-3, atol=1e-5, msg=name)


def test_matching_all_stages_at_once_gives_each_clips_hungarian_match():
    from roadtrack.models.config import ModelConfig
    from roadtrack.models.criterion import SetCriterion, hungarian_match

    cfg = ModelConfig().loss
    g = torch.Generator().manual_seed(0)
    stages = []
    for _ in range(3):
        xy = torch.rand(3, 12, 2, generator=g) * 0.7
        stages.append({"agentness": torch.randn(3, 12, generator=g),
                       "boxes": torch.cat([xy, xy + 0.2], -1)})
    targets = _targets(batch=3)
    targets[1] = {k: v[:0] for k, v in targets[1].items()}  # a clip without boxes
    first_gt = [0, 2, 2]
    for out, matched in zip(stages, SetCriterion(cfg).match(stages, targets), strict=True):
        want = []
        for b, t in enumerate(targets):
            rows, cols = hungarian_match(out["agentness"][b], out["boxes"][b], t["boxes"],
                                         cfg.cost_agentness, cfg.cost_l1, cfg.cost_giou)
            want += [(b, int(r), int(c) + first_gt[b]) for r, c in zip(rows, cols, strict=True)]
        assert sorted(map(tuple, matched.T.tolist())) == sorted(want)
        assert len(want) == 4


@pytest.mark.parametrize("P,T", [(4, 4), (9, 1), (6, 3)])
def test_batched_sample4d_equals_the_seed_forward_and_backward(P, T):
    from roadtrack.models.stm import layout_features, sample4d
    from tests.reference.stm import sample4d_ref

    gen = torch.Generator().manual_seed(P + T)
    B, N, G, C, size, strides = 2, 5, 4, 16, 64, [4, 8, 16, 32]
    values = [torch.randn(B, C, T, size // s, size // s, generator=gen) for s in strides]
    pts = torch.rand(B, N, 1, G * P, 3, generator=gen)
    pts[..., :2] = pts[..., :2] * 1.2 * size - 0.1 * size  # a few points outside
    pts[..., 2] = pts[..., 2] * 6.0 + 1.0
    assert layout_features(values, G, batched=True).folded is not None
    assert layout_features(values, G).folded is None  # the CPU keeps its layout
    grads = []
    for fn in (sample4d_ref, lambda *a, **k: sample4d(*a, **k, batched=True)):
        vs = [v.clone().requires_grad_() for v in values]
        p = pts.clone().requires_grad_()
        out = fn(p, vs, strides, n_points=P)
        out = out[0] if isinstance(out, tuple) else out
        (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        grads.append([out.detach(), p.grad] + [v.grad for v in vs])
    for ours, ref in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
