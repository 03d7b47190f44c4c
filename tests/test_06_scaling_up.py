"""Instructor tests for assignment 06: the reference fused LSTM against PyTorch's nn.LSTM and the
gradient checker, the same code on the GPU (skipped without one), and the character model of the
notebook training to a perplexity well below uniform guessing."""
from __future__ import annotations

import matplotlib
import numpy
import pytest

matplotlib.use("Agg")

from course_utils import to_host, using_backend, xp  # noqa: E402
from course_utils.gradcheck import check_backward  # noqa: E402
from tests.notebooks import nbgrader_meta, solution_namespace, source_notebook  # noqa: E402

SHAPES = [  # (n_x, n_a, n_y, m, T_x): non-square, m = 1 and T_x = 1 included
    (3, 5, 2, 4, 6),
    (7, 2, 3, 1, 4),
    (2, 6, 4, 3, 1),
]


@pytest.fixture(scope="module")
def ns():
    namespace = solution_namespace("06_scaling_up")
    cells = {nbgrader_meta(c).get("grade_id"): c for c in source_notebook("06_scaling_up").cells}
    exec(compile(cells["training_step"].source, "06_scaling_up:training_step", "exec"), namespace)
    return namespace


def _problem(shape, seed, dtype=numpy.float64):
    n_x, n_a, n_y, m, T_x = shape
    rng = numpy.random.default_rng(seed)
    parameters = {}
    for gate in ("f", "i", "c", "o"):
        parameters["W" + gate] = rng.standard_normal((n_a, n_a + n_x)) * 0.6
        parameters["b" + gate] = rng.standard_normal((n_a, 1)) * 0.3
    parameters["Wy"], parameters["by"] = rng.standard_normal((n_y, n_a)), rng.standard_normal((n_y, 1)) * 0.3
    labels = rng.integers(0, n_y, (m, T_x))
    Y = numpy.eye(n_y)[labels].transpose(2, 0, 1)                      # (n_y, m, T_x) one-hot
    x = rng.standard_normal((n_x, m, T_x))
    as_dtype = lambda v: numpy.asarray(v, dtype=dtype)  # noqa: E731
    return {k: as_dtype(v) for k, v in parameters.items()}, as_dtype(x), as_dtype(Y), labels


@pytest.mark.parametrize("shape", SHAPES)
def test_fused_training_step_matches_pytorch(ns, shape):
    torch = pytest.importorskip("torch", reason="PyTorch is needed to compare with nn.LSTM")
    from course_utils.pytorch_layout import lstm_gradients_from_pytorch, lstm_to_pytorch
    n_x, n_a, n_y, m, T_x = shape
    parameters, x, Y, labels = _problem(shape, seed=sum(shape))

    # The course: the fused forward pass, 02's loss, the fused output layer and LSTM backward.
    a, y_pred, c, _ = ns["lstm_forward_fused"](x, numpy.zeros((n_a, m)), parameters)
    loss, gradients = ns["training_step"](parameters, x, Y, ns["lstm_forward_fused"], ns["lstm_backward_fused"],
                                          ns["output_backward_fused"])

    # PyTorch: nn.LSTM with the same weights, nn.functional.linear and cross_entropy summed over time.
    lstm = torch.nn.LSTM(n_x, n_a, dtype=torch.float64)
    with torch.no_grad():
        for name, value in lstm_to_pytorch(parameters).items():
            getattr(lstm, name).copy_(torch.tensor(value))
    Wy = torch.tensor(parameters["Wy"]).requires_grad_()
    by = torch.tensor(parameters["by"][:, 0]).requires_grad_()
    xt = torch.tensor(x.transpose(2, 1, 0)).requires_grad_()          # (T_x, m, n_x)
    out, _ = lstm(xt)                                                   # (T_x, m, n_a)
    logits = torch.nn.functional.linear(out, Wy, by)
    torch_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, n_y), torch.tensor(labels.T.reshape(-1)),
                                                   reduction="sum") / m
    torch_loss.backward()

    close = lambda got, want: numpy.testing.assert_allclose(to_host(got), want, rtol=1e-9, atol=1e-12)  # noqa: E731
    close(a, out.detach().numpy().transpose(2, 1, 0))
    close(y_pred, torch.softmax(logits, dim=-1).detach().numpy().transpose(2, 1, 0))
    assert y_pred.flags.c_contiguous, "y_pred is read by the loss next: a copy, not a transposed view (notebook § 3)"
    close(loss, torch_loss.item())
    close(gradients["dx"], xt.grad.numpy().transpose(2, 1, 0))
    close(gradients["dWy"], Wy.grad.numpy())
    close(gradients["dby"], by.grad.numpy()[:, None])
    expected = lstm_gradients_from_pytorch({name: p.grad.numpy() for name, p in lstm.named_parameters()})
    for name, value in expected.items():
        close(gradients[name], value)
    # c is not an output of nn.LSTM's sequence; its last step is: h_n, c_n
    _, (_, c_n) = lstm(xt)
    close(c[:, :, -1], c_n.detach().numpy()[0].T)


