"""Submissions cannot run code: a corpus of pickle gadgets, each refused with one line by
`validate`, `eval road --pred` and `eval road --frame-dets` (plain, nested in a valid
submission, zipped), and each running nothing; real submissions load at every protocol."""
from __future__ import annotations

import collections
import contextlib
import gc
import io
import pickle
import pickletools
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from roadtrack.cli import main
from roadtrack.errors import UserError
from roadtrack.io.safe_pickle import ALLOWED_GLOBALS, loads, read_pickle

from .road_helpers import annotation, moving_object, write_json


@dataclass(frozen=True)
class G:
    """A global, by name (it need not exist here)."""

    module: str
    name: str


@dataclass(frozen=True)
class Call:
    """``func(*args)``: func a :class:`G` or another Call."""

    func: object
    args: tuple = ()


def _plain(value, proto: int) -> bytes:
    """Opcodes that push ``value`` (no header, frame or STOP)."""
    data = pickle.dumps(value, protocol=proto)
    data = data[2:] if proto >= 2 else data
    if data[:1] == pickle.FRAME:
        data = data[9:]
    return data[:-1]


def _global(g: G, proto: int) -> bytes:
    if proto < 4:
        return b"c" + f"{g.module}\n{g.name}\n".encode()
    return b"".join(b"\x8c" + bytes([len(s)]) + s.encode() for s in (g.module, g.name)) + b"\x93"


def ops(x, proto: int) -> bytes:
    """Opcodes that push ``x``: calls as GLOBAL/STACK_GLOBAL + MARK args TUPLE + REDUCE."""
    if isinstance(x, G):
        return _global(x, proto)
    if isinstance(x, Call):
        return ops(x.func, proto) + b"(" + b"".join(ops(a, proto) for a in x.args) + b"tR"
    if isinstance(x, tuple):
        return b"(" + b"".join(ops(a, proto) for a in x) + b"t"
    return _plain(x, proto)


def dumps(x, proto: int) -> bytes:
    head = b"\x80" + bytes([proto]) if proto >= 2 else b""
    return head + ops(x, proto) + b"."


def inst(call: Call) -> bytes:
    """Protocol 0's INST opcode: MARK args INST module name (calls it)."""
    return b"(" + b"".join(ops(a, 0) for a in call.args) + b"i" + \
        f"{call.func.module}\n{call.func.name}\n".encode() + b"."


def unframed(data: bytes) -> bytes:
    """The same pickle without FRAME opcodes (they are optional), so that it can be spliced."""
    cut = [pos for op, _, pos in pickletools.genops(data) if op.name == "FRAME"]
    for pos in reversed(cut):
        data = data[:pos] + data[pos + 9:]
    return data


IMPORT_OS = Call(G("builtins", "__import__"), ("os",))


def gadgets(folder: Path) -> dict[str, Call]:
    """Each gadget's payload makes a file in ``folder``; ``folder`` must stay empty."""
    m = str(folder / "marker")
    code = f"open({m!r}, 'w').close()"
    shell = f"touch {m}"
    getattr_ = G("builtins", "getattr")
    return {
        "numpy runstring": Call(G("numpy.testing._private.utils", "runstring"), (code, {})),
        "numpy.save": Call(G("numpy", "save"), (m, [1])),
        "numpy.savetxt": Call(G("numpy", "savetxt"), (m, [1.0])),
        "numpy.memmap": Call(G("numpy", "memmap"), (m, "uint8", "w+", 0, (1,))),
        "numpy.lib.format.open_memmap": Call(G("numpy.lib.format", "open_memmap"),
                                             (m, "w+", "uint8", (1,))),
        "numpy.load": Call(G("numpy", "load"), (m,)),
        "numpy.f2py": Call(G("numpy.f2py", "compile"), ("", "m")),
        "numpy.distutils": Call(G("numpy.distutils.exec_command", "exec_command"), (shell,)),
        "numpy.lib.utils": Call(G("numpy.lib.utils", "safe_eval"), ("1",)),
        "numpy.core array": Call(G("numpy.core.multiarray", "array"), ([1],)),
        "eval": Call(G("builtins", "eval"), (code,)),
        "exec": Call(G("builtins", "exec"), (code,)),
        "__builtin__.eval": Call(G("__builtin__", "eval"), (code,)),
        "open": Call(G("builtins", "open"), (m, "w")),
        "getattr(__import__)": Call(Call(getattr_, (IMPORT_OS, "system")), (shell,)),
        "os.system": Call(G("os", "system"), (shell,)),
        "posix.system": Call(G("posix", "system"), (shell,)),
        "subprocess.Popen": Call(G("subprocess", "Popen"), (["touch", m],)),
        "subprocess.check_output": Call(G("subprocess", "check_output"), (["touch", m],)),
        "subprocess.run": Call(G("subprocess", "run"), (["touch", m],)),
        "codecs.open": Call(G("codecs", "open"), (m, "w")),
        "_codecs other": Call(G("_codecs", "lookup"), ("rot13",)),
        "_codecs.encode zlib": Call(G("_codecs", "encode"), (b"x", "zlib")),
        "importlib": Call(Call(getattr_, (Call(G("importlib", "import_module"), ("os",)),
                                          "system")), (shell,)),
        "pickle.loads": Call(G("pickle", "loads"), (dumps(Call(G("os", "system"), (shell,)), 2),)),
        "copyreg._reconstructor": Call(G("copyreg", "_reconstructor"),
                                       (G("subprocess", "Popen"), G("subprocess", "Popen"),
                                        ["touch", m])),
        "functools.partial": Call(Call(G("functools", "partial"), (G("os", "system"), shell))),
        "operator.attrgetter": Call(Call(Call(G("operator", "attrgetter"), ("system",)),
                                         (IMPORT_OS,)), (shell,)),
        "operator.methodcaller": Call(Call(G("operator", "methodcaller"), ("system", shell)),
                                      (IMPORT_OS,)),
        "timeit": Call(G("timeit", "timeit"), (code, "pass", G("time", "perf_counter"), 1)),
        "shutil.copyfile": Call(G("shutil", "copyfile"), (__file__, m)),
        "pathlib touch": Call(Call(getattr_, (Call(G("pathlib", "Path"), (m,)), "touch"))),
        "runpy": Call(G("runpy", "run_path"), (m,)),
        "collections other": Call(G("collections", "namedtuple"), ("a", "b")),
        "bytes(n)": Call(G("builtins", "bytes"), (10 ** 12,)),
        "ndarray subtype": Call(G("numpy._core.multiarray", "_reconstruct"),
                                (G("numpy.ma", "MaskedArray"), (0,), b"b")),
    }


