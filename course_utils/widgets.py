"""Measurements and interactive widgets for the notebooks (not the exercises themselves).

``measure_gradient_norms`` measures how the gradient of a loss at the last time step
shrinks or grows as it flows back through time in an RNN whose recurrent matrix
``W_aa`` has a chosen spectral radius. Backpropagating ``L = u · a<T>`` through the
recurrence ``a<t> = g(z<t>)``, ``z<t> = W_aa a<t-1> + ...`` is a product of Jacobians:

    ∂L/∂a<t-1> = W_aaᵀ (g'(z<t>) ⊙ ∂L/∂a<t>)

This module only does that product, given ``W_aa`` and the activation derivatives
``g'(z<t>)``. For ``tanh`` the states come from *your* ``rnn_forward`` (passed in as
``forward``; ``g' = 1 - a²``); for ``relu`` this module runs the ReLU recurrence itself
(``g' = 1`` on the active units, 0 elsewhere: a ReLU RNN is not an exercise); for the
``linear`` recurrence (no activation) ``g' = 1`` and no forward pass is needed.
``W_aa = ρ·Q`` with ``Q`` a random orthogonal matrix, so every eigenvalue has modulus
``ρ`` (the spectral radius) and the linear case gives exactly ``ρ^k``.

``gradient_norm_explorer`` wraps the measurement in an ipywidgets slider.
``temperature_explorer`` is a slider for the sampling temperature of a language model
(assignment 03): the sampling itself is the caller's (the learner's ``sample``).
"""
from __future__ import annotations

import numpy

from .backend import Rng, get_backend

ACTIVATIONS = ("tanh", "relu", "linear")


def recurrent_matrix(n_a: int, radius: float, seed: int = 0):
    """``radius · Q`` with ``Q`` random orthogonal: an (n_a, n_a) matrix of spectral radius ``radius``."""
    xp = get_backend()
    q, r = xp.linalg.qr(Rng(seed).standard_normal((n_a, n_a)))
    q = q * xp.sign(xp.diag(r))[None, :]
    return radius * q


def gradient_norms_through_time(Waa, derivatives, seed: int = 1) -> numpy.ndarray:
    """Mean over examples of ‖∂L/∂a<T-k>‖ for k = 0..T-1, for ``L = Σ_i u_i · a_i<T>`` with unit ``u_i``.

    ``derivatives`` (n_a, m, T) holds ``g'(z<t>)`` for t = 1..T. Returns a NumPy array (T,).
    """
    xp = get_backend()
    n_a, m, T = derivatives.shape
    g = Rng(seed).standard_normal((n_a, m))
    g = g / xp.linalg.norm(g, axis=0, keepdims=True)     # ∂L/∂a<T>, one unit vector per example
    norms = [float(xp.mean(xp.linalg.norm(g, axis=0)))]
    for t in range(T - 1, 0, -1):                         # from a<t+1> (python index t) back to a<t>
        g = Waa.T @ (derivatives[:, :, t] * g)            # (n_a, m)
        norms.append(float(xp.mean(xp.linalg.norm(g, axis=0))))
    return numpy.array(norms)


def measure_gradient_norms(radius: float, activation: str = "tanh", forward=None, *, n_a: int = 32,
                           n_x: int = 4, m: int = 16, T_x: int = 50, input_scale: float = 1.0,
                           seed: int = 0) -> numpy.ndarray:
    """‖∂L/∂a<T-k>‖ against the distance k, for an RNN with W_aa of spectral radius ``radius``.

    ``activation='tanh'`` needs ``forward``: your ``rnn_forward(x, a0, parameters)``.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation should be one of {ACTIVATIONS}, not {activation!r}")
    xp = get_backend()
    Waa = recurrent_matrix(n_a, radius, seed)
    if activation == "linear":
        return gradient_norms_through_time(Waa, xp.ones((n_a, m, T_x)), seed=seed + 2)
    if activation == "tanh" and forward is None:
        raise ValueError("the tanh measurement runs your RNN: pass forward=rnn_forward")
    rng = Rng(seed + 1)
    parameters = {"Waa": Waa, "Wax": rng.standard_normal((n_a, n_x)) * input_scale / numpy.sqrt(n_x),
                  "Wya": xp.zeros((1, n_a)), "ba": xp.zeros((n_a, 1)), "by": xp.zeros((1, 1))}
    x = rng.standard_normal((n_x, m, T_x))
    if activation == "tanh":
        a, _, _ = forward(x, xp.zeros((n_a, m)), parameters)
        derivatives = 1.0 - a ** 2                        # tanh'(z<t>) = 1 - (a<t>)²
    else:
        a_t, active = xp.zeros((n_a, m)), []
        for t in range(T_x):
            z_t = Waa @ a_t + parameters["Wax"] @ x[:, :, t]  # (n_a, m)
            a_t = xp.maximum(z_t, 0.0)
            active.append(z_t > 0)
        derivatives = xp.stack(active, axis=2).astype(xp.float64)  # relu'(z<t>): (n_a, m, T_x)
    return gradient_norms_through_time(Waa, derivatives, seed=seed + 2)


def gradient_norm_explorer(forward, radius: float = 1.0, T_x: int = 50, **measure_options):
    """A slider for the spectral radius of W_aa; the log-scale plot of the gradient norms redraws."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from .plots import plot_gradient_norms

    slider = widgets.FloatSlider(value=radius, min=0.5, max=2.0, step=0.05, description="radius ρ",
                                 continuous_update=False, readout_format=".2f")

    def draw(radius):
        results = {
            "tanh (your rnn_forward)": measure_gradient_norms(radius, "tanh", forward, T_x=T_x, **measure_options),
            "relu": measure_gradient_norms(radius, "relu", T_x=T_x, **measure_options),
            "linear (no activation)": measure_gradient_norms(radius, "linear", T_x=T_x, **measure_options),
        }
        plot_gradient_norms(results, title=f"spectral radius of $W_{{aa}}$: ρ = {radius:.2f}")
        plt.show()
        return None

    return widgets.interactive(draw, radius=slider)


def temperature_explorer(generate, temperature: float = 1.0, n_samples: int = 12, seed: int = 0):
    """A slider for the sampling temperature (and one for the seed); every move prints new samples.

    ``generate(temperature, rng)`` returns one sample as a string, drawing its random numbers from
    ``rng`` (a ``Rng(seed)`` made anew for each redraw, so a temperature and a seed always give the
    same samples). The widget's ``result`` is the list of the samples last drawn.
    """
    import ipywidgets as widgets

    temperature_slider = widgets.FloatSlider(value=temperature, min=0.1, max=2.0, step=0.05,
                                             description="temperature", continuous_update=False,
                                             readout_format=".2f")
    seed_slider = widgets.IntSlider(value=seed, min=0, max=99, description="seed", continuous_update=False)

    def draw(temperature, seed):
        rng = Rng(seed)
        samples = [generate(temperature, rng) for _ in range(n_samples)]
        print(f"temperature {temperature:.2f}, seed {seed}:")
        print(", ".join(samples))
        return samples

    return widgets.interactive(draw, temperature=temperature_slider, seed=seed_slider)


__all__ = ["recurrent_matrix", "gradient_norms_through_time", "measure_gradient_norms",
           "gradient_norm_explorer", "temperature_explorer"]
