"""The course's GRU and LSTM parameters in PyTorch's layout (``nn.GRU``, ``nn.LSTM``) and back.

The course gives every gate its own matrix ``W_g = [W_ga | W_gx]`` of shape
``(n_a, n_a + n_x)``, applied to ``[a<t-1>; x<t>]``, and one bias ``b_g`` ``(n_a, 1)``.
PyTorch stacks the gates' matrices on top of each other, splits the ``a`` and ``x``
parts, and has two biases per gate (their sum is the course's bias):

* ``weight_ih_l0`` ``(k·n_a, n_x)``: the ``W_gx`` parts, stacked in PyTorch's gate order;
* ``weight_hh_l0`` ``(k·n_a, n_a)``: the ``W_ga`` parts, in the same order;
* ``bias_ih_l0``, ``bias_hh_l0`` ``(k·n_a,)``: the course's bias goes into ``bias_ih_l0``,
  and ``bias_hh_l0`` is zero.

LSTM, gate order ``i, f, g, o``: PyTorch's ``i`` is the course's ``Γ_i`` (the lectures'
update gate ``Γ_u``), ``g`` is the candidate ``c̃``. The two models are the same function.

GRU, gate order ``r, z, n``. PyTorch computes ``h = (1 - z)·n + z·h_prev``: its ``z`` is
the course's ``1 - Γ_u``, so ``W_z = -W_u`` and ``b_z = -b_u`` (``σ(-v) = 1 - σ(v)``).
It applies the reset gate *after* the recurrent product,
``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, where the course (Cho et al., 2014)
applies it before, ``c̃ = tanh(W_cx x + W_ca (Γ_r ⊙ a_prev) + b_c)``. The two agree when
``W_ca`` is diagonal (``b_hn`` is always 0 here), and for the simplified GRU, which has no
reset gate: it is given a reset gate fixed open (``r = σ(1000) = 1`` exactly in float64).

``*_gradients_from_pytorch`` bring PyTorch's gradients back into the course's layout,
for comparisons. What it leaves out: more than one layer, bidirectional layers, the output layer
(``W_y``, ``b_y``: PyTorch keeps it in a separate ``nn.Linear``), and running PyTorch
(the tests and the notebook do that, when PyTorch is installed).
"""
from __future__ import annotations

import numpy

from .backend import to_host

LSTM_ORDER = ("i", "f", "c", "o")   # PyTorch's i, f, g, o
GRU_ORDER = ("r", "u", "c")         # PyTorch's r, z, n (with z = 1 - Γu)
OPEN_RESET_BIAS = 1000.0            # σ(1000) == 1.0 in float64: a reset gate that is always open


def _split(parameters: dict, gate: str, n_a: int):
    W = to_host(parameters["W" + gate])
    return W[:, n_a:], W[:, :n_a], to_host(parameters["b" + gate])[:, 0]      # W_gx, W_ga, b_g


def _stack(parts: list, n_a: int) -> dict:
    """PyTorch's four arrays from (W_gx, W_ga, b_g) per gate, in PyTorch's order; b_hh is zero."""
    return {"weight_ih_l0": numpy.concatenate([p[0] for p in parts]),
            "weight_hh_l0": numpy.concatenate([p[1] for p in parts]),
            "bias_ih_l0": numpy.concatenate([p[2] for p in parts]),
            "bias_hh_l0": numpy.zeros(len(parts) * n_a)}


def _unstack(gradients: dict, gates: tuple, signs: tuple) -> dict:
    """The course's dW_g, db_g from the gradients of PyTorch's arrays (a NumPy dict).

    The course's bias b_g plays the part of ``bias_ih_l0``'s rows (it enters where they do,
    outside the reset gate of a GRU), so its gradient is theirs; ``bias_hh_l0`` is not used.
    """
    ih, hh = numpy.asarray(gradients["weight_ih_l0"]), numpy.asarray(gradients["weight_hh_l0"])
    bias, n_a = numpy.asarray(gradients["bias_ih_l0"]), hh.shape[1]
    out = {}
    for k, (gate, sign) in enumerate(zip(gates, signs)):
        rows = slice(k * n_a, (k + 1) * n_a)
        out["dW" + gate] = sign * numpy.concatenate([hh[rows], ih[rows]], axis=1)   # (n_a, n_a + n_x)
        out["db" + gate] = sign * bias[rows][:, None]                               # (n_a, 1)
    return out


def lstm_to_pytorch(parameters: dict) -> dict:
    """``nn.LSTM``'s ``weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0`` (NumPy) from the course's LSTM."""
    n_a = parameters["Wf"].shape[0]
    return _stack([_split(parameters, gate, n_a) for gate in LSTM_ORDER], n_a)


def lstm_gradients_from_pytorch(gradients: dict) -> dict:
    """``dWi, dbi, dWf, dbf, dWc, dbc, dWo, dbo`` (NumPy) from the gradients of ``nn.LSTM``'s arrays."""
    return _unstack(gradients, LSTM_ORDER, (1, 1, 1, 1))


def gru_to_pytorch(parameters: dict) -> dict:
    """``nn.GRU``'s four arrays from the course's GRU, or from the simplified GRU (no ``Wr``: reset gate open).

    Same function as the course's GRU when ``W_ca`` is diagonal (see the module docstring).
    """
    n_a = parameters["Wu"].shape[0]
    W_ux, W_ua, b_u = _split(parameters, "u", n_a)
    if "Wr" in parameters:
        reset = _split(parameters, "r", n_a)
    else:
        reset = (numpy.zeros_like(W_ux), numpy.zeros_like(W_ua), numpy.full(n_a, OPEN_RESET_BIAS))
    return _stack([reset, (-W_ux, -W_ua, -b_u), _split(parameters, "c", n_a)], n_a)


def gru_gradients_from_pytorch(gradients: dict) -> dict:
    """``dWr, dbr, dWu, dbu, dWc, dbc`` (NumPy) from the gradients of ``nn.GRU``'s arrays.

    ``W_u = -W_z``, so ``∂L/∂W_u = -∂L/∂W_z``. Only meaningful where the two GRUs agree.
    """
    return _unstack(gradients, GRU_ORDER, (1, -1, 1))


__all__ = ["lstm_to_pytorch", "lstm_gradients_from_pytorch", "gru_to_pytorch", "gru_gradients_from_pytorch",
           "LSTM_ORDER", "GRU_ORDER"]
