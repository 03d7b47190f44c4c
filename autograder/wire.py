"""Data-only messages between the grading kernel and the jailed student process.

No pickle crosses the boundary: pickle is a program for the receiver to run, and an
allow-list of the names it may look up still lets it call them and ``BUILD`` state onto
what they return. A message here is data that the receiver reads and rebuilds itself.

A frame is an 8-byte length, then a 4-byte header length, a JSON header and a region
of raw bytes. The header is a tree of JSON values: a JSON list is a list, a string,
number, boolean or null is itself, and a JSON object is always a tag ``{"$": kind, ...}``:

==========  =============================================================================
``d``       dict: ``k`` keys and ``v`` values (keys must be hashable once decoded)
``t``       tuple, ``set`` set, ``c`` complex (``re``, ``im``)
``a``       NumPy array: ``dt`` (a dtype from ``DTYPES``), ``sh`` (its shape), ``F``
            (Fortran order), ``at``/``n`` (where its bytes lie in the region), ``dev``
            (a CuPy array on the sender's side: rebuilt on the receiver's backend)
``s``       NumPy scalar (``dt``, ``at``, ``n``); ``b`` bytes (``at``, ``n``)
``dt``      a dtype (``v``, its string); ``st`` a NumPy scalar type (``v``, its name)
``rng``     ``course_utils.Rng`` (``seed``, ``state``); ``gen`` a NumPy Generator (``state``)
``ref``     the ``i``-th list, dict, tuple, set, array or generator of this frame again
            (shared and cyclic references survive, as the sender had them)
``f``       a function: ``tok`` is a token, turned into a function by the receiver's
            ``tokens`` hook (the kernel knows only its exercise stand-ins and the call-back
            handles it issued; the jail only its student's functions and stubs)
==========  =============================================================================

Why nothing else can cross: the decoder builds only the types in that table, from
Python's own JSON parser (which builds only dicts, lists, strings, numbers, booleans
and None). No class is looked up by name and no constructor of the sender's choice
runs; an array is ``numpy.frombuffer`` of exactly ``prod(shape) * itemsize`` bytes
that the frame holds, copied out, so a small frame cannot claim a large array; a
generator's state goes through NumPy's own validation of a PCG64, MT19937, Philox or
SFC64 state. A frame is at most ``MAX_FRAME`` bytes, its header ``MAX_HEADER``, and the
value it describes at most ``MAX_NODES`` nodes counted with every reference expanded,
so a reply cannot make the kernel build (or walk) more than it sent.

``Tracker`` remembers what decoded values looked like, so that the receiver can tell
which arguments a function changed in place, and ``update_in_place`` applies such a
change to the original objects on the other side.
"""
from __future__ import annotations

# The builtins this module uses, bound now: in the jail the student's code may replace them in
# ``builtins`` (and then only its own process would suffer, but its verdict should not change).
from builtins import callable, dict, id, isinstance, len, list, map, set, str, tuple, type  # noqa: A004

import json
import math
import os
import struct

import numpy

from course_utils.backend import Rng, is_device_array, to_device, to_host

MAX_FRAME = 256 * 2**20
MAX_HEADER = 16 * 2**20
MAX_NODES = 2_000_000
MAX_DEPTH = 200
# Booleans, integers, floats and complex numbers (any size), fixed-width Unicode strings.
DTYPES = {numpy.dtype(name).str for name in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8",
                                              "f2", "f4", "f8", "c8", "c16")}
