"""eval mot's bounded-memory evaluator equals the motmetrics + trackeval evaluator it replaced
(tests/reference/mot.py) on generated sequences full of overlaps and tied IoUs, and on real MOT15
ground truth scored against the roadtrack tracker; its memory does not grow with ids squared."""
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadtrack.eval.mot import Sequence, evaluate_sequences, motchallenge_sequences

from .reference.mot import reference_evaluate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ROUNDED = {"hota", "assa"}  # summed over pairs, not over dense id x id matrices: last-bit level


def assert_same(new: dict, old: dict) -> None:
    rows = [(new["overall"], old["overall"])] + [
        (new["sequences"][k], old["sequences"][k]) for k in old["sequences"]]
    assert list(new["sequences"]) == list(old["sequences"])
    for a, b in rows:
        assert set(a) == set(b)
        for name in b:
            if name in ROUNDED and a[name] is not None and b[name] is not None:
                assert a[name] == pytest.approx(b[name], rel=1e-12, abs=1e-15), name
            else:
                assert a[name] == b[name], (name, a[name], b[name])


@st.composite
def side(draw, frames: int, id_pool: list[int]):
    """Rows (frame, id, x1 y1 x2 y2) with each id at most once per frame; boxes on a coarse grid
    (overlaps and exactly tied IoUs are common)."""
    rows = []
    for f in range(1, frames + 1):
        for i in draw(st.lists(st.sampled_from(id_pool), unique=True, max_size=len(id_pool))):
            x, y = draw(st.integers(0, 4)) * 10, draw(st.integers(0, 2)) * 10
            w, h = draw(st.sampled_from([10, 20, 30])), draw(st.sampled_from([10, 20]))
            rows.append((f, i, x, y, x + w, y + h))
    return rows


@st.composite
def sequences(draw):
    out = {}
    for k in range(draw(st.integers(1, 2))):
        frames = draw(st.integers(1, 7))
        gt = draw(side(frames, [1, 2, 3, 4, 5]))
        pr = draw(side(frames, [7, 8, 9, 10, 11, 12]))
        if draw(st.booleans()):  # a shuffled file: frames out of order
            pr = draw(st.permutations(pr))

        def arrays(rows):
            a = np.array(rows, dtype=np.float64).reshape(-1, 6)
            return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2:]

        out[f"s{k}"] = Sequence(*arrays(gt), *arrays(pr))
    return out


@settings(max_examples=30)  # the reference is slow (pandas events); a long run by hand
@given(sequences(), st.sampled_from([0.5, 0.5, 0.3, 0.75]))
def test_equals_motmetrics_and_trackeval_on_generated_sequences(seqs, threshold):
    assert_same(evaluate_sequences(seqs, threshold), reference_evaluate(seqs, threshold))


@settings(max_examples=15)
@given(sequences())
def test_equal_with_tiny_batches_and_buffers(monkeypatch, seqs):
    # frames walked a few rows at a time, sums folded every few pairs: the same numbers
    from roadtrack.eval import frames, sparse

    monkeypatch.setattr(frames, "BATCH_ROWS", 5)
    monkeypatch.setattr(frames, "PAIRS", 7)
    monkeypatch.setattr(sparse, "PENDING", 3)
    assert_same(evaluate_sequences(seqs), reference_evaluate(seqs))


def test_empty_sides_equal_the_reference():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], dtype=np.float64)
    frames, ids, none = np.array([1, 2]), np.array([1, 1]), np.zeros(0, dtype=np.int64)
    seqs = {"no-pred": Sequence(frames, ids, boxes, none, none, np.zeros((0, 4))),
            "no-gt": Sequence(none, none, np.zeros((0, 4)), frames, ids, boxes),
            "both": Sequence(frames, ids, boxes, frames, ids + 5, boxes)}
    new = evaluate_sequences(seqs)
    assert_same(new, reference_evaluate(seqs))
    assert new["sequences"]["no-pred"]["num_misses"] == 2
    assert new["sequences"]["no-gt"]["num_false_positives"] == 2
    assert new["sequences"]["no-gt"]["mota"] is None and new["overall"]["mota"] == 0.0


@pytest.mark.skipif(not (SHARED / "mot15-gt").is_dir(), reason="shared MOT15 data not present")
def test_real_mot15_ground_truth_against_our_tracker(tmp_path):
    from click.testing import CliRunner

    from roadtrack.cli import main

    dets, pred = tmp_path / "dets", tmp_path / "pred"
    for seq in ("KITTI-17", "ETH-Sunnyday"):
        (dets / seq / "det").mkdir(parents=True)
        (dets / seq / "det" / "det.txt").write_bytes(
            (SHARED / "mot15-det" / seq / "det" / "det.txt").read_bytes())
    res = CliRunner().invoke(main, ["track", "--dets", str(dets), "--out", str(pred),
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    seqs = motchallenge_sequences(SHARED / "mot15-gt", pred, ["KITTI-17", "ETH-Sunnyday"])
    new = evaluate_sequences(seqs)
    assert_same(new, reference_evaluate(seqs))
    assert new["overall"]["num_switches"] > 0 and 0.2 < new["overall"]["mota"] < 0.9


def test_memory_grows_with_rows_not_ids_squared():
    # 2,000 ids a side, ten per frame: the old evaluator built (4,000 x 4,000) motmetrics cost
    # matrices and 20 (2,000 x 2,000) trackeval count matrices, about 1 GB
    n = 2000
    frames = np.arange(n) // 10 + 1
    x = (np.arange(n) % 10) * 50.0
    boxes = np.stack([x, np.zeros(n), x + 40, np.full(n, 80.0)], axis=1)
    seq = Sequence(frames, np.arange(n), boxes, frames, np.arange(n) + 10**6, boxes + 1)
    tracemalloc.start()
    try:
        result = evaluate_sequences({"many-ids": seq})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result["overall"]["idf1"] == 1.0 and result["overall"]["num_unique_objects"] == n
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"
