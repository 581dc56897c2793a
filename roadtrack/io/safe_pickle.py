"""Pickles from others, read as data: an exact allow-list of globals, zips as eval.ai takes them.

A pickle can name any importable callable and call it (GLOBAL/STACK_GLOBAL/INST + REDUCE,
NEWOBJ, ...); every such name goes through :meth:`_DataUnpickler.find_class`, which admits only
the exact ``(module, name)`` pairs that pickles of numpy arrays, numpy scalars and plain
containers hold (protocols 0-5, numpy 1.x and 2.x spellings) and refuses everything else, so
reading a submission never runs code. Persistent ids are refused by the base class.

numpy's names get stand-ins: numpy's ``dtype.__setstate__`` trusts the state a pickle gives
it (a float64 that claims to hold Python objects, a half-set dtype that breaks numpy for the
rest of the process), so dtypes are made from a plain spec and only with numpy's own state for
it, and arrays of protocols 0-4 are built from such dtypes once their state is read.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import importlib
import io
import pickle
import re
import reprlib
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError

PICKLE_SUFFIXES = (".pkl", ".pickle")


def shown(name) -> str:
    """A name from someone else's file, safe on one line: as is when printable, else its repr."""
    return name if isinstance(name, str) and name.isprintable() else repr(name)


@functools.cache
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


class _DtypeSpec:
    """Stands in for the dtype a pickle builds (``numpy.dtype(spec, align, copy)`` then BUILD
    with a state). numpy's own ``dtype.__setstate__`` trusts its state (a float64 that claims
    to hold objects, a half-set dtype that breaks numpy for the whole process), so a real dtype
    is made only from a plain spec whose state is the one numpy itself writes for it."""

    __slots__ = ("_real", "spec", "state")

    def __init__(self, spec, align=False, copy=False):
        if not isinstance(spec, str) or len(spec) > 32:
            raise RefusedGlobal(f"numpy.dtype of a {type(spec).__name__}")
        self.spec, self.state, self._real = spec, None, None

    def __setstate__(self, state):
        self.state, self._real = state, None

    def real(self):
        if self._real is None:
            try:
                dtype = np.dtype(self.spec)
            except (TypeError, ValueError):
                raise RefusedGlobal(f"numpy.dtype({self.spec!r})") from None
            if self.state is not None:
                try:
                    if self.state[1] in ("<", ">"):
                        dtype = dtype.newbyteorder(self.state[1])
                    same = type(self.state) is tuple and self.state == dtype.__reduce__()[2]
                except Exception:  # noqa: BLE001 - any odd state is refused below
                    same = False
                if not same:
                    raise RefusedGlobal(f"numpy.dtype({self.spec!r}) with the state "
                                        f"{shown(reprlib.repr(self.state))}")
            self._real = dtype
        return self._real


