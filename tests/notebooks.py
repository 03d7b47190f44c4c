"""Helpers for tests that need a notebook's code without running the whole notebook.

``solution_namespace`` executes an assignment's *setup* cell (the first locked code
cell: imports) and every solution cell of the source notebook, and returns the
namespace, so instructor tests can call the reference functions directly; ``run_given_cells``
adds given cells (the notebook's helpers and demos) by grade_id. Solution
cells therefore only define functions (a rule for authors, checked here). Functions an
assignment reuses from earlier ones (``course_utils.reuse``) come from solutions/.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import nbformat

from autograder.course import nbgrader_meta  # noqa: F401  (tests import it from here)
from course_utils.reuse import REUSE_DIR_VARIABLE

ROOT = Path(__file__).resolve().parents[1]


def source_notebook(assignment: str, notebook: str | None = None):
    notebook = notebook or assignment
    return nbformat.read(ROOT / "solutions" / assignment / f"{notebook}.ipynb", as_version=4)


def run_given_cells(namespace: dict, assignment: str, *grade_ids: str) -> dict:
    """Run the source notebook's code cells ``grade_ids`` (given definitions, demos) in ``namespace``."""
    cells = {nbgrader_meta(c).get("grade_id"): c for c in source_notebook(assignment).cells if c.cell_type == "code"}
    for grade_id in grade_ids:
        exec(compile(cells[grade_id].source, f"{assignment}:{grade_id}", "exec"), namespace)
    return namespace


def solution_namespace(assignment: str, notebook: str | None = None) -> dict:
    """Namespace with the setup cell's imports and the reference solutions defined."""
    os.environ.setdefault(REUSE_DIR_VARIABLE, str(ROOT / "solutions"))  # earlier assignments' references
    nb = source_notebook(assignment, notebook)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    setup = code_cells[0]
    namespace: dict = {"__name__": f"solutions_{assignment}"}
    exec(compile(setup.source, f"{assignment}:setup", "exec"), namespace)
    for cell in code_cells:
        if nbgrader_meta(cell).get("solution"):
            tree = ast.parse(cell.source)
            loose = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.Import, ast.ImportFrom,
                                                                 ast.Expr, ast.Assign))]
            assert not loose, f"solution cell {nbgrader_meta(cell)['grade_id']} should only define functions"
            exec(compile(cell.source, f"{assignment}:{nbgrader_meta(cell)['grade_id']}", "exec"), namespace)
    return namespace
