"""The hostile-submission corpus (tests/hostile/cases.toml), graded once with two workers.

Every case asserts its exact status, that its score is never above what the same code
earns honestly, that the honest students graded beside it keep their grades, that the
submissions folder is unchanged and that nothing in DIR holds a host file's text; a case
the intake refuses (a link, an invalid id) has no row and is named in the intake log.
The gradebook stays intact and agrees with grades.csv, whose cells never start a formula. Cases that need an isolation
mechanism this machine lacks (``autograder.jail.probe``) are skipped with the reason.
The last test kills a grading run from outside and checks that DIR shows the previous
run untouched and that no process of the killed run survives.
"""
import ast
import csv
import hashlib
import html
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import jail
from autograder.course import ROOT, InstructorError
from autograder.grade import _lock, grade
from autograder.submissions import filled_in, untouched, write_submission
from tests.hostile import corpus

pytestmark = pytest.mark.slow

SPECS = {spec["name"]: spec for spec in corpus.specs()}
HONEST_EXPECTED = {student: corpus.base_notebook(assignment, base)[1] for student, (assignment, base) in corpus.HONEST.items()}


def _tree(root: Path) -> dict:
    """Every entry under ``root``: a file's hash, a link's target, a folder's name (nothing followed)."""
    found = {}
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = (os.readlink(path) if path.is_symlink() else "dir" if path.is_dir()
                                                  else "fifo" if path.is_fifo() else hashlib.sha256(path.read_bytes()).hexdigest())
    return found


class Graded:
    def __init__(self, out: Path, cases: list, isolation: dict, placeholders: dict, secret: str,
                 submitted_before: dict, submitted_after: dict):
        self.out, self.isolation, self.placeholders = out, isolation, placeholders
        self.cases = {case.name: case for case in cases}
        self.submitted_before, self.submitted_after = submitted_before, submitted_after
        with open(out / "grades.csv", newline="") as handle:
            self.table = list(csv.reader(handle))
        with open(out / "grades.csv", newline="") as handle:
            self.rows = {row["student"]: row for row in csv.DictReader(handle)}
        self.intake = (out / "logs" / "intake.log").read_text()
        self.holding_secret = sorted(str(path.relative_to(out)) for path in out.rglob("*")
                                     if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes())

    def outputs(self, student: str, assignment: str) -> str:
        path = self.out / "autograded" / student / assignment / f"{assignment}.ipynb"
        if not path.exists():
            return ""
        nb = nbformat.read(path, 4)
        return json.dumps([c.get("outputs", []) for c in nb.cells])

    def feedback(self, student: str, assignment: str) -> str:
        path = self.out / "feedback" / student / assignment / f"{assignment}.html"
        return path.read_text() if path.exists() else ""


@pytest.fixture(scope="session")
def hostile(tmp_path_factory) -> Graded:
    root = tmp_path_factory.mktemp("hostile")
    with socket.socket() as listener:  # a service on the grading machine that student code must not reach
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        secret = secrets.token_hex(16)
        (root / "secret.txt").write_text(f"host secret {secret}\n")
        placeholders = {"ROOT": ROOT, "OUT": root / "out", "SUBMITTED": root / "submitted",
                        "MARKER": root / "marker-must-not-exist", "PORT": listener.getsockname()[1],
                        "SECRET": root / "secret.txt"}
        cases = corpus.build(root / "submitted", placeholders)
        before = _tree(root / "submitted")
        grade(root / "submitted", root / "out", workers=2, timeout=8, submission_timeout=40,
              limits=jail.Limits(memory_mb=1536, cpu_seconds=50))
    return Graded(root / "out", cases, jail.probe(), placeholders, secret, before, _tree(root / "submitted"))


