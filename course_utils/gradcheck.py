"""Gradient checks by centred finite differences, for self-learners and tests.

Two entry points, both returning a ``GradientReport``:

* ``check_gradient(f, params, grads)``: ``f(params)`` is a scalar (a loss) and
  ``grads`` holds your analytic gradients, keyed ``name`` or ``dname``.
* ``check_backward(forward, backward, inputs)``: for the course's
  ``backward(dout, cache)`` pairs. It draws a random upstream gradient ``dout``
  for the forward's chosen outputs and compares your ``backward(dout, cache)`` with
  the numerical vector–Jacobian product ``∂(Σ dout · out)/∂input``, for every
  array in ``inputs`` (nested dicts such as ``parameters`` are walked), expecting
  your gradient of ``x`` under the key ``dx``.

For each array the report gives the relative error ``‖g − g̃‖ / (‖g‖ + ‖g̃‖)``, the
entry where the two disagree most, both values there, and a verdict against the
tolerance (1e-7, the curriculum's bar for a correct float64 implementation). It
prints as a table in a notebook; ``report.assert_ok()`` raises a ``CheckFailure``
naming the array and the entry. ``sparse=K`` checks K random entries per array
instead of all of them, for large parameters.

Checks need float64: in float32 the finite differences are too noisy to tell a
bug from rounding, so float32 inputs are refused with the fix (as
``torch.autograd.gradcheck`` warns). Works on NumPy and CuPy arrays; your arrays
are never modified (the checker perturbs copies).
"""
from __future__ import annotations

import dataclasses
import html
import math

import numpy

from .backend import Rng, get_backend, is_device_array, to_host
from .checks import CheckFailure, exercise

DEFAULT_EPS = 1e-6
DEFAULT_TOL = 1e-7
_ZERO_NORM = 1e-10  # both gradients below this are "zero"


@dataclasses.dataclass
class GradientRow:
    """The check of one array: its relative error and the worst entry."""
    name: str
    shape: tuple
    n_checked: int
    rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    verdict: str  # "ok", "WRONG", "missing", "shape", "not used"

    @property
    def ok(self) -> bool:
        return self.verdict in ("ok", "not used")


def _num(value: float, spec: str) -> str:
    """A number for the report; "—" where there is none (an array that was not used or had the wrong shape)."""
    return "—" if math.isnan(value) else format(value, spec)


@dataclasses.dataclass
class GradientReport:
    rows: list
    tol: float
    eps: float

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def __getitem__(self, name: str) -> GradientRow:
        return next(row for row in self.rows if row.name == name)

    def failures(self) -> list:
        return [row for row in self.rows if not row.ok]

    def __str__(self) -> str:
        head = f"{'array':<12}{'shape':<16}{'checked':>8}{'rel. error':>12}  {'worst entry':<14}{'yours':>12}{'numeric':>12}  verdict"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.name:<12}{str(r.shape):<16}{r.n_checked:>8}{_num(r.rel_error, '.2e'):>12}  "
                         f"{str(r.worst_index):<14}{_num(r.analytic, '.5g'):>12}{_num(r.numeric, '.5g'):>12}  "
                         f"{r.verdict}")
        lines.append(f"{'all gradients correct' if self.ok else 'SOME GRADIENTS ARE WRONG'} "
                     f"(tolerance {self.tol:.0e}, eps {self.eps:.0e})")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {"ok": "#1a7f37", "not used": "#6e7781"}
        cells = "".join(
            f"<tr><td><code>{html.escape(r.name)}</code></td><td>{r.shape}</td><td>{r.n_checked}</td>"
            f"<td>{_num(r.rel_error, '.2e')}</td><td>{r.worst_index}</td><td>{_num(r.analytic, '.6g')}</td>"
            f"<td>{_num(r.numeric, '.6g')}</td><td style='color:{colour.get(r.verdict, '#cf222e')};"
            f"font-weight:bold'>{html.escape(r.verdict)}</td></tr>"
            for r in self.rows)
        summary = "all gradients correct" if self.ok else "some gradients are wrong"
        return (f"<table><thead><tr><th>array</th><th>shape</th><th>entries checked</th>"
                f"<th>relative error</th><th>worst entry</th><th>your gradient</th>"
                f"<th>numerical</th><th>verdict</th></tr></thead><tbody>{cells}</tbody></table>"
                f"<p><b>{summary}</b> (tolerance {self.tol:.0e}, eps {self.eps:.0e})</p>")

    def assert_ok(self) -> "GradientReport":
        """Raise ``CheckFailure`` naming each wrong array and its worst entry."""
        messages = []
        for r in self.failures():
            if r.verdict == "missing":
                messages.append(f"your backward returned no gradient 'd{r.name}', but the output depends on {r.name}.")
            elif r.verdict == "shape":
                messages.append(f"d{r.name} has shape {r.worst_index}, but {r.name} has shape {r.shape}.")
            else:
                messages.append(
                    f"d{r.name} is wrong: relative error {r.rel_error:.2e} (needs < {self.tol:.0e}). "
                    f"Worst entry {r.worst_index}: your gradient {r.analytic:.6g}, "
                    f"finite differences {r.numeric:.6g}.")
        if messages:
            raise CheckFailure("Gradient check failed:\n  " + "\n  ".join(messages))
        return self


