"""Instructor tests for assignment 03: the names corpus and its held-out split, the language model's loss and
gradients against PyTorch, clipping against PyTorch's, the sampler's distribution and stop conditions, the
baselines computed independently, training that beats the bigram model, and the temperature widget."""
from __future__ import annotations

import binascii
import importlib.resources
import inspect
import math
import re
from pathlib import Path

import matplotlib
import numpy
import pytest

matplotlib.use("Agg")

from course_utils import Rng, to_host, using_backend, xp  # noqa: E402
from course_utils.corpus import census_first_names, names_corpus, split_held_out  # noqa: E402
from course_utils.gradcheck import check_gradient  # noqa: E402
from tests.notebooks import run_given_cells, solution_namespace  # noqa: E402

ASSIGNMENT = "03_char_lm"
CASES = [  # (n_y, n_a, sequence lengths): non-square, m = 1, T = 1 and padding included
    (4, 3, [5, 2, 4]),
    (6, 2, [1]),
    (3, 7, [2, 6]),
]


@pytest.fixture(scope="module")
def ns():
    return solution_namespace(ASSIGNMENT)


@pytest.fixture(scope="module")
def demo(ns):
    """The solution namespace with the notebook's given definitions (corpus, baselines, training) run."""
    return run_given_cells(dict(ns), ASSIGNMENT, "corpus", "bigram", "init", "test_helpers", "sample_checks",
                           "generate", "training")


def _targets(n_y, lengths, seed):
    """Random one-hot targets (n_y, m, T) ending with index 0 (<EOS>), zero columns as padding, and their indices."""
    rng = numpy.random.default_rng(seed)
    Y = numpy.zeros((n_y, len(lengths), max(lengths)))
    indices = []
    for i, length in enumerate(lengths):
        sequence = list(rng.integers(1, n_y, length - 1)) + [0]
        Y[sequence, i, numpy.arange(length)] = 1.0
        indices.append(sequence)
    return Y, indices


def _parameters(n_y, n_a, seed):
    rng = numpy.random.default_rng(seed)
    return {"Waa": rng.standard_normal((n_a, n_a)) * 0.6, "Wax": rng.standard_normal((n_a, n_y)) * 0.6,
            "Wya": rng.standard_normal((n_y, n_a)) * 0.6, "ba": rng.standard_normal((n_a, 1)) * 0.3,
            "by": rng.standard_normal((n_y, 1)) * 0.3}


# --------------------------------------------------------------------------- the corpus
def test_corpus_is_every_distinct_census_first_name():
    files = importlib.resources.files("names")
    expected = set()
    for filename in ("dist.female.first", "dist.male.first"):
        for line in files.joinpath(filename).read_text().splitlines():
            if line.strip():
                expected.add(re.match(r"[A-Z]+", line).group(0).lower())
    names = census_first_names()
    assert names == sorted(expected)
    assert all(re.fullmatch(r"[a-z]+", name) for name in names)


def test_held_out_split_is_fixed_disjoint_and_about_a_tenth():
    names = census_first_names()
    train, held_out = names_corpus()
    assert set(train).isdisjoint(held_out) and sorted(train + held_out) == names
    assert 0.08 < len(held_out) / len(names) < 0.12
    assert held_out == [n for n in names if binascii.crc32(n.encode()) % 10 == 0]   # the documented rule
    shuffled = list(numpy.random.default_rng(0).permutation(names))
    train_shuffled, held_shuffled = split_held_out(shuffled)
    assert set(train_shuffled) == set(train) and set(held_shuffled) == set(held_out)  # depends on the name only
    with pytest.raises(ValueError, match="every"):
        split_held_out(names, every=1)


def test_every_held_out_character_is_in_the_vocabulary(demo):
    assert set("".join(demo["held_out_names"])) <= set(demo["characters"])
    assert demo["characters"][demo["EOS"]] == "\n" and demo["V"] == 27


