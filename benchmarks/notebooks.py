"""End-to-end run time of each solution notebook, as a learner runs it and as the grader does.

    .venv/bin/python -m benchmarks.notebooks [--assignments 02_rnn,06_scaling_up]

Each solution notebook runs top to bottom in a fresh Jupyter kernel (nbclient), from
its own folder, with the earlier assignments' references for ``course_utils.reuse``:
once as a learner runs it (the release with the solutions filled in), and once as
grading runs it (the source notebook, hidden tests included, with
``NBGRADER_EXECUTION`` set: the notebooks shorten their timings and training). The kernel's start and shutdown are timed
apart, on an empty notebook, so the table can say what the notebook's own cells cost.
``--blas-threads N`` limits NumPy's BLAS threads in the kernel (the default leaves them
alone). Results go to benchmarks/results/notebooks.md and .csv. What it leaves out:
grading itself (benchmarks/grading.py) and per-cell times.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from unittest import mock

import nbformat
from nbclient import NotebookClient

from course_utils.reuse import REUSE_DIR_VARIABLE

from . import report
from .report import thread_env

def run_notebook(nb, folder, env: dict, timeout: int = 600) -> float:
    """Seconds to execute ``nb`` in a fresh kernel started in ``folder`` with extra ``env``; errors raise."""
    with mock.patch.dict(os.environ, env):         # the kernel inherits this process's environment
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(folder)}}).execute()
        return time.perf_counter() - start


def kernel_overhead(env: dict, repeat: int = 3) -> float:
    """Median seconds to start a kernel, run nothing and shut it down."""
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")])
    return statistics.median(run_notebook(empty, report.ROOT, env) for _ in range(repeat))


def main(argv=None) -> int:
    from autograder.course import SOLUTIONS, assignment_names, notebook_names
    from autograder.submissions import filled_in

    parser = argparse.ArgumentParser(prog="python -m benchmarks.notebooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignments", default=None, help="default: every assignment in solutions/")
    parser.add_argument("--modes", default="learner,graded", help="learner, graded (NBGRADER_EXECUTION set)")
    parser.add_argument("--blas-threads", type=int, default=None)
    parser.add_argument("--out", default=str(report.RESULTS))
    args = parser.parse_args(argv)
    assignments = args.assignments.split(",") if args.assignments else assignment_names()
    modes = args.modes.split(",")
    unknown = [a for a in assignments if a not in assignment_names()] + [m for m in modes if m not in ("learner", "graded")]
    if unknown:
        parser.error(f"unknown assignment or mode: {', '.join(unknown)}")

    env = dict(report.environment(), **{"BLAS threads in the kernel": args.blas_threads or "library default"})
    base = dict(thread_env(args.blas_threads), **{REUSE_DIR_VARIABLE: str(SOLUTIONS)}, MPLBACKEND="Agg")
    overhead = kernel_overhead(base)
    rows = []
    for assignment in assignments:
        for notebook in notebook_names(assignment):
            path = SOLUTIONS / assignment / f"{notebook}.ipynb"
            for mode in modes:
                if mode == "graded":
                    nb, extra = nbformat.read(path, as_version=4), dict(base, NBGRADER_EXECUTION="autograde")
                else:
                    nb, extra = filled_in(assignment, notebook), base
                seconds = run_notebook(nb, path.parent, extra)
                rows.append({"notebook": path.name, "run": mode, "seconds": round(seconds, 1),
                             "without the kernel's start": round(seconds - overhead, 1)})
                print(f"{path.name:<28}{mode:<9}{seconds:7.1f} s", flush=True)
    section = (f"## Seconds to run each solution notebook top to bottom in a fresh kernel\n\n"
               + report.markdown_table(list(rows[0]), [list(r.values()) for r in rows])
               + f"\n\nStarting and stopping a kernel alone takes {overhead:.1f} s. `learner`: the release with the "
                 "solutions filled in; `graded`: the source notebook (hidden tests included) with "
                 "`NBGRADER_EXECUTION` set, as grading runs it.")
    report.write("notebooks", "Solution notebooks, end to end", env, [section], rows, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
