"""How the benchmark scripts describe the machine and write their tables.

Every result file in benchmarks/results/ starts with the machine, the library
versions, the thread settings and the load on the machine while it ran (timings on a
shared machine are only comparable within one run: quote the ratios). ``write`` saves a
markdown table and the same rows as CSV, and prints the table. What it leaves out: plotting.
"""
from __future__ import annotations

import csv
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # read at a library's start-up


def thread_env(threads: int | None) -> dict:
    """Environment variables that limit BLAS and OpenMP (NumPy's and PyTorch's) threads of a new process."""
    return {} if threads is None else {name: str(threads) for name in THREAD_VARIABLES}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str:
    import numpy
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown BLAS"


def _gpu() -> str:
    try:
        from course_utils.backend import _load_cupy
        cupy = _load_cupy()
        props = cupy.cuda.runtime.getDeviceProperties(0)
        return (f"{props['name'].decode()}, CuPy {cupy.__version__}, "
                f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}")
    except Exception as err:
        return f"none ({str(err).split('.')[0]})"


def commit(root: Path = ROOT) -> str:
    """The checked-out commit, marked when the code measured differs from it (earlier results aside)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True).stdout.strip()
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results")
    return (git("rev-parse", "--short", "HEAD") or "?") + (" with uncommitted changes" if changed else "")


def environment() -> dict:
    """The machine and the versions, as (label, value) pairs."""
    import numpy
    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": commit(),
        "CPU": f"{_cpu_model()}, {os.cpu_count()} cores",
        "Python": sys.version.split()[0],
        "NumPy": f"{numpy.__version__} ({_blas()})",
        "GPU": _gpu(),
        "thread variables of this process": ", ".join(f"{k}={os.environ[k]}" for k in THREAD_VARIABLES
                                                      if k in os.environ) or "none set",
        "load average at start (1 min)": f"{os.getloadavg()[0]:.2f}",
    }
    try:
        import torch
        info["PyTorch"] = f"{torch.__version__}, {torch.get_num_threads()} CPU threads"
    except ImportError:
        info["PyTorch"] = "not installed"
    return info


def markdown_table(headers: list, rows: list) -> str:
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def write(name: str, title: str, env: dict, sections: list, rows: list, out: Path = RESULTS) -> Path:
    """Write ``out/name.md`` (title, environment, then each markdown section) and ``out/name.csv``
    (``rows``: dicts with the same keys), print the sections; return the markdown file's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(env, **{"load average at end (1 min)": f"{os.getloadavg()[0]:.2f}"})
    text = [f"# {title}", "", *[f"- {key}: {value}" for key, value in env.items()], ""]
    text += [section.rstrip() + "\n" for section in sections]
    path = out / f"{name}.md"
    path.write_text("\n".join(text))
    if rows:
        with open(out / f"{name}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print("\n\n".join(sections) + f"\n\nwritten to {path}")
    return path
