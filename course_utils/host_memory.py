"""Keep freed host memory in the process, so NumPy's large temporaries do not page-fault.

A training step allocates and frees megabytes of temporaries (gates, caches, gradients).
glibc's ``malloc`` serves blocks above a threshold with ``mmap`` and returns freed memory
at the top of its heap to the kernel, so the next step gets fresh pages and the kernel
zeroes every one of them on first touch: at (m, T_x, n_x, n_a) = (32, 50, 64, 128) that is
about 5,400 page faults and nearly a third of a fused LSTM step's time (measured in
benchmarks/results/NOTES.md). This module asks glibc to keep such memory, once, when
``course_utils`` is imported: blocks below 32 MiB come from the heap, and up to 256 MiB
of free heap is kept for the process (it counts towards a memory limit such as the
grading jail's; when the heap cannot grow, glibc falls back to mmap). Only where memory
comes from changes: reused memory is not zeroed, which matters only to code that reads
``xp.empty`` before writing it. It does nothing on other C libraries (macOS, Windows,
musl), and leaves out device memory (CuPy has its own pool).
"""
from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD = -1          # glibc's malloc.h: free heap kept before it is returned to the kernel
M_MMAP_THRESHOLD = -3          # glibc's malloc.h: blocks from this size up are served by mmap
MMAP_THRESHOLD_BYTES = 32 * 2**20      # the ceiling of glibc's own dynamic threshold on 64-bit machines
TRIM_THRESHOLD_BYTES = 256 * 2**20


def keep_freed_memory() -> None:
    """Tune glibc's malloc as described above (a glibc that refuses a value keeps its default)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    mallopt = ctypes.CDLL(None).mallopt
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
