"""Instructor tests for assignment 05: the reference layer, bidirectional and deep RNN functions
against PyTorch's multi-layer and bidirectional nn.RNN/nn.GRU/nn.LSTM (float64, copied weights,
outputs and gradients), the cell interface and tagging data of course_utils, and the notebook's
measurements (left to right against bidirectional, and the bidirectional "language model")."""
from __future__ import annotations

import inspect

import matplotlib
import numpy
import pytest

matplotlib.use("Agg")

from course_utils import to_host, xp  # noqa: E402
from course_utils.cells import (adapt_cell, describe, init_parameters, layer_tag, leaky_cell, linear_cell,  # noqa: E402
                                make_cell, select, tag_gradients)
from course_utils.gradcheck import check_backward  # noqa: E402
from course_utils.optim import adam_state, adam_update  # noqa: E402
from course_utils.pytorch_layout import lstm_to_pytorch  # noqa: E402
from course_utils.tagging import AMBIGUOUS, SURNAMES, TAGGING_VOCAB, UNAMBIGUOUS, tagging_data  # noqa: E402
from tests.notebooks import run_given_cells, solution_namespace  # noqa: E402

ASSIGNMENT = "05_brnn_deep"
# (L, bidirectional): L=None is one untagged layer (layer_forward, or brnn_forward when bidirectional)
WIRINGS = [(None, False), (None, True), (1, False), (2, False), (3, True), (2, True)]


@pytest.fixture(scope="module")
def ns():
    """The reference solutions, and the cells built from the earlier assignments' references."""
    return run_given_cells(solution_namespace(ASSIGNMENT), ASSIGNMENT, "cells")


def _forward_backward(ns, cell, L, bidirectional):
    if L:
        return (lambda x, p: ns["deep_rnn_forward"](x, p, cell, L, bidirectional)), ns["deep_rnn_backward"]
    if bidirectional:
        return (lambda x, p: ns["brnn_forward"](x, p, cell)), ns["brnn_backward"]
    return (lambda x, p: ns["layer_forward"](x, p, cell)), ns["layer_backward"]


# --- PyTorch ----------------------------------------------------------------------------------

def _torch_layout(kind, q):
    """(weight_ih, weight_hh, bias_ih, bias_hh or None) of one direction of one layer, from course names.

    Also turns the course's gradients (named like the parameters) into PyTorch's layout: it only moves entries.
    """
    if kind == "RNN":
        return q["Wax"], q["Waa"], q["ba"][:, 0], None
    if kind == "LSTM":
        layout = lstm_to_pytorch(q)                      # assignment 04's mapping, for one layer
        return layout["weight_ih_l0"], layout["weight_hh_l0"], layout["bias_ih_l0"], None
    if kind == "GRU":                                    # the PyTorch-variant cell below, gates r, z, n
        return (numpy.vstack([q[f"Wi{g}"] for g in "rzn"]), numpy.vstack([q[f"Wh{g}"] for g in "rzn"]),
                numpy.concatenate([q[f"bi{g}"][:, 0] for g in "rzn"]),
                numpy.concatenate([q[f"bh{g}"][:, 0] for g in "rzn"]))
    raise ValueError(kind)


