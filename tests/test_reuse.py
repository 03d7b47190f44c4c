"""course_utils.reuse: a later assignment loads the learner's own functions from an earlier notebook."""
from __future__ import annotations

import re
import shutil

import numpy
import pytest

from autograder.submissions import filled_in, untouched, write_submission
from course_utils.reuse import REUSE_DIR_VARIABLE, EarlierAssignmentMissing, from_assignment
from tests.notebooks import ROOT


@pytest.fixture
def side_by_side(tmp_path, monkeypatch):
    """assignments/02_rnn as a learner has it, and the current folder set to a later assignment's."""
    monkeypatch.delenv(REUSE_DIR_VARIABLE, raising=False)
    later = tmp_path / "03_later"
    later.mkdir()
    monkeypatch.chdir(later)
    return tmp_path


def test_loads_the_learners_own_functions_with_their_own_helpers(side_by_side):
    write_submission(side_by_side, "", "02_rnn", "02_rnn", filled_in("02_rnn", "02_rnn"))
    rnn_forward, rnn_cell_forward = from_assignment("02_rnn", "rnn_forward", "rnn_cell_forward")
    assert rnn_forward.__globals__["rnn_cell_forward"] is rnn_cell_forward  # calls the learner's cell
    rng = numpy.random.default_rng(0)
    params = {"Waa": rng.standard_normal((3, 3)), "Wax": rng.standard_normal((3, 2)),
              "Wya": rng.standard_normal((4, 3)), "ba": rng.standard_normal((3, 1)),
              "by": rng.standard_normal((4, 1))}
    a, y_pred, _ = rnn_forward(rng.standard_normal((2, 5, 6)), numpy.zeros((3, 5)), params)
    assert a.shape == (3, 5, 6) and numpy.allclose(numpy.asarray(y_pred).sum(axis=0), 1.0)


def test_warns_about_unfinished_functions(side_by_side, capsys):
    write_submission(side_by_side, "", "02_rnn", "02_rnn", untouched("02_rnn", "02_rnn"))
    rnn_forward = from_assignment("02_rnn", "rnn_forward")
    assert "rnn_forward" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        rnn_forward(None, None, None)


def test_missing_notebook_or_function_says_where_it_looked(side_by_side, capsys):
    rnn_forward = from_assignment("02_rnn", "rnn_forward")   # the notebook goes on: no NameError later
    note = capsys.readouterr().out
    assert note.count("\n") == 1 and re.search(r"reuses rnn_forward from assignment 02_rnn.*does not exist", note)
    with pytest.raises(EarlierAssignmentMissing, match=r"rnn_forward cannot run: .*02_rnn.*side by side"):
        rnn_forward(None, None, None)
    shutil.copytree(ROOT / "solutions" / "02_rnn", side_by_side / "02_rnn")
    with pytest.raises(EarlierAssignmentMissing, match="defines no function lstm_forward"):
        from_assignment("02_rnn", "lstm_forward")


def test_a_chain_with_a_missing_link_says_which_and_still_loads(side_by_side, capsys):
    """06 reads 03, whose setup reads 01: with 02 and 03 beside it but no 01, 03's functions that do
    not need 01 work, and one note names 01, the notebook that needs it, and the folder."""
    for assignment in ("02_rnn", "03_char_lm"):
        write_submission(side_by_side, "", assignment, assignment, filled_in(assignment, assignment))
    perplexity = from_assignment("03_char_lm", "perplexity")
    note = capsys.readouterr().out
    assert note.startswith("Note: assignment 03_char_lm, which this notebook reuses, reuses one_hot_batch from "
                           "01_notation") and "01_notation.ipynb does not exist" in note and note.count("\n") == 1
    Y = numpy.zeros((4, 2, 3))
    Y[0] = 1.0                                                    # every target is token 0
    assert perplexity(numpy.full((4, 2, 3), 0.25), Y) == pytest.approx(4.0)   # uniform over 4: perplexity 4
    one_hot_batch = perplexity.__globals__["one_hot_batch"]
    with pytest.raises(EarlierAssignmentMissing, match="one_hot_batch cannot run: assignment 03_char_lm"):
        one_hot_batch([[0]], 2)


def test_the_reuse_folder_variable_takes_precedence(side_by_side, monkeypatch):
    monkeypatch.setenv(REUSE_DIR_VARIABLE, str(ROOT / "solutions"))
    assert callable(from_assignment("02_rnn", "rnn_backward"))
