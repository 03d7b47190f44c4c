"""The gradient checker accepts correct gradients and catches wrong ones, naming the entry."""
import numpy
import pytest

from course_utils import Rng
from course_utils.checks import CheckFailure
from course_utils.gradcheck import check_backward, check_gradient


def affine_tanh_forward(W, x, b):
    z = W @ x + b              # (n, m)
    out = numpy.tanh(z)
    return out, (W, x, out)


def affine_tanh_backward(dout, cache):
    W, x, out = cache
    dz = dout * (1 - out ** 2)
    return {"dW": dz @ x.T, "dx": W.T @ dz, "db": dz.sum(axis=1, keepdims=True)}


def inputs(seed=0):
    rng = Rng(seed)
    return {"W": rng.standard_normal((3, 4)), "x": rng.standard_normal((4, 5)), "b": rng.standard_normal((3, 1))}


def test_correct_backward_passes_below_curriculum_tolerance():
    report = check_backward(affine_tanh_forward, affine_tanh_backward, inputs())
    assert report.ok
    assert all(row.rel_error < 1e-7 for row in report.rows)
    assert {row.name for row in report.rows} == {"W", "x", "b"}
    report.assert_ok()


@pytest.mark.parametrize("bug, wrong", [
    (lambda g: {**g, "dW": g["dW"].T.T * 1.01}, "dW"),                      # slightly scaled
    (lambda g: {**g, "db": g["db"] * 0 + g["db"].mean()}, "db"),             # wrong reduction
    (lambda g: {k: v for k, v in g.items() if k != "dx"}, "dx"),            # missing gradient
])
def test_wrong_gradients_are_caught_and_named(bug, wrong):
    report = check_backward(affine_tanh_forward, lambda d, c: bug(affine_tanh_backward(d, c)), inputs(1))
    assert not report.ok
    assert [row.name for row in report.failures()] == [wrong[1:]]
    with pytest.raises(CheckFailure, match=wrong):
        report.assert_ok()


def test_missing_tanh_derivative_reports_worst_entry_values():
    def no_tanh_derivative(dout, cache):
        W, x, _ = cache
        return {"dW": dout @ x.T, "dx": W.T @ dout, "db": dout.sum(axis=1, keepdims=True)}

    report = check_backward(affine_tanh_forward, no_tanh_derivative, inputs(2))
    row = report["W"]
    assert row.verdict == "WRONG" and row.rel_error > 1e-3
    # the reported values are the entries at the reported index, from the two computations
    W, x, b = (inputs(2)[k] for k in ("W", "x", "b"))
    z = W @ x + b
    dout = Rng(0).standard_normal((3, 5))  # the checker draws dout first, from its seed (0)
    numeric_dW = (dout * (1 - numpy.tanh(z) ** 2)) @ x.T
    assert row.numeric == pytest.approx(numeric_dW[row.worst_index], rel=1e-6)
    assert row.analytic == pytest.approx((dout @ x.T)[row.worst_index], rel=1e-12)
    assert "Worst entry" in str(pytest.raises(CheckFailure, report.assert_ok).value)


def test_shape_mismatch_is_its_own_verdict():
    report = check_backward(affine_tanh_forward, lambda d, c: {**affine_tanh_backward(d, c),
                                                               "dW": affine_tanh_backward(d, c)["dW"].T}, inputs())
    assert report["W"].verdict == "shape"
    with pytest.raises(CheckFailure, match=r"dW has shape \(4, 3\), but W has shape \(3, 4\)"):
        report.assert_ok()


def test_unused_input_is_not_a_failure():
    def forward(W, x, unused):
        out, cache = affine_tanh_forward(W, x, numpy.zeros((3, 1)))
        return out, cache

    def backward(dout, cache):
        g = affine_tanh_backward(dout, cache)
        return {"dW": g["dW"], "dx": g["dx"]}

    report = check_backward(forward, backward, {"W": inputs()["W"], "x": inputs()["x"], "unused": numpy.ones(2)})
    assert report.ok and report["unused"].verdict == "not used"
    unused_row = next(line for line in str(report).splitlines() if line.startswith("unused"))
    assert "nan" not in unused_row and "—" in unused_row and "nan" not in report._repr_html_()


def test_nested_parameter_dicts_and_two_upstream_outputs():
    def forward(x, parameters):
        a = numpy.tanh(parameters["Wa"] @ x)
        c = parameters["Wc"] @ x
        return a, c, (x, parameters, a)

    def backward(da, dc, cache):
        x, p, a = cache
        dza = da * (1 - a ** 2)
        return {"dx": p["Wa"].T @ dza + p["Wc"].T @ dc, "dWa": dza @ x.T, "dWc": dc @ x.T}

    rng = Rng(4)
    report = check_backward(forward, backward, {"x": rng.standard_normal((3, 2)),
                                                "parameters": {"Wa": rng.standard_normal((2, 3)),
                                                               "Wc": rng.standard_normal((4, 3))}},
                            outputs=(0, 1))
    assert report.ok and {r.name for r in report.rows} == {"x", "Wa", "Wc"}


def test_scalar_loss_gradient_and_sparse_mode():
    rng = Rng(6)
    params = {"W": rng.standard_normal((30, 40))}
    target = rng.standard_normal((30, 40))

    def loss(p):
        return float(0.5 * ((p["W"] - target) ** 2).sum())

    good = check_gradient(loss, params, {"dW": params["W"] - target}, sparse=25)
    assert good.ok and good["W"].n_checked == 25
    bad = check_gradient(loss, params, {"W": params["W"] + target}, sparse=25)
    assert not bad.ok


def test_inputs_are_never_modified():
    original = inputs()
    copies = {k: v.copy() for k, v in original.items()}
    check_backward(affine_tanh_forward, affine_tanh_backward, original)
    for key in original:
        numpy.testing.assert_array_equal(original[key], copies[key])


def test_float32_is_refused_with_the_fix():
    params = {k: v.astype(numpy.float32) for k, v in inputs().items()}
    with pytest.raises(TypeError, match=r"need float64.*astype\(xp.float64\)"):
        check_backward(affine_tanh_forward, affine_tanh_backward, params)


def test_report_prints_as_table_and_html():
    report = check_backward(affine_tanh_forward, affine_tanh_backward, inputs())
    assert "all gradients correct" in str(report)
    assert "<table>" in report._repr_html_() and "ok" in report._repr_html_()


@pytest.mark.gpu
def test_works_on_cupy_arrays():
    import cupy

    from course_utils.backend import using_backend

    def forward(W, x):
        out = cupy.tanh(W @ x)
        return out, (W, x, out)

    def backward(dout, cache):
        W, x, out = cache
        dz = dout * (1 - out ** 2)
        return {"dW": dz @ x.T, "dx": W.T @ dz}

    with using_backend("cupy"):
        rng = Rng(0)
        report = check_backward(forward, backward, {"W": rng.standard_normal((3, 4)), "x": rng.standard_normal((4, 2))})
    assert report.ok
