"""``python -m autograder mutants``: are the graders themselves good enough?

Every assignment catalogues its typical student bugs in ``solutions/<assignment>/bugs.toml``
(each a find-and-replace in one exercise, and the test cell that must catch it; see
``autograder.submissions``). This command gathers them into one catalogue, makes one
submission per bug (the reference solution with that bug) plus the reference itself,
grades them all, and prints per exercise function how many of its bugs were caught: a
bug is caught when the test cell meant for it scores 0 while the reference scores full
marks there. It also shows bugs that cost points on other tests too (a mistake graded
twice), and functions whose catalogue is thinner than ``MINIMUM`` bugs (``BACKWARD_MINIMUM``
for backward passes). The exit status is 1 unless every bug is caught.

Submissions and grades go under ``grading/mutants/`` (git-ignored) unless ``--out`` says
otherwise. The shared test fixture (tests/conftest.py) grades the same submissions under
the same names, so tests/test_mutants.py checks the table without grading twice.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from .course import ROOT, assignment_names, notebook_names
from .submissions import Bug, exercises, filled_in, load_bugs, write_submission

MINIMUM, BACKWARD_MINIMUM = 3, 4
REFERENCE = "solution"


def bug_student(bug: Bug) -> str:
    return f"bug-{bug.id}"


def catalogue() -> list[tuple[str, Bug]]:
    """Every catalogued bug of the course, as (assignment, bug), in course order."""
    return [(assignment, bug) for assignment in assignment_names() for bug in load_bugs(assignment)]


def write_submissions(root: Path) -> None:
    """The reference and one submission per catalogued bug, in nbgrader's submitted layout."""
    for assignment, bug in catalogue():
        for notebook in notebook_names(assignment):
            write_submission(root, bug_student(bug), assignment, notebook, filled_in(assignment, notebook, bug=bug))
    for assignment in assignment_names():
        for notebook in notebook_names(assignment):
            write_submission(root, REFERENCE, assignment, notebook, filled_in(assignment, notebook))


@dataclasses.dataclass
class Row:
    assignment: str
    function: str
    bugs: int = 0
    caught: int = 0
    also_elsewhere: int = 0   # caught, but also lost points on another test
    missed: tuple = ()

    @property
    def minimum(self) -> int:
        return BACKWARD_MINIMUM if "backward" in self.function else MINIMUM


def summarize(results: list[dict]) -> list[Row]:
    """Per exercise function, from results.json rows (student, assignment, grade_id, score, max_score)."""
    scores = {}
    for r in results:
        scores.setdefault((r["student"], r["assignment"]), {})[r["grade_id"]] = (r["score"], r["max_score"])
    rows = {(assignment, function): Row(assignment, function)  # every exercise, catalogued or not
            for assignment in assignment_names() for function in exercises(assignment)}
    for assignment, bug in catalogue():
        row = rows.setdefault((assignment, bug.cell), Row(assignment, bug.cell))
        row.bugs += 1
        got = scores.get((bug_student(bug), assignment), {})
        reference = scores.get((REFERENCE, assignment), {})
        target = got.get(bug.test)
        if target is not None and target[0] == 0 < target[1] and reference.get(bug.test, (0,))[0] == target[1]:
            row.caught += 1
            if any(got[k] != reference.get(k) for k in got if k != bug.test):
                row.also_elsewhere += 1
        else:
            row.missed += (bug.id,)
    return list(rows.values())


def format_summary(rows: list[Row]) -> str:
    lines = [f"{'assignment':<16}{'function':<30}{'caught':>12}  {'also other tests':>16}  note", "-" * 90]
    for r in rows:
        note = (f"MISSED: {', '.join(r.missed)}" if r.missed else "") + (
            f"{'; ' if r.missed else ''}catalogue below the minimum of {r.minimum}" if r.bugs < r.minimum else "")
        lines.append(f"{r.assignment:<16}{r.function:<30}{r.caught:>5} / {r.bugs:<4}"
                     f"{100 * r.caught / max(r.bugs, 1):>4.0f}%{r.also_elsewhere:>10}        {note}")
    total, caught = sum(r.bugs for r in rows), sum(r.caught for r in rows)
    lines.append(f"\n{caught} of {total} catalogued bugs caught ({100 * caught / max(total, 1):.0f} %), "
                 f"{len(rows)} functions, {sum(r.bugs < r.minimum for r in rows)} below the minimum catalogue size.")
    return "\n".join(lines)


def run(out: Path | None = None, workers: int = 2, timeout: int = 120) -> tuple[list[Row], Path]:
    """Grade every catalogued bug; return the summary rows and the grading folder."""
    import json

    from .grade import grade

    out = Path(out or ROOT / "grading" / "mutants")
    submitted = out / "submitted-mutants"
    shutil.rmtree(submitted, ignore_errors=True)
    write_submissions(submitted)
    grade(submitted, out / "results", workers=workers, timeout=timeout)
    results = json.loads((out / "results" / "results.json").read_text())
    return summarize(results), out
