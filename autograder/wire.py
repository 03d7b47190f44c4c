"""Data-only messages between the grading kernel and the jailed student process.

What crosses the pipe is data, never code or objects: ``None``, booleans, numbers,
strings, bytes, lists, tuples, dicts, sets, NumPy arrays and scalars of plain dtypes
(CuPy arrays travel through the host), and ``course_utils.Rng`` / NumPy generators
as their state. A message is one frame: an 8-byte length, a JSON tree, then the raw
array buffers. Decoding builds only those types, checks every dtype, shape and
length, and never unpickles, so a hostile student process can send wrong values but
cannot run code in the kernel. Shared and cyclic references survive a round trip
(each object is sent once, then referred to).

Functions are not data: ``encode`` asks its ``callables`` hook for a token (the
kernel sends exercise functions by name and its own functions as call-back handles)
and ``decode`` asks its ``tokens`` hook to turn a token back into a function.
What it leaves out: any other class (an ``Unsendable`` error names it).
"""
from __future__ import annotations

import json
import math
import os
import struct

import numpy

from course_utils.backend import is_device_array, to_device, to_host

MAX_FRAME = 512 * 1024 * 1024
_ARRAY_KINDS = set("biufcUS")
_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class Unsendable(TypeError):
    """A value that is not plain data (a class instance, a generator, an object array ...)."""


class WireError(ValueError):
    """A malformed message: the other side broke the protocol."""


def _rng_class():
    from course_utils.backend import Rng
    return Rng


def encode(value, callables=None) -> bytes:
    """One frame holding ``value``; ``callables(f)`` returns a JSON token for a function."""
    buffers: list[bytes] = []
    memo: dict[int, int] = {}
    keep = []  # objects referenced by memo stay alive while encoding

    def array(a) -> dict:
        host = to_host(a)
        if host.dtype.kind not in _ARRAY_KINDS:
            raise Unsendable(f"an array of dtype {host.dtype} (only numbers, booleans and strings travel)")
        buffers.append(host.tobytes())
        return {"dtype": host.dtype.str, "shape": list(host.shape), "buf": len(buffers) - 1,
                "dev": bool(is_device_array(a))}

    def tree(v, depth=0):
        if depth > 200:
            raise Unsendable("a structure nested more than 200 levels deep")
        if v is None or isinstance(v, (bool, str)) or type(v) in (int, float):
            return v
        if isinstance(v, (int, float)) and not isinstance(v, numpy.generic):  # int/float subclasses
            return int(v) if isinstance(v, int) else float(v)
        if id(v) in memo:
            return {"ref": memo[id(v)]}
        if isinstance(v, numpy.generic):
            return {"N": array(numpy.asarray(v))}
        if isinstance(v, complex):
            return {"C": [v.real, v.imag]}
        if isinstance(v, (bytes, bytearray)):
            buffers.append(bytes(v))
            return {"B": len(buffers) - 1}
        memo[id(v)] = len(memo)
        keep.append(v)
        node = {"id": memo[id(v)]}
        if isinstance(v, numpy.ndarray) or is_device_array(v):
            node["A"] = array(v)
        elif isinstance(v, list):
            node["L"] = [tree(x, depth + 1) for x in v]
        elif isinstance(v, tuple):
            node["T"] = [tree(x, depth + 1) for x in v]
        elif isinstance(v, dict):
            node["D"] = [[tree(k, depth + 1), tree(x, depth + 1)] for k, x in v.items()]
        elif isinstance(v, (set, frozenset)):
            node["F" if isinstance(v, frozenset) else "S"] = [tree(x, depth + 1) for x in v]
        elif isinstance(v, _rng_class()):
            node["R"] = [tree(v.seed), tree(v._gen.bit_generator.state, depth + 1)]
        elif isinstance(v, numpy.random.Generator):
            node["G"] = tree(v.bit_generator.state, depth + 1)
        elif callable(v) and callables is not None:
            node["fn"] = callables(v)
        else:
            raise Unsendable(f"a {type(v).__module__}.{type(v).__qualname__} object")
        return node

    header = json.dumps(tree(value)).encode()
    sizes = [len(b) for b in buffers]
    head = json.dumps(sizes).encode()
    body = b"".join([struct.pack("<II", len(header), len(head)), header, head, *buffers])
    if len(body) > MAX_FRAME:
        raise Unsendable(f"a value of {len(body) // 2**20} MB (the limit is {MAX_FRAME // 2**20} MB)")
    return struct.pack("<Q", len(body)) + body


