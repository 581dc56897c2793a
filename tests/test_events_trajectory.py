"""Trajectory attention as the event head's temporal module (``events.temporal: trajectory``)."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.errors import UserError
from roadtrack.events import trajectory
from roadtrack.events.actors import actor_rows, gather_actors
from roadtrack.events.config import EventsConfig
from roadtrack.events.head import EventHead
from roadtrack.events.series import TrackSeries
from roadtrack.events.stage import TrainedHead, run_events
from roadtrack.events.trajectory import TrajectoryAttention
from roadtrack.io.annotations import load_annotation

from .gt_runs import make_gt_run
from .reference.trajectory import trajectory_attention as reference


def _inputs(seed, B=2, T=9, S=4, D=8, valid=(9, 6)):
    """Random tokens with padded frames at the end and some actor slots empty."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, D, generator=g, dtype=torch.float64)
    actors = torch.randn(B, T, S, D, generator=g, dtype=torch.float64)
    mask = torch.rand(B, T, S, generator=g) < 0.6
    mask[..., 0] = True  # the track itself
    for b, n in enumerate(valid):
        mask[b, n:] = False  # padding
    return x, actors, mask


@pytest.mark.parametrize("prototypes", [0, 3, 20])
@pytest.mark.parametrize("chunk", [4, 64])
def test_matches_the_literal_transcription(prototypes, chunk, monkeypatch):
    monkeypatch.setattr(trajectory, "CHUNK", chunk)  # long tracks go in chunks: same result
    torch.manual_seed(0)
    module = TrajectoryAttention(8, heads=2, reach=3, prototypes=prototypes).double()
    x, actors, mask = _inputs(1)
    got = module(x, actors, mask)
    for b in range(len(x)):
        with torch.no_grad():
            want = reference(module, x[b], actors[b], mask[b], prototypes)
        rows = mask[b].any(-1)
        torch.testing.assert_close(got[b][rows], want[rows], atol=1e-5, rtol=1e-5)


def test_prototypes_equal_exact_attention_for_orthogonal_queries():
    """With as many prototypes as queries, and queries orthogonal and long, each query's weight
    over the prototypes falls on itself: Orthoformer's step 1 is then the exact one."""
    T, D = 6, 8
    exact = TrajectoryAttention(D, heads=1, reach=T).double()
    approx = TrajectoryAttention(D, heads=1, reach=T, prototypes=T).double()
    approx.load_state_dict(exact.state_dict())
    with torch.no_grad():
        for m in (exact, approx):
            m.q.weight.copy_(torch.eye(D))
            m.q.bias.zero_()
    x = 40 * torch.eye(D, dtype=torch.float64)[:T][None]  # (1, T, D) orthogonal queries
    _, actors, mask = _inputs(2, B=1, T=T, D=D, valid=(T,))
    torch.testing.assert_close(approx(x, actors, mask), exact(x, actors, mask), atol=1e-6,
                               rtol=1e-6)
    few = TrajectoryAttention(D, heads=1, reach=T, prototypes=2).double()
    few.load_state_dict(exact.state_dict())
    assert not torch.allclose(few(x, actors, mask), exact(x, actors, mask), atol=1e-3)


def _head(prototypes=0, dropout=0.0):
    torch.manual_seed(0)
    return EventHead(7, 3, 4, 2, hidden=8, layers=2, kernel=3, dropout=dropout,
                     temporal="trajectory", heads=2, prototypes=prototypes)