# gadgets whose payload really runs under plain pickle.loads here (the corpus is live)
LIVE = ["numpy runstring", "numpy.save", "numpy.savetxt", "numpy.memmap",
        "numpy.lib.format.open_memmap", "eval", "exec", "__builtin__.eval", "open",
        "getattr(__import__)", "os.system", "posix.system", "subprocess.Popen",
        "subprocess.check_output", "subprocess.run", "codecs.open", "importlib", "pickle.loads",
        "copyreg._reconstructor", "functools.partial", "operator.attrgetter",
        "operator.methodcaller", "timeit", "shutil.copyfile", "pathlib touch"]
NAMES = list(gadgets(Path("/x")))


def _settle(folder: Path) -> list[str]:
    """Files in ``folder`` after a short wait (a Popen'd child may be slow to start)."""
    for _ in range(40):
        if any(folder.iterdir()):
            break
        time.sleep(0.05)
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("name", LIVE)
def test_the_corpus_is_live_under_plain_pickle(tmp_path, name):
    """Control: unrestricted unpickling of the gadget does run its payload."""
    gadget = gadgets(tmp_path)[name]
    with contextlib.suppress(Exception):  # the payload ran before whatever failed afterwards
        pickle.loads(dumps(gadget, 0))
    assert _settle(tmp_path), name


def _submission_with(placeholder: str) -> dict:
    tube = {"label_id": 1, "score": placeholder, "frames": np.arange(1, 4),
            "boxes": np.tile([10.0, 20.0, 110.0, 220.0], (3, 1))}
    return {"agent": {"v1": [tube]}}


def _frame_dets_with(placeholder: str) -> dict:
    return {"agent_ness": {"v100001": [np.array([[1.0, 2.0, 3.0, 4.0, 0.5]]), placeholder]}}


def nested(gadget: Call, outer: dict, proto: int) -> bytes:
    """``outer`` pickled with the gadget spliced in place of its placeholder string."""
    data = unframed(pickle.dumps(outer, protocol=proto))
    word = b"GADGET_HERE"
    text = {0: b"V" + word + b"\n", 2: b"X" + len(word).to_bytes(4, "little") + word,
            4: b"\x8c" + bytes([len(word)]) + word}[min(proto, 4) if proto != 3 else 2]
    assert data.count(text) == 1
    return data.replace(text, ops(gadget, proto))


def zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "our submission")
        archive.writestr("submission.pkl", data)
    return buffer.getvalue()


def variants(gadget: Call, outer: dict) -> dict[str, bytes]:
    out = {"protocol 0": dumps(gadget, 0), "protocol 2": dumps(gadget, 2),
           "protocol 4 stack_global": dumps(gadget, 4),
           "nested protocol 0": nested(gadget, outer, 0),
           "nested protocol 5": nested(gadget, outer, 5)}
    if isinstance(gadget.func, G):
        out["inst"] = inst(gadget)
    out["zipped nested"] = zipped(out["nested protocol 5"])
    return out


