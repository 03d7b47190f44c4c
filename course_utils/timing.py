"""Wall-clock timing of one function call, for the notebooks' speed comparisons and benchmarks/.

``time_function(f, *args)`` calls ``f(*args)`` once to warm up (first calls pay for
imports, caches and, on the GPU, kernel compilation), then times it again and again
until it has ``repeat`` runs and at least ``min_time`` seconds, and returns a
``Timing``: the median and every run. The median is what to compare: on a shared
machine a few runs are slowed down by others, and the median ignores them.

On the GPU work is queued and the call returns before the device has finished, so
the clock is read only after ``synchronize()`` (which waits for CuPy's device when
the backend is CuPy, and does nothing on NumPy). Pass ``sync=`` for another library
(``torch.cuda.synchronize`` for PyTorch on a GPU).

What it leaves out: statistics across processes and machines (benchmarks/ runs each
implementation in its own process and takes medians of medians).
"""
from __future__ import annotations

import dataclasses
import statistics
import time

from .backend import get_backend


def synchronize() -> None:
    """Wait until the current backend's device has finished its queued work (a no-op on NumPy)."""
    backend = get_backend()
    if backend.__name__ == "cupy":
        backend.cuda.get_current_stream().synchronize()


@dataclasses.dataclass
class Timing:
    """Seconds per call of one function: ``median`` is the number to compare."""
    label: str
    times: list

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)

    def __str__(self) -> str:
        return (f"{self.label}: {_ms(self.median)} per call (median of {len(self.times)} runs, "
                f"fastest {_ms(self.best)}, slowest {_ms(max(self.times))})")

    __repr__ = __str__


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def time_function(f, *args, repeat: int = 5, min_time: float = 0.0, max_repeat: int = 1000, warmup: int = 1,
                  sync=synchronize, label: str | None = None, **kwargs) -> Timing:
    """Time ``f(*args, **kwargs)``: ``warmup`` untimed calls, then at least ``repeat`` timed ones
    and at least ``min_time`` seconds of them (at most ``max_repeat``)."""
    if repeat < 1 or max_repeat < repeat or warmup < 0 or min_time < 0:
        raise ValueError(f"need 1 <= repeat <= max_repeat, warmup >= 0 and min_time >= 0; got repeat={repeat}, "
                         f"max_repeat={max_repeat}, warmup={warmup}, min_time={min_time}")
    for _ in range(warmup):
        f(*args, **kwargs)
    sync()
    times: list = []
    while len(times) < repeat or (sum(times) < min_time and len(times) < max_repeat):
        start = time.perf_counter()
        f(*args, **kwargs)
        sync()
        times.append(time.perf_counter() - start)
    return Timing(label or getattr(f, "__name__", "function"), times)


__all__ = ["Timing", "synchronize", "time_function"]