class _ArrayBuilder:
    """Stands in for an array of protocols 0-4 (``_reconstruct`` then BUILD with its state),
    made with a checked dtype; :func:`_resolve` puts the array in its place."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if type(state) is not tuple or len(state) not in (4, 5):
            raise RefusedGlobal("a numpy array with an odd state")
        *head, dtype, fortran, raw = state  # ([version,] shape, dtype, is_fortran, data)
        if type(dtype) is not _DtypeSpec:
            raise RefusedGlobal(f"a numpy array of dtype {type(dtype).__name__}")
        dtype = dtype._real or dtype.real()
        if dtype.hasobject:
            raw = _resolve(raw, {})  # the items of an object array
        array = _NP_RECONSTRUCT(np.ndarray, (0,), b"b")
        array.__setstate__((*head, dtype, fortran, raw))
        self.array = array


_NP_RECONSTRUCT = _numpy_function("multiarray", "_reconstruct")
_NDARRAY = object()  # what the pickle gets for numpy.ndarray: only _reconstruct's first argument


def _reconstruct(subtype, shape, dtype):
    if subtype is not _NDARRAY:
        raise RefusedGlobal("_reconstruct of anything but numpy.ndarray")
    return _ArrayBuilder()


def _real(stand_in):
    """The real dtype or array of a stand-in."""
    if type(stand_in) is _DtypeSpec:
        return stand_in.real()
    if type(stand_in) is not _ArrayBuilder:
        raise RefusedGlobal(f"a numpy dtype or array made of a {type(stand_in).__name__}")
    if stand_in.array is None:
        raise RefusedGlobal("a numpy array without its state")
    return stand_in.array


def _scalar(dtype, value=None):
    dtype = _real(dtype)
    if not isinstance(dtype, np.dtype):
        raise RefusedGlobal("a numpy scalar of an array")
    if dtype.hasobject:
        return _resolve(value, {})
    return _numpy_function("multiarray", "scalar")(dtype, value)


def _frombuffer(buffer, dtype, shape, order):
    dtype = _real(dtype)
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise RefusedGlobal("an array from a buffer but of a plain dtype")
    return _numpy_function("numeric", "_frombuffer")(buffer, dtype, shape, order)


_STAND_INS = frozenset({_ArrayBuilder, _DtypeSpec})
_CONTAINERS = frozenset({dict, collections.OrderedDict, list, tuple, set, frozenset})


def _resolve(value, done: dict):
    """``value`` with every stand-in replaced by its real dtype or array: in place in lists and
    dicts, tuples rebuilt. ``done``: id -> (container, result), for shared and cyclic ones."""
    kind = type(value)
    if kind in _STAND_INS:
        return _real(value)
    if kind not in _CONTAINERS:
        return value
    if id(value) in done:
        return done[id(value)][1]
    done[id(value)] = (value, value)
    if kind is list:
        for i, item in enumerate(value):
            if type(item) in _STAND_INS:
                value[i] = _real(item)
            elif type(item) in _CONTAINERS:
                value[i] = _resolve(item, done)
    elif kind is dict or kind is collections.OrderedDict:
        for key, item in value.items():
            if type(key) in _STAND_INS:
                raise RefusedGlobal("a numpy array or dtype as a dict key")
            if type(item) in _STAND_INS:
                value[key] = _real(item)
            elif type(item) in _CONTAINERS:
                value[key] = _resolve(item, done)
    elif kind is tuple:
        items = tuple(_resolve(item, done) for item in value)
        if any(a is not b for a, b in zip(items, value, strict=True)):
            done[id(value)] = (value, items)
            return items
    elif any(type(item) in _STAND_INS for item in value):
        raise RefusedGlobal("a numpy array or dtype in a set")
    return value


def _returning(value) -> Callable[[], Any]:
    """A function returning ``value`` (bound now, not when called)."""
    return lambda: value


# (module, name) -> a function returning what the pickle gets. Protocols 0-2 spell builtins
# "__builtin__"; numpy 1.x pickles say numpy.core, numpy 2.x numpy._core. numpy's names get
# stand-ins that check what they build.
_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    ("numpy", "ndarray"): lambda: _NDARRAY,
    ("numpy", "dtype"): lambda: _DtypeSpec,
    ("_codecs", "encode"): lambda: _latin1,
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
}
for _core in ("numpy._core", "numpy.core"):
    for _tail, _name, _stand_in in (("multiarray", "_reconstruct", _reconstruct),
                                    ("multiarray", "scalar", _scalar),
                                    ("numeric", "_frombuffer", _frombuffer)):
        _ALLOWED[(f"{_core}.{_tail}", _name)] = _returning(_stand_in)
for _module in ("builtins", "__builtin__"):
    for _kind in (dict, list, tuple, set, frozenset, complex):
        _ALLOWED[(_module, _kind.__name__)] = _returning(_kind)
    for _buffer in (bytes, bytearray):
        _ALLOWED[(_module, _buffer.__name__)] = functools.partial(_no_size, _buffer)

ALLOWED_GLOBALS = frozenset(_ALLOWED)


class _DataUnpickler(pickle.Unpickler):
    """Numpy arrays and scalars, plain containers: nothing that can run code."""

    def find_class(self, module, name):
        make = _ALLOWED.get((module, name))
        if make is None:
            raise RefusedGlobal(shown(f"{module}.{name}"[:200]))
        return make()


def loads(data: bytes, encoding: str = "ASCII") -> object:
    """Unpickle bytes with the allow-list (raises :class:`RefusedGlobal` for anything else).
    ``encoding="latin1"`` reads Python 2 pickles holding numpy arrays (Caffe2 model files)."""
    # CPython's unpickler prints "SystemError: deallocated bytearray object has exported
    # buffers" on stderr when a damaged BYTEARRAY8 length cannot be allocated; the MemoryError
    # it then raises is what the caller reports, on one line
    with contextlib.redirect_stderr(io.StringIO()):
        unpickler = _DataUnpickler(io.BytesIO(data), encoding=encoding)
        try:
            return _resolve(unpickler.load(), {})
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
                names = ", ".join(shown(i.filename) for i in pickles)
                raise UserError(f"zip holds {len(pickles)} pickles ({names}): keep one", path)
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
    warnings: list[str] = []
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
        message = shown(re.sub(r" at 0x[0-9a-fA-F]+", "", str(err))[:200])  # no addresses
        raise UserError(f"not a readable pickle ({type(err).__name__}: {message})", path) \
            from None
