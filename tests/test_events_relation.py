"""The ACAR relation option of the event head (events.relation: acar)."""
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.errors import UserError
from roadtrack.events.actors import actor_rows, actors_needed, box_table, gather_actors
from roadtrack.events.config import EventsConfig
from roadtrack.events.head import EventHead
from roadtrack.events.relation import HR2O, ActorRelation
from roadtrack.events.series import TrackSeries
from roadtrack.events.stage import TrainedHead, run_events
from roadtrack.io.annotations import load_annotation

from .gt_runs import make_gt_run
from .reference.acar import HR2O_NL, ACARHeadRef, layout_context


def _present(b, t, n, gen):
    present = torch.rand(b, t, n, generator=gen) > 0.4
    present[..., 0] = True
    return present


def test_hr2o_agrees_with_the_seed_on_the_present_actors():
    gen = torch.Generator().manual_seed(0)
    block, ref = HR2O(8, kernel=3).eval(), HR2O_NL(8, kernel_size=3).eval()
    for p in ref.parameters():
        torch.nn.init.normal_(p, std=0.3, generator=gen)
    block.load_state_dict(ref.state_dict())
    x = torch.randn(4, 5, 8, 4, 3, generator=gen)  # (G, N, C, H, W)
    present = _present(4, 1, 5, gen)[:, 0]
    out = block(x, present)
    for g in range(4):
        keep = present[g]
        assert torch.allclose(out[g, keep], ref(x[g, keep]), atol=1e-5)


def test_actor_relation_agrees_with_the_seed_head():
    gen = torch.Generator().manual_seed(1)
    b, t, k, dim, grid = 2, 3, 3, 10, 6
    module = ActorRelation(dim, grid=grid, reduce=6, hidden=8, depth=2).eval()
    ref = ACARHeadRef(reduce_dim=6, hidden_dim=8, depth=2).eval()
    for p in ref.parameters():
        torch.nn.init.normal_(p, std=0.3, generator=gen)
    reduce = torch.randn(6, dim, generator=gen) * 0.3
    module.load_state_dict({**ref.state_dict(), "reduce.weight": reduce})
    feats = torch.randn(b, t, dim, generator=gen)
    actors = torch.randn(b, t, k, dim, generator=gen)  # absent slots hold noise: never read
    corner = torch.rand(b, t, k + 1, 2, generator=gen) * 0.7
    boxes = torch.cat([corner, corner + 0.05 + torch.rand(b, t, k + 1, 2, generator=gen) * 0.4],
                      dim=-1)  # x1 y1 x2 y2, partly past the frame's edge
    boxes = boxes.clamp(max=1)
    present = _present(b, t, k + 1, gen)
    out = module(feats, actors, boxes, present)  # (B, T, 16)
    assert out.shape == (b, t, 16)
    for i in range(b):
        for j in range(t):
            keep = present[i, j]
            emb = (torch.cat([feats[i, j, None], actors[i, j]]) @ reduce.T)[keep]  # (n, R)
            context = layout_context(emb, boxes[i, j][keep], grid)
            want = ref.actor_context(context, emb)[0]  # the track's own actor
            assert torch.allclose(out[i, j], want, atol=1e-5)


def test_gradients_reach_every_parameter_of_the_relation_head():
    gen = torch.Generator().manual_seed(2)
    cfg = EventsConfig.from_dict({"relation": "acar", "acar": {"actors": 3, "grid": 5}})
    relation = ActorRelation(7, cfg.acar.grid, 6, 8, 2, 3)
    head = EventHead(7, 2, 3, 4, hidden=8, layers=1, kernel=3, relation=relation)
    present = torch.ones(2, 5, 4, dtype=torch.bool)
    boxes = torch.tensor([0.1, 0.1, 0.6, 0.7]).repeat(2, 5, 4, 1) \
        + torch.rand(2, 5, 4, 4, generator=gen) * 0.3
    logits = head(torch.randn(2, 5, 7, generator=gen), torch.randn(2, 5, 4, 7, generator=gen),
                  present, boxes.clamp(max=1))  # actors (slot 0: the track), mask, boxes
    sum(v.square().sum() for v in logits.values()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("data, problem", [
    ({"relation": "acr"}, "events.relation: must be one of none, acar, got 'acr'"),
    ({"acar": {"grid": 2}}, "events.acar.grid: must be an integer >= 3"),
    ({"acar": {"kernel": 4}}, "events.acar.kernel: must be odd"),
    ({"acar": {"actorz": 4}}, "events.acar.actorz"),
    ({"relation": "acar", "temporal": "trajectory"},
     "events.relation: acar is built for temporal: conv only"),
])
def test_a_bad_relation_setting_is_one_line_naming_the_key(tmp_path, data, problem):
    with pytest.raises(UserError) as err:
        EventsConfig.from_dict(data, tmp_path / "run.yaml")
    message = str(err.value)
    assert problem in message and str(tmp_path / "run.yaml") in message
    assert "\n" not in message


def test_each_frame_relates_to_its_nearest_other_actors_and_their_boxes():
    def track(tid, frames, x):
        n = len(frames)
        return TrackSeries(tid, np.array(frames), np.tile([x, 10.0, x + 10, 20], (n, 1)),
                           np.ones(n), {}, np.ones(n, bool), np.arange(n), {})

    series = [track(1, [0, 1, 2], 0.0), track(2, [1, 2], 50.0), track(3, [2], 20.0)]
    limit = actors_needed(EventsConfig.from_dict({"relation": "acar", "acar": {"actors": 1}}))
    rows = actor_rows(series, limit)[0]  # itself and one other
    table = np.concatenate([np.full((len(s), 2), s.track_id, np.float32) for s in series])
    feats, present = gather_actors(table, rows)
    boxes, _ = gather_actors(box_table(series, 100, 40), rows)
    assert present.tolist() == [[True, False], [True, True], [True, True]]
    assert feats[:, 1, 0].tolist() == [0, 2, 3]  # frame 2: track 3 is nearer than track 2
    assert np.allclose(boxes[2, 1], [0.2, 0.25, 0.3, 0.5])


def test_train_events_and_the_event_stage_run_with_acar_by_config(tmp_path, synth_root,
                                                                  synth_anno_path):
    anno = load_annotation(synth_anno_path)
    run, _ = make_gt_run(tmp_path / "run", anno, 0)
    config = tmp_path / "acar.yaml"
    config.write_text("events:\n  relation: acar\n  acar: {actors: 3, grid: 5, reduce: 8, "
                      "hidden: 8}\n  head: {hidden: 16, layers: 1}\n"
                      "  fit: {steps: 50, batch_size: 4, window: 8}\n")
    result = CliRunner().invoke(main, ["train-events", "--config", str(config), "--data",
                                       str(synth_root), "--run", str(run), "--out",
                                       str(tmp_path / "head")])
    assert result.exit_code == 0, result.output
    first, last = map(float, re.search(r"loss (\S+) -> (\S+) in", result.output).groups())
    assert last < first
    head = TrainedHead(tmp_path / "head" / "event_head.pt")
    assert head.head.relation is not None and head.options.acar.actors == 3
    name = anno.split(None)[0]
    events = run_events(run, name, anno.labels, EventsConfig(), head)
    assert events["tubes"]["agent"]
