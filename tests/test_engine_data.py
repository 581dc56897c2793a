"""Clip dataset over a ROAD++ layout and the sharded batch sampler."""
import numpy as np
import pytest
from train_helpers import write_tiny_dataset

from roadtrack.engine.dataset import ClipDataset, clip_frame_numbers, collate_clips
from roadtrack.engine.distributed import ShardedBatchSampler
from roadtrack.engine.transforms import ClipTransform
from roadtrack.errors import UserError
from roadtrack.io.annotations import load_annotation


def test_clip_frames_centre_on_the_key_and_repeat_at_the_ends():
    assert clip_frame_numbers(5, 10, 4, 2).tolist() == [1, 3, 5, 7]
    assert clip_frame_numbers(1, 10, 3, 1).tolist() == [1, 1, 2]
    assert clip_frame_numbers(10, 10, 4, 1).tolist() == [8, 9, 10, 10]


@pytest.mark.parametrize("as_video", [False, True])
def test_dataset_reads_clips_and_key_frame_targets(tmp_path, as_video):
    root = write_tiny_dataset(tmp_path, videos=2, frames=6, as_video=as_video)
    ann = load_annotation(root / "road_waymo_trainval_v1.0.json")
    ds = ClipDataset(root, ann, ann.split("train"), num_frames=3,
                     transform=ClipTransform(size=(64, 32)))
    assert len(ds) == 12
    item = ds[(4, (0, 0, 4))]
    assert item["clip"].shape == (3, 32, 64, 3) and item["frame"] == 5
    assert item["boxes"].shape == (1, 4) and item["agent"].shape == (1, 10)
    x1 = float(ann.videos[item["video"]].boxes[4, 0])
    assert item["boxes"][0, 0] == pytest.approx(x1)
    # the rectangle is bright where the key frame's box says it is
    key = item["clip"][1].numpy()
    inside = key[16, int((x1 + 0.15) * 64)]
    assert inside.max() > 150
    clips, targets, keys = collate_clips([ds[0], ds[1]])
    assert clips.shape == (2, 3, 32, 64, 3) and len(targets) == 2 and keys[1][1] == 2


def test_missing_video_and_missing_frame_are_one_clear_error(tmp_path):
    root = write_tiny_dataset(tmp_path, videos=2, frames=6)
    ann = load_annotation(root / "road_waymo_trainval_v1.0.json")
    (root / "rgb-images" / "train_00001" / "00004.jpg").unlink()
    with pytest.raises(UserError, match=r"missing frame 00004.jpg.*train_00001|train_00001.*00004"):
        ClipDataset(root, ann, ["train_00001"], 3, ClipTransform(size=(64, 32)))
    for f in (root / "rgb-images" / "train_00000").iterdir():
        f.unlink()
    (root / "rgb-images" / "train_00000").rmdir()
    with pytest.raises(UserError, match="train_00000.*neither rgb-images"):
        ClipDataset(root, ann, ["train_00000"], 3, ClipTransform(size=(64, 32)))


def test_sampler_shards_cover_the_epoch_once_and_differ_per_epoch():
    shards = [ShardedBatchSampler(10, 2, rank=r, world=2, seed=7) for r in range(2)]
    for s in shards:
        s.set_epoch(0)
    batches = [list(s) for s in shards]
    assert len(batches[0]) == len(batches[1]) == 3  # ceil(10 / 4), padded by wrapping
    seen = [i for b in batches for batch in b for i, _ in batch]
    assert set(seen) == set(range(10)) and len(seen) == 12
    seeds = [seed for b in batches for batch in b for _, seed in batch]
    assert len(set(seeds)) == len(seeds)
    shards[0].set_epoch(1)
    assert [i for batch in shards[0] for i, _ in batch] != [i for batch in batches[0] for i, _ in batch]


def test_sampler_start_skips_batches_exactly():
    full = ShardedBatchSampler(9, 2, seed=1)
    full.set_epoch(3)
    later = ShardedBatchSampler(9, 2, seed=1)
    later.set_epoch(3, start=2)
    assert list(later) == list(full)[2:] and len(later) == len(full) - 2


def test_eval_sampler_keeps_order_without_repeats():
    s = [ShardedBatchSampler(5, 2, rank=r, world=2, shuffle=False) for r in range(2)]
    got = [[i for batch in x for i, _ in batch] for x in s]
    assert got == [[0, 2, 4], [1, 3]]
