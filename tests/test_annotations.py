import json

import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.errors import UserError
from roadtrack.io.annotations import load_annotation
from roadtrack.labels import LABEL_TYPES


def _raw_boxes(anno_dict, video):
    return [(int(n), b) for n, f in anno_dict["db"][video]["frames"].items()
            for b in f.get("annos", {}).values()]


def test_reader_maps_ids_by_name_into_the_used_space(synth_anno_path, anno_dict):
    anno = load_annotation(synth_anno_path)
    assert sorted(anno.split("train") + anno.split("val")) == sorted(anno_dict["db"])
    assert anno.split("val") and anno.split("train")
    for name, video in anno.videos.items():
        raw = _raw_boxes(anno_dict, name)
        assert video.num_boxes == len(raw)
        assert np.all(np.diff(video.frames) >= 0)
        # Compare label sets box by box (the reader sorts by frame, stably).
        raw.sort(key=lambda nb: nb[0])
        for row, (n, box) in enumerate(raw):
            assert video.frames[row] == n
            for t in LABEL_TYPES:
                want = {anno_dict[f"all_{t}_labels"][i] for i in box[f"{t}_ids"]}
                got = {anno.labels.names(t)[c] for c in np.flatnonzero(video.labels[t][row])}
                assert got == want & set(anno.labels.names(t))
            assert video.uids[video.track_ids[row]] == box["tube_uid"]


def test_all_lists_are_supersets_in_another_order(anno_dict):
    for t in LABEL_TYPES:
        used, every = anno_dict[f"{t}_labels"], anno_dict[f"all_{t}_labels"]
        assert set(used) <= set(every)
    assert any(anno_dict[f"{t}_labels"] != anno_dict[f"all_{t}_labels"][:len(anno_dict[f"{t}_labels"])]
               for t in LABEL_TYPES)


def test_tubes_follow_one_agent_and_one_label(synth_anno_path):
    anno = load_annotation(synth_anno_path)
    for video in anno.videos.values():
        assert video.tubes["agent"], "every video has agent tubes"
        for t in LABEL_TYPES:
            for tube in video.tubes[t]:
                assert len(set(video.track_ids[tube.rows])) == 1
                assert video.labels[t][tube.rows, tube.label].all()
                assert np.all(np.diff(video.frames[tube.rows]) > 0)


def test_duplex_and_triplet_agree_with_their_children(synth_anno_path):
    anno = load_annotation(synth_anno_path)
    triplet_children = anno.labels.triplet_children()
    for video in anno.videos.values():
        for row, classes in zip(*np.nonzero(video.labels["triplet"])):
            a, c, lo = triplet_children[classes]
            assert video.labels["agent"][row, a] and video.labels["action"][row, c] \
                and video.labels["loc"][row, lo]


def _write(tmp_path, text, name="anno.json"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _corrupt(anno_dict, how):
    video = next(iter(anno_dict["db"].values()))
    frame = next(f for f in video["frames"].values() if f.get("annos"))
    box = next(iter(frame["annos"].values()))
    if how == "missing_numf":
        del video["numf"]
    elif how == "missing_box_key":
        del box["tube_uid"]
    elif how == "id_out_of_range":
        box["agent_ids"] = [999]
    elif how == "box_outside":
        box["box"] = [0.1, 0.1, 1.5, 0.5]
    elif how == "missing_labels":
        del anno_dict["agent_labels"]
    return json.dumps(anno_dict)


@pytest.mark.parametrize("how,expected", [
    ("missing_numf", "numf"),
    ("missing_box_key", "tube_uid"),
    ("id_out_of_range", "out of range"),
    ("box_outside", "outside"),
    ("missing_labels", "agent_labels"),
])
def test_bad_annotation_content_is_one_clear_error(tmp_path, anno_dict, how, expected):
    path = _write(tmp_path, _corrupt(anno_dict, how))
    with pytest.raises(UserError) as err:
        load_annotation(path)
    assert str(path) in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize("text,expected", [
    ("", "empty"),
    ("{\"db\": {\"a\": ", "truncated"),
    ("[1, 2, 3]", "truncated"),
])
def test_malformed_files_via_cli_exit_nonzero_without_traceback(tmp_path, text, expected):
    path = _write(tmp_path, text)
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 2
    assert expected in result.output and str(path) in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_truncated_real_file_is_detected(tmp_path, synth_anno_path):
    text = synth_anno_path.read_text()
    path = _write(tmp_path, text[: len(text) // 2])
    with pytest.raises(UserError, match="truncated"):
        load_annotation(path)


def test_info_prints_splits_and_classes(synth_anno_path):
    result = CliRunner().invoke(main, ["info", str(synth_anno_path)])
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "val" in result.output
    assert "Car" in result.output and "triplet (86 classes)" in result.output


def test_missing_file(tmp_path):
    result = CliRunner().invoke(main, ["info", str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "no such annotation file" in result.output


def test_label_lists_after_db_are_found(tmp_path, anno_dict):
    db = anno_dict.pop("db")
    reordered = {"db": db, **anno_dict}
    path = _write(tmp_path, json.dumps(reordered))
    anno = load_annotation(path)
    assert anno.labels.num_classes("triplet") == 86 and len(anno.videos) == len(db)