SCALAR_TYPES = {numpy.dtype(name).type.__name__: numpy.dtype(name).type for name in
                ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16")}
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_SEED = numpy.random.SeedSequence(0)
# The header's JSON, through the C encoder and scanner only: json.dumps and json.loads call
# isinstance through builtins, which a student's code may have replaced in the jail.
_JSON_OUT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_JSON_IN = json.JSONDecoder()
_ALIGN = 16
_PADDING = [b"\0" * n for n in range(_ALIGN)]
_CHUNK = 1 << 20
_STR, _INT = {str}, {int}
_ATOMS = {bool, int, float, str, bytes, complex}   # values that cannot change in place
_ATOMIC = (bool, int, float, str, bytes, complex)
_RECEIVED: dict = {}   # dtype names already checked -> their dtype (at most 256)


class Unsendable(TypeError):
    """A value that is not plain data (a class instance, a generator, a file ...)."""


class WireError(ValueError):
    """A malformed message: the other side broke the protocol."""


def _dtype_ok(dtype: numpy.dtype) -> bool:
    return dtype.str in DTYPES or (dtype.kind == "U" and dtype.byteorder in "<=|" and dtype.itemsize > 0)


# The allowed dtypes of DTYPES, each with its name: looked up for every array that crosses.
_SENDABLE = {numpy.dtype(name): name for name in DTYPES}


# ---------------------------------------------------------------------------------
# encoding


class _Encoder:
    """Builds a frame's JSON tree and byte region. The common values (plain scalars, lists, dicts,
    tuples, C-ordered arrays) take the short paths at the top of ``value``: a test's call crosses
    this thousands of times per notebook."""

    def __init__(self, callables):
        self.callables = callables
        self.parts: list = []
        self.size = 0
        self.memo: dict[int, int] = {}     # id -> index of a shared object already written
        self.unfinished: set = set()       # ids of tuples and sets being written (no cycles through them)
        self.count = 0
        self.keep: list = []               # objects whose ids are in memo stay alive

    def _buffer(self, view) -> tuple[int, int]:
        at, n = self.size, view.nbytes
        self.parts.append(view)
        pad = -n % _ALIGN
        if pad:
            self.parts.append(_PADDING[pad])
        self.size = at + n + pad
        return at, n

    def _register(self, obj) -> None:
        self.memo[id(obj)] = self.count
        self.keep.append(obj)
        self.count += 1

    def _array(self, array, device=False) -> dict:
        name = _SENDABLE.get(array.dtype)
        if name is None:
            if not _dtype_ok(array.dtype):
                if array.dtype.byteorder == ">" and array.dtype.newbyteorder("<").str in DTYPES:
                    array = array.astype(array.dtype.newbyteorder("<"))
                else:
                    raise Unsendable(f"an array of dtype {array.dtype} (only numbers, booleans and strings)")
            name = array.dtype.str
        fortran = False
        if array.flags.c_contiguous and array.size:
            view = memoryview(array).cast("B")
        else:
            fortran = array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous
            data = numpy.asfortranarray(array) if fortran else numpy.ascontiguousarray(array)
            view = memoryview(data.reshape(-1, order="F" if fortran else "C").view(numpy.uint8))
        at, n = self._buffer(view)
        tag = {"$": "a", "dt": name, "sh": list(array.shape), "at": at, "n": n}
        if fortran:
            tag["F"] = True
        if device:
            tag["dev"] = True
        return tag

    def value(self, obj):
        kind = type(obj)
        if kind is str or kind is int or kind is bool or obj is None:
            return obj
        if kind is float:
            return obj if math.isfinite(obj) else {"$": "x", "v": repr(obj)}
        index = self.memo.get(id(obj))
        if index is not None:
            return {"$": "ref", "i": index}
        if kind is list:
            self._register(obj)
            value = self.value
            return [value(item) for item in obj]
        if kind is dict:
            self._register(obj)
            value = self.value
            keys = list(obj)
            if not set(map(type, keys)) <= _STR:   # string keys are themselves
                keys = [value(k) for k in keys]
            return {"$": "d", "k": keys, "v": [value(item) for item in obj.values()]}
        if kind is numpy.ndarray:
            self._register(obj)
            return self._array(obj)
        if kind is tuple or kind is set or kind is frozenset:
            if id(obj) in self.unfinished:
                raise Unsendable("a tuple or set that contains itself")
            self.unfinished.add(id(obj))
            value = self.value
            items = [value(item) for item in obj]
            self.unfinished.discard(id(obj))
            self._register(obj)
            return {"$": "t" if kind is tuple else "set", "v": items}
        return self._other(obj, kind)

    def _other(self, obj, kind):
        """The rarer values: array subclasses, device arrays, NumPy scalars, bytes, dtypes, generators, functions."""
        if isinstance(obj, numpy.ndarray):
            self._register(obj)
            return self._array(obj.view(numpy.ndarray))
        if is_device_array(obj):
            self._register(obj)
            return self._array(to_host(obj), device=True)
        if isinstance(obj, numpy.generic):
            if not _dtype_ok(obj.dtype):
                raise Unsendable(f"a NumPy scalar of dtype {obj.dtype}")
            at, n = self._buffer(memoryview(numpy.asarray(obj).reshape(1).view(numpy.uint8)))
            return {"$": "s", "dt": obj.dtype.str, "at": at, "n": n}
        if kind is bytes or kind is bytearray:
            at, n = self._buffer(memoryview(bytes(obj)))
            return {"$": "b", "at": at, "n": n}
        if kind is complex:
            return {"$": "c", "re": self.value(obj.real), "im": self.value(obj.imag)}
        if isinstance(obj, numpy.dtype):
            if not _dtype_ok(obj):
                raise Unsendable(f"the dtype {obj}")
            return {"$": "dt", "v": obj.str}
        if isinstance(obj, type) and obj in SCALAR_TYPES.values():
            return {"$": "st", "v": obj.__name__}
        if kind is Rng:
            self._register(obj)
            return {"$": "rng", "seed": self.value(obj.seed), "state": self.value(obj._gen.bit_generator.state)}
        if kind is numpy.random.Generator:
            self._register(obj)
            return {"$": "gen", "state": self.value(obj.bit_generator.state)}
        if isinstance(obj, (bool, int, float, str)):   # a subclass (an enum, a numpy-less bool): its plain value
            return self.value(type(obj).__mro__[-2](obj))
        if callable(obj) and not isinstance(obj, type):
            if self.callables is None:
                raise Unsendable(f"the function {getattr(obj, '__name__', obj)!r}")
            return {"$": "f", "tok": self.value(self.callables(obj))}
        raise Unsendable(f"a {kind.__module__}.{kind.__qualname__} object")


def encode(value, callables=None) -> bytes:
    """One frame holding ``value``; ``callables(f)`` returns a token (plain data) for a function."""
    encoder = _Encoder(callables)
    try:
        tree = encoder.value(value)
    except RecursionError:
        raise Unsendable("a value nested too deeply") from None
    header = "".join(_JSON_OUT.iterencode(tree, _one_shot=True)).encode()
    body = 4 + len(header) + encoder.size
    if len(header) > MAX_HEADER or body > MAX_FRAME:
        raise Unsendable(f"a value of {body // 2**20} MB (the limit is {MAX_FRAME // 2**20} MB)")
    return b"".join([struct.pack("<QI", body, len(header)), header, *encoder.parts])


# ---------------------------------------------------------------------------------
# decoding


class _Decoder:
    """Rebuilds a value from a frame's JSON tree and byte region, checking every node as it goes
    (plain scalars, lists, dicts and arrays first: the common case)."""

    def __init__(self, region: memoryview, tokens):
        self.region, self.tokens = region, tokens
        self.size = len(region)
        self.shared: list = []      # the i-th registered object
        self.weights: list = []     # its size in nodes, references expanded
        self.nodes = 0

    def _count(self, n: int) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise WireError(f"a value of more than {MAX_NODES} parts")

    def _span(self, tag) -> tuple[int, int]:
        at, n = tag.get("at"), tag.get("n")
        if type(at) is not int or type(n) is not int or at < 0 or n < 0 or at + n > self.size:
            raise WireError("a buffer outside the frame")
        return at, n

    def _bytes(self, tag) -> memoryview:
        at, n = self._span(tag)
        return self.region[at:at + n]

    @staticmethod
    def _dtype(name) -> numpy.dtype:
        dtype = _RECEIVED.get(name) if type(name) is str else None
        if dtype is not None:
            return dtype
        if type(name) is not str or len(name) > 16:
            raise WireError(f"refused dtype {name!r}")
        try:
            dtype = numpy.dtype(name)
        except TypeError:
            raise WireError(f"refused dtype {name!r}") from None
        if not _dtype_ok(dtype) or dtype.str != name:
            raise WireError(f"refused dtype {name!r}")
        if len(_RECEIVED) < 256:
            _RECEIVED[name] = dtype
        return dtype

    def _array(self, tag):
        dtype, shape = self._dtype(tag.get("dt")), tag.get("sh")
        if type(shape) is not list or len(shape) > 32 or not set(map(type, shape)) <= _INT \
                or (shape and not (0 <= min(shape) and max(shape) < 2**40)):
            raise WireError(f"refused shape {shape!r}")
        at, n = self._span(tag)
        if math.prod(shape) * dtype.itemsize != n:
            raise WireError(f"an array of shape {shape} and dtype {dtype} in {n} bytes")
        order = "F" if tag.get("F") is True else "C"
        array = numpy.frombuffer(self.region, dtype=dtype, count=n // dtype.itemsize, offset=at)
        array = array.reshape(shape, order=order).copy(order=order)
        return to_device(array) if tag.get("dev") is True else array

    def _register(self, obj, weight: int = 1) -> int:
        self.shared.append(obj)
        self.weights.append(weight)
        return len(self.shared) - 1

    def value(self, tree, depth: int = 0):
        if depth > MAX_DEPTH:
            raise WireError(f"a value nested more than {MAX_DEPTH} deep")
        kind = type(tree)
        if kind is str or kind is int or kind is float or kind is bool or tree is None:
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise WireError(f"a value of more than {MAX_NODES} parts")
            return tree
        if kind is list:
            out: list = []
            index = self._register(out)
            start = self.nodes
            self._count(1)
            value, depth = self.value, depth + 1
            out.extend([value(item, depth) for item in tree])
            self.weights[index] = self.nodes - start
            return out
        if kind is not dict:
            raise WireError(f"an unknown value {kind.__name__}")
        tag = tree.get("$")
        if tag == "a":
            self._count(1)
            array = self._array(tree)
            self._register(array)
            return array
        if tag == "ref":
            i = tree.get("i")
            if type(i) is not int or not 0 <= i < len(self.shared):
                raise WireError(f"a reference to nothing ({i!r})")
            self._count(self.weights[i])
            return self.shared[i]
        if tag == "d":
            keys, values = tree.get("k"), tree.get("v")
            if type(keys) is not list or type(values) is not list or len(keys) != len(values):
                raise WireError("a malformed dict")
            out = {}
            index = self._register(out)
            start = self.nodes
            self._count(1)
            value, depth = self.value, depth + 1
            if set(map(type, keys)) <= _STR:   # string keys are themselves
                self._count(len(keys))
            else:
                keys = [value(key, depth) for key in keys]       # all keys, then all values: as encoded
            try:
                for key, item in zip(keys, values):
                    out[key] = value(item, depth)
            except TypeError:
                raise WireError(f"an unhashable dict key of type {type(key).__name__}") from None
            self.weights[index] = self.nodes - start
            return out
        if tag in ("t", "set"):
            items = tree.get("v")
            if type(items) is not list:
                raise WireError("a malformed tuple or set")
            start = self.nodes
            self._count(1)
            value, depth = self.value, depth + 1
            decoded = [value(item, depth) for item in items]
            try:
                out = tuple(decoded) if tag == "t" else set(decoded)
            except TypeError:
                raise WireError("an unhashable member of a set") from None
            self._register(out, self.nodes - start)
            return out
        return self._other(tag, tree, depth)

    def _other(self, tag, tree, depth: int):
        """The rarer tags: NumPy scalars, bytes, special floats, complex numbers, dtypes, generators, functions."""
        self._count(1)
        if tag == "s":
            dtype = self._dtype(tree.get("dt"))
            data = self._bytes(tree)
            if len(data) != dtype.itemsize:
                raise WireError("a scalar of the wrong size")
            return numpy.frombuffer(data, dtype=dtype)[0].copy()
        if tag == "b":
            return bytes(self._bytes(tree))
        if tag == "x":
            if tree.get("v") not in ("nan", "inf", "-inf"):
                raise WireError("a malformed float")
            return float(tree["v"])
        if tag == "c":
            real, imag = self.value(tree.get("re"), depth + 1), self.value(tree.get("im"), depth + 1)
            if type(real) not in (int, float) or type(imag) not in (int, float):
                raise WireError("a malformed complex number")
            return complex(real, imag)
        if tag == "dt":
            return self._dtype(tree.get("v"))
        if tag == "st":
            if tree.get("v") not in SCALAR_TYPES:
                raise WireError(f"refused scalar type {tree.get('v')!r}")
            return SCALAR_TYPES[tree["v"]]
        if tag in ("rng", "gen"):
            index = self._register(None)
            state = self.value(tree.get("state"), depth + 1)
            generator = _generator(state)
            if tag == "gen":
                self.shared[index] = generator
                return generator
            seed = self.value(tree.get("seed"), depth + 1)
            if seed is not None and type(seed) is not int:
                raise WireError("a malformed Rng seed")
            rng = Rng.__new__(Rng)
            rng.seed, rng._gen = seed, generator
            self.shared[index] = rng
            return rng
        if tag == "f":
            if self.tokens is None:
                raise WireError("a function token where none may be")
            token = self.value(tree.get("tok"), depth + 1)
            try:
                return self.tokens(token)
            except (TypeError, KeyError):
                raise WireError(f"a malformed function token {str(token)[:80]!r}") from None
        raise WireError(f"an unknown tag {str(tag)[:40]!r}")


def _generator(state) -> numpy.random.Generator:
    """A NumPy generator in ``state`` (validated by NumPy), built without seeding from the OS."""
    name = state.get("bit_generator") if type(state) is dict else None
    if name not in _BIT_GENERATORS:
        raise WireError(f"refused bit generator {str(name)[:40]!r}")
    bit_generator = getattr(numpy.random, name)(_SEED)
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise WireError(f"a malformed generator state ({type(err).__name__})") from None
    return numpy.random.Generator(bit_generator)


def decode(frame, tokens=None, tracker: "Tracker | None" = None):
    """The value of a frame body (without its length); ``tokens(t)`` turns a token into a function.

    With a ``tracker``, every container and array decoded is remembered as it was, so
    that ``tracker.changed(value)`` can tell later whether code changed it in place.
    """
    view = memoryview(frame)
    if len(view) < 4:
        raise WireError("a frame without a header")
    (length,) = struct.unpack_from("<I", view)
    if length > MAX_HEADER or 4 + length > len(view):
        raise WireError("a header longer than its frame")
    try:
        text = bytes(view[4:4 + length]).decode("utf-8")
        tree, end = _JSON_IN.raw_decode(text)
    except (ValueError, RecursionError) as err:
        raise WireError(f"a malformed header ({type(err).__name__})") from None
    if text[end:].strip():
        raise WireError("a header with more than one value")
    try:
        value = _Decoder(view[4 + length:], tokens).value(tree)
    except RecursionError:
        raise WireError("a value nested too deeply") from None
    if tracker is not None:
        tracker.remember(value)
    return value


# ---------------------------------------------------------------------------------
# in-place changes


class Tracker:
    """What decoded containers and arrays looked like on arrival (see ``decode``)."""

    def __init__(self):
        self.before = {}

    @staticmethod
    def _state(value):
        kind = type(value)
        if kind is numpy.ndarray:   # x.shape = ... changes it too
            return value.shape, value.dtype, value.strides, value.tobytes()
        if kind is list:
            return list(map(id, value))
        if kind is dict:
            return list(zip(value, map(id, value.values())))
        if kind is tuple:
            return None
        if isinstance(value, numpy.ndarray) or is_device_array(value):
            return value.shape, value.dtype, value.strides, to_host(value).tobytes()
        if isinstance(value, set):
            return set(value)
        if isinstance(value, Rng):
            return value._gen.bit_generator.state
        if isinstance(value, numpy.random.Generator):
            return value.bit_generator.state
        return None

    @staticmethod
    def _children(value):
        kind = type(value)
        if kind is dict or (kind is not list and kind is not tuple and isinstance(value, dict)):
            return value.values()
        return value if kind is list or kind is tuple or isinstance(value, (list, tuple)) else ()

    def remember(self, value) -> None:
        before, state, children, stack = self.before, self._state, self._children, [value]
        while stack:
            value = stack.pop()
            if type(value) in _ATOMS or value is None or isinstance(value, _ATOMIC) or id(value) in before:
                continue
            before[id(value)] = (value, state(value))
            stack.extend(children(value))

    def changed(self, value) -> bool:
        """Whether ``value`` or anything inside it differs from how it arrived."""
        before, state, children, stack, seen = self.before, self._state, self._children, [value], set()
        while stack:
            value = stack.pop()
            if type(value) in _ATOMS or value is None or isinstance(value, _ATOMIC) or id(value) in seen:
                continue
            seen.add(id(value))
            arrived = before.get(id(value))
            if arrived is None or arrived[0] is not value:
                return True  # an object the code put in place of what arrived
            if state(value) != arrived[1]:
                return True
            stack.extend(children(value))
        return False


def is_random_state(value) -> bool:
    """A random generator: calling a function with one is meant to advance it."""
    return isinstance(value, (Rng, numpy.random.Generator))


def update_in_place(old, new, seen: set | None = None) -> bool:
    """Make ``old`` equal to ``new`` without replacing it (a function's in-place changes,
    reported by the other process). False where that cannot be done (immutable values)."""
    seen = set() if seen is None else seen
    if id(new) in seen:
        return True
    seen.add(id(new))
    if isinstance(old, numpy.ndarray) or is_device_array(old):
        if getattr(new, "shape", None) != old.shape:
            try:
                old.shape = new.shape   # the code reshaped it in place (x.shape = ...)
            except (AttributeError, ValueError, TypeError):
                return False
        old[...] = new
        return True
    if isinstance(old, list) and isinstance(new, list):
        if len(old) == len(new):
            for i, (o, n) in enumerate(zip(old, new)):
                if not update_in_place(o, n, seen):
                    old[i] = n
        else:
            old[:] = new
        return True
    if isinstance(old, dict) and isinstance(new, dict):
        for k in [k for k in old if k not in new]:
            del old[k]
        for k, n in new.items():
            if k not in old or not update_in_place(old[k], n, seen):
                old[k] = n
        return True
    if isinstance(old, set) and isinstance(new, set):
        old.clear()
        old.update(new)
        return True
    if isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new):
        return all(update_in_place(o, n, seen) or o is n for o, n in zip(old, new))
    if isinstance(old, Rng) and isinstance(new, Rng):
        old._gen.bit_generator.state = new._gen.bit_generator.state
        return True
    if isinstance(old, numpy.random.Generator) and isinstance(new, numpy.random.Generator):
        old.bit_generator.state = new.bit_generator.state
        return True
    return False


# ---------------------------------------------------------------------------------
# the pipe


def send(fd: int, frame: bytes) -> None:
    view = memoryview(frame)
    while view:
        view = view[os.write(fd, view):]


def receive(fd: int, limit: int = MAX_FRAME) -> bytearray | None:
    """The next frame body, or None when the other side closed the pipe. Memory grows with
    what arrives, not with the length the sender announces."""
    head = _read_exactly(fd, 8)
    if head is None:
        return None
    (length,) = struct.unpack("<Q", head)
    if length > limit:
        raise WireError(f"a message of {length} bytes (the limit is {limit})")
    body = _read_exactly(fd, length)
    if body is None:
        raise WireError("the pipe closed in the middle of a message")
    return body


def _read_exactly(fd: int, n: int) -> bytearray | None:
    buffer = bytearray()
    while len(buffer) < n:
        chunk = os.read(fd, min(n - len(buffer), _CHUNK))
        if not chunk:
            return None
        buffer += chunk
    return buffer
