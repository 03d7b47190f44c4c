"""The course's array namespace: NumPy by default, CuPy (the GPU) on request.

Exercise code writes ``xp.tanh(...)``, ``xp.zeros(...)`` and so on, with ``xp``
imported from here. ``xp`` always forwards to the backend chosen *now*, so one
setting switches every notebook and test to the GPU:

* the environment variable ``COURSE_BACKEND`` (``numpy``, ``cupy`` or ``auto``),
  read once at import;
* ``set_backend("cupy")`` for the rest of the session;
* ``with using_backend("cupy"): ...`` for a block.

``auto`` takes CuPy when it is installed and sees a CUDA device, and otherwise
falls back to NumPy with a one-line notice. Asking for ``cupy`` explicitly where it
cannot run is an error that says what is missing.

Data leaves the device only at the edges: ``to_host`` (for plots and asserts) and
``to_device``. ``Rng`` draws on the host with NumPy's generator and moves the result
to the device, so a seed gives the same numbers on both backends and expected
values hold on the GPU. This module leaves out everything else (no dtype policy
beyond the float64 default used by the exercises).
"""
from __future__ import annotations

import contextlib
import os
import sys
import types

import numpy

BACKENDS = ("numpy", "cupy", "auto")
ENV_VAR = "COURSE_BACKEND"

CUPY_INSTALL_HINT = (
    "Install CuPy for your CUDA version, e.g. `pip install -e '.[gpu]'` "
    "(which installs cupy-cuda12x), or use the NumPy backend: set_backend('numpy')."
)


class BackendUnavailable(RuntimeError):
    """The requested array backend cannot run on this machine."""


def _load_cupy() -> types.ModuleType:
    """Import CuPy and make sure it can reach a CUDA device, or explain why not."""
    try:
        import cupy
    except ImportError as err:
        raise BackendUnavailable(
            f"The 'cupy' backend needs the CuPy package, which is not installed ({err}). "
            + CUPY_INSTALL_HINT
        ) from None
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken: CuPy raises its own types
        raise BackendUnavailable(
            f"CuPy is installed but cannot talk to a CUDA device ({type(err).__name__}: {err}). "
            "Check the NVIDIA driver (`nvidia-smi`) or use set_backend('numpy')."
        ) from None
    if n_devices == 0:
        raise BackendUnavailable("CuPy is installed but sees no CUDA device. Use set_backend('numpy').")
    return cupy


def _resolve(name: str) -> types.ModuleType:
    name = str(name).strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"Unknown backend {name!r}: choose one of {', '.join(BACKENDS)}.")
    if name == "numpy":
        return numpy
    if name == "cupy":
        return _load_cupy()
    try:
        return _load_cupy()
    except BackendUnavailable as why:
        print(f"course_utils: no usable GPU, using NumPy ({why.args[0].split('.')[0]}).", file=sys.stderr)
        return numpy


_current: types.ModuleType = _resolve(os.environ.get(ENV_VAR, "numpy"))


def _switch(module: types.ModuleType) -> types.ModuleType:
    global _current
    _current = module
    xp._bind(module)
    return module


def set_backend(name: str) -> types.ModuleType:
    """Choose the array backend for the rest of the session: 'numpy', 'cupy' or 'auto'."""
    return _switch(_resolve(name))


def get_backend() -> types.ModuleType:
    """The module (numpy or cupy) that ``xp`` forwards to now."""
    return _current


def backend_name() -> str:
    return _current.__name__


@contextlib.contextmanager
def using_backend(name: str):
    """Use a backend inside a ``with`` block, then go back to the previous one."""
    previous = _current
    try:
        yield _switch(_resolve(name))
    finally:
        _switch(previous)


class _Namespace:
    """``xp``: forwards every attribute to the current backend module.

    The module's public names are copied into the namespace whenever the backend changes
    (``_bind``), so ``xp.tanh`` is an ordinary attribute lookup: through ``__getattr__``
    alone it took about 0.9 µs, a fifth of a fused LSTM step's time at (1, 25, 27, 50)
    (benchmarks/results/NOTES.md). Other names still reach the module through ``__getattr__``.
    The copy is a snapshot: replacing ``numpy.tanh`` later does not change ``xp.tanh``.
    Copying or pickling ``xp`` gives ``xp`` itself.
    """

    def _bind(self, module: types.ModuleType) -> None:
        self.__dict__.clear()
        self.__dict__.update((name, value) for name, value in vars(module).items() if not name.startswith("_"))

    def __getattr__(self, attr):
        return getattr(_current, attr)

    def __reduce__(self):
        return "xp"                                # the module-level name: copies and pickles are xp

    def __dir__(self):
        return dir(_current)

    def __repr__(self):
        return f"<course array namespace: {_current.__name__}>"


xp = _Namespace()
xp._bind(_current)


def is_device_array(a) -> bool:
    """True for a CuPy array (which lives on the GPU)."""
    return type(a).__module__.split(".")[0] == "cupy"


def to_host(a):
    """A NumPy copy of ``a`` (CuPy array, NumPy array, scalar or list); use at the edges only."""
    if is_device_array(a):
        return a.get()
    return numpy.asarray(a)


def to_device(a, dtype=None):
    """``a`` as an array of the current backend (a no-op for NumPy on NumPy)."""
    if is_device_array(a) and _current is numpy:
        a = a.get()
    return _current.asarray(a, dtype=dtype)


class Rng:
    """Seeded random numbers that are identical on NumPy and CuPy.

    Draws happen on the host (NumPy's PCG64) and the result moves to the current
    backend, so ``Rng(1).standard_normal((3, 2))`` is the same matrix on both.
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._gen = numpy.random.default_rng(seed)

    def standard_normal(self, shape, dtype=numpy.float64):
        return to_device(self._gen.standard_normal(shape).astype(dtype, copy=False))

    randn = standard_normal

    def uniform(self, low=0.0, high=1.0, shape=None, dtype=numpy.float64):
        return to_device(self._gen.uniform(low, high, shape).astype(dtype, copy=False))

    def integers(self, low, high=None, shape=None):
        return to_device(self._gen.integers(low, high, shape))

    def choice(self, n: int, p=None, size=None, replace=True):
        """Indices in ``range(n)``; ``p`` may be a device array (it is read on the host)."""
        probabilities = None if p is None else to_host(p).astype(numpy.float64).ravel()
        if probabilities is not None:
            probabilities = probabilities / probabilities.sum()
        return self._gen.choice(n, p=probabilities, size=size, replace=replace)

    def permutation(self, n: int):
        return self._gen.permutation(n)