def test_fused_backward_passes_the_gradient_checker(ns):
    parameters, x, _, _ = _problem((4, 3, 2, 2, 5), seed=3)
    a0 = numpy.random.default_rng(4).standard_normal((3, 2))
    check_backward(ns["lstm_forward_fused"], ns["lstm_backward_fused"],
                   {"x": x, "a0": a0, "parameters": parameters}).assert_ok()


def test_fused_keeps_float32_and_agrees_with_float64(ns):
    parameters, x, Y, _ = _problem((5, 8, 4, 3, 7), seed=5)
    single = ns["training_step"]({k: v.astype(numpy.float32) for k, v in parameters.items()}, x.astype(numpy.float32),
                                 Y.astype(numpy.float32), ns["lstm_forward_fused"], ns["lstm_backward_fused"],
                                 ns["output_backward_fused"])[1]
    double = ns["training_step"](parameters, x, Y, ns["lstm_forward_fused"], ns["lstm_backward_fused"],
                                 ns["output_backward_fused"])[1]
    for name, value in double.items():
        assert single[name].dtype == numpy.float32, name
        numpy.testing.assert_allclose(single[name], value, rtol=2e-4, atol=2e-5, err_msg=name)


def test_fused_and_cell_versions_agree(ns):
    parameters, x, Y, _ = _problem((3, 4, 5, 2, 6), seed=6)
    cell = ns["training_step"](parameters, x, Y, *ns["CELL_VERSION"])
    fused = ns["training_step"](parameters, x, Y, *ns["FUSED_VERSION"])
    assert cell[0] == pytest.approx(fused[0], rel=1e-12)
    for name, value in cell[1].items():
        numpy.testing.assert_allclose(fused[1][name], value, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.gpu
def test_fused_lstm_runs_on_the_gpu(ns):
    parameters, x, Y, _ = _problem((27, 64, 27, 8, 12), seed=7)
    host = ns["training_step"](parameters, x, Y, *ns["FUSED_VERSION"])
    with using_backend("cupy"):
        from course_utils import to_device
        device = ns["training_step"]({k: to_device(v) for k, v in parameters.items()}, to_device(x), to_device(Y),
                                     *ns["FUSED_VERSION"])
        assert type(device[1]["dWf"]).__module__.startswith("cupy")
        for name, value in host[1].items():
            numpy.testing.assert_allclose(to_host(device[1][name]), value, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.fixture(scope="module")
def language_model(ns):
    """The notebook's character-model cells, on NumPy, with a smaller training run."""
    namespace = dict(ns, ON_GPU=False)
    cells = {nbgrader_meta(c).get("grade_id"): c for c in source_notebook("06_scaling_up").cells}
    exec(compile(cells["lm_setup"].source, "06_scaling_up:lm_setup", "exec"), namespace)
    return namespace


def test_character_model_learns_names(language_model):
    lm = language_model
    rng = numpy.random.default_rng(0)
    parameters = lm["init_lstm"](lm["V"], 64, lm["V"], seed=0)
    state = lm["adam_state"]()

    def held_out_perplexity():
        m = lm["X_held_out"].shape[1]
        y_pred = lm["lstm_forward_fused"](lm["X_held_out"], xp.zeros((64, m), dtype=xp.float32), parameters)[1]
        return lm["perplexity"](y_pred, lm["Y_held_out"])

    untrained = held_out_perplexity()
    for _ in range(150):
        batch = rng.choice(lm["Y_train"].shape[1], 64, replace=False)
        loss, gradients = lm["language_model_step"](parameters, lm["X_train"][:, batch], lm["Y_train"][:, batch])
        gradients, _ = lm["clip_by_norm"](gradients, 5.0)
        lm["adam_update"](parameters, gradients, state, 0.02)
    trained = held_out_perplexity()
    assert untrained > 20 and trained < 10, (untrained, trained)        # uniform guessing scores 27
    names = lm["sample_names"](parameters, 5, seed=0)
    assert len(names) == 5 and all(set(name) <= set("abcdefghijklmnopqrstuvwxyz") for name in names)