@pytest.fixture(scope="module")
def anno(tmp_path_factory):
    path = tmp_path_factory.mktemp("gadget") / "anno.json"
    return write_json(path, annotation({"v1": {"numf": 5, "objects": [moving_object("a", 1, 5)]}}))


COMMANDS = {
    "validate": lambda path, anno: ["validate", path, "--anno", anno],
    "eval road --pred": lambda path, anno: ["eval", "road", "--anno", anno, "--pred", path],
    "eval road --frame-dets": lambda path, anno: ["eval", "road", "--anno", anno,
                                                  "--frame-dets", path],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("name", NAMES)
def test_every_gadget_is_refused_with_one_line_and_runs_nothing(tmp_path, anno, name, command):
    payload_dir = tmp_path / "payload"
    payload_dir.mkdir()
    gadget = gadgets(payload_dir)[name]
    outer = _frame_dets_with("GADGET_HERE") if "frame" in command else \
        _submission_with("GADGET_HERE")
    runner = CliRunner()
    for variant, data in variants(gadget, outer).items():
        path = tmp_path / ("x.zip" if variant.startswith("zip") else "x.pkl")
        path.write_bytes(data)
        result = runner.invoke(main, [str(a) for a in COMMANDS[command](path, anno)])
        assert list(payload_dir.iterdir()) == [], (name, variant)  # nothing ran
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert result.exit_code == 2, (variant, result.output)
        assert len(lines) == 1 and lines[0].startswith(f"roadtrack: error: {path}: "), \
            (variant, lines)
        assert "refusing" in lines[0] or "not a readable pickle" in lines[0], (variant, lines)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        path.unlink()


def test_refusal_names_the_global(tmp_path, anno):
    path = tmp_path / "x.pkl"
    path.write_bytes(dumps(gadgets(tmp_path)["numpy runstring"], 2))
    result = CliRunner().invoke(main, ["validate", str(path), "--anno", str(anno)])
    assert "refusing to load numpy.testing._private.utils.runstring" in result.output
    assert not (tmp_path / "marker").exists()


def test_the_allow_list_is_exact_names():
    for module, _name in ALLOWED_GLOBALS:
        assert module in ("builtins", "__builtin__", "_codecs", "collections", "numpy",
                          "numpy.core.multiarray", "numpy._core.multiarray",
                          "numpy.core.numeric", "numpy._core.numeric")
    assert ("numpy", "memmap") not in ALLOWED_GLOBALS
    assert ("builtins", "getattr") not in ALLOWED_GLOBALS


REALISTIC = {
    "agent": {"v1": [
        {"label_id": 3, "score": 0.7, "frames": np.arange(1, 6, dtype=np.int64),
         "boxes": np.arange(20, dtype=np.float32).reshape(5, 4) + [0, 0, 10, 10],
         "scores": np.full(5, 0.7)},
        {"label_id": np.int64(1), "score": np.float32(0.25), "frames": [2, 3],
         "boxes": [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]], "scores": (0.1, 0.2)},
        {"label_id": np.int32(2), "score": np.float64(0.5), "frames": np.arange(1, 3),
         "boxes": np.asfortranarray(np.ones((2, 4))), "scores": np.zeros(2, np.float16)}]},
    "triplet": collections.OrderedDict(v1=[]),
    "extra": {"set": {1, 2}, "frozen": frozenset([3]), "bytes": b"\x00\xff",
              "bytearray": bytearray(b"ab"), "complex": 1j, "empty": np.zeros((0, 4)),
              "bool": np.bool_(True), "uint8": np.arange(3, dtype=np.uint8),
              "big-endian": np.arange(3, dtype=">f8"), "strided": np.arange(12.0)[::3],
              "u": np.array(["ab"]), "object": np.array([1, "a"], dtype=object)},
}


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, np.ndarray):
        # protocols 0-4 give big-endian arrays back in native order (numpy's own pickling)
        return a.dtype.str[1:] == b.dtype.str[1:] and a.shape == b.shape and (a == b).all()
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("proto", range(6))
def test_realistic_submissions_load_at_every_protocol(proto):
    assert _equal(loads(pickle.dumps(REALISTIC, protocol=proto)), REALISTIC)


