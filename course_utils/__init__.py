"""Course utilities: the array backend, test checks, gradient checks, data and plots.

Notebooks start with ``from course_utils import xp`` and write their maths with
``xp``; ``set_backend('cupy')`` moves every exercise to the GPU. Importing the package
also tunes glibc's malloc for the whole process (``host_memory``).
"""
from .backend import (BackendUnavailable, Rng, backend_name, get_backend, set_backend, to_device,
                      to_host, using_backend, xp)
from .host_memory import keep_freed_memory

keep_freed_memory()

__all__ = ["xp", "set_backend", "get_backend", "backend_name", "using_backend", "to_host",
           "to_device", "Rng", "BackendUnavailable"]