# --------------------------------------------------------------------------- the language model
@pytest.mark.parametrize("n_y, n_a, lengths", CASES)
def test_language_model_loss_and_gradients_match_pytorch(ns, n_y, n_a, lengths):
    torch = pytest.importorskip("torch", reason="PyTorch is needed to compare with nn.RNN")
    Y, indices = _targets(n_y, lengths, seed=n_y * 10 + n_a)
    params = _parameters(n_y, n_a, seed=len(lengths))
    m, T = len(lengths), max(lengths)

    loss, y_pred, cache = ns["lm_forward"](xp.asarray(Y), {k: xp.asarray(v) for k, v in params.items()})
    grads = ns["lm_backward"](cache)

    # PyTorch: nn.RNN with copied weights reads x<1> = 0, x<t> = y<t-1>; cross-entropy over the real steps only.
    t64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    rnn = torch.nn.RNN(n_y, n_a, nonlinearity="tanh", dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(t64(params["Wax"]))
        rnn.weight_hh_l0.copy_(t64(params["Waa"]))
        rnn.bias_ih_l0.copy_(t64(params["ba"][:, 0]))
        rnn.bias_hh_l0.zero_()
    Wya, by = t64(params["Wya"]).requires_grad_(), t64(params["by"][:, 0]).requires_grad_()
    targets = t64(Y.transpose(2, 1, 0))                                        # (T, m, n_y)
    inputs = torch.nn.functional.pad(targets, (0, 0, 0, 0, 1, 0))[:-1]         # shift one step down the time axis
    out, _ = rnn(inputs)
    logits = torch.nn.functional.linear(out, Wya, by)                           # (T, m, n_y)
    labels = torch.full((T, m), -100, dtype=torch.long)                         # -100: ignored (padding)
    for i, sequence in enumerate(indices):
        labels[: len(sequence), i] = torch.tensor(sequence)
    torch_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, n_y), labels.reshape(-1),
                                                   ignore_index=-100, reduction="sum") / m
    torch_loss.backward()

    close = lambda got, want: numpy.testing.assert_allclose(to_host(got), want, rtol=1e-9, atol=1e-12)  # noqa: E731
    close(loss, torch_loss.item())
    real = Y.sum(axis=0) > 0
    close(to_host(y_pred)[:, real], torch.softmax(logits, -1).detach().numpy().transpose(2, 1, 0)[:, real])
    close(grads["dWax"], rnn.weight_ih_l0.grad.numpy())
    close(grads["dWaa"], rnn.weight_hh_l0.grad.numpy())
    close(grads["dba"], rnn.bias_ih_l0.grad.numpy()[:, None])
    close(grads["dWya"], Wya.grad.numpy())
    close(grads["dby"], by.grad.numpy()[:, None])
    assert set(grads) == {"dWaa", "dWax", "dWya", "dba", "dby"}


@pytest.mark.parametrize("n_y, n_a, lengths", CASES)
def test_language_model_passes_the_gradient_checker(ns, n_y, n_a, lengths):
    Y = xp.asarray(_targets(n_y, lengths, seed=3)[0])
    params = {k: xp.asarray(v) for k, v in _parameters(n_y, n_a, seed=4).items()}
    grads = ns["lm_backward"](ns["lm_forward"](Y, params)[2])
    check_gradient(lambda p: ns["lm_forward"](Y, p)[0], params, grads).assert_ok()


def test_perplexity_of_uniform_and_perfect_models(ns):
    Y = xp.asarray(_targets(5, [3, 1, 4], seed=2)[0])
    assert ns["perplexity"](xp.full(Y.shape, 0.2), Y) == pytest.approx(5.0, rel=1e-12)
    assert ns["perplexity"](Y + (1 - Y.sum(axis=0)) / 5, Y) == pytest.approx(1.0, rel=1e-12)


# --------------------------------------------------------------------------- clipping
def _gradients(seed):
    rng = numpy.random.default_rng(seed)
    return {"dWaa": rng.standard_normal((4, 4)) * 3, "dWya": rng.standard_normal((6, 4)) * 0.1,
            "dby": rng.standard_normal((6, 1)) * 10}


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e6])
def test_clip_by_norm_matches_pytorch(ns, max_norm):
    torch = pytest.importorskip("torch")
    gradients = _gradients(seed=int(max_norm))
    tensors = []
    for g in gradients.values():
        tensor = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        tensor.grad = torch.tensor(g)
        tensors.append(tensor)
    torch_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    before = {k: v.copy() for k, v in gradients.items()}
    clipped, norm = ns["clip_by_norm"](gradients, max_norm)
    assert norm == pytest.approx(float(torch_norm), rel=1e-12)
    for (name, g), tensor in zip(clipped.items(), tensors):
        # PyTorch divides by (norm + 1e-6); the course uses min(1, max_norm / norm) exactly
        numpy.testing.assert_allclose(g, tensor.grad.numpy(), rtol=1e-5)
        numpy.testing.assert_array_equal(gradients[name], before[name])
    total = math.sqrt(sum(float(numpy.sum(g ** 2)) for g in clipped.values()))
    assert total == pytest.approx(min(norm, max_norm), rel=1e-12)


def test_clip_by_value_matches_pytorch(ns):
    torch = pytest.importorskip("torch")
    gradients = _gradients(seed=5)
    tensors = []
    for g in gradients.values():
        tensor = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        tensor.grad = torch.tensor(g)
        tensors.append(tensor)
    torch.nn.utils.clip_grad_value_(tensors, 0.7)
    clipped = ns["clip"](gradients, 0.7)
    for (name, g), tensor in zip(clipped.items(), tensors):
        numpy.testing.assert_array_equal(g, tensor.grad.numpy())
    assert numpy.abs(gradients["dby"]).max() > 0.7       # the input is untouched


def test_one_step_lowers_the_loss_and_leaves_the_parameters_alone(ns):
    Y = xp.asarray(_targets(5, [4, 2, 6], seed=6)[0])
    params = {k: xp.asarray(v) for k, v in _parameters(5, 4, seed=7).items()}
    before = {k: v.copy() for k, v in params.items()}
    loss, new, norm = ns["optimization_step"](Y, params, 0.1, 1.0)
    assert all(numpy.array_equal(params[k], before[k]) for k in params)
    step = math.sqrt(sum(float(numpy.sum((new[k] - params[k]) ** 2)) for k in params))
    assert step == pytest.approx(0.1 * min(1.0, norm), rel=1e-9)       # ‖Δθ‖ = α · min(‖g‖, θ)
    assert ns["lm_forward"](Y, new)[0] < loss


# --------------------------------------------------------------------------- sampling
def _sequence_probabilities(params, eos, temperature, max_length):
    """Every possible output of the sampler and its probability, by a direct host loop (not the notebook's helper)."""
    n_y = params["Wya"].shape[0]
    results = {}

    def extend(prefix, a, probability):
        x = numpy.zeros((n_y, 1))
        if prefix:
            x[prefix[-1], 0] = 1.0
        a = numpy.tanh(params["Waa"] @ a + params["Wax"] @ x + params["ba"])
        z = (params["Wya"] @ a + params["by"])[:, 0] / temperature
        p = numpy.exp(z - z.max())
        p /= p.sum()
        for k in range(n_y):
            output = prefix + (k,)
            if k == eos or len(output) == max_length:
                results[output] = probability * p[k]
            else:
                extend(output, a, probability * p[k])

    extend((), numpy.zeros((params["Waa"].shape[0], 1)), 1.0)
    return results


@pytest.mark.parametrize("temperature, max_length, eos", [(1.0, 3, 0), (0.6, 3, 2), (1.8, 2, 1)])
def test_samples_follow_the_model_distribution(ns, demo, temperature, max_length, eos):
    params = _parameters(3, 4, seed=int(temperature * 10))
    params = {k: v * 2.5 for k, v in params.items()}
    exact = _sequence_probabilities(params, eos, temperature, max_length)
    assert sum(exact.values()) == pytest.approx(1.0, abs=1e-12)
    helper = demo["sequence_distribution"]({k: xp.asarray(v) for k, v in params.items()}, eos, temperature, max_length)
    assert helper.keys() == exact.keys()                     # the notebook's test helper agrees with this loop
    assert all(helper[k] == pytest.approx(exact[k], rel=1e-10) for k in exact)
    draws, rng, counts = 4000, Rng(11), {}
    for _ in range(draws):
        output = tuple(ns["sample"](params, eos, rng, temperature=temperature, max_length=max_length))
        counts[output] = counts.get(output, 0) + 1
    assert set(counts) <= set(exact)
    for output, p in exact.items():                          # 5 binomial standard errors (+1 for small counts)
        assert abs(counts.get(output, 0) - draws * p) <= 5 * math.sqrt(draws * p * (1 - p)) + 1, (output, p)


def test_sampling_is_reproducible_and_stops_exactly(ns, demo):
    params = {k: xp.asarray(v) for k, v in _parameters(27, 16, seed=1).items()}
    first = ns["sample"](params, 0, Rng(3))
    assert first == ns["sample"](params, 0, Rng(3)) and all(type(i) is int for i in first)
    samples = [ns["sample"](params, 0, Rng(seed), max_length=8) for seed in range(200)]
    assert len({tuple(s) for s in samples}) > 150                          # different seeds, different samples
    for s in samples:                                                      # <EOS> only at the end; at most 8
        assert 1 <= len(s) <= 8 and 0 not in s[:-1] and (s[-1] == 0 or len(s) == 8)
    silent = dict(params, by=xp.asarray(numpy.r_[[-80.0], numpy.zeros(26)][:, None]), Wya=xp.zeros((27, 16)))
    assert len(ns["sample"](silent, 0, Rng(4), max_length=13)) == 13 and 0 not in ns["sample"](silent, 0, Rng(4))
    ends = dict(silent, by=xp.asarray(numpy.r_[[80.0], numpy.zeros(26)][:, None]))
    assert ns["sample"](ends, 0, Rng(5)) == [0]


@pytest.mark.gpu
def test_sampling_and_the_loss_are_the_same_on_the_gpu(ns):
    params = _parameters(6, 5, seed=2)
    Y = _targets(6, [4, 2, 5], seed=3)[0]
    with using_backend("numpy"):
        host_samples = [ns["sample"](params, 0, Rng(seed)) for seed in range(20)]
        host_loss = ns["lm_forward"](Y, params)[0]
    with using_backend("cupy"):
        device_params = {k: xp.asarray(v) for k, v in params.items()}
        assert [ns["sample"](device_params, 0, Rng(seed)) for seed in range(20)] == host_samples
        assert ns["lm_forward"](xp.asarray(Y), device_params)[0] == pytest.approx(host_loss, rel=1e-10)


# --------------------------------------------------------------------------- baselines and training
def test_bigram_and_uniform_perplexities_computed_independently(demo):
    characters = ["\n"] + sorted(set("".join(demo["train_names"])))
    counts = {(a, b): 1.0 for a in characters for b in characters}               # add-one smoothing
    for name in demo["train_names"]:
        text = "\n" + name + "\n"
        for a, b in zip(text, text[1:]):
            counts[a, b] += 1
    row_totals = {a: sum(counts[a, b] for b in characters) for a in characters}
    log_likelihood, n = 0.0, 0
    for name in demo["held_out_names"]:
        text = "\n" + name + "\n"
        for a, b in zip(text, text[1:]):
            log_likelihood += math.log(counts[a, b] / row_totals[a])
            n += 1
    expected = math.exp(-log_likelihood / n)
    P, Y = demo["bigram_model"](demo["train_names"]), demo["Y_held_out"]
    assert demo["perplexity"](demo["bigram_predictions"](P, Y), Y) == pytest.approx(expected, rel=1e-10)
    assert demo["perplexity"](xp.full(Y.shape, 1 / 27), Y) == pytest.approx(27.0, rel=1e-12)
    assert 5 < expected < 27


@pytest.mark.parametrize("setting", ["QUICK_ITERATIONS", "FULL_ITERATIONS"])
def test_trained_model_beats_the_bigram_model(demo, setting):
    parameters, losses, norms = demo["train"](demo["Y_train"], demo["N_A"], demo[setting], demo["LEARNING_RATE"],
                                              demo["MAX_NORM"], show_every=0, progress=False)
    assert len(losses) == len(norms) == demo[setting] and numpy.all(numpy.isfinite(losses))
    assert numpy.mean(losses[-50:]) < 0.7 * numpy.mean(losses[:10])
    Y = demo["Y_held_out"]
    rnn = demo["perplexity"](demo["lm_forward"](Y, parameters)[1], Y)
    bigram = demo["perplexity"](demo["bigram_predictions"](demo["bigram_model"](demo["train_names"]), Y), Y)
    assert rnn < bigram - (0.5 if setting == "QUICK_ITERATIONS" else 2.0), (rnn, bigram)


def test_large_learning_rate_diverges_without_clipping_only(demo):
    runs = {}
    with numpy.errstate(all="ignore"):
        for max_norm in (numpy.inf, 1.0):
            _, losses, norms = demo["train"](demo["Y_train"], demo["N_A"], 60, 1.0, max_norm, show_every=0,
                                             progress=False)
            runs[max_norm] = numpy.array(losses)
    assert not numpy.all(numpy.isfinite(runs[numpy.inf])) or runs[numpy.inf].max() > 10 * runs[numpy.inf][0]
    assert numpy.all(numpy.isfinite(runs[1.0])) and runs[1.0][-10:].mean() < runs[1.0][0]


# --------------------------------------------------------------------------- widget, plot, no solutions leaked
def test_temperature_widget_resamples(ns):
    ipywidgets = pytest.importorskip("ipywidgets")
    from course_utils.widgets import temperature_explorer
    params = {k: xp.asarray(v) for k, v in _parameters(27, 8, seed=9).items()}
    widget = temperature_explorer(lambda t, rng: str(ns["sample"](params, 0, rng, temperature=t)), n_samples=5)
    assert isinstance(widget, ipywidgets.interactive)
    temperature, seed = widget.children[:2]
    assert isinstance(temperature, ipywidgets.FloatSlider) and temperature.min < 1 < temperature.max
    first = widget.result
    assert len(first) == 5
    temperature.value = 0.3                                   # a move draws again
    assert widget.result != first
    temperature.value = 1.0
    assert widget.result == first                             # same temperature and seed: same samples
    seed.value = 7
    assert widget.result != first


def test_training_runs_plot_marks_a_diverged_run():
    from course_utils.plots import plot_training_runs
    fig = plot_training_runs({"no clipping": ([20.0, 300.0, float("inf")], [5.0, 400.0, 900.0]),
                              "clipped": ([20.0, 18.0, 17.0], [5.0, 4.0, 4.5])}, "title")
    loss_axes, norm_axes = fig.axes
    assert len(norm_axes.get_lines()) == 2 and len(loss_axes.get_lines()) == 3     # two curves and one ×
    matplotlib.pyplot.close(fig)


def test_course_utils_holds_no_solution():
    import course_utils
    for module in sorted(Path(course_utils.__file__).parent.glob("*.py")):
        source = module.read_text()
        for name in ("perplexity", "lm_forward", "lm_backward", "clip", "clip_by_norm", "optimization_step", "sample"):
            assert not re.search(rf"def {name}\(", source), f"course_utils/{module.name} must not define {name}"
