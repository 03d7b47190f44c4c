"""Mutation testing of the graders: every catalogued bug is caught by the test meant for it.

The shared ``graded_examples`` fixture grades the same submissions ``python -m autograder
mutants`` makes (the reference as "solution", each bug as "bug-<id>"), so the summary is
checked here without grading twice.
"""
import subprocess
import sys

import pytest

from autograder.course import ROOT, assignment_names
from autograder.mutants import catalogue, format_summary, summarize
from autograder.submissions import load_bugs
from tests.notebooks import nbgrader_meta, source_notebook

pytestmark = pytest.mark.slow


def test_every_catalogued_bug_is_caught_by_its_test(graded_examples):
    rows = summarize(graded_examples.results)
    table = format_summary(rows)
    assert all(not row.missed for row in rows), table
    assert sum(row.caught for row in rows) == len(catalogue()) > 0


def test_summary_counts_bugs_per_function(graded_examples):
    rows = {(row.assignment, row.function): row for row in summarize(graded_examples.results)}
    for assignment in assignment_names():
        for bug in load_bugs(assignment):
            assert (assignment, bug.cell) in rows
    counted = {key: row.bugs for key, row in rows.items()}
    expected = {}
    for assignment, bug in catalogue():
        expected[(assignment, bug.cell)] = expected.get((assignment, bug.cell), 0) + 1
    assert counted == expected


def test_a_bug_its_test_misses_is_reported_as_missed(graded_examples):
    assignment, bug = catalogue()[0]
    doctored = [dict(r, score=r["max_score"]) if (r["student"], r["grade_id"]) == (f"bug-{bug.id}", bug.test) else r
                for r in graded_examples.results]
    row = next(r for r in summarize(doctored) if (r.assignment, r.function) == (assignment, bug.cell))
    assert row.missed == (bug.id,) and "MISSED" in format_summary([row])


def test_every_graded_function_has_enough_catalogued_bugs():
    """Issue 7: at least MINIMUM typical bugs per graded function, BACKWARD_MINIMUM for backward passes."""
    rows = summarize([])  # every exercise of every assignment (solution cells), with its catalogue size
    solution_cells = {(assignment, nbgrader_meta(cell)["grade_id"]) for assignment in assignment_names()
                      for cell in source_notebook(assignment).cells if nbgrader_meta(cell).get("solution")}
    assert solution_cells - {(r.assignment, r.function) for r in rows} == set(), "exercises without a row"
    not_exercises = [f"{r.assignment}/{r.function}" for r in rows if (r.assignment, r.function) not in solution_cells]
    assert not not_exercises, ("a [[bug]] in solutions/<assignment>/bugs.toml names a cell that is not a solution cell "
                              "(its `cell` must be the grade_id of one): " + ", ".join(not_exercises))
    thin = [f"{r.assignment}/{r.function} ({r.bugs} of {r.minimum})" for r in rows if r.bugs < r.minimum]
    assert not thin, "catalogue more typical bugs in solutions/<assignment>/bugs.toml for: " + ", ".join(thin)


def test_mutants_command_is_documented_in_the_cli():
    result = subprocess.run([sys.executable, "-m", "autograder", "mutants", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--workers" in result.stdout
