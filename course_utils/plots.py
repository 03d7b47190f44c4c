"""Plots for the notebooks (matplotlib). Arrays come to the host here, at the edge."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy

from .backend import to_host


def show_one_hot(X, mask, index_to_word, example: int = 0, max_rows: int = 40):
    """Heatmap of one example of a one-hot batch ``X`` (n_x, m, T_x): rows are words, columns time."""
    X_host, mask_host = to_host(X), to_host(mask)
    columns = X_host[:, example, :]                      # (n_x, T_x)
    used = numpy.flatnonzero(columns.any(axis=1))
    rows = used if len(used) else numpy.arange(min(max_rows, columns.shape[0]))
    rows = rows[:max_rows]
    fig, ax = plt.subplots(figsize=(0.5 * columns.shape[1] + 2, 0.3 * len(rows) + 1.5))
    ax.imshow(columns[rows], cmap="Blues", aspect="auto", vmin=0, vmax=1)
    ax.set_yticks(range(len(rows)), [f"{i}: {index_to_word[i]}" for i in rows])
    ax.set_xticks(range(columns.shape[1]),
                  [f"t={t + 1}" + ("" if mask_host[example, t] else "\n(pad)") for t in range(columns.shape[1])])
    ax.set_title(f"example i={example + 1}: one column per time step, a 1 in the word's row")
    fig.tight_layout()
    return fig


def plot_loss_curve(losses, title: str = "training loss", ax=None, smooth: int = 10):
    """Loss per iteration (thin) and its moving average over ``smooth`` iterations (thick)."""
    values = numpy.array([float(to_host(v)) for v in losses])
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(values, alpha=0.35, lw=1, label="per iteration")
    if smooth > 1 and len(values) >= smooth:
        kernel = numpy.ones(smooth) / smooth
        ax.plot(numpy.arange(smooth - 1, len(values)), numpy.convolve(values, kernel, mode="valid"),
                lw=2, label=f"average of {smooth}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax.figure.tight_layout()
    return ax


def plot_gradient_norms(results: dict, title: str = "", ax=None):
    """``results[label]`` is an array of ‖∂L/∂a<T-k>‖ for k = 0, 1, ...: one log-scale curve each.

    Labels read ``"<kind>, <setting>"``: one line style per kind (in order of appearance) and
    the colours restarting for each kind, so ``{"tanh, ρ=0.9": ..., "tanh, ρ=1.1": ...,
    "linear, ρ=0.9": ..., "linear, ρ=1.1": ...}`` gives one colour per ρ, solid for tanh and
    dashed for linear.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    kinds = list(dict.fromkeys(label.split(",")[0] for label in results))
    for kind, style in zip(kinds, ("-", "--", ":", "-.")):
        ax.set_prop_cycle(None)
        for label in (label for label in results if label.split(",")[0] == kind):
            norms = numpy.asarray(to_host(results[label]), dtype=numpy.float64)
            ax.semilogy(numpy.arange(len(norms)), numpy.maximum(norms, 1e-300), style, lw=2, label=label)
    ax.set_xlabel("distance k from the loss (steps back in time)")
    ax.set_ylabel(r"$\|\partial L / \partial a^{\langle T-k\rangle}\|$ (log scale)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    ax.figure.tight_layout()
    return ax


def plot_training_runs(runs: dict, title: str = ""):
    """``runs[label] = (losses, gradient_norms)``, one pair per training run: two log-scale panels, one colour per run.

    Left: the loss of every iteration; right: the gradient's norm before clipping. A run that
    stopped on an infinite or NaN loss ends with an ×, drawn at its last finite value.
    """
    fig, (ax_loss, ax_norm) = plt.subplots(1, 2, figsize=(11, 3.6))
    for label, (losses, norms) in runs.items():
        losses = numpy.array([float(to_host(v)) for v in losses])
        norms = numpy.array([float(to_host(v)) for v in norms])
        (line,) = ax_loss.semilogy(losses, lw=1.2, label=label)
        ax_norm.semilogy(norms, lw=1.2, color=line.get_color(), label=label)
        finite = numpy.flatnonzero(numpy.isfinite(losses))
        if len(finite) < len(losses) and len(finite):
            ax_loss.plot(finite[-1], losses[finite[-1]], "x", ms=10, mew=2, color=line.get_color())
    ax_loss.set(xlabel="iteration", ylabel="loss (log scale)", title="loss")
    ax_norm.set(xlabel="iteration", ylabel="‖g‖ before clipping (log scale)", title="gradient norm")
    for ax in (ax_loss, ax_norm):
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
