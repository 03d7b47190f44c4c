"""``python -m autograder grade SUBMISSIONS --out DIR``: autograde a folder of submissions.

SUBMISSIONS is nbgrader's submitted layout, ``<student>/<assignment>/<notebook>.ipynb``.
DIR receives:

* ``grades.csv``: one row per student, assignment and notebook, with
  ``score,max_score,status,reason``; status is ``graded``, ``failed`` (the notebook
  could not be read or run: the reason says why), ``timeout`` (a cell ran past the
  limit) or ``missing`` (no notebook of that name was submitted);
* ``results.json``: one row per test cell (``grade_id``, ``score``, ``max_score``);
* ``feedback/<student>/<assignment>/<notebook>.html``, without hidden tests
  (see ``autograder.feedback``);
* ``gradebook.db`` (nbgrader's SQLite gradebook), ``autograded/``, ``logs/``.

Assignments that reuse functions of earlier ones (``course_utils.reuse``) get, while
graded, the reference versions of the earlier assignments only (filled in from
solutions/ into ``DIR/reference/<assignment>/``), so a mistake is graded once, where
it was made, and no job can reach the reference of the assignment it grades.

How it runs: the submissions are copied into DIR (the originals are never touched),
the assignment is generated from solutions/ into DIR/release (which defines it in
the gradebook), and each (student, assignment) is one job that autogrades through
nbgrader's Python API into a private copy of the gradebook. Jobs run in a pool of
``--workers`` processes, each paying nbgrader's start-up once. Only this process
writes DIR/gradebook.db, merging each job's grades after it finished, so parallel
jobs never contend for SQLite and a crashed job leaves no half-written grades. An
error in one job is recorded as that submission's status; the others go on.

What it leaves out (see issue 7): sandboxing student code, and a wall-clock bound
per submission rather than nbgrader's per-cell ``--timeout``.
"""
from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import json
import multiprocessing
import os
import shutil
import warnings
from pathlib import Path

import nbformat
from sqlalchemy.exc import SAWarning

from course_utils.reuse import REUSE_DIR_VARIABLE

from .course import InstructorError, assignment_names, nbgrader_api, nbgrader_config, notebook_names
from .release import release
from .submissions import filled_in

GRADES_COLUMNS = ["student", "assignment", "notebook", "score", "max_score", "status", "reason"]
RESULTS_COLUMNS = ["student", "assignment", "notebook", "grade_id", "score", "max_score"]

# nbgrader 0.9.6 triggers harmless SQLAlchemy autoflush warnings on every submission
# (here and in the workers, which import this module).
warnings.filterwarnings("ignore", category=SAWarning)


@dataclasses.dataclass
class NotebookGrade:
    student: str
    assignment: str
    notebook: str
    score: float
    max_score: float
    status: str
    reason: str = ""


@dataclasses.dataclass
class Job:
    """One student's submission of one assignment, graded in a worker."""
    student: str
    assignment: str
    out: str
    timeout: int
    db_url: str
    reuse_dir: str


def _discover(submissions: Path) -> list[tuple[str, str]]:
    if not submissions.is_dir():
        raise InstructorError(f"Submissions folder {submissions} does not exist. Expected the layout "
                              "SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb.")
    known = set(assignment_names())
    pairs = []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if assignment_dir.name not in known:
                raise InstructorError(
                    f"{assignment_dir} is not an assignment of this course (known: {', '.join(sorted(known))}). "
                    "Check the layout SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb.")
            pairs.append((student_dir.name, assignment_dir.name))
    if not pairs:
        raise InstructorError(f"No submissions found in {submissions}: expected "
                              "SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb.")
    return pairs


def _unreadable(path: Path) -> str:
    """Why a submitted notebook cannot be graded, or '' if it can."""
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # nbformat raises JSON, validation and encoding errors alike
        return f"not a valid notebook ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
    return ""


