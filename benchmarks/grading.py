"""Grading throughput: autograde time per submission with 1 and 2 workers, on a batch of 8.

    .venv/bin/python -m benchmarks.grading [--assignment 02_rnn] [--batch 8] [--workers 1,2]

The batch is ``--batch`` copies of the assignment's solutions filled into its release
(``autograder.submissions.filled_in``), graded by ``autograder.grade.grade`` exactly as
``python -m autograder grade`` does, once per worker count, each into a fresh folder.
For comparison, the same batch is graded by nbgrader alone (its own autograde and
feedback through its Python API, one student after another, student code in the
kernel with the tests: no integrity check, guard or jail), which is the time before
isolation (issue 7); and, in every round before the gradings, the notebook runs in a plain
kernel as grading runs it (the source notebook with ``NBGRADER_EXECUTION`` set, see
benchmarks/notebooks.py), so that a machine slowing down between rounds slows both. The table
gives seconds per submission, the speed-up of more workers, the cost of isolation per
submission, and the grader's overhead per notebook beyond the notebook's own run time.
Targets: a speed-up of at least 1.7 with 2 workers, an overhead of at most 1.5 s per
notebook (issue 8), isolation under 1 s per submission (issue 7).

``--blas-threads N`` sets NumPy's BLAS thread count for everything the grading starts
(workers and kernels inherit the environment; the jail always uses one thread). Results
go to benchmarks/results/grading.md and .csv. What it leaves out: broken or hostile
submissions (tests/test_grading.py covers those), and grading on more cores.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import nbformat
from sqlalchemy.exc import SAWarning

from course_utils.reuse import REUSE_DIR_VARIABLE

from . import report
from .notebooks import kernel_overhead, run_notebook
from .report import thread_env


def make_batch(folder: Path, assignment: str, batch: int) -> None:
    from autograder.course import notebook_names
    from autograder.submissions import filled_in, write_submission
    for notebook in notebook_names(assignment):
        nb = filled_in(assignment, notebook)
        for k in range(batch):
            write_submission(folder, f"student{k + 1:02d}", assignment, notebook, nb)


def time_release(assignment: str, scratch: Path) -> float:
    from autograder.release import release
    start = time.perf_counter()
    release([assignment], release_dir=scratch / "release", db_url=f"sqlite:///{scratch / 'release.db'}")
    return time.perf_counter() - start


def time_nbgrader_alone(submissions: Path, folder: Path, assignment: str, timeout: int) -> tuple[float, list]:
    """nbgrader's own autograde and feedback of every student, with the course's configuration but
    none of autograder's isolation: the grading as it was before issue 7."""
    from nbgrader.api import Gradebook

    from autograder.course import SOLUTIONS, nbgrader_api, nbgrader_config
    from autograder.release import release
    # earlier assignments' functions, as in tests/notebooks.py
    with mock.patch.dict(os.environ, {REUSE_DIR_VARIABLE: str(SOLUTIONS)}):
        db_url = f"sqlite:///{folder / 'gradebook.db'}"
        start = time.perf_counter()
        shutil.copytree(submissions, folder / "submitted")
        release([assignment], release_dir=folder / "release", db_url=db_url)
        config = nbgrader_config(submitted_directory=folder / "submitted", autograded_directory=folder / "autograded",
                                 feedback_directory=folder / "feedback", release_directory=folder / "release",
                                 db_url=db_url)
        config.Execute.timeout = timeout
        api = nbgrader_api(config)
        students = sorted(p.name for p in submissions.iterdir())
        for student in students:
            for step in (api.autograde, api.generate_feedback):
                if not step(assignment, student, force=True)["success"]:
                    raise RuntimeError(f"nbgrader alone could not grade {student}")
        seconds = time.perf_counter() - start
    with Gradebook(db_url) as gb:
        submissions = [gb.find_submission(assignment, student) for student in students]
        return seconds, [{"score": s.score, "max_score": s.max_score, "status": "graded"} for s in submissions]


def time_grading(submissions: Path, out: Path, workers: int, timeout: int) -> tuple[float, list]:
    from autograder.grade import grade
    start = time.perf_counter()
    grade(submissions, out, workers=workers, timeout=timeout)
    seconds = time.perf_counter() - start
    with open(out / "grades.csv") as handle:
        return seconds, list(csv.DictReader(handle))