def _applied(isolation: dict, mechanism: str) -> bool:
    return any(entry.startswith(mechanism) for entry in isolation["applied"])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hostile_submission(hostile, name):
    case = hostile.cases[name]
    required = case.spec.get("requires")
    if required and not _applied(hostile.isolation, required):
        pytest.skip(f"{required} is unavailable here: {jail.describe(hostile.isolation)}")
    assert hostile.submitted_after == hostile.submitted_before, "the submissions folder changed"
    assert not hostile.holding_secret, f"a host file's text reached {hostile.holding_secret}"
    for student, expected in HONEST_EXPECTED.items():  # the others' grades are untouched
        assert (hostile.rows[student]["status"], float(hostile.rows[student]["score"])) == ("graded", expected)
    if case.spec.get("refused"):
        assert case.student not in hostile.rows and not any(r["student"].strip("'") == case.student for r in hostile.rows.values())
        assert ascii(case.student) in hostile.intake
        return
    row = hostile.rows[name]
    score = float(row["score"])
    assert (row["status"], score) == (case.status, case.score), row["reason"]
    assert score <= case.honest and float(row["max_score"]) == case.max_score
    assert case.spec.get("reason", "") in row["reason"]
    if case.spec.get("leak") == "marker":
        assert "LEAKED" not in hostile.outputs(name, case.assignment)
        assert "blocked" in hostile.outputs(name, case.assignment)
    if case.spec.get("leak") == "hidden":
        from tests.test_grading import hidden_test_lines
        shown = hostile.outputs(name, case.assignment) + hostile.feedback(name, case.assignment)
        leaked = [line for line in hidden_test_lines(case.assignment) if line in shown]
        assert not leaked, leaked[:3]
    if case.spec.get("leak") == "inputs":
        from tests.test_grading import hidden_test_lines
        from tests.test_release import released_text
        hidden = "\n".join(hidden_test_lines(case.assignment))
        released = released_text(case.assignment) + "".join(p.read_text() for p in (ROOT / "course_utils").glob("*.py"))
        shown = hostile.outputs(name, case.assignment) + hostile.feedback(name, case.assignment)
        for value in case.spec["inputs"]:
            assert value in hidden and value not in released, f"{value!r} is not an input only hidden tests pass"
            written = repr(ast.literal_eval(value))
            for form in (value, written, html.escape(written), json.dumps(written)[1:-1]):
                assert form not in shown, f"the hidden input {value} reached the outputs or the feedback"
    if case.spec.get("leak") == "proof":
        shown = hostile.outputs(name, case.assignment) + hostile.feedback(name, case.assignment)
        assert "safe_path" not in shown and "secret" not in shown
    if case.spec.get("leak") == "script":
        page = hostile.feedback(name, case.assignment)
        assert page and "alert(" not in page and "script-src 'none'" in page
    for text in case.spec.get("absent", []):
        assert text not in hostile.outputs(name, case.assignment) + hostile.feedback(name, case.assignment) + row["reason"]
    for path in case.spec.get("host_absent", []):
        assert not Path(path.format(**hostile.placeholders)).exists()
    for path in case.spec.get("host_present", []):
        assert Path(path.format(**hostile.placeholders)).exists()


def test_grades_csv_has_one_row_per_notebook_and_no_formula(hostile):
    header, *rows = hostile.table
    assert header == ["student", "assignment", "notebook", "score", "max_score", "status", "reason"]
    graded = [case for case in hostile.cases.values() if not case.spec.get("refused")]
    assert len(rows) == len(graded) + len(HONEST_EXPECTED) and all(len(row) == len(header) for row in rows)
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@")]


def test_what_students_get_back_carries_no_clock(hostile):
    """No execution timestamps in a graded notebook and one time on every file returned: either
    would date the end of a job's hidden tests, which a student's later job can time."""
    returned = [p for folder in ("autograded", "feedback") for p in (hostile.out / folder).resolve().rglob("*")]
    assert returned and len({p.lstat().st_mtime for p in returned}) == 1
    for path in (p for p in returned if p.suffix == ".ipynb"):
        assert not [c for c in nbformat.read(path, 4).cells if "execution" in c.get("metadata", {})], path


def test_gradebook_is_intact_and_agrees_with_grades_csv(hostile):
    with sqlite3.connect(hostile.out / "gradebook.db") as db:
        assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{hostile.out / 'gradebook.db'}") as gb:
        for student, row in hostile.rows.items():
            if row["status"] in ("missing",) or (row["status"] == "failed" and "exit status" not in row["reason"]):
                continue
            assert gb.find_submission(row["assignment"], student).score == float(row["score"]), student


