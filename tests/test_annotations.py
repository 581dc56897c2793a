import codecs
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.errors import InputWarning, UserError
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
    assert any(anno_dict[f"{t}_labels"]
               != anno_dict[f"all_{t}_labels"][:len(anno_dict[f"{t}_labels"])]
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
        for row, classes in zip(*np.nonzero(video.labels["triplet"]), strict=True):
            a, c, lo = triplet_children[classes]
            assert video.labels["agent"][row, a] and video.labels["action"][row, c] \
                and video.labels["loc"][row, lo]


@pytest.mark.parametrize("kind,name,problem", [
    ("triplet", "Car-MovAway", "does not split into 3 parts"),
    ("duplex", "Car-Fly", "names a class missing from its parts"),
])
def test_a_duplex_or_triplet_class_that_is_not_its_parts_names_the_file(tmp_path, anno_dict, kind,
                                                                         name, problem):
    anno_dict[f"{kind}_labels"][0] = name
    path = _write(tmp_path, json.dumps(anno_dict))
    labels = load_annotation(path, cache=False).labels
    with pytest.raises(UserError) as err:
        labels.triplet_children() if kind == "triplet" else labels.duplex_children()
    assert str(err.value) == f"{path}: {kind} class {name!r} {problem}"


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


# --- field types, duplicates and odd boxes (issue 13) -------------------------------------------

def _first_video_frame_box(anno_dict):
    name, video = next(iter(anno_dict["db"].items()))
    n, frame = next((n, f) for n, f in video["frames"].items() if f.get("annos"))
    box_key, box = next(iter(frame["annos"].items()))
    return name, video, n, frame, box_key, box


def _break(anno_dict, how):
    """Edit the first box's video, frame, box or agent tube; returns the text to write."""
    name, video, n, frame, box_key, box = _first_video_frame_box(anno_dict)
    tube = next(iter(video["agent_tubes"].values()))
    edits = {
        "split_string": lambda: video.update(split_ids="val"),
        "split_numbers": lambda: video.update(split_ids=[1]),
        "numf_negative": lambda: video.update(numf=-1),
        "numf_huge": lambda: video.update(numf=1e13),
        "numf_string": lambda: video.update(numf="30"),
        "numf_true": lambda: video.update(numf=True),
        "frames_list": lambda: video.update(frames=list(video["frames"].values())),
        "frame_key": lambda: video["frames"].update({"007": frame}),
        "frame_key_long": lambda: video["frames"].update({"1" * 5000: frame}),
        "frame_string": lambda: video["frames"].update({n: "x"}),
        "annotated_string": lambda: frame.update(annotated="yes"),
        "width_float": lambda: frame.update(width=1920.5),
        "annos_list": lambda: frame.update(annos=[box]),
        "box_list": lambda: frame["annos"].update({box_key: [box]}),
        "box_string_value": lambda: box.update(box=["0.1", 0.1, 0.2, 0.2]),
        "box_three_values": lambda: box.update(box=[0.1, 0.1, 0.2]),
        "label_car": lambda: box.update(agent_ids=["car"]),
        "label_float": lambda: box.update(agent_ids=[1.7]),
        "label_true": lambda: box.update(action_ids=[True]),
        "ids_int": lambda: box.update(agent_ids=3),
        "uid_int": lambda: box.update(tube_uid=5),
        "tubes_list": lambda: video.update(agent_tubes=[tube]),
        "tube_annos_list": lambda: tube.update(annos=list(tube["annos"].values())),
        "tube_label_string": lambda: tube.update(label_id="0"),
        "tube_label_float": lambda: tube.update(label_id=0.5),
        "tube_box_key_list": lambda: tube["annos"].update({next(iter(tube["annos"])): ["b"]}),
    }
    edits[how]()
    return json.dumps(anno_dict), name


@pytest.mark.parametrize("how,field", [
    ("split_string", "'split_ids' is the string 'val', not a list"),
    ("split_numbers", "'split_ids' is a list, not a list of split names"),
    ("numf_negative", "'numf' is -1, not a frame count"),
    ("numf_huge", "'numf' is 10000000000000.0, not a frame count"),
    ("numf_string", "'numf' is the string '30'"),
    ("numf_true", "'numf' is true"),
    ("frames_list", "'frames' is a list, not an object"),
    ("frame_key", "frame key '007' is not a frame number 1..numf="),
    ("frame_key_long", "frame key '1111111111"),
    ("frame_string", "the frame is the string 'x', not an object"),
    ("annotated_string", "'annotated' is the string 'yes', not a number"),
    ("width_float", "'width' is 1920.5, not a size in pixels"),
    ("annos_list", "'annos' is a list, not an object of boxes"),
    ("box_list", "the box is a list, not an object"),
    ("box_string_value", "a 'box' value is the string '0.1', not a number"),
    ("box_three_values", "'box' has 3 values, not 4"),
    ("label_car", "a label id in 'agent_ids' is the string 'car', not an integer"),
    ("label_float", "a label id in 'agent_ids' is 1.7, not an integer"),
    ("label_true", "a label id in 'action_ids' is true, not an integer"),
    ("ids_int", "'agent_ids' is 3, not a list of label ids"),
    ("uid_int", "'tube_uid' is 5, not a string"),
    ("tubes_list", "'agent_tubes' is a list, not an object of tubes"),
    ("tube_annos_list", "'annos' is a list, not an object of box keys by frame"),
    ("tube_label_string", "'label_id' is the string '0', not an integer"),
    ("tube_label_float", "'label_id' is 0.5, not an integer"),
    ("tube_box_key_list", "the box key is a list, not a string"),
])
def test_every_field_read_is_type_checked_in_one_line(tmp_path, anno_dict, how, field):
    text, video = _break(anno_dict, how)
    path = _write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_annotation(path)
    message = str(err.value)
    assert message.startswith(f"{path}: video {video}") and field in message, message
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 2 and result.output == f"roadtrack: error: {message}\n"


def _with_repeated_key(text: str, key: str, value) -> str:
    """``text`` with ``"key": value`` given a second time right after its first occurrence."""
    pair = f'"{key}": {json.dumps(value)}'
    assert pair in text
    return text.replace(pair, f"{pair}, {pair}", 1)


def _warnings_of(path, **kwargs):
    with pytest.warns(InputWarning) as caught:
        anno = load_annotation(path, **kwargs)
    return anno, [str(w.message) for w in caught if issubclass(w.category, InputWarning)]


def test_flipped_boxes_are_kept_as_given_with_one_warning(tmp_path, anno_dict):
    name, video, n, _, box_key, box = _first_video_frame_box(anno_dict)
    later = next(f for k, f in video["frames"].items() if int(k) > int(n) and f.get("annos"))
    other = next(iter(later["annos"].values()))
    box["box"] = [box["box"][2], box["box"][1], box["box"][0], box["box"][3]]  # x1 > x2
    other["box"] = [other["box"][0], other["box"][3], other["box"][2], other["box"][1]]  # y1 > y2
    path = _write(tmp_path, json.dumps(anno_dict))
    anno, messages = _warnings_of(path)
    assert messages == [(f"{path}: boxes with x1 > x2 or y1 > y2: 2 (kept as given, as "
                         f"the official evaluation reads them); first: video {name} frame {n} "
                         f"box {box_key}")]
    kept = anno.videos[name].boxes.tolist()
    assert box["box"] in kept and other["box"] in kept


def test_a_tube_uid_twice_in_a_frame_warns_and_keeps_both(tmp_path, anno_dict, synth_anno_path):
    name, _, n, frame, _, box = _first_video_frame_box(anno_dict)
    frame["annos"]["copy"] = dict(box, box=[0.5, 0.5, 0.6, 0.6])
    path = _write(tmp_path, json.dumps(anno_dict))
    anno, messages = _warnings_of(path)
    assert len(messages) == 1 and "tube_uid: 1 (all are kept)" in messages[0]
    assert messages[0].endswith(f"first: video {name} frame {n} box copy")
    before = load_annotation(synth_anno_path).videos[name]
    assert anno.videos[name].num_boxes == before.num_boxes + 1


def test_repeated_tube_key_warns_and_reads_the_last_like_json(tmp_path, anno_dict):
    name, video, *_ = _first_video_frame_box(anno_dict)
    tube_key, tube = next(iter(video["agent_tubes"].items()))
    text = _with_repeated_key(json.dumps(anno_dict), tube_key, tube)
    path = _write(tmp_path, text)
    anno, messages = _warnings_of(path)
    assert messages == [(f"{path}: keys given twice in one JSON object: 1 (the last value is "
                         f"read, as json.load does); first: video {name}: key {tube_key} in "
                         f"agent_tubes")]
    # Both copies hold the same boxes: the second warning kind is quiet (one tube is kept).
    assert len(anno.videos[name].tubes["agent"]) == len(video["agent_tubes"])


def test_repeated_box_field_reads_the_last_value(tmp_path, anno_dict):
    name, _, n, _, box_key, box = _first_video_frame_box(anno_dict)
    text = json.dumps(anno_dict).replace(f'"{box_key}": {{"box": ',
                                         f'"{box_key}": {{"box": [0.1, 0.2, 0.3, 0.4], "box": ', 1)
    path = _write(tmp_path, text)
    anno, messages = _warnings_of(path)
    assert len(messages) == 1 and f"key box in frames/{n}/annos/{box_key}" in messages[0]
    assert json.loads(text)["db"][name]["frames"][n]["annos"][box_key]["box"] == box["box"]
    rows = np.flatnonzero(anno.videos[name].frames == int(n))
    assert box["box"] in anno.videos[name].boxes[rows].tolist()


def test_a_video_given_twice_warns_and_the_last_is_read(tmp_path, anno_dict):
    name, video, *_ = _first_video_frame_box(anno_dict)
    text = json.dumps(anno_dict)
    body = json.dumps(video)
    changed = dict(video, split_ids=["other"])
    text = text.replace(f'"{name}": {body}', f'"{name}": {body}, "{name}": '
                        f'{json.dumps(changed)}', 1)
    path = _write(tmp_path, text)
    anno, messages = _warnings_of(path)
    assert messages == [(f"{path}: videos given twice under 'db': 1 (the last one is read, as "
                         f"json.load does); first: video {name}")]
    assert anno.videos[name].split_ids == ("other",) and len(anno.videos) == len(anno_dict["db"])


def test_two_tubes_of_one_class_on_the_same_boxes_warn(tmp_path, anno_dict):
    name, video, *_ = _first_video_frame_box(anno_dict)
    tube = next(iter(video["agent_tubes"].values()))
    video["agent_tubes"]["again"] = json.loads(json.dumps(tube))
    path = _write(tmp_path, json.dumps(anno_dict))
    anno, messages = _warnings_of(path)
    assert len(messages) == 1 and messages[0].startswith(
        f"{path}: tube boxes that another tube of the same class also holds: "
        f"{len(tube['annos'])} (both tubes are kept); first: video {name} agent_tubes tube again")
    assert len(anno.videos[name].tubes["agent"]) == len(video["agent_tubes"])


def test_clean_file_loads_without_warnings(synth_anno_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_annotation(synth_anno_path)


def test_byte_order_mark_is_read_as_json_reads_utf8_sig(tmp_path, synth_anno_path):
    path = tmp_path / "bom.json"
    path.write_bytes(codecs.BOM_UTF8 + synth_anno_path.read_bytes())
    with_bom, plain = load_annotation(path), load_annotation(synth_anno_path)
    assert sorted(with_bom.videos) == sorted(plain.videos)
    for name, video in plain.videos.items():
        assert np.array_equal(with_bom.videos[name].boxes, video.boxes)
    path.write_bytes(synth_anno_path.read_text().encode("utf-16"))
    with pytest.raises(UserError, match="UTF-16 or UTF-32 byte-order mark"):
        load_annotation(path)


def test_parser_errors_are_one_line_naming_the_last_good_video(tmp_path, anno_dict):
    names = list(anno_dict["db"])
    text = json.dumps(anno_dict)
    second = text.index(f'"{names[1]}": ')
    text = text[:second] + text[second:].replace('"numf": ', '"numf" ', 1)
    path = _write(tmp_path, text)
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"{path}: malformed or truncated JSON after video {names[0]} (parse error: " \
        in result.output


@pytest.mark.parametrize("value,message", [
    ('[["Car"], "Bus"]', "'all_agent_labels' is not a list of class names"),
    ("[" + "1" * 5000 + "]", "malformed value for 'all_agent_labels' (a number too long)"),
    ("[" * 100000 + "]" * 100000, "malformed value for 'all_agent_labels' (nested too deeply)"),
])
def test_header_lists_must_hold_names(tmp_path, anno_dict, value, message):
    anno_dict["all_agent_labels"] = "PLACEHOLDER"
    path = _write(tmp_path, json.dumps(anno_dict).replace('"PLACEHOLDER"', value))
    with pytest.raises(UserError) as err:
        load_annotation(path)
    assert str(err.value) == f"{path}: {message}"


def _annotation_commands(tmp_path, path):
    """Every command that reads an annotation file, with the file at ``path``."""
    from roadtrack.synth.dataset import ANNOTATION_NAME

    from .train_helpers import tiny_config

    data = tmp_path / "data"
    data.mkdir()
    (data / ANNOTATION_NAME).write_bytes(path.read_bytes())
    config = tiny_config(tmp_path)
    empty = tmp_path / "run"
    empty.mkdir()
    return {
        "info": ["info", path],
        "eval road": ["eval", "road", "--anno", path, "--run", empty],
        "eval mot": ["eval", "mot", "--anno", path, "--run", empty],
        "validate": ["validate", tmp_path / "none.pkl", "--anno", path],
        "train-events": ["train-events", "--config", config, "--data", path, "--run", empty,
                         "--out", tmp_path / "head"],
        "train": ["train", "--config", config, "--data", data, "--out", tmp_path / "new-run"],
    }


def test_every_command_reading_annotations_gives_the_one_line_error(tmp_path, anno_dict):
    text, video = _break(anno_dict, "split_string")
    path = _write(tmp_path, text)
    commands = _annotation_commands(tmp_path, path)
    for name, args in commands.items():
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 2, (name, result.output)
        assert result.output.count("\n") == 1, (name, result.output)
        assert f"video {video}: 'split_ids' is the string 'val'" in result.output, name
    assert not (tmp_path / "new-run").exists()


def test_every_command_reading_annotations_prints_the_warning_once(tmp_path, anno_dict):
    _, _, _, _, _, box = _first_video_frame_box(anno_dict)
    x1, y1, x2, y2 = box["box"]
    box["box"] = [x2, y1, x1, y2]
    path = _write(tmp_path, json.dumps(anno_dict))
    commands = _annotation_commands(tmp_path, path)
    del commands["train"]  # it would train; the warning comes from the same reader
    warning = f"roadtrack: warning: {path}: boxes with x1 > x2 or y1 > y2: 1 (kept as given"
    for name, args in commands.items():
        result = CliRunner().invoke(main, [str(a) for a in args])
        lines = result.output.splitlines()
        assert sum(line.startswith(warning) for line in lines) == 1, (name, result.output)
        assert not isinstance(result.exception, (AssertionError, TypeError, ValueError)), name
