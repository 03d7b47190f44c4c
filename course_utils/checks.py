"""Assertions for exercise tests, with messages a student can act on.

Every check raises ``CheckFailure`` (an ``AssertionError``, so nbgrader counts it as
a failed test) whose notebook rendering is the message alone, without a traceback
through this module. The message says which value, which shape or which entry was
wrong, what was expected and what came back.

``exercise(name)`` wraps calls to a student's function: if the function still
raises ``NotImplementedError`` the test fails with "not implemented yet" instead
of a traceback. Errors raised by the student's own code pass through unchanged,
with their traceback, because that traceback is what they need to debug.

What this module leaves out: expected values (tests bring their own) and anything
that grades (nbgrader does that from the test cells' pass/fail).
"""
from __future__ import annotations

import contextlib
import copy

import numpy

from .backend import get_backend, is_device_array, to_host

_RED, _GREEN, _RESET = "\x1b[0;31m", "\x1b[0;32m", "\x1b[0m"


class CheckFailure(AssertionError):
    """A test failed. Jupyter shows the message only (via ``_render_traceback_``), and the test's
    hint, when it gave one, on a last line "Hint: ..."; ``hint`` keeps it apart: it is the only
    part of a failed hidden test that the student sees (``autograder.guard``)."""

    def __init__(self, message: str = "", hint: str = ""):
        super().__init__(message + (f"\nHint: {hint}" if hint else ""))
        self.hint = hint

    def _render_traceback_(self):
        lines = str(self).splitlines() or [""]
        return [f"{_RED}✘ {type(self).__name__}: {lines[0]}{_RESET}", *lines[1:]]


class NotImplementedYet(CheckFailure):
    """The exercise still contains ``raise NotImplementedError()``."""


@contextlib.contextmanager
def exercise(name: str):
    """Turn ``NotImplementedError`` from the student's function into a clear failure."""
    try:
        yield
    except NotImplementedError:
        raise NotImplementedYet(
            f"{name} is not implemented yet: replace `raise NotImplementedError()` in its cell "
            "with your code, run that cell, then run this cell again."
        ) from None


def passed(name: str) -> None:
    """Print the line a student sees when every visible test of an exercise passed."""
    print(f"{_GREEN}✔ {name}: all visible tests passed.{_RESET}")


def _fmt(value) -> str:
    if isinstance(value, (float, numpy.floating)):
        return f"{float(value):.6g}"
    return repr(value.item() if hasattr(value, "item") and numpy.ndim(value) == 0 else value)


def _type_name(value) -> str:
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__.split('.')[0]}.{t.__name__}"


def check_type(value, expected_type, name: str, hint: str = "") -> None:
    """``value`` is an instance of ``expected_type`` (a type or a tuple of types)."""
    if not isinstance(value, expected_type):
        names = expected_type if isinstance(expected_type, tuple) else (expected_type,)
        wanted = " or ".join(t.__name__ for t in names)
        raise CheckFailure(f"{name} should be a {wanted}, but it is a {_type_name(value)}.", hint)


def check_array(value, name: str, hint: str = "") -> None:
    """``value`` is an array of the current backend (numpy.ndarray, or cupy.ndarray on the GPU)."""
    backend = get_backend()
    if not isinstance(value, backend.ndarray):
        raise CheckFailure(
            f"{name} should be an array of the course backend ({backend.__name__}.ndarray), "
            f"but it is a {_type_name(value)}. Build it with xp functions (xp.zeros, xp.array, ...).", hint
        )


def check_shape(value, expected_shape, name: str, hint: str = "") -> None:
    """``value.shape == expected_shape``, with both shapes in the message."""
    shape = getattr(value, "shape", None)
    if shape is None:
        raise CheckFailure(f"{name} should be an array of shape {tuple(expected_shape)}, "
                           f"but it is a {_type_name(value)} with no shape.", hint)
    if tuple(shape) != tuple(expected_shape):
        raise CheckFailure(f"{name} has the wrong shape: expected {tuple(expected_shape)}, "
                           f"got {tuple(shape)}.", hint)