def _config_for(job: Job):
    out = Path(job.out)
    config = nbgrader_config(
        submitted_directory=out / "submitted", autograded_directory=out / "autograded",
        feedback_directory=out / "feedback", release_directory=out / "release", db_url=job.db_url)
    config.Execute.timeout = job.timeout
    return config


def _run_job(job: Job) -> dict:
    """Autograde and write feedback for one submission (runs in a worker process)."""
    os.environ[REUSE_DIR_VARIABLE] = job.reuse_dir  # inherited by the kernels this job starts
    try:
        api = nbgrader_api(_config_for(job))
        result = api.autograde(job.assignment, job.student, force=True, create=True)
        if result["success"]:
            feedback = api.generate_feedback(job.assignment, job.student, force=True)
            if not feedback["success"]:
                result["log"] += "\n" + feedback["log"]
        return {"success": result["success"], "log": result.get("log", ""), "error": result.get("error", "")}
    except Exception as err:  # one broken job must not stop the pool
        return {"success": False, "log": "", "error": f"{type(err).__name__}: {err}"}
    finally:
        os.environ.pop(REUSE_DIR_VARIABLE, None)


def _earlier_references(out: Path, assignment: str) -> Path:
    """DIR/reference/<assignment>/: the filled-in reference notebooks of the assignments before it."""
    folder = out / "reference" / assignment
    for earlier in assignment_names():
        if earlier >= assignment:
            break
        for notebook in notebook_names(earlier):
            path = folder / earlier / f"{notebook}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(filled_in(earlier, notebook), path)
    return folder


def _failure_reason(log: str, error: str) -> tuple[str, str]:
    """(status, reason) for a job nbgrader could not finish, from its log."""
    text = f"{log}\n{error}"
    if "UnresponsiveKernelError" in text or "kernel became unresponsive" in text:
        return "timeout", "the kernel stopped responding after a cell ran past the time limit"
    if "DeadKernelError" in text or "Kernel died" in text:
        return "failed", "the kernel died while running the notebook (the code crashed or exited Python)"
    if "CellTimeoutError" in text:
        return "timeout", "a cell ran past the time limit"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("[")]
    return "failed", (lines[-1] if lines else "nbgrader could not grade this submission")[:300]


def _timed_out_cells(path: Path) -> list[int]:
    nb = nbformat.read(path, as_version=4)
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and any(
        out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError"
        for out in cell.get("outputs", []))]


def _merge_into(main_url: str, job_url: str, assignment: str, student: str) -> list[dict]:
    """Copy one job's grades into the main gradebook; return its per-test rows."""
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(job_url) as source, Gradebook(main_url) as target:
        submission = source.find_submission(assignment, student)
        target.update_or_create_student(student)
        target.update_or_create_submission(assignment, student, timestamp=submission.timestamp)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                merged = target.find_grade(grade.name, notebook.name, assignment, student)
                merged.auto_score = grade.auto_score
                merged.needs_manual_grade = grade.needs_manual_grade
                rows.append({"student": student, "assignment": assignment, "notebook": notebook.name,
                             "grade_id": grade.name, "score": grade.score, "max_score": grade.max_score})
            for comment in notebook.comments:
                target.find_comment(comment.name, notebook.name, assignment, student).auto_comment = comment.auto_comment
        target.db.commit()
    return rows


