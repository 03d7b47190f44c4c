"""Instructor tests for assignment 04: the reference GRU and LSTM against PyTorch (float64,
copied weights), the gradient checker on every backward pass, the PyTorch layout and
gate-measurement helpers in course_utils, and the notebook's long-memory experiment.

PyTorch's GRU applies its reset gate after the recurrent product (reset-after) and the
course's before it (Cho et al.), so the two are different functions in general. The
comparison uses the cases where they coincide: the simplified GRU is ``nn.GRU`` with its
reset gate held open, and the full GRU is ``nn.GRU`` when ``W_ca`` is diagonal (then only
the diagonal of ``dW_ca`` is comparable). A last test shows that they do differ otherwise.
"""
from __future__ import annotations

import inspect

import matplotlib
import numpy
import pytest

matplotlib.use("Agg")

from course_utils import xp  # noqa: E402
from course_utils.gradcheck import check_backward  # noqa: E402
from course_utils.pytorch_layout import (gru_gradients_from_pytorch, gru_to_pytorch,  # noqa: E402
                                         lstm_gradients_from_pytorch, lstm_to_pytorch)
from tests.notebooks import run_given_cells, solution_namespace  # noqa: E402

SHAPES = [  # (n_x, n_a, n_y, m, T_x): non-square, m = 1 and T_x = 1 included
    (3, 5, 2, 4, 6),
    (7, 2, 3, 1, 4),
    (2, 6, 4, 3, 1),
]
TOL = {"rtol": 1e-10, "atol": 1e-12}


@pytest.fixture(scope="module")
def ns():
    return solution_namespace("04_gru_lstm")


def _parameters(rng, n_x, n_a, n_y, gates):
    p = {}
    for g in gates:
        p["W" + g] = rng.standard_normal((n_a, n_a + n_x)) * 0.6
        p["b" + g] = rng.standard_normal((n_a, 1)) * 0.3
    p["Wy"], p["by"] = rng.standard_normal((n_y, n_a)), rng.standard_normal((n_y, 1)) * 0.3
    return p


def _problem(shape, gates, seed):
    n_x, n_a, n_y, m, T_x = shape
    rng = numpy.random.default_rng(seed)
    return (_parameters(rng, n_x, n_a, n_y, gates), rng.standard_normal((n_x, m, T_x)),
            rng.standard_normal((n_a, m)) * 0.5, rng.standard_normal((n_a, m, T_x)))


def _close(got, want):
    numpy.testing.assert_allclose(numpy.asarray(got), want, **TOL)