def check_close(got, expected, name: str, *, rtol: float = 1e-7, atol: float = 1e-9,
                hint: str = "") -> None:
    """Arrays (or scalars) agree entry by entry; the message names the worst entry. The shapes
    always agree first (a scalar has shape ``()``: an empty array or a list is not a scalar)."""
    expected_host = to_host(expected)
    try:
        got_host = to_host(got).astype(numpy.float64)
    except (TypeError, ValueError):
        raise CheckFailure(f"{name} should hold numbers, but it is {_type_name(got)}: {got!r:.80}.", hint) from None
    if got_host.shape != expected_host.shape:
        if expected_host.ndim == 0:
            raise CheckFailure(f"{name} should be a single number, but it has shape {got_host.shape}.", hint)
        check_shape(got if hasattr(got, "shape") else got_host, expected_host.shape, name, hint)
    expected_host = expected_host.astype(numpy.float64)
    bad_nan = numpy.isnan(got_host) & ~numpy.isnan(expected_host)
    if bad_nan.any():
        index = tuple(int(i) for i in numpy.argwhere(bad_nan)[0])
        raise CheckFailure(f"{name} contains NaN (first at index {index}); look for a log of 0, "
                           "a division by 0 or an overflow.", hint)
    wrong = ~numpy.isclose(got_host, expected_host, rtol=rtol, atol=atol, equal_nan=True)
    if wrong.any():
        error = numpy.asarray(numpy.abs(got_host - expected_host))  # 0-d for scalars, still assignable
        error[~wrong] = 0
        worst = numpy.unravel_index(int(numpy.nanargmax(error)), error.shape) if error.ndim else ()
        worst = tuple(int(i) for i in worst)
        where = f" at index {worst}" if worst else ""
        raise CheckFailure(
            f"{name} has wrong values: {int(wrong.sum())} of {wrong.size} entries differ. "
            f"Worst{where}: expected {_fmt(expected_host[worst])}, got {_fmt(got_host[worst])} "
            f"(max |error| {float(error.max()):.3g}).{_never_written(got_host[wrong])}", hint
        )


def _never_written(wrong_values) -> str:
    """A sentence for wrong entries that look like memory no step wrote (``xp.empty`` leaves whatever
    was there: often tiny subnormal or huge numbers), else nothing: the hint of the check then stands."""
    magnitude = numpy.abs(wrong_values[numpy.isfinite(wrong_values) & (wrong_values != 0)])
    if magnitude.size and ((magnitude < 1e-200) | (magnitude > 1e200)).any():
        return (" Some wrong entries look never written (numbers like 1e-292 are what an xp.empty array "
                "holds before anything is stored): does a loop skip a step, or a slice miss a row?")
    return ""


def check_equal(got, expected, name: str, hint: str = "") -> None:
    """Exact equality for ints, strings, lists, dicts and tuples; shows both values."""
    if got != expected:
        detail = f"expected {expected!r}, got {got!r}"
        if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
            if len(got) != len(expected):
                detail = f"expected {len(expected)} items, got {len(got)}: " + detail
            else:
                first = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
                detail = f"item {first} is {got[first]!r}, expected {expected[first]!r} (" + detail + ")"
        raise CheckFailure(f"{name} is wrong: {detail}.", hint)


def check_keys(mapping, expected_keys, name: str, hint: str = "") -> None:
    """A dict with exactly these keys."""
    check_type(mapping, dict, name)
    missing = [k for k in expected_keys if k not in mapping]
    extra = [k for k in mapping if k not in expected_keys]
    if missing or extra:
        parts = [f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else ""]
        raise CheckFailure(f"{name} has the wrong keys: {', '.join(p for p in parts if p)}.", hint)


def _snapshot(value):
    if is_device_array(value) or isinstance(value, numpy.ndarray):
        return value.copy()
    return copy.deepcopy(value)


def _same(a, b) -> bool:
    if is_device_array(a) or isinstance(a, numpy.ndarray):
        return bool(numpy.array_equal(to_host(a), to_host(b), equal_nan=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def check_not_mutated(function, *args, name: str | None = None, **kwargs):
    """Call ``function(*args, **kwargs)`` and fail if it changed any argument in place.

    Returns what the function returned, so a test can go on checking it.
    """
    name = name or getattr(function, "__name__", "the function")
    before = [_snapshot(a) for a in args]
    before_kw = {k: _snapshot(v) for k, v in kwargs.items()}
    with exercise(name):
        result = function(*args, **kwargs)
    changed = [f"argument {i + 1}" for i, (old, new) in enumerate(zip(before, args)) if not _same(old, new)]
    changed += [f"argument {k!r}" for k, old in before_kw.items() if not _same(old, kwargs[k])]
    if changed:
        raise CheckFailure(
            f"{name} changed its input in place ({', '.join(changed)}). Work on a copy "
            "(e.g. `x.copy()`) or build a new array instead of writing into the one you were given."
        )
    return result