def _max_scores(db_url: str, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        return {nb.name: nb.max_score for nb in gb.find_assignment(assignment).notebooks}


def grade(submissions: Path, out: Path, workers: int = 1, timeout: int = 60) -> list[NotebookGrade]:
    """Grade every submission under ``submissions`` into ``out``; see the module docstring."""
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if workers < 1 or timeout < 1:
        raise InstructorError("--workers and --timeout must be at least 1.")
    pairs = _discover(submissions)
    if out == submissions or submissions in out.parents:
        raise InstructorError("--out must not be inside the submissions folder.")
    for sub in ("submitted", "autograded", "feedback", "release", "reference", "jobs", "logs"):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "gradebook.db").unlink(missing_ok=True)
    shutil.copytree(submissions, out / "submitted")
    (out / "jobs").mkdir(parents=True)
    (out / "logs").mkdir()

    main_url = f"sqlite:///{out / 'gradebook.db'}"
    assignments = sorted({a for _, a in pairs})
    release(assignments, release_dir=out / "release", db_url=main_url)
    max_scores = {a: _max_scores(main_url, a) for a in assignments}
    reuse_dirs = {a: _earlier_references(out, a) for a in assignments}

    grades, results, jobs = [], [], []
    for student, assignment in pairs:
        runnable = False
        folder = out / "submitted" / student / assignment
        for notebook in notebook_names(assignment):
            path = folder / f"{notebook}.ipynb"
            row = NotebookGrade(student, assignment, notebook, 0.0, max_scores[assignment][notebook], "")
            if not path.exists():
                found = sorted(p.name for p in folder.glob("*.ipynb"))
                row.status, row.reason = "missing", (f"no {notebook}.ipynb (found: {', '.join(found) or 'nothing'})")
            elif reason := _unreadable(path):
                row.status, row.reason = "failed", reason
                path.rename(path.with_suffix(".ipynb.unreadable"))  # keep it, but out of nbgrader's way
            else:
                runnable = True
            grades.append(row)
        if runnable:
            job_db = out / "jobs" / f"{student}__{assignment}.db"
            shutil.copyfile(out / "gradebook.db", job_db)
            jobs.append(Job(student, assignment, str(out), timeout, f"sqlite:///{job_db}",
                            str(reuse_dirs[assignment])))

    outcomes = _run_jobs(jobs, workers)
    for job, outcome in zip(jobs, outcomes):
        (out / "logs" / f"{job.student}__{job.assignment}.log").write_text(
            outcome["log"] + ("\n" + outcome["error"] if outcome["error"] else ""))
        pending = [g for g in grades if (g.student, g.assignment) == (job.student, job.assignment) and not g.status]
        if not outcome["success"]:
            status, reason = _failure_reason(outcome["log"], outcome["error"])
            for row in pending:
                row.status, row.reason = status, reason
            continue
        rows = _merge_into(main_url, job.db_url, job.assignment, job.student)
        results.extend(rows)
        for row in pending:
            row.score = sum(r["score"] for r in rows if r["notebook"] == row.notebook)
            timed_out = _timed_out_cells(out / "autograded" / job.student / job.assignment / f"{row.notebook}.ipynb")
            if timed_out:
                row.status = "timeout"
                row.reason = f"cell(s) {timed_out} ran past the {timeout} s limit and were interrupted"
            else:
                row.status = "graded"
    shutil.rmtree(out / "jobs")

    _write_outputs(out, grades, results)
    return grades


def _run_jobs(jobs: list[Job], workers: int) -> list[dict]:
    if workers == 1 or len(jobs) <= 1:
        return [_run_job(job) for job in jobs]
    context = multiprocessing.get_context("spawn")  # no forked copies of zmq/kernel state
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_run_job, job) for job in jobs]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as err:  # a worker process died: that job failed, the rest go on
                outcomes.append({"success": False, "log": "", "error": f"worker died: {type(err).__name__}: {err}"})
        return outcomes


def _write_outputs(out: Path, grades: list[NotebookGrade], results: list[dict]) -> None:
    with open(out / "grades.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=GRADES_COLUMNS)
        writer.writeheader()
        for row in grades:
            writer.writerow(dataclasses.asdict(row))
    (out / "results.json").write_text(json.dumps(results, indent=1))


def format_table(grades: list[NotebookGrade]) -> str:
    """The grade table the command prints."""
    lines = [f"{'student':<18}{'assignment':<16}{'score':>12}  {'status':<9}reason", "-" * 78]
    for g in grades:
        lines.append(f"{g.student:<18}{g.assignment:<16}{g.score:>6g} / {g.max_score:<4g}  {g.status:<9}{g.reason}")
    return "\n".join(lines)
