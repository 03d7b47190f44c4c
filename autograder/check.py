"""``python -m autograder check NOTEBOOK``: a self-learner's check, no gradebook needed.

Runs the notebook top to bottom in a fresh Jupyter kernel (nbclient), then prints,
for each exercise's test cell, whether its visible tests passed and the message of
the first failure. Hidden tests are not in a student's copy, so this is the
visible part of the grade only. The notebook file itself is not modified.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .course import InstructorError, nbgrader_meta


@dataclasses.dataclass
class TestResult:
    grade_id: str
    points: float
    passed: bool
    message: str


def _error(cell) -> dict | None:
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def run_checks(notebook: Path, timeout: int = 300) -> tuple[list[TestResult], list[str]]:
    """Execute ``notebook``; return the test results and notes on other cells that failed."""
    notebook = Path(notebook)
    if not notebook.is_file():
        raise InstructorError(f"No notebook at {notebook}.")
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as err:
        raise InstructorError(f"{notebook} is not a readable notebook: {err}") from None
    NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                   extra_arguments=["--IPKernelApp.log_level=ERROR"],
                   resources={"metadata": {"path": str(notebook.parent.resolve())}}).execute()
    results, notes = [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta, error = nbgrader_meta(cell), _error(cell)
        if meta.get("grade") and not meta.get("solution"):
            message = "" if error is None else f"{error.get('ename')}: {error.get('evalue')}"
            results.append(TestResult(meta.get("grade_id", f"cell {index}"), float(meta.get("points", 0)),
                                      error is None, message))
        elif error is not None and error.get("ename") != "NotImplementedError":
            notes.append(f"cell {index} ({meta.get('grade_id', 'not an exercise')}) raised "
                         f"{error.get('ename')}: {error.get('evalue')}")
    return results, notes


def format_report(results: list[TestResult], notes: list[str]) -> str:
    lines = []
    for r in results:
        mark = "PASS" if r.passed else "FAIL"
        lines.append(f"{mark}  {r.grade_id:<28} ({r.points:g} pt)" + ("" if r.passed else f"\n      {r.message}"))
    earned = sum(r.points for r in results if r.passed)
    total = sum(r.points for r in results)
    lines.append(f"\nVisible tests: {sum(r.passed for r in results)} of {len(results)} test cells pass "
                 f"({earned:g} of {total:g} points if the hidden tests agree).")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)
