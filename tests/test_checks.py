"""Test helpers: each failure names what was wrong, in words a student can act on."""
import numpy
import pytest

from course_utils.checks import (CheckFailure, NotImplementedYet, check_array, check_close, check_equal, check_keys,
                                 check_not_mutated, check_shape, check_type, exercise, passed)


def test_not_implemented_becomes_a_clear_failure():
    def student():
        raise NotImplementedError()

    with pytest.raises(NotImplementedYet, match="rnn_cell_forward is not implemented yet"):
        with exercise("rnn_cell_forward"):
            student()


def test_student_errors_pass_through_with_their_own_type():
    with pytest.raises(ZeroDivisionError):
        with exercise("f"):
            1 / 0


def test_rendered_in_jupyter_without_traceback():
    lines = CheckFailure("X has the wrong shape").\
        _render_traceback_()
    assert len(lines) == 1 and "X has the wrong shape" in lines[0] and "Traceback" not in lines[0]


def test_wrong_type_and_array_messages():
    with pytest.raises(CheckFailure, match="y should be a list, but it is a tuple"):
        check_type((1,), list, "y")
    with pytest.raises(CheckFailure, match=r"numpy.ndarray.*it is a list"):
        check_array([1.0], "X")


def test_wrong_shape_names_both_shapes():
    with pytest.raises(CheckFailure, match=r"expected \(5, 10\), got \(10, 5\)"):
        check_shape(numpy.zeros((10, 5)), (5, 10), "a_next")


def test_wrong_values_name_the_worst_entry():
    expected = numpy.zeros((2, 3))
    got = expected.copy()
    got[1, 2] = 0.5
    got[0, 0] = 0.1
    with pytest.raises(CheckFailure) as info:
        check_close(got, expected, "a_next", hint="apply tanh")
    message = str(info.value)
    assert "2 of 6 entries differ" in message
    assert "index (1, 2): expected 0, got 0.5" in message
    assert "Hint: apply tanh" in message
    check_close(expected + 1e-12, expected, "close enough")


def test_entries_never_written_are_named_as_such():
    """An xp.empty array a loop did not fill shows numbers like 7e-292: say so, not only the formula's hint."""
    expected = numpy.ones((2, 3))
    got = expected.copy()
    got[:, 2] = 7.01545e-292                       # the last step never written
    with pytest.raises(CheckFailure, match="look never written.*skip a step") as info:
        check_close(got, expected, "H", hint="H[:n_a, t + 1] is a<t>")
    assert str(info.value).endswith("Hint: H[:n_a, t + 1] is a<t>")
    with pytest.raises(CheckFailure) as info:
        check_close(expected * 2, expected, "H")
    assert "never written" not in str(info.value)


def test_nan_is_reported_as_such():
    with pytest.raises(CheckFailure, match=r"contains NaN \(first at index \(1,\)\)"):
        check_close(numpy.array([0.0, numpy.nan]), numpy.array([0.0, 1.0]), "loss")


def test_check_equal_points_at_first_difference():
    with pytest.raises(CheckFailure, match="item 2 is 0, expected 3"):
        check_equal([2, 4, 0, 1], [2, 4, 3, 1], "encode(...)")
    with pytest.raises(CheckFailure, match="expected 3 items, got 2"):
        check_equal([1, 2], [1, 2, 3], "x")


def test_check_keys():
    with pytest.raises(CheckFailure, match=r"missing \['dba'\].*unexpected \['db'\]"):
        check_keys({"dWax": 1, "db": 2}, ["dWax", "dba"], "gradients")


def test_mutation_is_detected_and_results_returned():
    def in_place(x):
        x[0] = 99
        return x

    with pytest.raises(CheckFailure, match="changed its input in place \\(argument 1\\)"):
        check_not_mutated(in_place, numpy.zeros(3))
    with pytest.raises(CheckFailure, match="argument 'params'"):
        check_not_mutated(lambda params: params.update(a=2), params={"a": 1})
    assert check_not_mutated(lambda x: x + 1, numpy.ones(2)).tolist() == [2.0, 2.0]


def test_passed_prints_a_line(capsys):
    passed("encode")
    assert "encode: all visible tests passed" in capsys.readouterr().out


@pytest.mark.parametrize("got", [numpy.zeros(0), numpy.array([1.0]), [1.0], numpy.ones((1, 1))])
def test_check_close_compares_shapes_even_against_a_scalar(got):
    with pytest.raises(CheckFailure, match="single number"):
        check_close(got, 1.0, "loss")


def test_check_close_accepts_a_scalar_of_any_kind_for_a_scalar():
    for got in (1.0, numpy.float32(1.0), numpy.array(1.0)):
        check_close(got, 1.0, "loss")