@pytest.mark.parametrize("prototypes", [0, 2])
def test_gradients_reach_every_parameter(prototypes):
    head = _head(prototypes)
    g = torch.Generator().manual_seed(3)
    feats, actors = torch.randn(2, 10, 7, generator=g), torch.randn(2, 10, 3, 7, generator=g)
    mask = torch.ones(2, 10, 3, dtype=torch.bool)
    sum(v.sum() for v in head(feats, actors, mask).values()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("prototypes", [0, 2])
def test_padding_does_not_change_valid_outputs(prototypes):
    head = _head(prototypes).eval()
    g = torch.Generator().manual_seed(4)
    feats, actors = torch.randn(2, 12, 7, generator=g), torch.randn(2, 12, 3, 7, generator=g)
    mask = torch.ones(2, 12, 3, dtype=torch.bool)
    mask[0, 7:] = False  # the first window's track ends at frame 7
    mask[1, :, 2] = False  # the second has two actors per frame
    before = head(feats, actors, mask)
    feats2, actors2 = feats.clone(), actors.clone()
    feats2[0, 7:] = torch.randn(5, 7, generator=g) * 50
    actors2[~mask] = torch.randn(int((~mask).sum()), 7, generator=g) * 50
    after = head(feats2, actors2, mask)
    valid = mask.any(-1)
    for key in before:
        torch.testing.assert_close(after[key][valid], before[key][valid], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(after[key][~valid], before[key][~valid])


def test_actors_of_a_frame_are_the_track_then_the_nearest():
    def series(track_id, first, n, x):
        boxes = np.tile([x, 0.0, x + 10, 10], (n, 1))
        return TrackSeries(track_id, np.arange(first, first + n), boxes, np.ones(n), {},
                           np.ones(n, bool), np.arange(n), {})
    tracks = [series(1, 0, 4, 0.0), series(2, 2, 3, 100.0), series(3, 1, 2, 30.0)]
    rows = actor_rows(tracks, limit=3)  # stacked rows: track 1 0-3, track 2 4-6, track 3 7-8
    assert rows[0].tolist() == [[0, -1, -1], [1, 7, -1], [2, 8, 4], [3, 5, -1]]
    assert rows[1].tolist() == [[4, 8, 2], [5, 3, -1], [6, -1, -1]]  # x 30 nearer than 0
    assert actor_rows(tracks, limit=2)[0][2].tolist() == [2, 8]
    assert actor_rows(tracks[:1])[0].shape == (4, 1)  # as wide as the busiest frame
    feats, mask = gather_actors(np.arange(9.0)[:, None], rows[0])
    assert feats[2, :, 0].tolist() == [2, 8, 4] and mask[0].tolist() == [True, False, False]


def test_a_bad_value_is_one_line_naming_the_key(tmp_path):
    for data, key in [({"temporal": "trajectories"}, "events.temporal"),
                      ({"head": {"prototypes": -2}}, "events.head.prototypes"),
                      ({"temporal": "trajectory", "head": {"hidden": 10, "heads": 4}},
                       "events.head.heads")]:
        with pytest.raises(UserError, match=key) as err:
            EventsConfig.from_dict(data, tmp_path / "run.yaml")
        assert "\n" not in str(err.value) and str(tmp_path / "run.yaml") in str(err.value)
    assert EventsConfig().temporal == "conv"


def test_train_events_and_the_event_stage_by_config(tmp_path, synth_root, synth_anno_path):
    anno = load_annotation(synth_anno_path)
    run, _ = make_gt_run(tmp_path / "run", anno, 0)
    config = tmp_path / "trajectory.yaml"
    config.write_text("base: synthetic_tiny_trajectory\nevents:\n  head: {hidden: 16, layers: 2, "
                      "prototypes: 4}\n  fit: {steps: 30, batch_size: 4, window: 16}\n")
    result = CliRunner().invoke(main, ["train-events", "--config", str(config), "--data",
                                       str(synth_root), "--run", str(run), "--out",
                                       str(tmp_path / "head")])
    assert result.exit_code == 0, result.output
    head = TrainedHead(tmp_path / "head" / "event_head.pt")
    assert head.options.temporal == "trajectory" and head.head.blocks[0].attend.prototypes == 4
    name = anno.split(None)[0]
    events = run_events(run, name, anno.labels, EventsConfig(temporal="trajectory"), head)
    assert events["tubes"]["agent"] and events["tubes"]["triplet"]