def test_output_is_bounded_and_the_grader_says_how_student_code_is_isolated(hostile):
    from autograder.guard import NOTEBOOK_FIGURE_BYTES

    def size(student):
        return (hostile.out / "autograded" / student / "01_notation" / "01_notation.ipynb").stat().st_size

    assert size("huge-output") < 2 * 2**20
    assert "output cut" in hostile.outputs("huge-output", "01_notation")
    for student in ("output-limit-patched", "output-capture-replaced", "output-many-calls"):
        assert size(student) < 2 * 2**20, student           # the kernel's cap, whatever the jail does
        assert "output cut" in hostile.outputs(student, "01_notation"), student
    figures = hostile.outputs("figure-flood", "01_notation")
    assert size("figure-flood") < 2 * NOTEBOOK_FIGURE_BYTES and "alert(" not in figures and "image/png" in figures
    assert (hostile.out / "isolation.txt").read_text().startswith("Isolation of student code: ")


def _processes_of(run: Path) -> list[int]:
    marker = f"COURSE_GRADING_RUN={run}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def test_a_run_killed_from_outside_leaves_the_previous_results_and_no_process(tmp_path):
    first, second, out = tmp_path / "first", tmp_path / "second", tmp_path / "out"
    write_submission(first, "alice", "01_notation", "01_notation", untouched("01_notation", "01_notation"))
    grade(first, out, workers=1, timeout=60)
    before = {name: (out / name).read_bytes() for name in ("grades.csv", "results.json", "gradebook.db")}
    current = os.readlink(out / "current")

    slow = filled_in("01_notation", "01_notation")
    slow.cells.append(nbformat.v4.new_code_cell("import time\ntime.sleep(300)"))
    for student in ("carol", "dave"):
        write_submission(second, student, "01_notation", "01_notation", slow)
    process = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(second), "--out", str(out),
                                "--workers", "2"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, run = time.monotonic() + 300, None
    while run is None and time.monotonic() < deadline:  # wait until student code of the new run is running
        for candidate in (r for r in (out / "runs").iterdir() if r.name != Path(current).name):
            if any('"event": "jail"' in e.read_text() for e in candidate.glob("jobs/*/events.jsonl")):
                run = candidate
        time.sleep(0.5)
    assert run is not None, "the second run never started student code"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    assert os.readlink(out / "current") == current
    assert {name: (out / name).read_bytes() for name in before} == before
    deadline = time.monotonic() + 30
    while _processes_of(run) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _processes_of(run), "processes of the killed run survived"
    # The killed grader's workers hold DIR/.lock until the kernel has torn them down, which may take a moment.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            _lock(out).close()                     # the grader's own lock, taken and given back
            break
        except InstructorError:
            time.sleep(0.5)

    grade(first, out, workers=1, timeout=60)
    assert not run.exists(), "the next run removes what the killed one left"


def _change_kernel_arguments(monkeypatch, change) -> None:
    """Grade with the grading kernel's command-line arguments passed through ``change``."""
    import autograder.grade as grading

    configure = grading._config_for

    def changed(job):
        config = configure(job)
        config.Execute.extra_arguments = change(config.Execute.extra_arguments)
        return config

    monkeypatch.setattr(grading, "_config_for", changed)


def test_grading_refuses_a_kernel_without_the_guard(tmp_path, monkeypatch):
    """If the kernel did not load autograder.guard, no student code may run in it: the job fails."""
    _change_kernel_arguments(monkeypatch, lambda arguments: [a for a in arguments if "guard" not in a])
    write_submission(tmp_path / "subs", "mallory", "01_notation", "01_notation", filled_in("01_notation", "01_notation"))
    [row] = grade(tmp_path / "subs", tmp_path / "out", workers=1, timeout=30)
    assert (row.status, row.score) == ("failed", 0) and "autograder.guard" in row.reason


