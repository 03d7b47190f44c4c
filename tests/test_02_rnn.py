"""Instructor tests for assignment 02: the reference solutions against PyTorch, the
gradient-norm measurement in course_utils, and the two training demos of the notebook."""
from __future__ import annotations

import inspect

import matplotlib
import numpy
import pytest

matplotlib.use("Agg")

from course_utils import to_host, xp  # noqa: E402
from course_utils.gradcheck import check_backward  # noqa: E402
from tests.notebooks import run_given_cells, solution_namespace  # noqa: E402

SHAPES = [  # (n_x, n_a, n_y, m, T_x): non-square, m = 1 and T_x = 1 included
    (3, 5, 2, 4, 6),
    (7, 2, 3, 1, 4),
    (2, 6, 4, 3, 1),
]


@pytest.fixture(scope="module")
def ns():
    return solution_namespace("02_rnn")


def _problem(shape, seed):
    n_x, n_a, n_y, m, T_x = shape
    rng = numpy.random.default_rng(seed)
    params = {"Waa": rng.standard_normal((n_a, n_a)) * 0.5, "Wax": rng.standard_normal((n_a, n_x)) * 0.5,
              "Wya": rng.standard_normal((n_y, n_a)), "ba": rng.standard_normal((n_a, 1)) * 0.3,
              "by": rng.standard_normal((n_y, 1)) * 0.3}
    x = rng.standard_normal((n_x, m, T_x))
    a0 = rng.standard_normal((n_a, m)) * 0.5
    labels = rng.integers(0, n_y, (m, T_x))
    return params, x, a0, labels


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_loss_and_bptt_match_pytorch(ns, shape):
    torch = pytest.importorskip("torch", reason="PyTorch is needed to compare with nn.RNN")
    n_x, n_a, n_y, m, T_x = shape
    params, x, a0, labels = _problem(shape, seed=sum(shape))

    # The course's functions: forward, loss summed over time (mean over the batch), BPTT.
    a, y_pred, caches = ns["rnn_forward"](xp.asarray(x), xp.asarray(a0), {k: xp.asarray(v) for k, v in params.items()})
    y = numpy.zeros((n_y, m, T_x))
    for i in range(m):
        for t in range(T_x):
            y[labels[i, t], i, t] = 1.0
    loss, dz = ns["softmax_cross_entropy"](y_pred, xp.asarray(y))
    da, dWya, dby = ns["output_backward"](dz, a, caches[0][0][3])
    grads = ns["rnn_backward"](da, caches)

    # PyTorch: nn.RNN with copied weights, output layer and loss from torch.nn.functional.
    t64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    rnn = torch.nn.RNN(n_x, n_a, nonlinearity="tanh", dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(t64(params["Wax"]))
        rnn.weight_hh_l0.copy_(t64(params["Waa"]))
        rnn.bias_ih_l0.copy_(t64(params["ba"][:, 0]))
        rnn.bias_hh_l0.zero_()
    Wya, by = t64(params["Wya"]).requires_grad_(), t64(params["by"][:, 0]).requires_grad_()
    xt = t64(x.transpose(2, 1, 0)).requires_grad_()              # (T_x, m, n_x)
    h0 = t64(a0.T[None]).requires_grad_()                        # (1, m, n_a)
    out, _ = rnn(xt, h0)                                         # (T_x, m, n_a)
    logits = torch.nn.functional.linear(out, Wya, by)            # (T_x, m, n_y)
    torch_loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, n_y), torch.tensor(labels.T.reshape(-1)), reduction="sum") / m
    torch_loss.backward()

    close = lambda got, want: numpy.testing.assert_allclose(to_host(got), want, rtol=1e-9, atol=1e-12)  # noqa: E731
    close(a, out.detach().numpy().transpose(2, 1, 0))
    close(y_pred, torch.softmax(logits, dim=-1).detach().numpy().transpose(2, 1, 0))
    close(loss, torch_loss.item())
    close(grads["dx"], xt.grad.numpy().transpose(2, 1, 0))
    close(grads["da0"], h0.grad.numpy()[0].T)
    close(grads["dWax"], rnn.weight_ih_l0.grad.numpy())
    close(grads["dWaa"], rnn.weight_hh_l0.grad.numpy())
    close(grads["dba"], rnn.bias_ih_l0.grad.numpy()[:, None])
    close(dWya, Wya.grad.numpy())
    close(dby, by.grad.numpy()[:, None])


@pytest.mark.parametrize("shape", SHAPES)
def test_backward_passes_pass_the_gradient_checker(ns, shape):
    n_x, n_a, n_y, m, T_x = shape
    params, x, a0, _ = _problem(shape, seed=7)
    params = {k: xp.asarray(v) for k, v in params.items()}
    check_backward(ns["rnn_cell_forward"], ns["rnn_cell_backward"],
                   {"xt": xp.asarray(x[:, :, 0]), "a_prev": xp.asarray(a0), "parameters": params}).assert_ok()
    check_backward(ns["rnn_forward"], ns["rnn_backward"],
                   {"x": xp.asarray(x), "a0": xp.asarray(a0), "parameters": params}).assert_ok()


def test_course_utils_holds_no_solution():
    import course_utils.plots
    import course_utils.widgets
    for module in (course_utils.widgets, course_utils.plots):
        source = inspect.getsource(module)
        for name in ("def rnn_cell_forward", "def rnn_forward", "def rnn_cell_backward", "def rnn_backward",
                     "def softmax_cross_entropy", "def output_backward", "def softmax"):
            assert name not in source, f"{module.__name__} must not contain {name!r}"


