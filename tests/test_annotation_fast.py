"""The fast annotation reader, the cache and the stream reader give the same annotation, the same
errors and the same warnings; a stale or corrupt cache is never used."""
import copy
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import roadtrack.io.annotation_cache as cache_module
import roadtrack.io.annotation_fast as fast
import roadtrack.io.annotations as annotations
from roadtrack.cli import main
from roadtrack.errors import InputWarning, UserError
from roadtrack.io.annotation_cache import SUFFIX, cache_paths, read_arrays, write_arrays
from roadtrack.io.annotations import load_annotation

from .test_annotations import _break, _corrupt, _with_repeated_key
from .test_fuzz_annotations import BASE, EDITS, TEXT_EDITS, _dump, _edit, _text_edit

BREAKS = ["split_string", "split_numbers", "numf_negative", "numf_huge", "numf_string",
          "numf_true", "frames_list", "frame_key", "frame_key_long", "frame_string",
          "annotated_string", "width_float", "annos_list", "box_list", "box_string_value",
          "box_three_values", "label_car", "label_float", "label_true", "ids_int", "uid_int",
          "tubes_list", "tube_annos_list", "tube_label_string", "tube_label_float",
          "tube_box_key_list"]
CORRUPTIONS = ["missing_numf", "missing_box_key", "id_out_of_range", "box_outside",
               "missing_labels"]


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    """The user cache folder in the test's folder; the cache on unless a test turns it off."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.delenv("ROADTRACK_NO_CACHE", raising=False)
    return tmp_path / "user-cache" / "roadtrack"


@contextmanager
def stream_only():
    """Every file read by the stream reader (as before the fast reader)."""
    with mock.patch.object(annotations, "read_fast", lambda *args: None):
        yield


@contextmanager
def msgspec_only():
    """Every entry read the msgspec way (as without the compiled scanner)."""
    with mock.patch.object(fast, "scan_entry", None):
        yield


def _outcome(path, **kwargs):
    """(annotation or None, error message or None, warning messages) of one load."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            anno, error = load_annotation(path, **kwargs), None
        except UserError as err:
            anno, error = None, str(err)
    return anno, error, [str(w.message) for w in caught if issubclass(w.category, InputWarning)]


def assert_same_annotation(a, b):
    assert a.labels == b.labels and list(a.videos) == list(b.videos)
    for name, v in a.videos.items():
        w = b.videos[name]
        assert (v.name, v.split_ids, v.numf, v.width, v.height, v.uids) == \
            (w.name, w.split_ids, w.numf, w.width, w.height, w.uids)
        for field in ("annotated", "frames", "boxes", "track_ids"):
            x, y = getattr(v, field), getattr(w, field)
            assert x.dtype == y.dtype and np.array_equal(x, y), field
        assert v.labels.keys() == w.labels.keys()
        for t in v.labels:
            assert v.labels[t].dtype == w.labels[t].dtype
            assert np.array_equal(v.labels[t], w.labels[t])
        assert v.tubes.keys() == w.tubes.keys()
        for t in v.tubes:
            assert [tube.label for tube in v.tubes[t]] == [tube.label for tube in w.tubes[t]]
            for p, q in zip(v.tubes[t], w.tubes[t], strict=True):
                assert p.rows.dtype == q.rows.dtype and np.array_equal(p.rows, q.rows)


def assert_same_everywhere(path, **kwargs):
    """The stream reader, the fast reader with and without the compiled scanner, the first
    cached read (which writes the cache) and the second (which reads it) agree; returns the
    outcome."""
    with stream_only():
        old = _outcome(path, cache=False, **kwargs)
    with msgspec_only():
        typed = _outcome(path, cache=False, **kwargs)
    outcomes = [typed, _outcome(path, cache=False, **kwargs), _outcome(path, cache=True, **kwargs),
                _outcome(path, cache=True, **kwargs)]
    for anno, error, messages in outcomes:
        assert error == old[1] and messages == old[2]
        if old[0] is not None:
            assert_same_annotation(anno, old[0])
    return old


