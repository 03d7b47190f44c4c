"""Your own functions from an earlier assignment, reused in a later one.

Later assignments build on earlier exercises: the language model of 03 runs on the
RNN cell you wrote in 02. In a notebook::

    rnn_cell_forward, rnn_cell_backward = from_assignment(
        "02_rnn", "rnn_cell_forward", "rnn_cell_backward")

reads your notebook ``../02_rnn/02_rnn.ipynb`` (the assignment folders sit side by
side, as released), runs its setup cell and its exercise cells (only those: no tests,
no training) in a namespace of their own, and returns the functions asked for.

While grading, the grader sets ``COURSE_REUSE_DIR`` to a folder that holds the
reference versions of the earlier notebooks, so that a mistake in an earlier
assignment is graded once, in that assignment, and not again here. Instructor tests
set it to ``solutions/``.

When an earlier notebook is missing, ``from_assignment`` prints one line that says which
and why it is needed, and returns stand-ins that raise ``EarlierAssignmentMissing`` (with
that line) when called: the notebook goes on, and only the cells that use those functions
fail, with the reason rather than a ``NameError``. The same holds along a chain: 06 reads
03, whose setup reads 01; without 01, 06 still gets 03's functions, and says that those of
them that call 01's will not run.

What it leaves out: it does not check that the earlier functions are right (their own
assignment's tests do that); it only warns when one is still unfinished.
"""
from __future__ import annotations

import ast
import contextlib
import io
import os
from pathlib import Path

import nbformat

REUSE_DIR_VARIABLE = "COURSE_REUSE_DIR"
_reading: list[str] = []   # the assignments being read now, outermost first (06 reads 03, whose setup reads 01)
_missed: list[str] = []    # what those reads found missing, said once the outermost read is done


class EarlierAssignmentMissing(FileNotFoundError):
    """The earlier assignment's notebook is not where the later one looks for it."""


def notebook_path(assignment: str, notebook: str | None = None) -> Path:
    """Where ``assignment``'s notebook is read from (see the module docstring)."""
    base = os.environ.get(REUSE_DIR_VARIABLE)
    folder = Path(base) if base else Path.cwd().parent
    return folder / assignment / f"{notebook or assignment}.ipynb"


def _is_exercise(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def _unfinished(cell_source: str) -> set[str]:
    """Names of the functions in a cell that still ``raise NotImplementedError``."""
    names = set()
    for node in ast.parse(cell_source).body:
        if isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Raise) and "NotImplementedError" in ast.unparse(inner.exc or inner):
                    names.add(node.name)
    return names


def from_assignment(assignment: str, *names: str, notebook: str | None = None):
    """The functions ``names`` as defined in your notebook of ``assignment``.

    Returns one function for one name, a tuple for several.
    """
    path = notebook_path(assignment, notebook)
    if not path.exists():
        return _stand_ins(assignment, names, path)
    nb = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    exercises = [cell for cell in code_cells if _is_exercise(cell)]
    namespace: dict = {"__name__": f"assignment_{assignment}"}
    _reading.append(assignment)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the setup cell's "array backend: ..." line
            for cell in code_cells[:1] + exercises:
                exec(compile(cell.source, f"{path.name}:{cell.metadata.get('nbgrader', {}).get('grade_id', 'setup')}",
                             "exec"), namespace)
    finally:
        _reading.pop()
        if not _reading:   # said even when this read fails, and never carried into the next one
            for line in dict.fromkeys(_missed):
                print(f"Note: {line}")
            _missed.clear()
    missing = [name for name in names if not callable(namespace.get(name))]
    if missing:
        raise EarlierAssignmentMissing(
            f"{path} defines no function {', '.join(missing)}. Is it the notebook of assignment {assignment}?")
    unfinished = sorted(set(names) & set().union(*(_unfinished(cell.source) for cell in exercises)))
    if unfinished:
        print(f"Note: {', '.join(unfinished)} in {path} still raise NotImplementedError. "
              f"Finish them in assignment {assignment}; the cells here that use them fail until then.")
    functions = tuple(namespace[name] for name in names)
    return functions[0] if len(functions) == 1 else functions


def _stand_ins(assignment: str, names: tuple, path: Path):
    """For a missing notebook: functions that raise ``EarlierAssignmentMissing`` when called."""
    why = (f"assignment {_reading[-1]}, which this notebook reuses, reuses {', '.join(names)} from {assignment}"
           if _reading else f"this notebook reuses {', '.join(names)} from assignment {assignment}")
    message = (f"{why}, and {path} does not exist. Keep the assignment folders side by side as released "
               f"(assignments/{assignment}/ next to this one), or set {REUSE_DIR_VARIABLE} to the folder "
               f"that holds {assignment}/.")
    if _reading:
        _missed.append(f"{message} Those of {_reading[-1]}'s functions that call them will say so.")
    else:
        print(f"Note: {message} The cells that use them will say so.")

    def stand_in(name: str):
        def missing(*args, **kwargs):
            raise EarlierAssignmentMissing(f"{name} cannot run: {message}")
        missing.__name__ = missing.__qualname__ = name
        return missing

    functions = tuple(stand_in(name) for name in names)
    return functions[0] if len(functions) == 1 else functions