def main(argv=None) -> int:
    from autograder.course import SOLUTIONS, assignment_names, notebook_names

    parser = argparse.ArgumentParser(prog="python -m benchmarks.grading", description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="02_rnn", choices=assignment_names())
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell, as the grade command's")
    parser.add_argument("--blas-threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds, each running the notebook in a plain kernel and then grading the batch once per row")
    parser.add_argument("--own-runs", type=int, default=3, help="plain-kernel runs of the notebook per round")
    parser.add_argument("--out", default=str(report.RESULTS))
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    os.environ.update(thread_env(args.blas_threads))
    warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader 0.9.6's autoflush warnings
    env = dict(report.environment(), **{"BLAS threads": args.blas_threads or "library default",
                                        "assignment": args.assignment, "batch": args.batch})

    with tempfile.TemporaryDirectory(prefix="grading-benchmark-") as tmp:
        scratch = Path(tmp)
        make_batch(scratch / "submitted", args.assignment, args.batch)
        release_seconds = time_release(args.assignment, scratch)
        kernel_seconds = kernel_overhead({"MPLBACKEND": "Agg"})
        sources = [SOLUTIONS / args.assignment / f"{notebook}.ipynb" for notebook in notebook_names(args.assignment)]
        own_env = {"NBGRADER_EXECUTION": "autograde", REUSE_DIR_VARIABLE: str(SOLUTIONS), "MPLBACKEND": "Agg"}
        own_runs = []
        runs = [("nbgrader alone", 1, lambda folder: time_nbgrader_alone(
            scratch / "submitted", folder, args.assignment, args.timeout))]
        runs += [("course grader", count, lambda folder, count=count: time_grading(
            scratch / "submitted", folder, count, args.timeout)) for count in workers]
        samples = {(grader, count): [] for grader, count, _ in runs}
        for round_ in range(args.rounds):
            own_runs += [sum(run_notebook(nbformat.read(path, as_version=4), path.parent, own_env) for path in sources)
                         for _ in range(args.own_runs)]
            for grader, count, timed in runs:
                seconds, grades = timed(scratch / f"round{round_}-{grader.replace(' ', '-')}-{count}")
                bad = [g for g in grades if g["status"] != "graded" or float(g["score"]) != float(g["max_score"])]
                if bad:
                    raise RuntimeError(f"the solution did not grade to full marks ({grader}, {count} worker(s)): {bad[:2]}")
                samples[grader, count].append(seconds)
                print(f"{grader}, {count} worker(s): {seconds:.1f} s for {args.batch} submissions", flush=True)
        walls = {key: statistics.median(values) for key, values in samples.items()}
        own_seconds = statistics.median(own_runs)

    rows = []
    alone = walls["nbgrader alone", 1]
    for (grader, count), seconds in walls.items():
        per_submission = seconds / args.batch
        ours = grader == "course grader"
        rows.append({"grader": grader, "workers": count, "seconds for the batch": round(seconds, 1),
                     "range over rounds": f"{min(samples[grader, count]):.1f}–{max(samples[grader, count]):.1f}",
                     "seconds per submission": round(per_submission, 2),
                     f"speed-up over {workers[0]} worker(s)": round(walls[grader, workers[0]] / seconds, 2) if ours else "",
                     "isolation per submission (s)": round((seconds - alone) / args.batch, 2) if count == 1 else "",
                     "overhead per notebook (s)": round(per_submission * count - own_seconds, 2)})
    notebooks = len(notebook_names(args.assignment))
    section = (f"## Grading {args.batch} submissions of {args.assignment} (full marks each)\n\n"
               + report.markdown_table(list(rows[0]), [list(r.values()) for r in rows])
               + f"\n\n- the notebook's own run, as grading runs it, in a plain kernel: {own_seconds:.2f} s "
                 f"({notebooks} notebook(s), kernel start and stop included, {kernel_seconds:.1f} s of it): the median "
                 f"of {len(own_runs)} runs, {min(own_runs):.2f}–{max(own_runs):.2f} s"
               + f"\n- {args.rounds} round(s), each running the notebook {args.own_runs} time(s) in a plain kernel, then "
                 "grading the batch once per row, rows alternating; every column is computed from the medians"
               + f"\n- releasing the assignment into the gradebook, once per grading run: {release_seconds:.1f} s"
               + "\n- nbgrader alone: its own autograde and feedback, student code in the test kernel (no integrity "
                 "check, guard or jail): the grading before isolation. isolation per submission = the course "
                 "grader's time minus nbgrader alone's, both with 1 worker, divided by the batch."
               + "\n- overhead per notebook = seconds per submission × workers − the notebook's own run: the time "
                 "a worker spends on a submission beyond running its notebook (release, copies, isolation, "
                 "nbgrader's autograde and feedback, the gradebook)."
               + "\n- targets: speed-up ≥ 1.7 with 2 workers, overhead ≤ 1.5 s per notebook (issue 8); "
                 "isolation < 1 s per submission (issue 7).")
    report.write("grading", "Grading throughput", env, [section], rows, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