def _torch_gru_cell():
    """A cell computing PyTorch's own GRU step, differentiated by torch.autograd.

    The course's GRU (curriculum, assignment 04) applies the reset gate before the recurrent
    matrix product and PyTorch after it, so the two differ; this cell is only here to check the
    layer, bidirectional and deep wiring against nn.GRU. Its names have n_a rows each.
    """
    torch = pytest.importorskip("torch")

    def shapes(n_x, n_a):
        return {**{f"Wi{g}": (n_a, n_x) for g in "rzn"}, **{f"Wh{g}": (n_a, n_a) for g in "rzn"},
                **{f"bi{g}": (n_a, 1) for g in "rzn"}, **{f"bh{g}": (n_a, 1) for g in "rzn"}}

    names = tuple(shapes(1, 1))

    def forward(xt, state_prev, parameters):
        w = {k: torch.tensor(to_host(parameters[k]), requires_grad=True) for k in names}
        x = torch.tensor(to_host(xt), requires_grad=True)
        h = torch.tensor(to_host(state_prev[0]), requires_grad=True)
        r = torch.sigmoid(w["Wir"] @ x + w["bir"] + w["Whr"] @ h + w["bhr"])
        z = torch.sigmoid(w["Wiz"] @ x + w["biz"] + w["Whz"] @ h + w["bhz"])
        n = torch.tanh(w["Win"] @ x + w["bin"] + r * (w["Whn"] @ h + w["bhn"]))
        h_next = (1 - z) * n + z * h
        return (xp.asarray(h_next.detach().numpy()),), (x, h, w, h_next)

    def backward(dstate_next, cache):
        x, h, w, h_next = cache
        grads = torch.autograd.grad(h_next, [x, h, *w.values()], torch.tensor(to_host(dstate_next[0])))
        return (xp.asarray(grads[0].numpy()), (xp.asarray(grads[1].numpy()),),
                {f"d{k}": xp.asarray(g.numpy()) for k, g in zip(w, grads[2:])})

    return make_cell("torch GRU", shapes, forward, backward)


def _cells_for_pytorch(ns):
    cells = [("RNN", ns["rnn_cell"]), ("GRU", _torch_gru_cell())]
    if "lstm_cell" in ns:
        cells.append(("LSTM", ns["lstm_cell"]))
    return cells


@pytest.mark.parametrize("L, bidirectional", WIRINGS)
def test_layers_match_pytorch_with_copied_weights(ns, L, bidirectional):
    torch = pytest.importorskip("torch", reason="PyTorch is needed to compare with nn.RNN/GRU/LSTM")
    n_x, n_a, m, T_x = 3, 4, 2, 5
    directions = ("_f", "_b") if bidirectional else ("",)
    for kind, cell in _cells_for_pytorch(ns):
        parameters = init_parameters(cell, n_x, n_a, L=L, bidirectional=bidirectional, seed=sum(map(ord, kind)))
        rng = numpy.random.default_rng(len(kind))
        x = rng.standard_normal((n_x, m, T_x))
        forward, backward = _forward_backward(ns, cell, L, bidirectional)
        a, caches = forward(xp.asarray(x), parameters)
        da = rng.standard_normal(tuple(a.shape))
        grads = backward(xp.asarray(da), caches)

        module = getattr(torch.nn, "GRU" if kind == "GRU" else kind)(
            n_x, n_a, num_layers=L or 1, bidirectional=bidirectional, dtype=torch.float64)
        tags = [(f"{d}{layer_tag(k + 1) if L else ''}", f"l{k}{'_reverse' if d == '_b' else ''}")
                for k in range(L or 1) for d in directions]
        with torch.no_grad():
            for ours, theirs in tags:
                w_ih, w_hh, b_ih, b_hh = _torch_layout(kind, {n: to_host(parameters[n + ours])
                                                              for n in cell["parameter_names"]})
                getattr(module, f"weight_ih_{theirs}").copy_(torch.tensor(w_ih))
                getattr(module, f"weight_hh_{theirs}").copy_(torch.tensor(w_hh))
                getattr(module, f"bias_ih_{theirs}").copy_(torch.tensor(b_ih))
                getattr(module, f"bias_hh_{theirs}").copy_(torch.tensor(0 * b_ih if b_hh is None else b_hh))
        xt = torch.tensor(x.transpose(2, 1, 0), requires_grad=True)       # (T_x, m, n_x)
        out, _ = module(xt)                                                # zero initial states
        out.backward(torch.tensor(da.transpose(2, 1, 0)))

        close = lambda got, want, what: numpy.testing.assert_allclose(  # noqa: E731
            to_host(got), want, rtol=1e-9, atol=1e-12, err_msg=f"{kind} cell, L={L}, bidirectional: {what}")
        close(a, out.detach().numpy().transpose(2, 1, 0), "a")
        close(grads["dx"], xt.grad.numpy().transpose(2, 1, 0), "dx")
        for ours, theirs in tags:
            course = {n: to_host(grads[f"d{n}{ours}"]) for n in cell["parameter_names"]}
            d_ih, d_hh, d_b_ih, d_b_hh = _torch_layout(kind, course)
            close(d_ih, getattr(module, f"weight_ih_{theirs}").grad.numpy(), f"weight_ih_{theirs}")
            close(d_hh, getattr(module, f"weight_hh_{theirs}").grad.numpy(), f"weight_hh_{theirs}")
            close(d_b_ih, getattr(module, f"bias_ih_{theirs}").grad.numpy(), f"bias_ih_{theirs}")
            if d_b_hh is not None:
                close(d_b_hh, getattr(module, f"bias_hh_{theirs}").grad.numpy(), f"bias_hh_{theirs}")


