"""The feedback a student receives: their results, never the hidden tests.

nbgrader's own feedback shows the autograded notebook as it ran, hidden tests
included (autograding restores them into the test cells). Two things keep them out:

* while grading, ``autograder.guard`` runs each hidden-test block apart: what it prints
  is dropped and a failure becomes one line, "Hidden tests failed. Hint: ..."
  (``HiddenTestsFailed``), so no hidden code, expected value or traceback reaches the
  notebook's outputs; a block that passes prints "hidden tests passed";
* ``HideHiddenTests`` runs in ``GenerateFeedback`` (see nbgrader_config.py): it deletes
  each hidden-test region from the cell source, leaves a note in its place, and cuts
  every error of such a cell down to its name and message (no traceback lines).

So the student sees the visible tests' results with their messages and, for the
hidden tests, only whether they passed and a hint.
"""
from __future__ import annotations

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests

HIDDEN_NOTE = ("# Hidden tests (other inputs) ran here after the visible ones; their code is not shown.\n"
               "# The output below says whether they passed and, if not, gives a hint.")


class HideHiddenTests(ClearHiddenTests):
    """Remove hidden tests from the feedback notebook and reduce their errors to a message."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not utils.is_grade(cell):
            return cell, resources
        if not self._remove_hidden_test_region(cell):
            return cell, resources
        cell.source = cell.source.rstrip("\n") + "\n" + HIDDEN_NOTE
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                out.traceback = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources
