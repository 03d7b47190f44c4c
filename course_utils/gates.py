"""What gates do, measured and shown: for assignment 04's comparison of RNN, GRU and LSTM.

* ``gradient_norms_by_distance(forward, backward, x, a0, parameters)``: for any recurrent
  model given as a forward/backward pair (your ``rnn_forward``/``rnn_backward``,
  ``gru_forward``/``gru_backward``, ``lstm_forward``/``lstm_backward``), backpropagate
  ``L = Σ_i u_i · a_i<T>`` (a random unit vector ``u_i`` per example, a loss on the last
  activation only) with *your* backward function and return ``‖∂L/∂x<T-k>‖``: how strongly
  the input ``k`` steps before the loss can still change it. The same measurement for every
  model, whatever its state (``a``, or ``a`` and ``c``).
* ``plot_accuracy_against_length``: one accuracy curve per model against the sequence length.
* ``plot_gate_heatmap`` and ``gate_explorer``: one example's gate values as a heatmap (a row
  per unit, a column per time step), with an ipywidgets menu for the gate and a slider for
  the example.

What it leaves out: the models themselves (the exercises) and their training (the notebook).
Arrays come to the host only here, for plotting; the backward pass runs on the course backend.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy

from .backend import Rng, get_backend, to_host


def gradient_norms_by_distance(forward, backward, x, a0, parameters, seed: int = 1) -> numpy.ndarray:
    """Mean over examples of ‖∂L/∂x<T-k>‖ for k = 0..T-1, with ``L = Σ_i u_i · a_i<T>`` and unit ``u_i``.

    ``forward(x, a0, parameters)`` returns a tuple whose first item is ``a`` (n_a, m, T) and
    whose last item is the caches; ``backward(da, caches)`` returns a dict with ``"dx"``
    (n_x, m, T). Returns a NumPy array (T,), index ``k`` = distance from the last step.
    """
    xp = get_backend()
    outputs = forward(x, a0, parameters)
    a, caches = outputs[0], outputs[-1]
    n_a, m, T = a.shape
    u = Rng(seed).standard_normal((n_a, m))
    da = xp.zeros((n_a, m, T))
    da[:, :, T - 1] = u / xp.linalg.norm(u, axis=0, keepdims=True)   # ∂L/∂a<T>; no loss at other steps
    dx = backward(da, caches)["dx"]                                  # (n_x, m, T)
    norms = xp.mean(xp.linalg.norm(dx, axis=0), axis=0)              # (T,): ‖∂L/∂x<t>‖, mean over examples
    return to_host(norms)[::-1].copy()                               # reversed: index k = T - t


def plot_accuracy_against_length(lengths, accuracies: dict, chance: float | None = None, ax=None,
                                 title: str = "test accuracy against sequence length"):
    """``accuracies[model]`` holds one accuracy per entry of ``lengths``: one line per model, log-2 x axis."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    for label, values in accuracies.items():
        ax.plot(list(lengths), [float(v) for v in values], "o-", lw=2, label=label)
    if chance is not None:
        ax.axhline(chance, color="gray", ls="--", lw=1)
        ax.text(lengths[0], chance + 0.02, "chance", color="gray", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(lengths), [str(n) for n in lengths])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("sequence length $T_x$ (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.figure.tight_layout()
    return ax


def _colour_scale(values: numpy.ndarray) -> dict:
    """0–1 for gates; symmetric around 0 for signed values (c̃, c, a)."""
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high <= 1:
        return {"vmin": 0.0, "vmax": 1.0, "cmap": "viridis"}
    bound = max(abs(low), abs(high), 1e-12)
    return {"vmin": -bound, "vmax": bound, "cmap": "RdBu_r"}


def plot_gate_heatmap(values, title: str = "", ax=None):
    """Heatmap of one example's values ``(n_a, T_x)``: a row per unit, a column per time step t = 1..T_x."""
    values = to_host(values)
    if ax is None:
        _, ax = plt.subplots(figsize=(min(12.0, 0.12 * values.shape[1] + 3.5), 0.2 * values.shape[0] + 1.8))
    image = ax.imshow(values, aspect="auto", interpolation="nearest",
                      extent=(0.5, values.shape[1] + 0.5, values.shape[0] - 0.5, -0.5), **_colour_scale(values))
    ax.set_xlabel("time step t")
    ax.set_ylabel("unit")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    ax.figure.tight_layout()
    return ax


def gate_explorer(gates: dict, example_labels=None, example: int = 0):
    """A menu for the gate and a slider for the example; the heatmap (units × time) redraws.

    ``gates[name]`` is an array (n_a, m, T_x) of one gate's values over a batch (stacked from
    your caches, for instance). ``example_labels[i]``, optional, is shown in example i's title.
    """
    import ipywidgets as widgets

    hosts = {name: to_host(values) for name, values in gates.items()}
    if not hosts:
        raise ValueError("gate_explorer needs at least one gate: a dict {name: array (n_a, m, T_x)}")
    shapes = {name: values.shape for name, values in hosts.items()}
    if any(len(shape) != 3 for shape in shapes.values()) or len({shape[1:] for shape in shapes.values()}) != 1:
        raise ValueError(f"every gate should be an array (n_a, m, T_x) with the same m and T_x; got {shapes}")
    m = next(iter(shapes.values()))[1]
    menu = widgets.Dropdown(options=list(hosts), description="gate")
    slider = widgets.IntSlider(value=example, min=0, max=m - 1, description="example", continuous_update=False)

    def draw(gate, example):
        title = f"{gate}: example {example}"
        if example_labels is not None:
            title += f" ({example_labels[example]})"
        plot_gate_heatmap(hosts[gate][:, example, :], title)
        plt.show()
        return None

    return widgets.interactive(draw, gate=menu, example=slider)


__all__ = ["gradient_norms_by_distance", "plot_accuracy_against_length", "plot_gate_heatmap", "gate_explorer"]
