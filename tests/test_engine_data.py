"""Clip dataset over a ROAD++ layout and the sharded batch sampler."""
import numpy as np
import pytest

from roadtrack.engine.dataset import ClipDataset, collate_clips
from roadtrack.engine.distributed import ShardedBatchSampler
from roadtrack.engine.transforms import ClipTransform
from roadtrack.errors import UserError
from roadtrack.io.annotations import load_annotation
from roadtrack.synth.dataset import ANNOTATION_NAME

from .train_helpers import copy_dataset


@pytest.mark.parametrize("frames", [True, False])
def test_dataset_reads_clips_and_key_frame_targets(synth_root, tmp_path, frames):
    root = copy_dataset(synth_root, tmp_path / "d", frames=frames)
    ann = load_annotation(root / ANNOTATION_NAME)
    video = ann.split("train")[0]
    ds = ClipDataset(root, ann, [video], num_frames=3, transform=ClipTransform(size=(64, 32)),
                     frame_step=2)
    v = ann.videos[video]
    assert len(ds) == len(v.annotated_frames())
    item = ds[(4, (0, 0, 4))]
    assert item["clip"].shape == (3, 32, 64, 3) and item["clip"].dtype.is_floating_point is False
    assert item["frame"] == 5 and item["video"] == video
    rows = v.frames == 5
    assert np.allclose(item["boxes"].numpy(), v.boxes[rows])
    assert np.array_equal(item["agent"].numpy(), v.labels["agent"][rows])
    assert item["action"].shape == (rows.sum(), 22) and item["loc"].shape == (rows.sum(), 16)
    # the clip's frames are 3, 5, 7: neighbours differ, the middle is the key frame
    assert not np.array_equal(item["clip"][0].numpy(), item["clip"][1].numpy())
    clips, targets, keys = collate_clips([ds[0], ds[1]])
    assert clips.shape == (2, 3, 32, 64, 3) and len(targets) == 2 and keys[1] == (video, 2)


def test_missing_video_and_missing_frame_are_one_clear_error(synth_root, tmp_path):
    root = copy_dataset(synth_root, tmp_path / "d")
    ann = load_annotation(root / ANNOTATION_NAME)
    a, b = ann.split(None)[:2]
    (root / "rgb-images" / b / "00004.jpg").unlink()
    with pytest.raises(UserError, match=rf"{b}: missing frame 00004.jpg named in the annotation"):
        ClipDataset(root, ann, [b], 3, ClipTransform(size=(64, 32)))
    for f in (root / "rgb-images" / a).iterdir():
        f.unlink()
    (root / "rgb-images" / a).rmdir()
    (root / "videos" / f"{a}.mp4").unlink()
    with pytest.raises(UserError, match=f"{a}.*neither rgb-images"):
        ClipDataset(root, ann, [a], 3, ClipTransform(size=(64, 32)))


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
    assert [i for batch in shards[0] for i, _ in batch] != \
        [i for batch in batches[0] for i, _ in batch]


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
