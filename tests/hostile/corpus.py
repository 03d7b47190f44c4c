"""Builds the hostile-submission corpus of ``cases.toml`` from the current release.

Each case is the release of its assignment, filled in (``base``), then edited the way a
hostile student would; see cases.toml for the fields. Building from the release keeps
the corpus valid while the assignments change. ``honest`` is what the same submission
without the attack earns (the base's score), computed from the notebook's points.
"""
from __future__ import annotations

import copy
import dataclasses
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

    @property
    def status(self) -> str:
        return self.spec["status"]

    @property
    def score(self) -> float:
        score = self.spec["score"]
        return self.honest if score == "honest" else float(score)


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
        nb.cells.insert(_index_after(nb, cell.get("at", "end")), nbformat.v4.new_code_cell(fill(cell["code"]).strip("\n")))
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


def build(root: Path, placeholders: dict[str, str]) -> list[Case]:
    """Write every case (and the honest students of HONEST) under root/<student>/<assignment>/."""
    def fill(code: str) -> str:
        for key, value in placeholders.items():
            code = code.replace("{" + key + "}", str(value))
        return code

    cases = []
    for spec in specs():
        assignment = spec.get("assignment", "01_notation")
        nb, honest, max_score = base_notebook(assignment, spec["base"])
        folder = root / spec["name"] / assignment
        folder.mkdir(parents=True)
        _attack(nb, spec, fill)
        if "file" in spec:
            _write_file(folder, assignment, spec["file"], nb)
        else:
            nbformat.write(nb, folder / f"{assignment}.ipynb")
        cases.append(Case(spec["name"], assignment, spec, honest, max_score))
    for student, (assignment, base) in HONEST.items():
        folder = root / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(base_notebook(assignment, base)[0], folder / f"{assignment}.ipynb")
    return cases