@pytest.mark.parametrize("proto", [0, 2, 4, 5])
def test_numpy_1_spellings_load(proto):
    """Pickles written by numpy 1.x name numpy.core.multiarray (and numpy.core.numeric)."""
    data = unframed(pickle.dumps(REALISTIC, protocol=proto))
    if proto < 4:
        old = data.replace(b"numpy._core.", b"numpy.core.")
    else:
        old = data
        for tail in (b"multiarray", b"numeric"):
            new, was = b"numpy.core." + tail, b"numpy._core." + tail
            old = old.replace(bytes([len(was)]) + was, bytes([len(new)]) + new)
    assert b"numpy._core" not in old and b"numpy.core" in old
    assert _equal(loads(old), REALISTIC)


@pytest.mark.parametrize("proto", [0, 2])
def test_protocol_0_and_2_submissions_validate(tmp_path, anno, proto):
    sub = {"agent": {"v1": [{"label_id": 1, "score": np.float32(0.5),
                             "frames": np.arange(1, 4), "boxes": np.tile([10.0, 20, 110, 220],
                                                                         (3, 1))}]}}
    path = tmp_path / "s.pkl"
    path.write_bytes(pickle.dumps(sub, protocol=proto))
    result = CliRunner().invoke(main, ["validate", str(path), "--anno", str(anno)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["eval", "road", "--anno", str(anno), "--pred", str(path)])
    assert result.exit_code == 0, result.output


def test_a_damaged_bytearray_length_is_one_line(tmp_path, capsys):
    """Found by fuzzing: CPython also prints an internal SystemError when it frees the
    half-read bytearray (after the MemoryError is raised)."""
    data = pickle.dumps({"b": np.arange(3.0)}, protocol=5)
    at = data.index(b"\x96")  # BYTEARRAY8: an absurd length follows
    path = tmp_path / "x.pkl"
    path.write_bytes(data[:at + 1] + b"\x0e\x82\xae\xf8\xb9\x96" + data[at + 1:])
    message = ""
    try:
        read_pickle(path)
    except UserError as err:
        message = str(err)
    gc.collect()  # the exception, its frames and whatever they held are gone
    assert message.endswith("not a readable pickle (MemoryError: )")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("flags", [b"63", b"1"])
def test_a_dtype_state_numpy_would_trust_is_refused(tmp_path, flags):
    """numpy's dtype.__setstate__ trusts its state: a float64 claiming to hold Python objects
    (flags 63) or other flags would make arrays numpy then mishandles; only numpy's own state
    for a plain dtype is accepted."""
    data = pickle.dumps({"boxes": np.arange(8.0).reshape(2, 4)}, protocol=0)
    assert data.count(b"I-1\nI-1\nI0\ntp") == 1  # the dtype's state ends with its flags
    path = tmp_path / "x.pkl"
    path.write_bytes(data.replace(b"I-1\nI-1\nI0\ntp", b"I-1\nI-1\nI" + flags + b"\ntp"))
    with pytest.raises(UserError, match=r"refusing to load numpy.dtype\('f8'\) with the state"):
        read_pickle(path)
    assert not np.dtype("f8").hasobject and np.arange(3.0).copy().sum() == 3.0


def test_a_damaged_dtype_state_leaves_numpy_working(tmp_path):
    """Found by fuzzing: an EMPTY_DICT spliced into a dtype's state made numpy's setstate fail
    half-way, and later float64 work in the process raised 'get_clear_loop not set'."""
    sub = {"agent": {"v": [{"label_id": 0, "score": 0.5, "frames": np.arange(6, 11),
                            "boxes": np.tile([0.0, 0.0, 5.0, 5.0], (5, 1))}]}}
    data = pickle.dumps(sub, protocol=0)
    at = data.index(b"I-1\nI-1\nI0\ntp") + len(b"I-1\nI-1\nI0\n")
    path = tmp_path / "x.pkl"
    path.write_bytes(data[:at] + b"}" + data[at:])
    messages = []
    for _ in range(2):
        with pytest.raises(UserError) as caught:
            read_pickle(path)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "0x" not in messages[0]  # the same line each time
    assert np.tile(np.arange(4.0), (3, 1)).copy().sum() == 18.0


@pytest.mark.parametrize("name", NAMES)
def test_every_gadget_in_a_caffe2_weights_file_is_refused_and_runs_nothing(tmp_path, name):
    """Caffe2 model files are Python 2 pickles, read with encoding latin1: still data only."""
    from roadtrack.io.checkpoints import read_weights_file

    payload_dir = tmp_path / "payload"
    payload_dir.mkdir()
    gadget = gadgets(payload_dir)[name]
    for proto in (0, 2, 4):
        path = tmp_path / "SLOWFAST.pkl"
        outer = {"blobs": {"res_conv1_bn_s": np.ones(2, np.float32), "conv1_w": "GADGET_HERE"}}
        path.write_bytes(nested(gadget, outer, proto))
        with pytest.raises(UserError, match="refusing to load") as err:
            read_weights_file(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
        assert list(payload_dir.iterdir()) == [], (name, proto)
