"""The grading pipeline, end to end through nbgrader, on every assignment.

Uses the session's ``graded_examples`` (tests/conftest.py): the reference solutions,
the untouched release, every catalogued bug and some broken submissions, graded
together with two workers.
"""
import sqlite3

import nbformat
import pytest

from autograder.course import assignment_names, nbgrader_meta, notebook_names
from autograder.submissions import load_bugs

pytestmark = pytest.mark.slow

ALL_BUGS = [(a, bug) for a in assignment_names() for bug in load_bugs(a)]


@pytest.mark.parametrize("assignment", assignment_names())
def test_solutions_score_full_marks_and_run_without_errors(graded_examples, assignment):
    row = graded_examples.grade_row("solution", assignment)
    assert row["status"] == "graded"
    assert float(row["score"]) == float(row["max_score"]) > 0
    for notebook in notebook_names(assignment):
        nb = nbformat.read(graded_examples.out / "autograded" / "solution" / assignment / f"{notebook}.ipynb", 4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors, errors[:1]


@pytest.mark.parametrize("assignment", assignment_names())
def test_untouched_release_scores_zero_and_every_test_says_not_implemented(graded_examples, assignment):
    row = graded_examples.grade_row("untouched", assignment)
    assert row["status"] == "graded" and float(row["score"]) == 0
    for notebook in notebook_names(assignment):
        nb = nbformat.read(graded_examples.out / "autograded" / "untouched" / assignment / f"{notebook}.ipynb", 4)
        test_cells = [c for c in nb.cells if nbgrader_meta(c).get("grade")]
        assert test_cells
        for cell in test_cells:
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert [e.ename for e in errors] == ["NotImplementedYet"], cell.metadata.nbgrader.grade_id
            assert "is not implemented yet" in errors[0].evalue


@pytest.mark.parametrize("assignment, bug", ALL_BUGS, ids=[b.id for _, b in ALL_BUGS])
def test_each_catalogued_bug_loses_exactly_the_points_of_its_test(graded_examples, assignment, bug):
    scores = graded_examples.test_scores(f"bug-{bug.id}", assignment)
    reference = graded_examples.test_scores("solution", assignment)
    assert scores.keys() == reference.keys()
    assert bug.test in scores, f"bug {bug.id} names an unknown test cell {bug.test}"
    assert scores[bug.test][0] == 0 < scores[bug.test][1], f"{bug.id} ({bug.description}) was not caught"
    others = {k: v for k, v in scores.items() if k != bug.test}
    assert others == {k: v for k, v in reference.items() if k != bug.test}, f"{bug.id} also changed other tests"


def test_demo_bug_loses_points_in_the_grade_table(graded_examples):
    assignment, bug = ALL_BUGS[0]
    row = graded_examples.grade_row(f"bug-{bug.id}", assignment)
    solution = graded_examples.grade_row("solution", assignment)
    lost = graded_examples.test_scores("solution", assignment)[bug.test][0]
    assert float(row["score"]) == float(solution["score"]) - lost


def test_invalid_json_is_failed_with_a_reason_and_others_still_graded(graded_examples):
    first = assignment_names()[0]
    row = graded_examples.grade_row("broken-json", first)
    assert row["status"] == "failed" and float(row["score"]) == 0
    assert "not a valid notebook" in row["reason"]
    assert graded_examples.grade_row("solution", first)["status"] == "graded"


def test_renamed_notebook_is_missing_and_says_what_was_found(graded_examples):
    row = graded_examples.grade_row("renamed", assignment_names()[0])
    assert row["status"] == "missing" and "found: my_notebook.ipynb" in row["reason"]


def test_results_json_has_one_row_per_test_cell(graded_examples):
    rows = [r for r in graded_examples.results if r["student"] == "solution"]
    assert rows and set(rows[0]) == {"student", "assignment", "notebook", "grade_id", "score", "max_score"}
    for assignment in assignment_names():
        total = sum(r["max_score"] for r in rows if r["assignment"] == assignment)
        assert total == float(graded_examples.grade_row("solution", assignment)["max_score"])


def test_gradebook_holds_the_merged_scores(graded_examples):
    with sqlite3.connect(graded_examples.out / "gradebook.db") as db:
        students = {row[0] for row in db.execute("select id from student")}
    assert {"solution", "untouched"} <= students
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{graded_examples.out / 'gradebook.db'}") as gb:
        for assignment in assignment_names():
            submission = gb.find_submission(assignment, "solution")
            assert submission.score == submission.max_score > 0
            assert gb.find_submission(assignment, "untouched").score == 0


def hidden_test_lines(assignment: str) -> list[str]:
    """The significant lines of the assignment's hidden tests, as the source notebook has them."""
    from tests.notebooks import source_notebook
    from tests.test_release import HIDDEN_REGION, _significant_lines

    return [line for cell in source_notebook(assignment).cells
            for region in HIDDEN_REGION.findall(cell.source) for line in _significant_lines(region)]


@pytest.mark.parametrize("assignment", assignment_names())
def test_feedback_shows_results_but_no_hidden_test_code(graded_examples, assignment):
    hidden_lines = hidden_test_lines(assignment)
    assert hidden_lines
    for student in ("solution", "untouched", f"bug-{load_bugs(assignment)[0].id}"):
        for notebook in notebook_names(assignment):
            html = (graded_examples.out / "feedback" / student / assignment / f"{notebook}.html").read_text()
            assert "HIDDEN TESTS" not in html
            for line in hidden_lines:
                escaped = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
                assert line not in html and escaped not in html, f"hidden test line in {student}'s feedback: {line}"
            assert "Hidden tests (other inputs) ran here" in html
    untouched = (graded_examples.out / "feedback" / "untouched" / assignment / f"{notebook_names(assignment)[0]}.html").read_text()
    assert "is not implemented yet" in untouched


def test_a_bug_caught_only_by_hidden_tests_shows_pass_fail_and_a_hint_not_the_test(graded_examples):
    hidden_only = [(a, b) for a, b in ALL_BUGS if "hidden test only" in b.description]
    assert hidden_only
    for assignment, bug in hidden_only:
        nb = nbformat.read(graded_examples.out / "autograded" / f"bug-{bug.id}" / assignment / f"{assignment}.ipynb", 4)
        cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == bug.test)
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert [e.ename for e in errors] == ["HiddenTestsFailed"], bug.id
        assert len(errors[0].traceback) == 1 and "Hidden tests failed" in errors[0].traceback[0]
        texts = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "visible tests passed" in texts and "hidden tests passed" not in texts


def test_passing_hidden_tests_say_so(graded_examples):
    for assignment in assignment_names():
        nb = nbformat.read(graded_examples.out / "autograded" / "solution" / assignment / f"{assignment}.ipynb", 4)
        hidden = [c for c in nb.cells if nbgrader_meta(c).get("grade") and "BEGIN HIDDEN TESTS" in c.source]
        assert hidden, f"{assignment}: no graded cell kept its hidden tests"
        for cell in hidden:
            texts = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            assert "hidden tests passed" in texts, cell.metadata.nbgrader.grade_id
