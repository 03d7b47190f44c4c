"""Data-only messages between the grading kernel and the jailed student process.

A message is one frame: an 8-byte length and a pickle (protocol 5, so arrays travel as
raw bytes at C speed). What a pickle may hold is restricted on both ends:

* sending, ``reducer_override`` lets through only plain data: ``None``, booleans,
  numbers, strings, bytes, lists, tuples, dicts, sets, NumPy arrays, scalars and
  dtypes (CuPy arrays travel through the host), ``course_utils.Rng`` and NumPy random
  generators; anything else raises ``Unsendable``, which names it;
* receiving, ``find_class`` resolves only the handful of NumPy and course_utils
  constructors those types need (``SAFE``), so a hostile student process can send
  wrong values but never makes the kernel import or call anything else: unpickling
  untrusted data is safe exactly because nothing outside ``SAFE`` can be reached.

Functions are not data: ``encode`` asks its ``callables`` hook for a token (the kernel
sends exercise functions by name and its own functions as call-back handles) and
``decode`` asks its ``tokens`` hook to turn a token back into a function. Shared and
cyclic references survive a round trip (pickle's memo).

``Tracker`` remembers what decoded values looked like, so that the receiver can tell
which arguments a function changed in place, and ``update_in_place`` applies such a
change to the original objects on the other side.
"""
from __future__ import annotations

import io
import os
import pickle
import struct

import numpy

from course_utils.backend import Rng, is_device_array, to_device, to_host

MAX_FRAME = 512 * 1024 * 1024
SAFE = {
    ("autograder.wire", "_generator"), ("autograder.wire", "_rng"),
    ("builtins", "complex"),
    ("course_utils.backend", "Rng"), ("course_utils.backend", "to_device"),
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy._core.multiarray", "scalar"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__bit_generator_ctor"), ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random.bit_generator", "SeedSequence"), ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("numpy.random._pcg64", "PCG64"), ("numpy.random._pcg64", "PCG64DXSM"), ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._philox", "Philox"), ("numpy.random._sfc64", "SFC64"),
}
_PLAIN = {int, float, str, bool, type(None), list, tuple, dict, bytes, numpy.ndarray}
_DATA = (numpy.ndarray, numpy.generic, numpy.dtype, Rng, numpy.random.Generator, numpy.random.BitGenerator,
         numpy.random.SeedSequence, complex)


