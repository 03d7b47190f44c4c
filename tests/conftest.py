"""Shared fixtures: one grading run of every assignment's example submissions.

``graded_examples`` grades, once per test session, for every assignment: the
solutions filled in, the untouched release, and one submission per catalogued bug
(solutions/<assignment>/bugs.toml), plus a few broken submissions. Tests then read
its grades.csv / results.json / feedback.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from autograder.course import assignment_names, notebook_names
from autograder.grade import grade
from autograder.submissions import filled_in, load_bugs, untouched, write_submission


def pytest_collection_modifyitems(config, items):
    try:
        from course_utils.backend import _load_cupy
        _load_cupy()
        has_gpu, why = True, ""
    except Exception as err:  # no CuPy or no CUDA device
        has_gpu, why = False, str(err)
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason=f"needs CuPy and a CUDA device: {why}"))


class GradedExamples:
    def __init__(self, out: Path, submitted: Path):
        self.out, self.submitted = out, submitted
        with open(out / "grades.csv") as handle:
            self.grades = list(csv.DictReader(handle))
        self.results = json.loads((out / "results.json").read_text())

    def grade_row(self, student: str, assignment: str) -> dict:
        rows = [r for r in self.grades if r["student"] == student and r["assignment"] == assignment]
        assert len(rows) == 1, f"expected one grades.csv row for {student}/{assignment}, got {rows}"
        return rows[0]

    def test_scores(self, student: str, assignment: str) -> dict:
        return {r["grade_id"]: (r["score"], r["max_score"]) for r in self.results
                if r["student"] == student and r["assignment"] == assignment}


@pytest.fixture(scope="session")
def graded_examples(tmp_path_factory) -> GradedExamples:
    root = tmp_path_factory.mktemp("graded")
    submitted = root / "submitted"
    for assignment in assignment_names():
        for notebook in notebook_names(assignment):
            write_submission(submitted, "solution", assignment, notebook, filled_in(assignment, notebook))
            write_submission(submitted, "untouched", assignment, notebook, untouched(assignment, notebook))
            for bug in load_bugs(assignment):
                write_submission(submitted, f"bug-{bug.id}", assignment, notebook,
                                 filled_in(assignment, notebook, bug=bug))
    first = assignment_names()[0]
    notebook = notebook_names(first)[0]
    broken = submitted / "broken-json" / first / f"{notebook}.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cells": [ this is not json')
    renamed = submitted / "renamed" / first / "my_notebook.ipynb"
    renamed.parent.mkdir(parents=True)
    renamed.write_text((submitted / "solution" / first / f"{notebook}.ipynb").read_text())
    grade(submitted, root / "out", workers=2, timeout=120)
    return GradedExamples(root / "out", submitted)
