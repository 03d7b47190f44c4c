"""Builds the hostile-submission corpus of ``cases.toml`` from the current release.

Each case is the release of its assignment, filled in (``base``), then edited the way a
hostile student would; see cases.toml for the fields. Building from the release keeps
the corpus valid while the assignments change. ``honest`` is what the same submission
without the attack earns (the base's score), computed from the notebook's points.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import tomllib
from pathlib import Path

import nbformat

from autograder.course import nbgrader_meta
from autograder.submissions import filled_in, load_bugs, untouched

CASES = Path(__file__).with_name("cases.toml")
HONEST = {"honest-01": ("01_notation", "solution"), "honest-02": ("02_rnn", "solution"),
          "honest-bug": ("01_notation", "bug:encode-no-eos")}


@dataclasses.dataclass
class Case:
    name: str
    assignment: str
    spec: dict
    honest: float          # what the base earns without the attack
    max_score: float
    points: dict           # grade_id -> points of the base's graded cells, in notebook order

    @property
    def status(self) -> str:
        return self.spec["status"]

    @property
    def student(self) -> str:
        """The name of the case's folder (its student id)."""
        return self.spec.get("student", self.name)

    @property
    def score(self) -> float:
        """The score expected: "honest", "honest-minus:<test>[,<test>]" (the base's score less those
        tests' points), "before:<test>" (the points of the tests before that one) or a number."""
        score = str(self.spec["score"])
        if score == "honest":
            return self.honest
        if score.startswith("honest-minus:"):
            return self.honest - sum(self.points[test] for test in score.split(":", 1)[1].split(","))
        if score.startswith("before:"):
            tests = list(self.points)
            return sum(self.points[test] for test in tests[:tests.index(score.split(":", 1)[1])])
        return float(score)


def _points(nb) -> dict[str, float]:
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"]) for c in nb.cells if nbgrader_meta(c).get("grade")}


def base_notebook(assignment: str, base: str):
    """The submission a case starts from, and its honest score."""
    nb = untouched(assignment, assignment) if base == "untouched" else filled_in(
        assignment, assignment, bug=next((b for b in load_bugs(assignment) if f"bug:{b.id}" == base), None))
    points = _points(nb)
    if base == "untouched":
        return nb, 0.0, sum(points.values())
    lost = sum(points[b.test] for b in load_bugs(assignment) if f"bug:{b.id}" == base)
    return nb, sum(points.values()) - lost, sum(points.values())


def _index_after(nb, at: str) -> int:
    if at == "end":
        return len(nb.cells)
    if at == "start":
        return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code") + 1
    return next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == at) + 1


def _attack(nb, spec: dict, fill) -> None:
    for grade_id, cell in ((r["grade_id"], r) for r in spec.get("replace", [])):
        target = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)
        target.source = fill(cell["code"]).strip("\n")
    for cell in spec.get("cells", []):
        new = (nbformat.v4.new_markdown_cell(cell["markdown"]) if "markdown" in cell
               else nbformat.v4.new_code_cell(fill(cell["code"]).strip("\n")))
        nb.cells.insert(_index_after(nb, cell.get("at", "end")), new)
    for copied in spec.get("copy", []):   # a plain cell with a locked cell's source
        source = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == copied["grade_id"]).source
        nb.cells.insert(_index_after(nb, copied["at"]), nbformat.v4.new_code_cell(source))
    for grade_id, after in spec.get("move", {}).items():
        cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)
        nb.cells.remove(cell)
        nb.cells.insert(_index_after(nb, after), cell)
    for grade_id in spec.get("delete", []):
        nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") != grade_id]
    for grade_id in spec.get("strip", []):
        cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)
        cell.metadata = {}
    for grade_id in spec.get("edit", []):
        next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id).source = "pass"
    for grade_id, changes in spec.get("metadata", {}).items():
        nbgrader_meta(next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)).update(changes)
    if spec.get("add_graded"):
        fake = nbformat.v4.new_code_cell("pass")
        fake.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "locked": True, "points": 100,
                                     "schema_version": 3, "solution": False}
        nb.cells.append(fake)


def _write_file(folder: Path, assignment: str, kind: str, nb) -> None:
    path = folder / f"{assignment}.ipynb"
    if kind == "empty":
        path.write_text("")
    elif kind == "invalid-json":
        path.write_text('{"cells": [ this is not json')
    elif kind == "no-cells":
        nbformat.write(nbformat.v4.new_notebook(), path)
    elif kind == "renamed":
        nbformat.write(nb, folder / "my_notebook.ipynb")
    elif kind == "other-assignment":
        nbformat.write(filled_in("02_rnn", "02_rnn"), path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind in ("oversized", "large"):
        size = (30 if kind == "oversized" else 5) * 2**20
        big = copy.deepcopy(nb)
        setup = next(c for c in big.cells if c.cell_type == "code")
        setup.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * size)]
        nbformat.write(big, path)
    else:
        raise ValueError(f"unknown file kind {kind!r}")


def specs() -> list[dict]:
    return tomllib.loads(CASES.read_text())["case"]


def _write_beside(folder: Path, entries: list[dict], fill) -> None:
    """Files, folders and links the student puts next to the notebook (``beside``)."""
    for entry in entries:
        path = folder / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if "link" in entry:
            path.symlink_to(fill(entry["link"]))
        else:
            path.write_text(fill(entry.get("text", "")))


def build(root: Path, placeholders: dict[str, str], only: set | None = None) -> list[Case]:
    """Write every case (those named in ``only``) and the honest students of HONEST under
    root/<student>/<assignment>/.
    A case whose assignment or student folder is a link (``folder_link``, ``student_link``) is
    written after the others, so that its link may point at them."""
    def fill(code: str) -> str:
        for key, value in placeholders.items():
            code = code.replace("{" + key + "}", str(value))
        return code

    for student, (assignment, base) in HONEST.items():
        folder = root / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(base_notebook(assignment, base)[0], folder / f"{assignment}.ipynb")
    cases = []
    for spec in (spec for spec in specs() if only is None or spec["name"] in only):
        assignment = spec.get("assignment", "01_notation")
        nb, honest, max_score = base_notebook(assignment, spec["base"])
        case = Case(spec["name"], assignment, spec, honest, max_score, _points(nb))
        cases.append(case)
        if "student_link" in spec:
            (root / case.student).symlink_to(fill(spec["student_link"]))
            continue
        if "folder_link" in spec:
            (root / case.student).mkdir()
            (root / case.student / assignment).symlink_to(fill(spec["folder_link"]))
            continue
        folder = root / case.student / assignment
        folder.mkdir(parents=True)
        _attack(nb, spec, fill)
        if "file" in spec:
            _write_file(folder, assignment, spec["file"], nb)
        elif "notebook_link" in spec:
            (folder / f"{assignment}.ipynb").symlink_to(fill(spec["notebook_link"]))
        else:
            nbformat.write(nb, folder / f"{assignment}.ipynb")
        _write_beside(folder, spec.get("beside", []), fill)
    return cases