def _check_one_step(cell, n_x=3, n_a=4, seed=0):
    """check_backward on one step of a cell: the gradients of xt, of every state part and of the parameters."""
    rng = numpy.random.default_rng(seed)
    inputs = {"xt": rng.standard_normal((n_x, 2)), **{s: rng.standard_normal((n_a, 2)) for s in cell["states"]},
              "parameters": init_parameters(cell, n_x, n_a, seed=seed)}

    def step(xt, parameters, **state):
        state_next, cache = cell["forward"](xt, tuple(state[s] for s in cell["states"]), parameters)
        return (*state_next, cache)

    def step_backward(*douts):
        dxt, dstate, gradients = cell["backward"](douts[:-1], douts[-1])
        return {"dxt": dxt, **{f"d{s}": d for s, d in zip(cell["states"], dstate)}, **gradients}

    check_backward(step, step_backward, inputs, outputs=tuple(range(len(cell["states"])))).assert_ok()


def test_the_pytorch_gru_cell_passes_the_gradient_checker():
    _check_one_step(_torch_gru_cell())


# --- gradient checks on every cell, wiring and direction ---------------------------------------

@pytest.mark.parametrize("L, bidirectional", WIRINGS)
def test_backward_passes_pass_the_gradient_checker_for_every_cell(ns, L, bidirectional):
    cells = [ns["rnn_cell"], linear_cell, leaky_cell] + [ns[k] for k in ("gru_cell", "lstm_cell") if k in ns]
    for cell in cells:
        x = numpy.random.default_rng(3).standard_normal((2, 2, 3))
        forward, backward = _forward_backward(ns, cell, L, bidirectional)
        inputs = {"x": xp.asarray(x), "parameters": init_parameters(cell, 2, 3, L=L, bidirectional=bidirectional, seed=5)}
        check_backward(lambda x, parameters: forward(x, parameters), backward, inputs, sparse=6, eps=1e-5).assert_ok()


def test_right_to_left_layer_is_the_left_to_right_layer_on_the_reversed_sequence(ns):
    x = xp.asarray(numpy.random.default_rng(4).standard_normal((3, 2, 6)))
    for cell in (ns["rnn_cell"], leaky_cell):
        parameters = init_parameters(cell, 3, 4, seed=6)
        backwards, _ = ns["layer_forward"](x, parameters, cell, reverse=True)
        flipped, _ = ns["layer_forward"](x[:, :, ::-1], parameters, cell)
        numpy.testing.assert_allclose(to_host(backwards), to_host(flipped)[:, :, ::-1], rtol=1e-12)


def test_inputs_are_not_mutated(ns):
    from course_utils.checks import check_not_mutated
    x = xp.asarray(numpy.random.default_rng(5).standard_normal((3, 2, 4)))
    parameters = init_parameters(leaky_cell, 3, 2, L=2, bidirectional=True, seed=7)
    a, caches = check_not_mutated(ns["deep_rnn_forward"], x, parameters, leaky_cell, 2, True)
    check_not_mutated(ns["deep_rnn_backward"], xp.ones(a.shape), caches)


# --- course_utils.cells ------------------------------------------------------------------------

