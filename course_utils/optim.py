"""Adam, the optimiser of the notebooks' training demos (not an exercise).

Adam is gradient descent with a step size per parameter entry, from running averages of
the gradient and of its square (Kingma and Ba, 2015). Parameters and gradients are dicts
of arrays, the gradient of ``name`` under ``"d" + name``, as the course's backward
functions return them. What it leaves out: learning-rate schedules, weight decay, clipping.
"""
from __future__ import annotations

from .backend import get_backend


def adam_state() -> dict:
    """The running averages of a fresh optimiser."""
    return {"t": 0, "m": {}, "v": {}}


def adam_update(parameters: dict, gradients: dict, state: dict, learning_rate: float,
                beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
    """One Adam step on every entry of ``parameters``, in place (the dict gets new arrays)."""
    xp = get_backend()
    state["t"] += 1
    for name in parameters:
        g = gradients["d" + name]
        state["m"][name] = beta1 * state["m"].get(name, 0.0) + (1 - beta1) * g
        state["v"][name] = beta2 * state["v"].get(name, 0.0) + (1 - beta2) * g ** 2
        m_hat = state["m"][name] / (1 - beta1 ** state["t"])
        v_hat = state["v"][name] / (1 - beta2 ** state["t"])
        parameters[name] = parameters[name] - learning_rate * m_hat / (xp.sqrt(v_hat) + eps)