def decode(frame: bytes, tokens=None, tracker: "Tracker | None" = None):
    """The value of a frame body (without its length); ``tokens(t)`` turns a function token into a function.

    With a ``tracker``, every container and array decoded is remembered as it was, so
    that ``tracker.changed(value)`` can tell later whether code changed it in place.
    """
    frame = memoryview(frame)
    try:
        n_header, n_head = struct.unpack_from("<II", frame)
        header = json.loads(bytes(frame[8:8 + n_header]))
        sizes = json.loads(bytes(frame[8 + n_header:8 + n_header + n_head]))
        offset, buffers = 8 + n_header + n_head, []
        for size in sizes:
            if not isinstance(size, int) or size < 0 or offset + size > len(frame):
                raise WireError("bad buffer table")
            buffers.append(frame[offset:offset + size])
            offset += size
        return _Decoder(buffers, tokens, tracker).value(header)
    except WireError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, struct.error) as err:
        raise WireError(f"malformed message ({type(err).__name__}: {err})") from None


class _Decoder:
    def __init__(self, buffers, tokens, tracker):
        self.buffers, self.tokens, self.tracker, self.seen = buffers, tokens, tracker, {}

    def array(self, spec):
        dtype = numpy.dtype(str(spec["dtype"]))
        if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise WireError(f"refused dtype {dtype}")
        shape = tuple(int(n) for n in spec["shape"])
        data = self.buffers[spec["buf"]]
        if any(n < 0 for n in shape) or math.prod(shape) * dtype.itemsize != len(data):
            raise WireError("array shape and buffer disagree")
        host = numpy.frombuffer(data, dtype=dtype).reshape(shape).copy()
        if self.tracker is not None:
            self.tracker.remember(host, data)
        return to_device(host) if spec.get("dev") else host

    def value(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not isinstance(node, dict):
            raise WireError(f"unexpected {type(node).__name__}")
        if "ref" in node:
            return self.seen[node["ref"]]
        if "N" in node:
            return self.array(node["N"])[()]
        if "C" in node:
            return complex(float(node["C"][0]), float(node["C"][1]))
        if "B" in node:
            return bytes(self.buffers[node["B"]])
        key = node["id"]
        if "A" in node:
            result = self.array(node["A"])
        elif "L" in node:
            result = self.seen[key] = []
            result.extend(self.value(x) for x in node["L"])
        elif "D" in node:
            result = self.seen[key] = {}
            for k, x in node["D"]:
                result[self.value(k)] = self.value(x)
        elif "S" in node:
            result = self.seen[key] = set()
            result.update(self.value(x) for x in node["S"])
        elif "T" in node:
            result = tuple(self.value(x) for x in node["T"])
        elif "F" in node:
            result = frozenset(self.value(x) for x in node["F"])
        elif "R" in node:
            result = _rng_class()(self.value(node["R"][0]))
            _set_state(result._gen, self.value(node["R"][1]))
        elif "G" in node:
            state = self.value(node["G"])
            result = numpy.random.Generator(_bit_generator(state)())
            _set_state(result, state)
        elif "fn" in node and self.tokens is not None:
            result = self.tokens(node["fn"])
        else:
            raise WireError(f"unknown node {sorted(node)}")
        self.seen[key] = result
        if self.tracker is not None and not isinstance(result, numpy.ndarray):
            self.tracker.remember(result)
        return result


class Tracker:
    """What decoded containers and arrays looked like on arrival (see ``decode``)."""

    def __init__(self):
        self.before = {}

    def remember(self, value, data=None) -> None:
        self.before[id(value)] = (value, data if data is not None else self._shallow(value))

    @staticmethod
    def _shallow(value):
        if isinstance(value, list):
            return [id(x) for x in value]
        if isinstance(value, dict):
            return [(k, id(x)) for k, x in value.items()]
        if isinstance(value, set):
            return set(value)
        if isinstance(value, _rng_class()):
            return value._gen.bit_generator.state
        if isinstance(value, numpy.random.Generator):
            return value.bit_generator.state
        return None

    def changed(self, value, seen=None) -> bool:
        """Whether ``value`` or anything inside it differs from how it arrived."""
        seen = set() if seen is None else seen
        if id(value) in seen or value is None or isinstance(value, (bool, int, float, str, bytes, complex)):
            return False
        seen.add(id(value))
        if id(value) not in self.before:
            return True  # an object the code put in place of what arrived
        _, then = self.before[id(value)]
        if isinstance(value, numpy.ndarray):
            return value.nbytes != len(then) or value.tobytes() != then
        if self._shallow(value) != then:
            return True
        children = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
        return any(self.changed(child, seen) for child in children)


def _bit_generator(state):
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _GENERATORS:
        raise WireError(f"refused bit generator {name!r}")
    return getattr(numpy.random, name)


def _set_state(generator, state) -> None:
    _bit_generator(state)
    generator.bit_generator.state = state


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
        return all(update_in_place(o, n) or o == n for o, n in zip(old, new))
    if isinstance(old, _rng_class()) and isinstance(new, _rng_class()):
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


def receive(fd: int) -> bytes | None:
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


def _read_exactly(fd: int, n: int) -> bytes | None:
    chunks, missing = [], n
    while missing:
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)
