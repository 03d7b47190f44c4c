"""``python -m autograder grade SUBMISSIONS --out DIR``: autograde a folder of submissions.

SUBMISSIONS is nbgrader's submitted layout, ``<student>/<assignment>/<notebook>.ipynb``.
DIR receives:

* ``grades.csv``: one row per student, assignment and notebook, with
  ``score,max_score,status,reason``. The status is ``graded``; ``failed`` (the
  notebook could not be read or is not this assignment's, or the student's code ended
  the process that runs it: the reason says which); ``timeout`` (a cell ran past
  ``--timeout``, or the submission past ``--submission-timeout``); ``tampered`` (a
  locked cell was removed or its nbgrader metadata changed, see
  ``autograder.integrity``; it is graded as it is, so tampering never raises a score);
  or ``missing`` (no notebook of that name);
* ``results.json``: one row per test cell (``grade_id``, ``score``, ``max_score``);
* ``feedback/<student>/<assignment>/<notebook>.html``: visible tests' results; for
  hidden tests only passed/failed and a hint (``autograder.feedback``);
* ``gradebook.db`` (nbgrader's SQLite gradebook), ``autograded/``, ``logs/`` (nbgrader's
  log and the event log of each job), ``isolation.txt`` (what confines student code).

How it runs. The submissions are copied (the originals are never touched), each
notebook is checked against the release (``autograder.integrity``), the assignment is
generated from solutions/ (which defines it in the gradebook), and each
(student, assignment) is one job in a pool of ``--workers`` processes, forked once the
grader has imported nbgrader, so no job pays its start-up. A job autogrades through
nbgrader's Python API into a private copy of the gradebook. Its kernel runs only the
release's locked cells (``autograder.guard``); the student's cells and functions run in a
jail (``autograder.jail``: own user, private file system, no network, process and
resource limits) that cannot see solutions/, DIR (gradebook, other students'
submissions, hidden tests) or the host's /tmp. ``autograder.execute`` bounds each
submission's wall-clock time; a watchdog in the worker kills a kernel that outlives it.

Writing. Everything is produced in ``DIR/runs/<run>/``, and only this process writes
there: it merges each job's grades into the run's gradebook after the job. When all
jobs are done, the symbolic link ``DIR/current`` is switched to the new run in one
atomic rename, and ``DIR/grades.csv``, ``DIR/gradebook.db`` and the other names are
links through it. A run killed from outside therefore changes nothing that DIR shows:
no half-written notebook, no mix of old and new scores (the next run removes its
leftovers). Assignments that reuse functions of earlier ones (``course_utils.reuse``)
get the filled-in references of the *earlier* assignments only, in
``reference/<assignment>/``, which their jail may read.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import ctypes
import dataclasses
import fcntl
import json
import multiprocessing
import os
import random
import shutil
import re
import secrets
import signal
import stat
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import nbformat
from sqlalchemy.exc import SAWarning

from course_utils.reuse import REUSE_DIR_VARIABLE

from . import integrity, jail
from .course import (ASSIGNMENTS, InstructorError, assignment_names, nbgrader_api, nbgrader_config,
                     nbgrader_meta, notebook_names)
from .guard import HIDDEN_BEGIN, PROBE, PROOF_VARIABLE, SPEC_VARIABLE
from .release import release
from .submissions import filled_in

# Student ids and assignment names: 1 to 64 letters, digits, ".", "_" or "-", first a letter or digit.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
GRADES_COLUMNS = ["student", "assignment", "notebook", "score", "max_score", "status", "reason"]
RESULTS_COLUMNS = ["student", "assignment", "notebook", "grade_id", "score", "max_score"]
OUTPUTS = ("grades.csv", "results.json", "gradebook.db", "feedback", "autograded", "submitted",
           "release", "reference", "logs", "isolation.txt")
RUN_VARIABLE = "COURSE_GRADING_RUN"
WATCHDOG_GRACE = 30  # seconds past the submission limit before the worker kills the kernel

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
    run: str              # DIR/runs/<run>
    folder: str           # DIR/runs/<run>/jobs/<student>__<assignment>: spec, events, jail scratch
    timeout: int
    submission_timeout: int
    db_url: str
    reuse_dir: str
    secret: str           # the guard's proof that it is the course's (autograder.execute)


def _discover(submissions: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """The (student, assignment) folders to grade, and a line for each entry refused.

    Only real folders count (``lstat``: a link is refused, never followed), and only names
    of ``NAME`` (student ids; assignment names must also be the course's). Names that
    begin with a dot are skipped. The refused entries are shown by their ``ascii()``."""
    if not submissions.is_dir():
        raise InstructorError(f"Submissions folder {submissions} does not exist. Expected the layout "
                              "SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb.")
    known = set(assignment_names())
    pairs, refused = [], []
    for student in sorted(os.scandir(submissions), key=lambda e: e.name):
        if student.name.startswith("."):
            continue
        why = _refusal(student, "student id")
        if why:
            refused.append(f"{ascii(student.name)}: {why}")
            continue
        for assignment in sorted(os.scandir(student.path), key=lambda e: e.name):
            if assignment.name.startswith("."):
                continue
            why = _refusal(assignment, "assignment") or ("" if assignment.name in known else (
                f"not an assignment of this course (known: {', '.join(sorted(known))})"))
            if why:
                refused.append(f"{ascii(student.name)}/{ascii(assignment.name)}: {why}")
                continue
            pairs.append((student.name, assignment.name))
    if not pairs:
        raise InstructorError(f"No submissions found in {submissions}: expected "
                              "SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb." +
                              "".join(f"\n  refused {line}" for line in refused))
    return pairs, refused


def _refusal(entry: os.DirEntry, what: str) -> str:
    """Why a folder of the submissions may not be graded ("" if it may)."""
    if entry.is_symlink():
        return "a symbolic link, not a folder (links are never followed)"
    if not entry.is_dir(follow_symlinks=False):
        return "not a folder"
    if not NAME.fullmatch(entry.name):
        return (f"not a valid {what}: use 1 to 64 letters, digits, '.', '_' or '-', "
                "beginning with a letter or digit")
    return ""


def _take_notebook(folder: Path, notebook: str, target: Path, max_bytes: int) -> tuple[str, list[str]]:
    """Copy ``folder/<notebook>.ipynb`` to ``target`` if it is a regular file (never through a link);
    return ("" or why it was not taken, a note for each other entry of the folder, which is dropped)."""
    name = f"{notebook}.ipynb"
    try:
        directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as err:   # unreadable, or replaced since it was listed
        return f"the folder could not be read ({err.strerror})", []
    try:
        others = sorted(e.name + ("/" if e.is_dir(follow_symlinks=False) else "")
                        for e in os.scandir(directory) if e.name != name)
        notes = [f"ignored beside the notebook (only {name} is graded): "
                 + ", ".join(ascii(n)[1:-1] for n in others[:10]) + (f" and {len(others) - 10} more" if len(others) > 10 else "")
                 ] if others else []
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
        except FileNotFoundError:
            return "missing", notes
        except OSError:   # ELOOP: the name is a link
            return f"{name} is a symbolic link, not the notebook itself: submit the file", notes
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return f"{name} is not a regular file: submit the notebook file itself", notes
            data = handle.read(max_bytes + 1)
    finally:
        os.close(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(_inside(target, target.parents[2]), "xb") as out:
        out.write(data)
    return "", notes


def _inside(path: Path, run: Path) -> Path:
    """``path``, after checking that it lies inside ``run`` once resolved (every path the grader
    writes from a submission's names goes through here)."""
    if not path.resolve().is_relative_to(run.resolve()):
        raise InstructorError(f"refused to write {path}: outside {run}")
    return path


def _config_for(job: Job):
    run = Path(job.run)
    config = nbgrader_config(
        submitted_directory=run / "submitted", autograded_directory=run / "autograded",
        feedback_directory=run / "feedback", release_directory=run / "release", db_url=job.db_url)
    config.Execute.timeout = job.timeout
    config.GuardedExecute.submission_timeout = job.submission_timeout
    config.GuardedExecute.kernel_directory = str(Path(job.folder) / "kernel")
    config.GuardedExecute.secret = job.secret
    config.GuardedExecute.untrusted = job.run
    config.Execute.extra_arguments = [*config.Execute.get("extra_arguments", []),
                                      "--IPKernelApp.extensions=autograder.guard"]
    config.Autograde.autograde_preprocessors = [
        "autograder.execute.GuardedExecute", "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata"]
    return config


def _start_worker() -> None:
    """Pool initializer: a worker dies when the grader dies (its kernels and jails follow)."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _kill_kernel(events: Path, spec: str) -> None:
    """The watchdog: kill the job's kernel (found through the guard's pid), if it is still ours."""
    pids = [e["pid"] for e in _read_events(events) if e["event"] == "guard"]
    if pids:
        with contextlib.suppress(OSError):
            if f"{SPEC_VARIABLE}={spec}".encode() in Path(f"/proc/{pids[-1]}/environ").read_bytes():
                os.kill(pids[-1], signal.SIGKILL)


_zygote: jail.Zygote | None = None  # one per grading run, shared by its workers (see autograder.jail.Zygote)


def _start_zygote() -> None:
    global _zygote
    if _zygote is None and os.environ.get("COURSE_BACKEND", "numpy") == "numpy":
        _zygote = jail.Zygote()
        os.environ[jail.ZYGOTE_VARIABLE] = _zygote.path


def _stop_zygote() -> None:
    global _zygote
    if _zygote is not None:
        _zygote.stop()
        _zygote = None


def _run_job(job: Job) -> dict:
    """Autograde and write feedback for one submission (runs in a worker process)."""
    folder = Path(job.folder)
    spec = str(folder / "spec.json")
    os.environ[REUSE_DIR_VARIABLE] = job.reuse_dir  # for the kernel (the jail gets its own copy)
    os.environ[SPEC_VARIABLE] = spec
    os.environ[PROOF_VARIABLE] = job.secret
    fired = threading.Event()

    def on_deadline():
        fired.set()
        _kill_kernel(folder / "events.jsonl", spec)

    watchdog = threading.Timer(job.submission_timeout + WATCHDOG_GRACE, on_deadline)
    watchdog.start()
    try:
        api = nbgrader_api(_config_for(job))
        result = api.autograde(job.assignment, job.student, force=True, create=True)
        if result["success"]:
            feedback = api.generate_feedback(job.assignment, job.student, force=True)
            if not feedback["success"]:
                result["log"] += "\n" + feedback["log"]
        outcome = {"success": result["success"], "log": result.get("log", ""), "error": result.get("error", "")}
    except Exception as err:  # one broken job must not stop the pool
        outcome = {"success": False, "log": "", "error": f"{type(err).__name__}: {err}"}
    finally:
        watchdog.cancel()
        os.environ.pop(REUSE_DIR_VARIABLE, None)
        os.environ.pop(SPEC_VARIABLE, None)
        os.environ.pop(PROOF_VARIABLE, None)
    outcome["watchdog"] = fired.is_set()
    return outcome


def _read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return events


def _earlier_references(run: Path, assignment: str) -> Path:
    """reference/<assignment>/: the filled-in reference notebooks of the assignments before it."""
    folder = run / "reference" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for earlier in assignment_names():
        if earlier >= assignment:
            break
        for notebook in notebook_names(earlier):
            path = folder / earlier / f"{notebook}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(filled_in(earlier, notebook), path)
    return folder


def _guard_spec(run: Path, assignment: str, db_url: str) -> dict:
    """What the kernel's guard trusts: the locked cells as nbgrader restores them, and the exercise names."""
    from nbgrader.api import Gradebook

    trusted, exercises = [{"source": PROBE, "kind": "probe"}], []
    with Gradebook(db_url) as gb:
        for notebook in gb.find_assignment(assignment).notebooks:
            grade_ids = {cell.name for cell in notebook.grade_cells}
            trusted += [{"source": cell.source, "kind": "test" if cell.name in grade_ids else "given"}
                        for cell in notebook.source_cells if cell.locked and cell.cell_type == "code"]
    notebook_tests = []   # per notebook, the sources of its test cells: the epilogue follows the last
    for notebook in notebook_names(assignment):
        released = nbformat.read(run / "release" / assignment / f"{notebook}.ipynb", as_version=4)
        tests = [c.metadata.nbgrader.grade_id for c in released.cells if nbgrader_meta(c).get("grade")]
        with Gradebook(db_url) as gb:
            notebook_tests += [[gb.find_source_cell(test, notebook, assignment).source for test in tests]]
        trusted += [{"source": c.source, "kind": "test" if c.metadata.nbgrader.get("grade") else "given"}
                    for c in released.cells if c.cell_type == "code" and nbgrader_meta(c).get("locked")]
        exercises += [name for c in released.cells if nbgrader_meta(c).get("solution")
                      for name in _defined_functions(c.source)]
    for cell in trusted:
        if cell["kind"] == "test" and any(line.strip() == HIDDEN_BEGIN and line != line.lstrip()
                                          for line in cell["source"].splitlines()):
            raise InstructorError(f"A test cell of {assignment} has an indented '{HIDDEN_BEGIN}': hidden tests "
                                  "run apart from the cell, so each block must start at the cell's top level.")
    return {"trusted": trusted, "exercises": sorted(set(exercises)), "notebook_tests": notebook_tests}


def _defined_functions(source: str) -> list[str]:
    import ast
    try:
        return [n.name for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    except SyntaxError:
        return []


def _failure_reason(log: str, error: str) -> tuple[str, str]:
    """(status, reason) for a job nbgrader could not finish, from its log."""
    from .execute import DIED_AT_START, KERNEL_STARTS  # here, not above: it imports nbgrader's preprocessors

    text = f"{log}\n{error}"
    if "GuardMissing" in text:
        return "failed", ("grader error: the grading kernel did not prove it runs the course's guard "
                          "(autograder.guard; see the job's log)")
    if "UnresponsiveKernelError" in text or "kernel became unresponsive" in text:
        return "timeout", "the kernel stopped responding after a cell ran past the time limit"
    if DIED_AT_START in text:
        return "failed", (f"the grading kernel died before running any cell, {KERNEL_STARTS} times in a row "
                          "(see the job's log; grade this submission again)")
    if "DeadKernelError" in text or "Kernel died" in text:
        return "failed", "the kernel died while running the notebook"
    if "CellTimeoutError" in text:
        return "timeout", "a cell ran past the time limit"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("[")]
    return "failed", (lines[-1] if lines else "nbgrader could not grade this submission")[:300]


def _run_problems(path: Path, events: list[dict], timeout: int, submission_timeout: int) -> tuple[str, list[str]]:
    """(status, reasons) from the graded notebook's errors and the job's event log."""
    from .execute import WALL_FACTOR

    nb = nbformat.read(path, as_version=4)
    errors = {i: [o.get("ename") for o in c.get("outputs", []) if o.get("output_type") == "error"]
              for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    reasons, status = [], "graded"
    for event in events:
        if event["event"] in ("died", "broken", "jail failed"):
            status = "failed"
            reasons.append({"died": "your code ended the Python process running it " + jail.exit_text(event.get("code")),
                            "broken": "your code broke the grader's connection to it",
                            "jail failed": "grader error: the jail for student code did not start"}[event["event"]])
        elif event["event"] == "killed":
            status = "timeout" if status == "graded" else status
            reasons.append(f"a cell ran past its {WALL_FACTOR * timeout} s wall-clock limit and your code ignored "
                           "the interrupt, so it was killed")
        elif event["event"] == "cpu limit" and not any("CPU time" in r for r in reasons):
            status = "timeout" if status == "graded" else status
            reasons.append(f"your code ran past the {timeout} s limit of CPU time in a cell and was stopped")
    interrupted = [i for i, names in errors.items() if "CellTimeoutError" in names]
    skipped = [i for i, names in errors.items() if "SubmissionTimeout" in names]
    hidden = [i for i, names in errors.items() if "HiddenTestsTimeout" in names]
    if hidden:
        reasons.append(f"the hidden tests of cell(s) {hidden} ran past their time limit")
    if interrupted and not any("ignored the interrupt" in r for r in reasons):
        reasons.append(f"cell(s) {interrupted} ran past the {WALL_FACTOR * timeout} s wall-clock limit "
                       "and were interrupted")
    if skipped:
        reasons.append(f"the submission used up its {submission_timeout} s limit; cell(s) {skipped} did not run")
    if (interrupted or skipped or hidden) and status == "graded":
        status = "timeout"
    return status, reasons


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


def _lock(out: Path):
    """Hold DIR/.lock for the whole run: two runs into one DIR would remove each other's work."""
    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / ".lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise InstructorError(f"Another grading run is writing into {out}; wait for it or use another --out.") from None
    return handle


def _new_run(out: Path) -> Path:
    """A fresh DIR/runs/<run>; leftovers of runs that were killed are removed first."""
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    current = (out / "current").resolve() if (out / "current").is_symlink() else None
    for old in runs.iterdir():
        if old.resolve() != current:
            shutil.rmtree(old, ignore_errors=True)
    run = runs / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run.mkdir()
    return run


def _publish(run: Path, out: Path) -> None:
    """Switch DIR/current to ``run`` in one rename; DIR's output names are links through it."""
    for name in OUTPUTS:
        link = out / name
        if not link.is_symlink():
            if link.is_dir():
                shutil.rmtree(link)
            link.unlink(missing_ok=True)
            link.symlink_to(Path("current") / name)
    previous = (out / "current").resolve() if (out / "current").is_symlink() else None
    staged = out / f".current-{os.getpid()}"
    staged.unlink(missing_ok=True)
    staged.symlink_to(Path("runs") / run.name)
    os.replace(staged, out / "current")
    if previous is not None and previous != run.resolve():
        shutil.rmtree(previous, ignore_errors=True)


def grade(submissions: Path, out: Path, workers: int = 1, timeout: int = 60, submission_timeout: int = 600,
          limits: jail.Limits | None = None, max_notebook_mb: float = 20) -> list[NotebookGrade]:
    """Grade every submission under ``submissions`` into ``out``; see the module docstring."""
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if workers < 1 or timeout < 1 or submission_timeout < 1:
        raise InstructorError("--workers, --timeout and --submission-timeout must be at least 1.")
    pairs, refused = _discover(submissions)
    if out == submissions or submissions in out.parents:
        raise InstructorError("--out must not be inside the submissions folder.")
    limits = limits or jail.Limits(cpu_seconds=submission_timeout + 10)
    with _lock(out):
        try:
            return _grade(pairs, refused, submissions, out, workers, timeout, submission_timeout, limits,
                          max_notebook_mb)
        finally:
            _stop_zygote()
            os.environ.pop(RUN_VARIABLE, None)


def _grade(pairs, refused, submissions, out, workers, timeout, submission_timeout, limits, max_notebook_mb):
    run = _new_run(out)
    os.environ[RUN_VARIABLE] = str(run)  # marks every process of this run (workers, kernels, jails)
    with _pool(min(workers, len(pairs))) as pool:
        return _grade_in(pool, run, pairs, refused, submissions, out, timeout, submission_timeout, limits,
                         max_notebook_mb)


def _grade_in(pool, run, pairs, refused, submissions, out, timeout, submission_timeout, limits, max_notebook_mb):
    started = time.time()
    isolation = jail.describe(jail.probe())
    print(isolation, file=sys.stderr)
    (run / "isolation.txt").write_text(isolation + "\n")
    (run / "submitted").mkdir()
    (run / "jobs").mkdir()
    (run / "logs").mkdir()
    (run / "logs" / "intake.log").write_text("".join(f"refused {line}\n" for line in refused))
    for line in refused:
        print(f"Not graded: {line}", file=sys.stderr)
    main_url = f"sqlite:///{run / 'gradebook.db'}"
    assignments = sorted({a for _, a in pairs})
    release(assignments, release_dir=run / "release", db_url=main_url)
    max_scores = {a: _max_scores(main_url, a) for a in assignments}
    reuse_dirs = {a: _earlier_references(run, a) for a in assignments}
    specs = {a: _guard_spec(run, a, main_url) for a in assignments}
    releases = {(a, n): nbformat.read(ASSIGNMENTS / a / f"{n}.ipynb", as_version=4)
                for a in assignment_names() for n in notebook_names(a)}

    grades, results, jobs, verdicts = [], [], [], {}
    max_bytes = int(max_notebook_mb * 2**20)
    for student, assignment in pairs:
        runnable = False
        folder = _inside(run / "submitted" / student / assignment, run)
        for notebook in notebook_names(assignment):
            path = folder / f"{notebook}.ipynb"
            row = NotebookGrade(student, assignment, notebook, 0.0, max_scores[assignment][notebook], "")
            grades.append(row)
            problem, notes = _take_notebook(submissions / student / assignment, notebook, path, max_bytes)
            if problem == "missing":
                found = sorted(ascii(p.name)[1:-1] for p in (submissions / student / assignment).glob("*.ipynb"))
                row.status, row.reason = "missing", "; ".join(
                    [f"no {notebook}.ipynb (found: {', '.join(found) or 'nothing'})", *notes])
                continue
            if problem:
                row.status, row.reason = "failed", "; ".join([problem, *notes])
                continue
            others = {a: nb for (a, n), nb in releases.items() if a != assignment}
            verdict = integrity.inspect(path, nbformat.read(run / "release" / assignment / f"{notebook}.ipynb", 4),
                                        assignment, others, max_notebook_mb)
            verdict.notes.extend(notes)
            verdicts[(student, assignment, notebook)] = verdict
            if verdict.notebook is None:
                row.status, row.reason = verdict.status, verdict.reason
                path.rename(path.with_suffix(".ipynb.rejected"))  # kept, but out of nbgrader's way
                continue
            nbformat.write(verdict.notebook, path)
            runnable = True
        if runnable:
            job_folder = _inside(run / "jobs" / f"{student}__{assignment}", run)
            job_folder.mkdir()
            (job_folder / "kernel").mkdir()   # the kernel's working folder: empty, the grader's
            shutil.copyfile(run / "gradebook.db", job_folder / "gradebook.db")
            (job_folder / "spec.json").write_text(json.dumps(specs[assignment] | {"cell_cpu": timeout,
                "events": str(job_folder / "events.jsonl"), "scratch": str(job_folder),
                "jail": {"seed": str(folder), "reference": str(reuse_dirs[assignment]),
                         "limits": dataclasses.asdict(limits), "env": {"NBGRADER_EXECUTION": "autograde"}}}))
            jobs.append(Job(student, assignment, str(run), str(job_folder), timeout, submission_timeout,
                            f"sqlite:///{job_folder / 'gradebook.db'}", str(reuse_dirs[assignment]),
                            secrets.token_hex(16)))

    for job, outcome in _run_jobs(jobs, pool):  # each job merged while the later ones run
        events_path = Path(job.folder) / "events.jsonl"
        events = _read_events(events_path)
        name = f"{job.student}__{job.assignment}"
        (run / "logs" / f"{name}.log").write_text(outcome["log"] + ("\n" + outcome["error"] if outcome["error"] else ""))
        if events_path.exists():
            shutil.copyfile(events_path, run / "logs" / f"{name}.events.jsonl")
        pending = [g for g in grades if (g.student, g.assignment) == (job.student, job.assignment) and not g.status]
        rows = _merge_into(main_url, job.db_url, job.assignment, job.student) if outcome["success"] else []
        results.extend(rows)
        for row in pending:
            verdict = verdicts[(row.student, row.assignment, row.notebook)]
            if outcome["success"]:
                row.score = sum(r["score"] for r in rows if r["notebook"] == row.notebook)
                status, reasons = _run_problems(run / "autograded" / job.student / job.assignment / f"{row.notebook}.ipynb",
                                                events, job.timeout, job.submission_timeout)
            elif outcome["watchdog"]:
                status, reasons = "timeout", [f"the submission ran past its {job.submission_timeout} s limit and was stopped"]
            else:
                status, reason = _failure_reason(outcome["log"], outcome["error"])
                reasons = [reason]
            row.status = verdict.status or status
            row.reason = _plain("; ".join(verdict.reasons + reasons + verdict.notes))
    shutil.rmtree(run / "jobs")
    for folder in (run / "autograded", run / "feedback"):   # a file's time would date its job's hidden tests
        for path in [folder, *folder.rglob("*")] if folder.exists() else []:
            os.utime(path, (started, started), follow_symlinks=False)

    results.sort(key=lambda row: (row["student"], row["assignment"]))   # stable: each notebook's in its order
    _write_outputs(run, grades, results)
    _publish(run, out)
    return grades


@contextlib.contextmanager
def _pool(workers: int):
    """The worker processes; ``None`` for one worker (jobs then run in this process). The jails'
    zygote starts first, for all workers, and imports while the run is prepared. Workers are
    forked, not spawned: a spawned worker imports nbgrader again (seconds of CPU each), and
    forking is safe here because this process has started no thread, kernel or database
    connection yet (the grader runs on Linux, as its jail does)."""
    _start_zygote()
    if workers == 1:
        yield None
        return
    import nbgrader.apps  # noqa: F401  (imported once, here, for every worker)
    fork = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=fork, initializer=_start_worker) as pool:
        pool.submit(int)  # the pool forks all its workers at the first submission: now
        try:
            yield pool
        except BaseException:  # the grader fails or is interrupted: jobs not started yet never start
            pool.shutdown(cancel_futures=True)
            raise


def _run_jobs(jobs: list[Job], pool) -> Iterator[tuple[Job, dict]]:
    """(job, outcome) for each job, in a random order, each as soon as it and those before it are
    done. Random: a student's later job, timing its own cells, would otherwise know which job ran
    just before it on that worker (and so how long that job's hidden tests took)."""
    jobs = list(jobs)
    random.SystemRandom().shuffle(jobs)
    if pool is None:
        yield from ((job, _run_job(job)) for job in jobs)
        return
    for job, future in [(job, pool.submit(_run_job, job)) for job in jobs]:
        try:
            outcome = future.result()
        except Exception as err:  # a worker process died: that job failed, the rest go on
            outcome = {"success": False, "log": "", "error": f"worker died: {type(err).__name__}: {err}",
                       "watchdog": False}
        yield job, outcome


def _plain(text: str) -> str:
    """One line of printable text (a reason may quote what a submission holds)."""
    return "".join(c if c.isprintable() else " " for c in text)[:2000]


def _cell(value):
    """A CSV cell a spreadsheet shows as text: one that would begin a formula gets a leading '."""
    if isinstance(value, str):
        value = _plain(value)
        return "'" + value if value[:1] in ("=", "+", "-", "@") else value
    return value


def _write_outputs(run: Path, grades: list[NotebookGrade], results: list[dict]) -> None:
    with open(run / "grades.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=GRADES_COLUMNS)
        writer.writeheader()
        for row in grades:
            writer.writerow({key: _cell(value) for key, value in dataclasses.asdict(row).items()})
    (run / "results.json").write_text(json.dumps(results, indent=1))


def format_table(grades: list[NotebookGrade]) -> str:
    """The grade table the command prints."""
    lines = [f"{'student':<18}{'assignment':<16}{'score':>12}  {'status':<9}reason", "-" * 78]
    for g in grades:
        lines.append(f"{g.student:<18}{g.assignment:<16}{g.score:>6g} / {g.max_score:<4g}  {g.status:<9}{g.reason}")
    return "\n".join(lines)