def _torch_run(torch, module_class, weights, x, a0, da, c0=None, dc_last=None):
    """Run a one-layer nn.GRU/nn.LSTM with ``weights`` on the course's arrays; backpropagate ``da`` (and ``dc_last``)."""
    n_x, m, T_x = x.shape
    n_a = a0.shape[0]
    module = module_class(n_x, n_a, dtype=torch.float64)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    xt = torch.tensor(x.transpose(2, 1, 0), requires_grad=True)                     # (T_x, m, n_x)
    h0 = torch.tensor(a0.T[None].copy(), requires_grad=True)                        # (1, m, n_a)
    if module_class is torch.nn.LSTM:
        c0 = torch.tensor((numpy.zeros_like(a0) if c0 is None else c0).T[None].copy(), requires_grad=True)
        out, (_, c_n) = module(xt, (h0, c0))
    else:
        out, c_n = module(xt, h0)
    outputs, grads = [out], [torch.from_numpy(da.transpose(2, 1, 0).copy())]
    if dc_last is not None:
        outputs.append(c_n)
        grads.append(torch.from_numpy(dc_last.T[None].copy()))
    torch.autograd.backward(outputs, grads)
    result = {"a": out.detach().numpy().transpose(2, 1, 0), "dx": xt.grad.numpy().transpose(2, 1, 0),
              "da0": h0.grad.numpy()[0].T, "c_last": c_n.detach().numpy()[0].T,
              "weights": {k: getattr(module, k).grad.numpy() for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0")}}
    if module_class is torch.nn.LSTM:
        result["dc0"] = c0.grad.numpy()[0].T
    return result


def _against_pytorch(ns, torch, model, params, x, a0, da):
    """Run ``{model}_forward``/``_backward`` and PyTorch's module with the same weights; check a, dx and da0.

    Returns the course's forward outputs, its gradients, PyTorch's run and PyTorch's weight
    gradients in the course's layout.
    """
    module, layout, unstack = {
        "lstm": (torch.nn.LSTM, lstm_to_pytorch, lstm_gradients_from_pytorch),
        "gru": (torch.nn.GRU, gru_to_pytorch, gru_gradients_from_pytorch),
        "simple_gru": (torch.nn.GRU, gru_to_pytorch, gru_gradients_from_pytorch)}[model]
    outputs = ns[f"{model}_forward"](xp.asarray(x), xp.asarray(a0), params)
    grads = ns[f"{model}_backward"](xp.asarray(da), outputs[-1])
    ref = _torch_run(torch, module, layout(params), x, a0, da)
    _close(outputs[0], ref["a"])
    _close(grads["dx"], ref["dx"])
    _close(grads["da0"], ref["da0"])
    return outputs, grads, ref, unstack(ref["weights"])


@pytest.mark.parametrize("shape", SHAPES)
def test_lstm_forward_and_backward_match_nn_lstm(ns, shape):
    torch = pytest.importorskip("torch", reason="PyTorch is needed to compare with nn.LSTM")
    params, x, a0, da = _problem(shape, "fico", seed=sum(shape))
    (_, y, c, _), grads, ref, torch_grads = _against_pytorch(ns, torch, "lstm", params, x, a0, da)
    _close(c[:, :, -1], ref["c_last"])
    logits = numpy.einsum("ya,amt->ymt", params["Wy"], ref["a"]) + params["by"][:, :, None]
    _close(y, torch.softmax(torch.from_numpy(logits), dim=0).numpy())
    for key, value in torch_grads.items():
        _close(grads[key], value)


def test_lstm_cell_with_both_upstream_gradients_matches_nn_lstm(ns):
    """One step from a given (a_prev, c_prev), with gradients on both a_next and c_next: checks dc_prev too."""
    torch = pytest.importorskip("torch", reason="PyTorch is needed to compare with nn.LSTM")
    params, x, a0, da = _problem((4, 3, 2, 5, 1), "fico", seed=3)
    rng = numpy.random.default_rng(4)
    c_prev, dc_next = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    a_next, c_next, _, cache = ns["lstm_cell_forward"](x[:, :, 0], a0, c_prev, params)
    grads = ns["lstm_cell_backward"](da[:, :, 0], dc_next, cache)
    ref = _torch_run(torch, torch.nn.LSTM, lstm_to_pytorch(params), x, a0, da, c0=c_prev, dc_last=dc_next)
    _close(a_next, ref["a"][:, :, 0])
    _close(c_next, ref["c_last"])
    _close(grads["dxt"], ref["dx"][:, :, 0])
    _close(grads["da_prev"], ref["da0"])
    _close(grads["dc_prev"], ref["dc0"])
    for key, value in lstm_gradients_from_pytorch(ref["weights"]).items():
        _close(grads[key], value)


@pytest.mark.parametrize("shape", SHAPES)
def test_simplified_gru_matches_nn_gru_with_its_reset_gate_open(ns, shape):
    torch = pytest.importorskip("torch", reason="PyTorch is needed to compare with nn.GRU")
    params, x, a0, da = _problem(shape, "uc", seed=sum(shape) + 1)
    _, grads, _, torch_grads = _against_pytorch(ns, torch, "simple_gru", params, x, a0, da)
    for key in ("dWu", "dbu", "dWc", "dbc"):
        _close(grads[key], torch_grads[key])
    assert not numpy.any(torch_grads["dWr"]) and not numpy.any(torch_grads["dbr"])   # the open gate learns nothing


@pytest.mark.parametrize("shape", SHAPES)
def test_gru_matches_nn_gru_where_reset_before_and_after_coincide(ns, shape):
    """With W_ca diagonal, W_ca (Γr ⊙ a) = Γr ⊙ (W_ca a): the course's GRU is nn.GRU's function."""
    torch = pytest.importorskip("torch", reason="PyTorch is needed to compare with nn.GRU")
    n_a = shape[1]
    params, x, a0, da = _problem(shape, "urc", seed=sum(shape) + 2)
    params["Wc"][:, :n_a] = numpy.diag(numpy.random.default_rng(0).standard_normal(n_a))
    _, grads, _, torch_grads = _against_pytorch(ns, torch, "gru", params, x, a0, da)
    for key in ("dWu", "dbu", "dWr", "dbr", "dbc"):
        _close(grads[key], torch_grads[key])
    _close(grads["dWc"][:, n_a:], torch_grads["dWc"][:, n_a:])                           # W_cx: the same
    _close(numpy.diag(grads["dWc"][:, :n_a]), numpy.diag(torch_grads["dWc"][:, :n_a]))  # W_ca: its diagonal


def test_gru_and_nn_gru_differ_when_w_ca_is_not_diagonal(ns):
    torch = pytest.importorskip("torch", reason="PyTorch is needed to compare with nn.GRU")
    params, x, a0, da = _problem((3, 5, 2, 4, 6), "urc", seed=9)
    a, _, _ = ns["gru_forward"](xp.asarray(x), xp.asarray(a0), params)
    ref = _torch_run(torch, torch.nn.GRU, gru_to_pytorch(params), x, a0, da)
    assert numpy.abs(numpy.asarray(a) - ref["a"]).max() > 1e-3


@pytest.mark.parametrize("shape", SHAPES)
def test_every_backward_pass_passes_the_gradient_checker(ns, shape):
    n_x, n_a, n_y, m, T_x = shape
    rng = numpy.random.default_rng(7)
    x, a0, c_prev = rng.standard_normal((n_x, m, T_x)), rng.standard_normal((n_a, m)), rng.standard_normal((n_a, m))
    for gates, cell_f, cell_b, seq_f, seq_b in [
            ("uc", "simple_gru_cell_forward", "simple_gru_cell_backward", "simple_gru_forward", "simple_gru_backward"),
            ("urc", "gru_cell_forward", "gru_cell_backward", "gru_forward", "gru_backward")]:
        params = _parameters(rng, n_x, n_a, n_y, gates)
        check_backward(ns[cell_f], ns[cell_b], {"xt": x[:, :, 0], "a_prev": a0, "parameters": params}).assert_ok()
        check_backward(ns[seq_f], ns[seq_b], {"x": x, "a0": a0, "parameters": params}).assert_ok()
    params = _parameters(rng, n_x, n_a, n_y, "fico")
    check_backward(ns["lstm_cell_forward"], ns["lstm_cell_backward"],
                   {"xt": x[:, :, 0], "a_prev": a0, "c_prev": c_prev, "parameters": params}, outputs=(0, 1)).assert_ok()
    check_backward(ns["lstm_forward"], ns["lstm_backward"], {"x": x, "a0": a0, "parameters": params}).assert_ok()
    params.update({"p" + g: rng.standard_normal((n_a, 1)) for g in "fio"})
    check_backward(ns["peephole_lstm_cell_forward"], ns["peephole_lstm_cell_backward"],
                   {"xt": x[:, :, 0], "a_prev": a0, "c_prev": c_prev, "parameters": params}, outputs=(0, 1)).assert_ok()


def test_peephole_cell_with_zero_peepholes_is_the_lstm_cell(ns):
    params, x, a0, _ = _problem((3, 4, 2, 5, 1), "fico", seed=11)
    c_prev = numpy.random.default_rng(12).standard_normal((4, 5))
    plain = ns["lstm_cell_forward"](x[:, :, 0], a0, c_prev, params)
    peep = ns["peephole_lstm_cell_forward"](x[:, :, 0], a0, c_prev, {**params, **{"p" + g: numpy.zeros((4, 1)) for g in "fio"}})
    for got, want in zip(peep[:3], plain[:3]):
        _close(got, want)
    dc_next = numpy.random.default_rng(13).standard_normal((4, 5))
    peep_grads = ns["peephole_lstm_cell_backward"](plain[0], dc_next, peep[3])
    for key, value in ns["lstm_cell_backward"](plain[0], dc_next, plain[3]).items():
        _close(peep_grads[key], value)


def test_lstm_layout_puts_the_gates_in_pytorch_order():
    rng = numpy.random.default_rng(0)
    params = _parameters(rng, 3, 2, 1, "fico")
    layout = lstm_to_pytorch(params)
    assert {k: v.shape for k, v in layout.items()} == {
        "weight_ih_l0": (8, 3), "weight_hh_l0": (8, 2), "bias_ih_l0": (8,), "bias_hh_l0": (8,)}
    for k, gate in enumerate("ifco"):                      # PyTorch's i, f, g, o
        numpy.testing.assert_array_equal(layout["weight_hh_l0"][2 * k:2 * k + 2], params["W" + gate][:, :2])
        numpy.testing.assert_array_equal(layout["weight_ih_l0"][2 * k:2 * k + 2], params["W" + gate][:, 2:])
        numpy.testing.assert_array_equal(layout["bias_ih_l0"][2 * k:2 * k + 2], params["b" + gate][:, 0])
    gru = gru_to_pytorch(_parameters(rng, 3, 2, 1, "urc"))
    assert gru["weight_ih_l0"].shape == (6, 3) and not gru["bias_hh_l0"].any()


def test_gradient_norms_by_distance_are_powers_of_the_spectral_radius():
    """A linear recurrence a<t> = W a<t-1> + x<t> with W = ρQ (Q orthogonal): ‖∂L/∂x<T-k>‖ = ρ^k exactly."""
    from course_utils.gates import gradient_norms_by_distance
    from course_utils.widgets import recurrent_matrix

    W = recurrent_matrix(6, 0.8, seed=2)

    def forward(x, a0, parameters):
        a, a_t = xp.zeros((a0.shape[0],) + x.shape[1:]), a0
        for t in range(x.shape[2]):
            a_t = parameters["W"] @ a_t + x[:, :, t]
            a[:, :, t] = a_t
        return a, None, (parameters, x)

    def backward(da, caches):
        parameters, x = caches
        dx, carried = xp.zeros(x.shape), xp.zeros(da.shape[:2])
        for t in reversed(range(x.shape[2])):
            dx[:, :, t] = da[:, :, t] + carried
            carried = parameters["W"].T @ dx[:, :, t]
        return {"dx": dx}

    x = numpy.random.default_rng(1).standard_normal((6, 5, 20))
    norms = gradient_norms_by_distance(forward, backward, x, xp.zeros((6, 5)), {"W": W})
    numpy.testing.assert_allclose(norms, 0.8 ** numpy.arange(20), rtol=1e-10)


def test_gated_units_keep_the_gradient_the_rnn_loses(ns):
    """At initialisation with the notebook's memory bias, over 64 steps."""
    from course_utils.gates import gradient_norms_by_distance
    demo = run_given_cells(dict(ns), "04_gru_lstm", "earlier", "training")
    x, _ = demo["make_recall_data"](32, 64, seed=3)
    a0 = xp.zeros((16, 32))
    last = {}
    for model, (forward, backward, _) in demo["MODELS"].items():
        parameters = demo["init_parameters"](model, x.shape[0], 16, demo["N_SYMBOLS"], seed=0)
        norms = gradient_norms_by_distance(forward, backward, x, a0, parameters)
        last[model] = norms[-1] / norms[0]
    assert last["RNN"] < 1e-6 and last["GRU"] > 1e-3 and last["LSTM"] > 1e-3, last


def test_gate_explorer_redraws_and_rejects_bad_input():
    ipywidgets = pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt
    from course_utils.gates import gate_explorer, plot_accuracy_against_length
    rng = numpy.random.default_rng(0)
    gates = {"gate": 1 / (1 + numpy.exp(-rng.standard_normal((4, 3, 7)))), "cell": rng.standard_normal((4, 3, 7))}
    widget = gate_explorer(gates, example_labels=["a", "b", "c"])
    assert isinstance(widget, ipywidgets.interactive)
    menu, slider = widget.children[0], widget.children[1]
    assert list(menu.options) == ["gate", "cell"] and slider.max == 2
    menu.value, slider.value = "cell", 2                   # interactive draws again
    assert widget.result is None
    widget.f(**widget.kwargs)                              # the same redraw, called directly: interactive only logs errors
    with pytest.raises(ValueError, match="same m and T_x"):
        gate_explorer({"a": numpy.zeros((4, 3, 7)), "b": numpy.zeros((4, 2, 7))})
    ax = plot_accuracy_against_length([4, 8], {"RNN": [1.0, 0.5]}, chance=0.25)
    assert len(ax.lines) == 2                              # the curve and the chance line
    plt.close("all")


def test_course_utils_holds_no_solution():
    import course_utils.gates
    import course_utils.pytorch_layout
    for module in (course_utils.gates, course_utils.pytorch_layout):
        source = inspect.getsource(module)
        for name in ("def sigmoid", "def softmax", "_cell_forward", "_cell_backward", "def recurrent_forward",
                     "def lstm_forward", "def gru_forward", "xp.tanh", "xp.exp"):
            assert name not in source, f"{module.__name__} must not contain {name!r}"


def test_gated_units_learn_the_long_memory_task_the_rnn_fails(ns):
    """The notebook's experiment at one length, T_x = 32, with its training helper and budget."""
    demo = run_given_cells(dict(ns), "04_gru_lstm", "earlier", "training")
    X, symbols = demo["make_recall_data"](1000, 32, seed=1)
    X_test, test_symbols = demo["make_recall_data"](500, 32, seed=2)
    accuracy = {}
    for model in demo["MODELS"]:
        parameters, losses = demo["train"](model, X, demo["one_hot_targets"](symbols), 16, 150)
        accuracy[model] = demo["accuracy"](model, parameters, X_test, test_symbols)
    assert accuracy["GRU"] > 0.95 and accuracy["LSTM"] > 0.95, accuracy
    assert accuracy["RNN"] < 0.8, accuracy


@pytest.mark.gpu
def test_the_same_numbers_on_the_gpu(ns):
    """Every sequence forward/backward pass and the gradient-norm measurement, on NumPy and on CuPy."""
    from course_utils import Rng, to_host, using_backend
    from course_utils.gates import gradient_norms_by_distance
    results = {}
    for backend in ("numpy", "cupy"):
        with using_backend(backend):
            rng, out = Rng(3), {}
            x, a0 = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2))
            for model, gates in (("simple_gru", "uc"), ("gru", "urc"), ("lstm", "fico")):
                params = {k: xp.asarray(v) for k, v in _parameters(numpy.random.default_rng(1), 3, 4, 2, gates).items()}
                outputs = ns[f"{model}_forward"](x, a0, params)
                grads = ns[f"{model}_backward"](rng.standard_normal((4, 2, 5)), outputs[-1])
                assert type(grads["dx"]).__module__.split(".")[0] == backend
                out.update({f"{model} a": to_host(outputs[0]), **{f"{model} {k}": to_host(v) for k, v in grads.items()}})
                out[f"{model} norms"] = gradient_norms_by_distance(ns[f"{model}_forward"], ns[f"{model}_backward"],
                                                                   x, a0, params)
            results[backend] = out
    for key, value in results["numpy"].items():
        numpy.testing.assert_allclose(results["cupy"][key], value, rtol=1e-9, atol=1e-12, err_msg=key)
