"""Pickles from others, read as data: an exact allow-list of globals, zips as eval.ai takes them.

A pickle can name any importable callable and call it (GLOBAL/STACK_GLOBAL/INST + REDUCE,
NEWOBJ, ...); every such name goes through :meth:`_DataUnpickler.find_class`, which admits only
the exact ``(module, name)`` pairs that pickles of numpy arrays, numpy scalars and plain
containers hold (protocols 0-5, numpy 1.x and 2.x spellings) and refuses everything else, so
reading a submission never runs code. Persistent ids are refused by the base class.
"""
from __future__ import annotations

import collections
import contextlib
import importlib
import io
import pickle
import zipfile
import zlib
from pathlib import Path

from ..errors import UserError

PICKLE_SUFFIXES = (".pkl", ".pickle")


def shown(name) -> str:
    """A name from someone else's file, safe on one line: as is when printable, else its repr."""
    return name if isinstance(name, str) and name.isprintable() else repr(name)


def _numpy_function(tail: str, name: str):
    """A function of numpy's core package: ``numpy._core`` (numpy 2) or ``numpy.core`` (1.x)."""
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{tail}"), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"this numpy has no {tail}.{name}")


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (or calls an allowed one oddly)."""


def _latin1(text, encoding="latin1"):
    """``_codecs.encode`` as protocols 0-2 use it (bytes as latin-1 text), and nothing more."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedGlobal(f"_codecs.encode of a {type(text).__name__} to {encoding!r}")
    return text.encode("latin1")


def _no_size(kind):
    """``bytes``/``bytearray`` from a string or bytes; never ``bytes(n)`` (n zero bytes)."""
    def build(*args):
        if args and not isinstance(args[0], (str, bytes, bytearray)):
            raise RefusedGlobal(f"{kind.__name__}() of a {type(args[0]).__name__}")
        return kind(*args)
    return build


def _numpy(name):
    return lambda: getattr(importlib.import_module("numpy"), name)


# (module, name) -> a function returning what the pickle gets. Protocols 0-2 spell builtins
# "__builtin__"; numpy 1.x pickles say numpy.core, numpy 2.x numpy._core.
_ALLOWED = {
    ("numpy", "ndarray"): _numpy("ndarray"),
    ("numpy", "dtype"): _numpy("dtype"),
    ("_codecs", "encode"): lambda: _latin1,
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
}
for _core in ("numpy._core", "numpy.core"):
    for _tail, _name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                         ("numeric", "_frombuffer")):
        _ALLOWED[(f"{_core}.{_tail}", _name)] = (lambda t=_tail, n=_name: _numpy_function(t, n))
for _module in ("builtins", "__builtin__"):
    for _kind in (dict, list, tuple, set, frozenset, complex):
        _ALLOWED[(_module, _kind.__name__)] = (lambda k=_kind: k)
    for _kind in (bytes, bytearray):
        _ALLOWED[(_module, _kind.__name__)] = (lambda k=_kind: _no_size(k))

ALLOWED_GLOBALS = frozenset(_ALLOWED)


class _DataUnpickler(pickle.Unpickler):
    """Numpy arrays and scalars, plain containers: nothing that can run code."""

    def find_class(self, module, name):
        make = _ALLOWED.get((module, name))
        if make is None:
            raise RefusedGlobal(shown(f"{module}.{name}"[:200]))
        return make()


def loads(data: bytes) -> object:
    """Unpickle bytes with the allow-list (raises :class:`RefusedGlobal` for anything else)."""
    # CPython's unpickler prints "SystemError: deallocated bytearray object has exported
    # buffers" on stderr when a damaged BYTEARRAY8 length cannot be allocated; the MemoryError
    # it then raises is what the caller reports, on one line
    with contextlib.redirect_stderr(io.StringIO()):
        unpickler = _DataUnpickler(io.BytesIO(data))
        try:
            return unpickler.load()
        finally:
            del unpickler  # freed here, with its half-built stack, while stderr is redirected


def _zip_member(data: bytes, path: Path) -> tuple[bytes, list[str]]:
    """The one pickle inside a zip, and warnings naming the other entries."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            files = [i for i in archive.infolist() if not i.is_dir()]
            # macOS adds __MACOSX/._<name> resource forks beside the real files
            real = [i for i in files if not i.filename.startswith("__MACOSX/")
                    and not Path(i.filename).name.startswith("._")]
            pickles = [i for i in real if i.filename.lower().endswith(PICKLE_SUFFIXES)]
            if len(pickles) > 1:
                raise UserError(f"zip holds {len(pickles)} pickles "
                                f"({', '.join(shown(i.filename) for i in pickles)}): keep one", path)
            if not pickles and len(real) == 1:  # one file without the extension: that one
                pickles = real
            if not pickles:
                names = ", ".join(shown(i.filename) for i in files[:5]) or "nothing"
                raise UserError(f"zip holds no .pkl file (found {names})", path)
            member = pickles[0]
            others = [shown(i.filename) for i in files if i is not member]
            warnings = []
            if others:
                listed = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
                warnings.append(f"{path}: zip also holds {len(others)} other entries, ignored: "
                                f"{listed}")
            return archive.read(member), warnings
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError,
            RuntimeError, EOFError, OSError, ValueError) as err:
        # a damaged, encrypted or exotic archive
        raise UserError(f"unreadable zip ({type(err).__name__}: {shown(str(err))})", path) \
            from None


def read_pickle(path: str | Path) -> tuple[object, list[str]]:
    """Read a pickle, or a zip holding one (as uploaded to eval.ai): (data, warnings).

    Any failure is one :class:`UserError` naming the file; a name outside the allow-list is
    refused before anything is called.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read: {err.strerror or err}", path) from None
    warnings = []
    if data[:2] == b"PK" and zipfile.is_zipfile(io.BytesIO(data)):
        data, warnings = _zip_member(data, path)
    try:
        return loads(data), warnings
    except RefusedGlobal as err:
        raise UserError(f"refusing to load {err}: a submission holds data (numpy arrays, "
                        "numbers, lists, dicts), never code", path) from None
    except RecursionError:
        raise UserError("not a readable pickle (nested too deeply)", path) from None
    except Exception as err:  # noqa: BLE001 - anything raised while decoding untrusted bytes
        message = shown(str(err)[:200])
        raise UserError(f"not a readable pickle ({type(err).__name__}: {message})", path) \
            from None