def _write(tmp_path, text, name="anno.json"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_clean_file_is_read_by_the_fast_reader_and_then_from_the_cache(tmp_path,
                                                                         synth_anno_path):
    path = _write(tmp_path, synth_anno_path.read_text())
    with mock.patch.object(annotations, "_parse_stream", side_effect=AssertionError):
        fast = load_annotation(path)
    assert (tmp_path / ("anno.json" + SUFFIX)).is_file()
    with mock.patch.object(annotations, "_parse", side_effect=AssertionError):
        cached = load_annotation(path)
    with stream_only():
        old = load_annotation(path, cache=False)
    assert_same_annotation(fast, old)
    assert_same_annotation(cached, old)
    assert_same_everywhere(path, keep_tubes=False)
    assert_same_everywhere(path, videos=sorted(old.videos)[:1])


@pytest.mark.parametrize("how", BREAKS)
def test_type_errors_are_the_same_on_every_path(tmp_path, anno_dict, how):
    text, _ = _break(anno_dict, how)
    _, error, _ = assert_same_everywhere(_write(tmp_path, text))
    assert error is not None
    assert not list(tmp_path.glob("*" + SUFFIX)), "no cache of a broken file"


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_content_errors_are_the_same_on_every_path(tmp_path, anno_dict, how):
    _, error, _ = assert_same_everywhere(_write(tmp_path, _corrupt(anno_dict, how)))
    assert error is not None


def _odd_files(anno_dict):
    """Readable files with something to warn about, or that the fast reader hands on."""
    name, video = next(iter(anno_dict["db"].items()))
    frame = next(f for f in video["frames"].values() if f.get("annos"))
    box_key, box = next(iter(frame["annos"].items()))
    tube_key, tube = next(iter(video["agent_tubes"].items()))
    text = json.dumps(anno_dict)
    flipped = copy.deepcopy(anno_dict)
    fbox = next(iter(next(f for f in next(iter(flipped["db"].values()))["frames"].values()
                          if f.get("annos"))["annos"].values()))
    fbox["box"] = [fbox["box"][2], fbox["box"][1], fbox["box"][0], fbox["box"][3]]
    body = json.dumps(video)
    return {
        "flipped": json.dumps(flipped),
        "repeated tube key": _with_repeated_key(text, tube_key, tube),
        "repeated box field": text.replace(f'"{box_key}": {{"box": ',
                                           f'"{box_key}": {{"box": [0.1, 0.2, 0.3, 0.4], "box": ',
                                           1),
        "video twice": text.replace(f'"{name}": {body}', f'"{name}": {body}, "{name}": {body}',
                                    1),
        "escaped uid": text.replace(json.dumps(box["tube_uid"]),
                                    json.dumps(box["tube_uid"]).replace("_", "\\u005f"), 1),
        "colon in a uid": text.replace(f'"tube_uid": "{box["tube_uid"]}"',
                                       f'"tube_uid": "a:{box["tube_uid"]}"', 1),
        "pretty printed": json.dumps(anno_dict, indent=1),
        "vertical tab": text.replace('"db": ', '"db":\x0b', 1),
        "extra field": text.replace('"numf": ', '"note": {"a": 1}, "numf": ', 1),
        "labels after db": json.dumps({"db": anno_dict["db"],
                                       **{k: v for k, v in anno_dict.items() if k != "db"}}),
    }


@pytest.mark.parametrize("case", ["flipped", "repeated tube key", "repeated box field",
                                  "video twice", "escaped uid", "colon in a uid",
                                  "pretty printed", "vertical tab", "extra field",
                                  "labels after db"])
def test_odd_but_readable_files_read_the_same_on_every_path(tmp_path, anno_dict, case):
    path = _write(tmp_path, _odd_files(anno_dict)[case])
    anno, error, _ = assert_same_everywhere(path)
    assert error is None and anno.videos


def _two_frames(doc):
    """The first video and two of its frames with boxes: (video, (key, frame), (key, frame))."""
    video = next(iter(doc["db"].values()))
    first, second = [(k, f) for k, f in video["frames"].items() if f.get("annos")][:2]
    return video, first, second


def test_a_box_key_in_two_frames_reads_the_same_on_every_path(tmp_path, anno_dict):
    doc = copy.deepcopy(anno_dict)
    video, (_, frame), (key2, frame2) = _two_frames(doc)
    shared = next(iter(frame["annos"]))
    old = next(iter(frame2["annos"]))
    frame2["annos"] = {shared if k == old else k: box for k, box in frame2["annos"].items()}
    for t in ("agent", "action", "loc", "duplex", "triplet"):
        for tube in video[f"{t}_tubes"].values():
            if tube["annos"].get(key2) == old:
                tube["annos"][key2] = shared
    anno, error, _ = assert_same_everywhere(_write(tmp_path, json.dumps(doc)))
    assert error is None and anno.videos


def test_a_tube_box_of_another_frame_is_the_same_error_on_every_path(tmp_path, anno_dict):
    doc = copy.deepcopy(anno_dict)
    video, (key, frame), (key2, _) = _two_frames(doc)
    box_key = next(iter(frame["annos"]))
    tube = next(t for t in video["agent_tubes"].values() if t["annos"].get(key) == box_key)
    del tube["annos"][key]
    tube["annos"][key2] = box_key  # this box key is in the first frame, not in this one
    _, error, _ = assert_same_everywhere(_write(tmp_path, json.dumps(doc)))
    assert error is not None and "missing box" in error


@settings(max_examples=60)
@given(edits=st.lists(EDITS, min_size=1, max_size=3), text_edit=TEXT_EDITS,
       subset=st.sampled_from([None, ["v2"], ["v1", "v2"]]))
def test_broken_files_read_the_same_on_every_path(tmp_path, edits, text_edit, subset):
    doc = copy.deepcopy(BASE)
    for edit in edits:
        doc = _edit(doc, edit)
    path = tmp_path / "fuzz.json"
    path.write_bytes(_text_edit(_dump(doc).encode(), text_edit))
    assert_same_everywhere(path, videos=subset)


def test_a_changed_file_is_read_again(tmp_path, synth_anno_path):
    path = _write(tmp_path, synth_anno_path.read_text())
    before = load_annotation(path)
    stat = path.stat()
    text = path.read_text()
    at = text.index('"split_ids"')
    at = text.index('"', text.index("[", at)) + 1
    first = text[at:text.index('"', at)]  # the first video's first split, e.g. train
    path.write_text(text[:at] + "Z" * len(first) + text[at + len(first):])  # as long as before
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and time
    assert path.stat().st_size == stat.st_size
    after = load_annotation(path)
    assert "Z" * len(first) in after.splits() and "Z" * len(first) not in before.splits()


def _only_warning(path):
    with pytest.warns(InputWarning) as caught:
        anno = load_annotation(path)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "unreadable annotation cache" in messages[0], messages
    return anno


def _rewrite(cache, change):
    """Write the cache again with ``change(meta, arrays)`` applied (a well-formed file)."""
    meta, arrays = read_arrays(cache)
    arrays = {k: np.array(v) for k, v in arrays.items()}
    change(meta, arrays)
    write_arrays(cache, meta, arrays.items())


DAMAGES = {
    "tube row past the boxes": lambda m, a: a.update(tube_rows_agent=a["tube_rows_agent"] + 10**6),
    "class past the classes": lambda m, a: a.update(label_cols_action=a["label_cols_action"] + 99),
    "frame past numf": lambda m, a: a.update(frames=a["frames"] + 10 ** 6),
    "wrong shape": lambda m, a: a.update(boxes=a["boxes"][:-1]),
    "wrong dtype": lambda m, a: a.update(track_ids=a["track_ids"].astype(np.int64)),
    "missing member": lambda m, a: a.pop("label_rows_loc"),
    "wrong count": lambda m, a: m["videos"][0].update(boxes=m["videos"][0]["boxes"] + 1),
    "object array": lambda m, a: a.update(uids=a["uids"].astype(object)),
}


@pytest.mark.parametrize("damage", ["truncate", "cut the tail", "flip bytes", "flip one bit",
                                    "garbage", "empty", *DAMAGES])
def test_a_corrupt_cache_is_rebuilt_with_one_warning(tmp_path, synth_anno_path, damage):
    path = _write(tmp_path, synth_anno_path.read_text())
    good = load_annotation(path)
    cache = tmp_path / ("anno.json" + SUFFIX)
    data = cache.read_bytes()
    boxes = read_arrays(cache)[1]["boxes"]
    at = boxes.__array_interface__["data"][0] - np.frombuffer(
        boxes.base, np.uint8).__array_interface__["data"][0] + boxes.nbytes // 2
    if damage == "truncate":
        cache.write_bytes(data[: len(data) // 2])
    elif damage == "cut the tail":
        cache.write_bytes(data[:-1])
    elif damage == "flip bytes":  # inside the boxes: still numbers in range, caught by the CRC
        cache.write_bytes(data[:at] + bytes(b ^ 0x55 for b in data[at:at + 64]) + data[at + 64:])
    elif damage == "flip one bit":
        cache.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
    elif damage == "garbage":
        cache.write_bytes(b"not a cache at all")
    elif damage == "empty":
        cache.write_bytes(b"")
    elif damage == "object array":
        _rewrite(cache, lambda m, a: None)
        cache.write_bytes(cache.read_bytes().replace(b'"<U', b'"|O', 1))
    else:  # a well-formed file whose content is inconsistent
        _rewrite(cache, DAMAGES[damage])
    anno = _only_warning(path)
    assert_same_annotation(anno, good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same_annotation(load_annotation(path), good)  # rebuilt: read quietly


def test_a_cache_of_another_version_is_rebuilt_quietly(tmp_path, synth_anno_path, monkeypatch):
    path = _write(tmp_path, synth_anno_path.read_text())
    good = load_annotation(path)
    monkeypatch.setattr(cache_module, "VERSION", cache_module.VERSION + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse = mock.Mock(wraps=annotations._parse)
        with mock.patch.object(annotations, "_parse", parse):
            assert_same_annotation(load_annotation(path), good)
        assert parse.called, "the cache of the other version was used"
        with mock.patch.object(annotations, "_parse", side_effect=AssertionError):
            assert_same_annotation(load_annotation(path), good)  # the new one


def test_a_cache_of_format_2_is_deleted_when_the_cache_is_written(tmp_path, synth_anno_path,
                                                                  user_cache):
    path = _write(tmp_path, synth_anno_path.read_text())
    old = [Path(f"{cache}.npz") for cache in cache_paths(path)]
    for place in old:
        place.parent.mkdir(parents=True, exist_ok=True)
        place.write_bytes(b"format 2")
    load_annotation(path, cache=False)
    assert all(place.exists() for place in old)  # no cache written: left alone
    load_annotation(path)
    assert cache_paths(path)[0].is_file() and not any(place.exists() for place in old)


def test_the_cache_is_data_only(tmp_path, synth_anno_path):
    path = _write(tmp_path, synth_anno_path.read_text())
    load_annotation(path)
    _, arrays = read_arrays(tmp_path / ("anno.json" + SUFFIX))
    assert arrays and all(a.dtype.kind in "biufU" for a in arrays.values())


def test_labels_and_tubes_from_the_cache_are_made_when_used(tmp_path, synth_anno_path):
    path = _write(tmp_path, synth_anno_path.read_text())
    load_annotation(path)
    video = next(v for v in load_annotation(path).videos.values() if v.num_boxes)
    assert not video.labels.made and not video.tubes.made
    hot, tubes = video.labels["agent"], video.tubes["agent"]
    assert video.labels["agent"] is hot and video.tubes["agent"] is tubes  # made once
    hot[0, 0] = not hot[0, 0]  # the arrays are the process's own
    before = video.boxes[0, 0]
    video.boxes[0, 0] = before / 2 + 0.25
    again = load_annotation(path).videos[video.name]
    assert again.boxes[0, 0] == before and again.labels["agent"][0, 0] != hot[0, 0]


def test_a_read_only_folder_uses_the_user_cache(tmp_path, synth_anno_path, user_cache):
    path = _write(tmp_path, synth_anno_path.read_text())
    real = cache_module.atomic_path

    def refuse_beside(target, suffix=""):
        if target.parent == tmp_path:
            raise PermissionError(13, "Permission denied")
        return real(target, suffix)

    with mock.patch.object(cache_module, "atomic_path", refuse_beside):
        first = load_annotation(path)
    assert not (tmp_path / ("anno.json" + SUFFIX)).exists()
    assert cache_paths(path)[1].parent == user_cache and cache_paths(path)[1].is_file()
    with mock.patch.object(annotations, "_parse", side_effect=AssertionError):
        assert_same_annotation(load_annotation(path), first)


def test_no_cache_by_environment_or_flag(tmp_path, synth_anno_path, monkeypatch):
    path = _write(tmp_path, synth_anno_path.read_text())
    monkeypatch.setenv("ROADTRACK_NO_CACHE", "1")
    load_annotation(path)
    assert not list(tmp_path.rglob("*" + SUFFIX))
    monkeypatch.delenv("ROADTRACK_NO_CACHE")
    result = CliRunner().invoke(main, ["info", "--no-cache", str(path)])
    assert result.exit_code == 0, result.output
    assert not list(tmp_path.rglob("*" + SUFFIX))
    assert "ROADTRACK_NO_CACHE" not in os.environ
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 0 and (tmp_path / ("anno.json" + SUFFIX)).is_file()


@pytest.mark.parametrize("cache", [False, True])
def test_a_split_reads_only_its_videos(tmp_path, synth_anno_path, cache):
    path = _write(tmp_path, synth_anno_path.read_text())
    full = load_annotation(path, cache=False)
    val = load_annotation(path, splits=["val"], cache=cache)
    assert sorted(val.videos) == full.split("val") and val.splits() == full.splits()
    for name, video in val.videos.items():
        assert np.array_equal(video.boxes, full.videos[name].boxes)
    with mock.patch.object(annotations, "build_video",
                           side_effect=AssertionError("a video outside the split was read")):
        assert not load_annotation(path, splits=["no-such-split"], cache=False).videos


def test_a_file_read_in_parallel_parts_reads_the_same(tmp_path, anno_dict, monkeypatch):
    monkeypatch.setattr(fast, "PARALLEL_BYTES", 0)
    monkeypatch.setenv("ROADTRACK_READ_WORKERS", "2")
    parts = []
    read_part = fast._read_part
    monkeypatch.setattr(fast, "_read_part",
                        lambda *args: parts.append(args[1]) or read_part(*args))
    anno, error, _ = assert_same_everywhere(_write(tmp_path, json.dumps(anno_dict)))
    assert error is None and len(anno.videos) > 1
    # all videos in one part without the scanner (one thread); two parts in each of the
    # scanner's reads (no cache, first cached read); the stream reader and the cache read none
    whole = [part for part in parts if len(part) == len(anno.videos)]
    split = [part for part in parts if 0 < len(part) < len(anno.videos)]
    assert len(whole) == 1 and len(split) == 4 and len(parts) == 5
    assert sum(map(len, split)) == 2 * len(anno.videos)
    broken = copy.deepcopy(anno_dict)
    last = list(broken["db"].values())[-1]
    next(f for f in last["frames"].values() if f.get("annos"))["width"] = "wide"
    _, error, _ = assert_same_everywhere(_write(tmp_path, json.dumps(broken), "broken.json"))
    assert error is not None and "width" in error


@pytest.mark.parametrize("value", [2 ** 64, -(2 ** 63)])
@pytest.mark.parametrize("where", [("label_types",), ("db", "v2", "frames", "3", "width"),
                                   ("db", "v2", "frames", "2", "annos", "b2a", "action_ids", 1),
                                   ("db", "v1", "frames", "2", "annos", "b2b", "box", 3)])
def test_an_integer_beyond_64_bits_reads_as_the_stream_reader_reads_it(tmp_path, where, value):
    """Found by the fuzz test above: the stream reader parses numbers as floats and refuses an
    integer beyond 64 bits anywhere in the file, where msgspec took it (and a label id that size
    crashed the conversion)."""
    doc = copy.deepcopy(BASE)
    parent = doc
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    path = tmp_path / "huge.json"
    path.write_text(_dump(doc))
    _, error, _ = assert_same_everywhere(path)
    assert error is not None and "integer overflow" in error
    assert_same_everywhere(path, videos=["v2"])