def _kernels_that_die_at_start(tmp_path, monkeypatch, times: int) -> Path:
    """The grading kernel exits while it starts, before its first reply, the first `times` times (a real
    kernel process that dies, as one did once in CI); returns the file that counts the starts. The kernel
    is started through a script that counts, then runs ipykernel_launcher as the grader would."""
    from autograder.execute import IsolatedKernelManager

    starts, script = tmp_path / "kernel_starts.txt", tmp_path / "dies_at_start.py"
    script.write_text(
        "import os, pathlib, runpy\n"
        f"STARTS = pathlib.Path({str(starts)!r})\n"
        "count = int(STARTS.read_text()) if STARTS.exists() else 0\n"
        "STARTS.write_text(str(count + 1))\n"
        f"if count < {times}:\n"
        "    os._exit(3)\n"
        "runpy.run_module('ipykernel_launcher', run_name='__main__')\n")
    launch = IsolatedKernelManager.format_kernel_cmd

    def dying(self, extra_arguments=None):
        python, isolated, _, _, *arguments = launch(self, extra_arguments)   # python -I -m ipykernel_launcher ...
        return [python, isolated, str(script), *arguments]

    monkeypatch.setattr(IsolatedKernelManager, "format_kernel_cmd", dying)
    write_submission(tmp_path / "subs", "alice", "01_notation", "01_notation", filled_in("01_notation", "01_notation"))
    return starts


def test_a_kernel_that_dies_before_running_any_cell_is_started_again(tmp_path, monkeypatch):
    starts = _kernels_that_die_at_start(tmp_path, monkeypatch, times=2)
    [row] = grade(tmp_path / "subs", tmp_path / "out", workers=1, timeout=30)
    assert row.status == "graded" and row.score == row.max_score == HONEST_EXPECTED["honest-01"], row
    assert starts.read_text() == "3"
    log = (tmp_path / "out" / "logs" / "alice__01_notation.log").read_text()
    assert log.count("died before its first reply") == 2


def test_a_kernel_that_never_starts_fails_the_job_with_a_reason_that_says_so(tmp_path, monkeypatch):
    from autograder.execute import KERNEL_STARTS

    starts = _kernels_that_die_at_start(tmp_path, monkeypatch, times=KERNEL_STARTS)
    [row] = grade(tmp_path / "subs", tmp_path / "out", workers=1, timeout=30)
    assert (row.status, row.score) == ("failed", 0), row
    assert "died before running any cell" in row.reason and "grade this submission again" in row.reason
    assert starts.read_text() == str(KERNEL_STARTS)


def test_a_grader_that_fails_midway_starts_no_more_jobs(tmp_path, monkeypatch):
    """Jobs are merged while later ones run; if a merge fails, the jobs not started yet are dropped."""
    import autograder.grade as grading

    def failing_merge(*args):
        raise RuntimeError("merge failed")

    monkeypatch.setattr(grading, "_merge_into", failing_merge)
    students = [f"student{k}" for k in range(8)]
    for student in students:
        write_submission(tmp_path / "subs", student, "01_notation", "01_notation", filled_in("01_notation", "01_notation"))
    with pytest.raises(RuntimeError, match="merge failed"):
        grade(tmp_path / "subs", tmp_path / "out", workers=2, timeout=30)
    [run] = (tmp_path / "out" / "runs").iterdir()
    graded = [p.name for p in (run / "autograded").iterdir()]
    assert 0 < len(graded) < len(students), f"jobs that ran after the failure: {graded}"


def test_verdicts_do_not_depend_on_the_machines_load(tmp_path):
    """Cases whose verdict a clock could decide get the status and score they get on an idle machine
    while every core is busy: the per-cell limit counts the student's CPU time, not the wall clock."""
    names = {"memory-bomb", "infinite-loop", "fork-bomb", "huge-output", "os-exit"}
    placeholders = {"ROOT": ROOT, "OUT": tmp_path / "out", "SUBMITTED": tmp_path / "submitted",
                    "MARKER": tmp_path / "marker", "PORT": 9, "SECRET": tmp_path / "secret.txt"}
    cases = corpus.build(tmp_path / "submitted", placeholders, only=names)
    assert {case.name for case in cases} == names
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))]
    try:
        rows = grade(tmp_path / "submitted", tmp_path / "out", workers=2, timeout=8, submission_timeout=300,
                     limits=jail.Limits(memory_mb=1536, cpu_seconds=300))
    finally:
        for process in busy:
            process.kill()
            process.wait()
    got = {row.student: (row.status, row.score) for row in rows}
    isolation = jail.probe()
    for case in cases:
        if case.spec.get("requires") and not _applied(isolation, case.spec["requires"]):
            continue
        assert got[case.name] == (case.status, case.score), (case.name, [r.reason for r in rows if r.student == case.name])
    for student, expected in HONEST_EXPECTED.items():
        assert got[student] == ("graded", expected)