@pytest.mark.parametrize("radius", [0.6, 0.9, 0.99])
def test_linear_gradient_vanishes_below_radius_one(radius):
    from course_utils.widgets import measure_gradient_norms
    norms = measure_gradient_norms(radius, "linear", T_x=40)
    assert norms[0] == pytest.approx(1.0)
    assert numpy.all(numpy.diff(norms) < 0)
    numpy.testing.assert_allclose(norms, radius ** numpy.arange(40), rtol=1e-8)


@pytest.mark.parametrize("radius", [1.01, 1.1, 1.5])
def test_linear_gradient_explodes_above_radius_one(radius):
    from course_utils.widgets import measure_gradient_norms
    norms = measure_gradient_norms(radius, "linear", T_x=40)
    assert numpy.all(numpy.diff(norms) > 0)
    numpy.testing.assert_allclose(norms, radius ** numpy.arange(40), rtol=1e-8)


def test_tanh_gradient_stays_below_linear_and_vanishes(ns):
    from course_utils.widgets import measure_gradient_norms
    for radius in (0.8, 1.0, 1.3):
        tanh = measure_gradient_norms(radius, "tanh", forward=ns["rnn_forward"], T_x=40)
        assert numpy.all(tanh <= radius ** numpy.arange(40) * (1 + 1e-9))
    assert measure_gradient_norms(0.9, "tanh", forward=ns["rnn_forward"], T_x=40)[-1] < 1e-2
    with pytest.raises(ValueError, match="forward"):
        measure_gradient_norms(1.0, "tanh")
    with pytest.raises(ValueError, match="activation"):
        measure_gradient_norms(1.0, "sigmoid")


def test_recurrent_matrix_has_the_requested_spectral_radius():
    from course_utils.widgets import recurrent_matrix
    W = to_host(recurrent_matrix(12, 1.3, seed=4))
    numpy.testing.assert_allclose(numpy.abs(numpy.linalg.eigvals(W)), 1.3, rtol=1e-10)


def test_widget_redraws_with_the_slider(ns):
    ipywidgets = pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt
    from course_utils.widgets import gradient_norm_explorer
    widget = gradient_norm_explorer(ns["rnn_forward"], T_x=20)
    assert isinstance(widget, ipywidgets.interactive)
    slider = widget.children[0]
    assert isinstance(slider, ipywidgets.FloatSlider) and slider.min < 1 < slider.max
    slider.value = 1.2                                   # interactive calls the plot again
    assert widget.result is None
    widget.f(**widget.kwargs)                            # the same redraw, called directly: interactive only logs errors
    plt.close("all")


@pytest.fixture(scope="module")
def demo(ns):
    return run_given_cells(dict(ns), "02_rnn", "tasks", "training")


def test_many_to_one_beats_the_majority_baseline(demo):
    tokens, labels = demo["make_sentiment_data"](1000, 10, seed=1)
    test_tokens, test_labels = demo["make_sentiment_data"](500, 10, seed=2)
    X, Y = demo["one_hot"](tokens, len(demo["SENTIMENT_VOCAB"])), demo["one_hot"](labels, 2)
    parameters, losses = demo["train"](X, Y, n_a=16, many_to_one=True, iterations=300)
    predictions = demo["predict"](parameters, demo["one_hot"](test_tokens, len(demo["SENTIMENT_VOCAB"])))[:, -1]
    accuracy = numpy.mean(predictions == test_labels[:, 0])
    baseline = max(numpy.mean(test_labels), 1 - numpy.mean(test_labels))
    assert numpy.mean(losses[-20:]) < 0.5 * numpy.mean(losses[:20])
    assert accuracy > 0.85 and accuracy > baseline + 0.2, (accuracy, baseline)


def test_many_to_many_beats_the_memoryless_baseline(demo):
    tokens, tags = demo["make_bracket_data"](1000, 12, seed=3)
    test_tokens, test_tags = demo["make_bracket_data"](500, 12, seed=4)
    V = len(demo["BRACKET_VOCAB"])
    parameters, losses = demo["train"](demo["one_hot"](tokens, V), demo["one_hot"](tags, 2), n_a=16,
                                       many_to_one=False, iterations=300)
    accuracy = numpy.mean(demo["predict"](parameters, demo["one_hot"](test_tokens, V)) == test_tags)
    word_majority = {w: int(numpy.mean(tags[tokens == w]) > 0.5) for w in range(V)}
    baseline = numpy.mean(numpy.vectorize(word_majority.get)(test_tokens) == test_tags)
    assert numpy.mean(losses[-20:]) < 0.5 * numpy.mean(losses[:20])
    assert accuracy > 0.95 and accuracy > baseline + 0.1, (accuracy, baseline)


def test_relu_gradient_vanishes_for_moderate_radius_and_explodes_for_large():
    from course_utils.widgets import measure_gradient_norms
    for radius in (0.8, 1.2, 2.0):
        relu = measure_gradient_norms(radius, "relu", T_x=40)
        assert numpy.all(relu <= radius ** numpy.arange(40) * (1 + 1e-9))   # relu' <= 1
    assert measure_gradient_norms(1.2, "relu", T_x=40)[-1] < 1e-2
    assert measure_gradient_norms(2.0, "relu", T_x=40)[-1] > 10