def _leaves(tree, prefix=()):
    """(name, array) for every array in a dict that may contain dicts."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, prefix + (key,))
        elif hasattr(value, "shape") and hasattr(value, "dtype"):
            yield key, value


def _copy_tree(tree):
    return {k: _copy_tree(v) if isinstance(v, dict) else (v.copy() if hasattr(v, "copy") else v)
            for k, v in tree.items()}


def _require_float64(tree) -> None:
    for name, array in _leaves(tree):
        if array.dtype.kind == "f" and array.dtype != numpy.float64:
            raise TypeError(
                f"Gradient checks need float64, but {name} is {array.dtype}: finite differences in "
                f"{array.dtype} are too noisy to tell a bug from rounding. Convert the inputs with "
                f"`.astype(xp.float64)` before checking.")


def _indices(array, sparse, rng):
    size = int(array.size)
    if sparse is None or size <= sparse:
        flat = range(size)
    else:
        flat = sorted(int(i) for i in rng.choice(size, size=sparse, replace=False))
    return [tuple(int(i) for i in numpy.unravel_index(f, array.shape)) for f in flat]


def _numeric(objective, array, indices, eps) -> numpy.ndarray:
    """Centred differences of ``objective()`` with respect to ``array[index]``, in place."""
    values = numpy.empty(len(indices))
    for k, index in enumerate(indices):
        old = float(array[index])
        array[index] = old + eps
        plus = float(objective())
        array[index] = old - eps
        minus = float(objective())
        array[index] = old
        values[k] = (plus - minus) / (2 * eps)
    return values


def _row(name, array, analytic, objective, eps, tol, sparse, rng) -> GradientRow:
    shape = tuple(array.shape)
    indices = _indices(array, sparse, rng)
    numeric = _numeric(objective, array, indices, eps)
    if analytic is None:
        verdict = "not used" if numpy.linalg.norm(numeric) < _ZERO_NORM else "missing"
        worst = int(numpy.argmax(numpy.abs(numeric))) if len(numeric) else 0
        return GradientRow(name, shape, len(indices), math.nan, indices[worst] if indices else (),
                           math.nan, float(numeric[worst]) if len(numeric) else 0.0, verdict)
    analytic_host = to_host(analytic)
    if analytic_host.shape != shape:
        return GradientRow(name, shape, 0, math.nan, analytic_host.shape, math.nan, math.nan, "shape")
    analytic_values = numpy.array([analytic_host[i] for i in indices], dtype=numpy.float64)
    diff = numpy.abs(analytic_values - numeric)
    scale = numpy.linalg.norm(analytic_values) + numpy.linalg.norm(numeric)
    rel = 0.0 if scale < _ZERO_NORM else float(numpy.linalg.norm(diff) / scale)
    if numpy.isnan(analytic_values).any():
        rel = math.nan
    worst = int(numpy.nanargmax(diff)) if len(diff) and not numpy.isnan(diff).all() else 0
    verdict = "ok" if rel < tol else "WRONG"
    return GradientRow(name, shape, len(indices), rel, indices[worst], float(analytic_values[worst]),
                       float(numeric[worst]), verdict)


def _lookup(grads, name):
    if f"d{name}" in grads:
        return grads[f"d{name}"]
    return grads.get(name)


def check_gradient(f, params: dict, grads: dict, *, eps: float = DEFAULT_EPS, tol: float = DEFAULT_TOL,
                   sparse: int | None = None, seed: int = 0) -> GradientReport:
    """Compare ``grads`` with the finite-difference gradient of the scalar ``f(params)``."""
    _require_float64(params)
    params = _copy_tree(params)
    rng = Rng(seed)
    rows = [_row(name, array, _lookup(grads, name), lambda: f(params), eps, tol, sparse, rng)
            for name, array in _leaves(params)]
    return GradientReport(rows, tol, eps)


def check_backward(forward, backward, inputs: dict, *, outputs=(0,), eps: float = DEFAULT_EPS,
                   tol: float = DEFAULT_TOL, sparse: int | None = None, seed: int = 0,
                   name: str | None = None) -> GradientReport:
    """Check ``backward(*douts, cache)`` against the numerical vector–Jacobian product.

    ``forward(**inputs)`` must return a tuple whose last item is the cache; ``outputs``
    are the positions of the outputs that receive an upstream gradient (``(0,)`` for
    ``a_next``; ``(0, 1)`` for an LSTM cell's ``a_next, c_next``), passed to
    ``backward`` in that order.
    """
    _require_float64(inputs)
    inputs = _copy_tree(inputs)
    rng = Rng(seed)
    label = name or getattr(backward, "__name__", "backward")
    with exercise(getattr(forward, "__name__", "forward")):
        outs = forward(**inputs)
    douts = [rng.standard_normal(tuple(outs[k].shape)) for k in outputs]
    with exercise(label):
        grads = backward(*douts, outs[-1])
    if not isinstance(grads, dict):
        raise CheckFailure(f"{label} should return a dict of gradients, but it returned a "
                           f"{type(grads).__name__}.")
    xp = get_backend()

    def objective():
        result = forward(**inputs)
        return sum(float(xp.sum(d * result[k])) for d, k in zip(douts, outputs))

    rows = [_row(leaf, array, _lookup(grads, leaf) if f"d{leaf}" in grads else None, objective,
                 eps, tol, sparse, rng)
            for leaf, array in _leaves(inputs)]
    return GradientReport(rows, tol, eps)