def test_adapted_cell_drops_the_output_layer_and_keeps_the_recurrence(ns):
    rng = numpy.random.default_rng(6)
    parameters = init_parameters(ns["rnn_cell"], 3, 4, n_y=5, seed=8)
    assert set(parameters) == {"Waa", "Wax", "ba", "Wya", "by"}
    xt, a_prev = rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    (a_next,), cache = ns["rnn_cell"]["forward"](xt, (a_prev,), parameters)
    numpy.testing.assert_allclose(a_next, numpy.tanh(parameters["Waa"] @ a_prev + parameters["Wax"] @ xt
                                                     + parameters["ba"]))
    dxt, (da_prev,), gradients = ns["rnn_cell"]["backward"]((numpy.ones((4, 2)),), cache)
    assert set(gradients) == {"dWaa", "dWax", "dba"} and dxt.shape == (3, 2) and da_prev.shape == (4, 2)
    assert describe(ns["rnn_cell"]) == "RNN cell: state ('a',), parameters ('Waa', 'Wax', 'ba')"


def test_adapted_cell_says_which_gradient_is_missing():
    cell = adapt_cell("broken", lambda xt, a, p: (a, None, None), lambda da, cache: {"dxt": da},
                      shapes=lambda n_x, n_a: {"Wa": (n_a, n_a + n_x)})
    with pytest.raises(KeyError, match="returned no da_prev, dWa"):
        cell["backward"]((numpy.ones((2, 1)),), None)


def test_parameter_names_show_direction_and_layer():
    parameters = init_parameters(linear_cell, 3, 4, n_y=2, L=2, bidirectional=True, seed=0)
    assert sorted(parameters) == sorted(["Wa_f[1]", "ba_f[1]", "Wa_b[1]", "ba_b[1]", "Wa_f[2]", "ba_f[2]",
                                         "Wa_b[2]", "ba_b[2]", "Wya", "by"])
    assert parameters["Wa_f[1]"].shape == (4, 7) and parameters["Wa_b[2]"].shape == (4, 12)
    assert parameters["Wya"].shape == (2, 8)
    assert select(select(parameters, "[2]"), "_b") == {"Wa": parameters["Wa_b[2]"], "ba": parameters["ba_b[2]"]}
    assert tag_gradients({"dx": 1, "dWa": 2}, "_f[2]") == {"dWa_f[2]": 2}
    with pytest.raises(ValueError, match=r"No parameter name ends in '\[3\]'"):
        select(parameters, "[3]")


def test_small_cells_pass_the_gradient_checker():
    for seed, cell in enumerate((linear_cell, leaky_cell)):
        _check_one_step(cell, seed=seed)


def test_adam_takes_a_first_step_of_the_learning_rate_against_the_gradient():
    parameters = {"w": numpy.array([1.0, -2.0, 3.0])}
    state = adam_state()
    adam_update(parameters, {"dw": numpy.array([0.5, -4.0, 0.0])}, state, learning_rate=0.1)
    numpy.testing.assert_allclose(parameters["w"], [0.9, -1.9, 3.0], atol=1e-6)
    for _ in range(300):
        adam_update(parameters, {"dw": 2 * parameters["w"]}, state, learning_rate=0.05)
    assert numpy.abs(parameters["w"]).max() < 0.05


def test_course_utils_holds_no_solution():
    import course_utils.cells
    import course_utils.optim
    import course_utils.tagging
    for module in (course_utils.cells, course_utils.optim, course_utils.tagging):
        source = inspect.getsource(module)
        for name in ("layer_forward", "layer_backward", "output_forward", "brnn_forward", "brnn_backward",
                     "deep_rnn_forward", "deep_rnn_backward", "rnn_cell_forward", "lstm_cell_forward"):
            assert f"def {name}" not in source, f"{module.__name__} must not define {name}"


# --- course_utils.tagging ---------------------------------------------------------------------

