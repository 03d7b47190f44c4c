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
