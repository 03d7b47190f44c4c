"""The command line, as an instructor and a self-learner call it."""
import csv
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import ROOT, assignment_names, notebook_names
from autograder.submissions import filled_in, untouched, write_submission

pytestmark = pytest.mark.slow


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_grade_bad_path_is_an_instructor_error(tmp_path):
    result = run("grade", tmp_path / "nope", "--out", tmp_path / "out")
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_grade_unknown_assignment_is_an_instructor_error(tmp_path):
    (tmp_path / "subs" / "alice" / "99_nothing").mkdir(parents=True)
    result = run("grade", tmp_path / "subs", "--out", tmp_path / "out")
    assert result.returncode == 2 and "not an assignment of this course" in result.stderr


def test_grade_command_writes_grades_and_exits_zero_with_a_failed_submission(tmp_path):
    assignment = assignment_names()[0]
    notebook = notebook_names(assignment)[0]
    write_submission(tmp_path / "subs", "alice", assignment, notebook, filled_in(assignment, notebook))
    (tmp_path / "subs" / "bob" / assignment).mkdir(parents=True)
    (tmp_path / "subs" / "bob" / assignment / f"{notebook}.ipynb").write_text("")
    result = run("grade", tmp_path / "subs", "--out", tmp_path / "out", "--workers", "1", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "out" / "grades.csv"))}
    assert rows["alice"]["status"] == "graded" and rows["alice"]["score"] == rows["alice"]["max_score"]
    assert rows["bob"]["status"] == "failed"
    assert (tmp_path / "subs" / "bob" / assignment / f"{notebook}.ipynb").read_text() == ""  # original untouched


def test_check_reports_each_exercise_for_a_self_learner(tmp_path):
    assignment = assignment_names()[0]
    notebook = notebook_names(assignment)[0]
    todo = write_submission(tmp_path, "me", assignment, notebook, untouched(assignment, notebook))
    result = run("check", todo)
    assert result.returncode == 1
    assert result.stdout.count("FAIL") >= 2 and "is not implemented yet" in result.stdout
    done = write_submission(tmp_path, "me2", assignment, notebook, filled_in(assignment, notebook))
    result = run("check", done)
    assert result.returncode == 0, result.stdout
    assert "FAIL" not in result.stdout and "PASS" in result.stdout


def test_check_of_a_missing_notebook_is_a_clear_error(tmp_path):
    result = run("check", tmp_path / "absent.ipynb")
    assert result.returncode == 2 and "No notebook at" in result.stderr