@pytest.mark.parametrize("T_x", [4, 8, 12])
def test_tagging_sentences_tag_an_ambiguous_word_by_the_next_word(T_x):
    sentences, tags = tagging_data(500, T_x, seed=T_x)
    assert tags.shape == (500, T_x) and all(len(s) == T_x for s in sentences)
    assert {w for s in sentences for w in s} <= set(TAGGING_VOCAB)
    seen = set()
    for sentence, row in zip(sentences, tags):
        assert row.sum() in (0, 2)
        for t, word in enumerate(sentence[:-1]):
            if word in AMBIGUOUS:
                is_person = sentence[t + 1] in SURNAMES
                assert is_person or sentence[t + 1] == AMBIGUOUS[word]
                assert row[t] == row[t + 1] == int(is_person)
                seen.add(is_person)
            if word in UNAMBIGUOUS:
                assert row[t] == row[t + 1] == 1
    assert seen == {True, False}
    (first, first_tags), (again, again_tags) = tagging_data(3, T_x, seed=1), tagging_data(3, T_x, seed=1)
    assert first == again and (first_tags == again_tags).all()


def test_tagging_data_refuses_lengths_it_cannot_make():
    with pytest.raises(ValueError, match="4 to 12 words"):
        tagging_data(5, 13)


# --- the notebook's measurements -------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(ns):
    return run_given_cells(dict(ns), ASSIGNMENT, "training", "tagging_data", "perplexity")


def test_bidirectional_tagger_beats_left_to_right_on_the_ambiguous_words(demo):
    uni, bi = demo["model"](demo["rnn_cell"]), demo["model"](demo["rnn_cell"], bidirectional=True)
    uni_parameters, _, _ = demo["train"](demo["X_train"], demo["Y_train"], uni, 32, 200)
    bi_parameters, _, _ = demo["train"](demo["X_train"], demo["Y_train"], bi, 16, 200)
    (uni_all, uni_ambiguous), (bi_all, bi_ambiguous) = demo["accuracies"](uni_parameters, uni), demo["accuracies"](bi_parameters, bi)
    assert bi_ambiguous > 0.95 and uni_ambiguous < 0.7, (uni_ambiguous, bi_ambiguous)
    assert bi_all > uni_all + 0.03, (uni_all, bi_all)


def test_bidirectional_language_model_perplexity_is_misleadingly_low(demo):
    X, X_test = demo["X_train"][:, :1000], demo["X_test"][:, :300]
    inputs, test_inputs = demo["shifted_inputs"](X), demo["shifted_inputs"](X_test)
    scores = {}
    for name, bidirectional, n_a in (("uni", False, 32), ("bi", True, 16)):
        spec = demo["model"](demo["rnn_cell"], bidirectional=bidirectional)
        parameters, _, _ = demo["train"](inputs, X, spec, n_a, 200)
        scores[name] = (demo["perplexity"](demo["predict"](parameters, test_inputs, spec), X_test),
                        demo["perplexity_left_to_right"](parameters, spec, test_inputs, X_test))
    assert scores["uni"][0] == pytest.approx(scores["uni"][1], rel=1e-9)   # it never looks ahead
    assert scores["bi"][0] < 1.3 < scores["uni"][0] < scores["bi"][1], scores


@pytest.mark.gpu
def test_the_same_numbers_on_the_gpu(ns):
    from course_utils import Rng, using_backend
    results = {}
    for backend in ("numpy", "cupy"):
        with using_backend(backend):
            cell = ns["lstm_cell"] if "lstm_cell" in ns else leaky_cell
            parameters = init_parameters(cell, 3, 4, L=2, bidirectional=True, seed=3)
            a, caches = ns["deep_rnn_forward"](Rng(4).standard_normal((3, 2, 5)), parameters, cell, 2, True)
            gradients = ns["deep_rnn_backward"](Rng(5).standard_normal(tuple(a.shape)), caches)
            results[backend] = {"a": to_host(a), **{k: to_host(v) for k, v in gradients.items()}}
    for key, value in results["numpy"].items():
        numpy.testing.assert_allclose(results["cupy"][key], value, rtol=1e-9, atol=1e-12, err_msg=key)
