"""Example submissions made from the course's own notebooks.

``filled_in`` takes the released notebook and writes each solution cell's reference
code into it (without nbgrader's ``### BEGIN/END SOLUTION`` markers), as a perfect
student would. With a ``Bug`` it then makes one find-and-replace edit in one
solution cell: a typical student mistake. Bugs are catalogued per assignment in
``solutions/<assignment>/bugs.toml`` (instructor-only: nbgrader never releases it):

    [[bug]]
    id = "encode-no-eos"           # unique name
    cell = "encode"                # grade_id of the solution cell it edits
    test = "test_encode"           # grade_id of the test cell that must catch it
    description = "forgets to append <EOS>"
    find = "..."                   # text that occurs exactly once in that cell
    replace = "..."
"""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import nbformat

from .course import ASSIGNMENTS, BUGS_FILE, SOLUTIONS, InstructorError, nbgrader_meta, notebook_names

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


@dataclasses.dataclass(frozen=True)
class Bug:
    id: str
    cell: str
    test: str
    description: str
    find: str
    replace: str


def load_bugs(assignment: str) -> list[Bug]:
    path = SOLUTIONS / assignment / BUGS_FILE
    if not path.exists():
        return []
    with open(path, "rb") as handle:
        entries = tomllib.load(handle).get("bug", [])
    return [Bug(**entry) for entry in entries]


def _grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def _is_solution(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def exercises(assignment: str) -> list[str]:
    """The grade_ids of the assignment's solution cells (its graded exercises), in notebook order."""
    return [_grade_id(c) for notebook in notebook_names(assignment)
            for c in nbformat.read(SOLUTIONS / assignment / f"{notebook}.ipynb", as_version=4).cells
            if _is_solution(c)]


def _without_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n") if line.strip() not in SOLUTION_MARKERS)


def filled_in(assignment: str, notebook: str, bug: Bug | None = None,
              release_dir: Path = ASSIGNMENTS) -> nbformat.NotebookNode:
    """The released notebook with every solution cell filled in (and ``bug`` applied)."""
    released = nbformat.read(Path(release_dir) / assignment / f"{notebook}.ipynb", as_version=4)
    source = nbformat.read(SOLUTIONS / assignment / f"{notebook}.ipynb", as_version=4)
    answers = {_grade_id(c): _without_markers(c.source) for c in source.cells if _is_solution(c)}
    for cell in released.cells:
        if _is_solution(cell):
            cell.source = answers[_grade_id(cell)]
    if bug is not None:
        cell = next((c for c in released.cells if _is_solution(c) and _grade_id(c) == bug.cell), None)
        if cell is None:
            raise InstructorError(f"Bug {bug.id!r}: no solution cell {bug.cell!r} in {assignment}/{notebook}.")
        if cell.source.count(bug.find) != 1:
            raise InstructorError(f"Bug {bug.id!r}: its 'find' text occurs {cell.source.count(bug.find)} "
                                  f"times in cell {bug.cell!r}; it must occur exactly once.")
        cell.source = cell.source.replace(bug.find, bug.replace)
    return released


def untouched(assignment: str, notebook: str, release_dir: Path = ASSIGNMENTS) -> nbformat.NotebookNode:
    """The released notebook as a student receives it."""
    return nbformat.read(Path(release_dir) / assignment / f"{notebook}.ipynb", as_version=4)


def write_submission(root: Path, student: str, assignment: str, notebook: str, nb) -> Path:
    """Write ``nb`` into nbgrader's submitted layout: root/student/assignment/notebook.ipynb."""
    path = Path(root) / student / assignment / f"{notebook}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