_SEED = numpy.random.SeedSequence(0)
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _generator(state: dict) -> numpy.random.Generator:
    """A NumPy generator in ``state``, built cheaply (NumPy's own unpickling seeds from the OS first)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise WireError(f"refused bit generator {name!r}")
    bit_generator = getattr(numpy.random, name)(_SEED)
    bit_generator.state = state
    return numpy.random.Generator(bit_generator)


def _rng(seed, state: dict) -> Rng:
    rng = Rng.__new__(Rng)
    rng.seed, rng._gen = seed, _generator(state)
    return rng


class Unsendable(TypeError):
    """A value that is not plain data (a class instance, a generator, a file ...)."""


class WireError(ValueError):
    """A malformed message: the other side broke the protocol."""


def _qualified(obj) -> tuple[str, str] | None:
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return (module, name) if module and name else None


class _Pickler(pickle.Pickler):
    def __init__(self, stream, callables):
        super().__init__(stream, protocol=5)
        self.callables = callables

    def persistent_id(self, obj):
        if type(obj) in _PLAIN or isinstance(obj, numpy.dtype) or id(obj) in _SAFE_IDS:
            return None
        if callable(obj) and not isinstance(obj, type) and _qualified(obj) not in SAFE:
            if self.callables is None:
                raise Unsendable(f"the function {getattr(obj, '__name__', obj)!r}")
            return self.callables(obj)
        return None

    def reducer_override(self, obj):
        if type(obj) is numpy.ndarray:
            return NotImplemented
        if is_device_array(obj):
            return to_device, (to_host(obj),)
        if type(obj) is Rng:
            return _rng, (obj.seed, obj._gen.bit_generator.state)
        if type(obj) is numpy.random.Generator:
            return _generator, (obj.bit_generator.state,)
        if isinstance(obj, numpy.ndarray) and type(obj) is not numpy.ndarray:
            return obj.view(numpy.ndarray).__reduce_ex__(5)
        if isinstance(obj, type) or isinstance(obj, _DATA) or _qualified(obj) in SAFE:
            return NotImplemented
        raise Unsendable(f"a {type(obj).__module__}.{type(obj).__qualname__} object")


def _safe_ids() -> set:
    import importlib
    found = set()
    for module, name in SAFE:
        try:
            found.add(id(getattr(importlib.import_module(module), name)))
        except (ImportError, AttributeError):
            pass
    return found


class _Unpickler(pickle.Unpickler):
    def __init__(self, stream, tokens):
        super().__init__(stream)
        self.tokens = tokens

    def find_class(self, module, name):
        if (module, name) not in SAFE:
            raise WireError(f"refused {module}.{name}")
        return super().find_class(module, name)

    def persistent_load(self, token):
        if self.tokens is None:
            raise WireError("a function token where none may be")
        return self.tokens(token)


_SAFE_IDS: set = set()


def encode(value, callables=None) -> bytes:
    """One frame holding ``value``; ``callables(f)`` returns a token (plain data) for a function."""
    if not _SAFE_IDS:
        _SAFE_IDS.update(_safe_ids())
    stream = io.BytesIO()
    stream.write(b"\0" * 8)
    try:
        _Pickler(stream, callables).dump(value)
    except Unsendable:
        raise
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as err:
        raise Unsendable(f"something that cannot be copied ({type(err).__name__}: {str(err)[:200]})") from None
    frame = stream.getbuffer()
    if len(frame) - 8 > MAX_FRAME:
        raise Unsendable(f"a value of {(len(frame) - 8) // 2**20} MB (the limit is {MAX_FRAME // 2**20} MB)")
    struct.pack_into("<Q", frame, 0, len(frame) - 8)
    return bytes(frame)


def decode(frame: bytes, tokens=None, tracker: "Tracker | None" = None):
    """The value of a frame body (without its length); ``tokens(t)`` turns a token into a function.

    With a ``tracker``, every container and array decoded is remembered as it was, so
    that ``tracker.changed(value)`` can tell later whether code changed it in place.
    """
    try:
        value = _Unpickler(io.BytesIO(frame), tokens).load()
    except WireError:
        raise
    except Exception as err:  # whatever a malformed pickle raises: it is the sender's fault
        raise WireError(f"malformed message ({type(err).__name__}: {str(err)[:200]})") from None
    if tracker is not None:
        tracker.remember(value)
    return value


class Tracker:
    """What decoded containers and arrays looked like on arrival (see ``decode``)."""

    def __init__(self):
        self.before = {}

    @staticmethod
    def _state(value):
        if type(value) is numpy.ndarray:
            return value.tobytes()
        if type(value) is dict:
            return [(k, id(x)) for k, x in value.items()]
        if isinstance(value, numpy.ndarray) or is_device_array(value):
            return to_host(value).tobytes()
        if isinstance(value, list):
            return [id(x) for x in value]
        if isinstance(value, dict):
            return [(k, id(x)) for k, x in value.items()]
        if isinstance(value, set):
            return set(value)
        if isinstance(value, Rng):
            return value._gen.bit_generator.state
        if isinstance(value, numpy.random.Generator):
            return value.bit_generator.state
        return None

    @staticmethod
    def _children(value):
        if isinstance(value, dict):
            return value.values()
        return value if isinstance(value, (list, tuple)) else ()

    def remember(self, value) -> None:
        if value is None or isinstance(value, (bool, int, float, str, bytes)) or id(value) in self.before:
            return
        self.before[id(value)] = (value, self._state(value))
        for child in self._children(value):
            self.remember(child)

    def changed(self, value, seen=None) -> bool:
        """Whether ``value`` or anything inside it differs from how it arrived."""
        seen = set() if seen is None else seen
        if id(value) in seen or value is None or isinstance(value, (bool, int, float, str, bytes, complex)):
            return False
        seen.add(id(value))
        if id(value) not in self.before:
            return True  # an object the code put in place of what arrived
        if self._state(value) != self.before[id(value)][1]:
            return True
        return any(self.changed(child, seen) for child in self._children(value))


def update_in_place(old, new) -> bool:
    """Make ``old`` equal to ``new`` without replacing it (a function's in-place changes,
    reported by the other process). False where that cannot be done (immutable values)."""
    if isinstance(old, numpy.ndarray) or is_device_array(old):
        if getattr(new, "shape", None) != old.shape:
            return False
        old[...] = new
        return True
    if isinstance(old, list) and isinstance(new, list):
        if len(old) == len(new):
            for i, (o, n) in enumerate(zip(old, new)):
                if not update_in_place(o, n):
                    old[i] = n
        else:
            old[:] = new
        return True
    if isinstance(old, dict) and isinstance(new, dict):
        for k in [k for k in old if k not in new]:
            del old[k]
        for k, n in new.items():
            if k not in old or not update_in_place(old[k], n):
                old[k] = n
        return True
    if isinstance(old, set) and isinstance(new, set):
        old.clear()
        old.update(new)
        return True
    if isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new):
        return all(update_in_place(o, n) or o is n for o, n in zip(old, new))
    if isinstance(old, Rng) and isinstance(new, Rng):
        old._gen.bit_generator.state = new._gen.bit_generator.state
        return True
    if isinstance(old, numpy.random.Generator) and isinstance(new, numpy.random.Generator):
        old.bit_generator.state = new.bit_generator.state
        return True
    return False


def send(fd: int, frame: bytes) -> None:
    view = memoryview(frame)
    while view:
        view = view[os.write(fd, view):]


def receive(fd: int) -> bytearray | None:
    """The next frame body, or None when the other side closed the pipe."""
    head = _read_exactly(fd, 8)
    if head is None:
        return None
    (length,) = struct.unpack("<Q", head)
    if length > MAX_FRAME:
        raise WireError(f"a message of {length} bytes (the limit is {MAX_FRAME})")
    body = _read_exactly(fd, length)
    if body is None:
        raise WireError("the pipe closed in the middle of a message")
    return body


def _read_exactly(fd: int, n: int) -> bytearray | None:
    buffer = bytearray(n)
    view, filled = memoryview(buffer), 0
    while filled < n:
        got = os.readv(fd, [view[filled:]])
        if not got:
            return None
        filled += got
    return buffer
