"""Recurrent cells as interchangeable parts, and how the parameters of stacked and bidirectional layers are named.

Assignment 05 runs one recurrent layer, a bidirectional layer and a deep stack of layers
over *any* cell: the RNN cell of assignment 02, the GRU and LSTM cells of assignment 04,
or the two small cells defined here. The layer code sees a cell only through a dict:

* ``cell["forward"](xt, state_prev, parameters) -> (state_next, cache)``;
* ``cell["backward"](dstate_next, cache) -> (dxt, dstate_prev, gradients)``;
* ``cell["zero_state"](parameters, m)``: the initial state, zeros;
* ``cell["states"]``: what a state holds, ``("a",)`` or ``("a", "c")``; ``cell["name"]``,
  ``cell["parameter_names"]`` and ``cell["shapes"](n_x, n_a)`` (the parameters' shapes).

A *state* is a tuple of ``(n_a, m)`` arrays whose first item is the activation ``a``:
``(a,)`` for the RNN and the GRU, ``(a, c)`` for the LSTM, which also carries its memory
cell ``c``. ``gradients`` holds the gradients of the cell's own parameters, keyed
``"d" + name``. A cell is a plain dict (of functions, strings and tuples) rather than an
object so that it is data: the grader passes it between its kernel and the separate
process that runs a student's code, where only data travels.

``adapt_cell`` wraps the cell functions of the earlier assignments into a cell. It leaves
out their output layer (``ŷ = softmax(W_ya a + b_y)``): the output layer of a
bidirectional or deep RNN reads other activations (``[a→; a←]``, or the top layer's).

Parameter names say where a parameter sits: the cell's own name, then ``_f`` or ``_b`` for
the forward (left-to-right) or backward (right-to-left) direction of a bidirectional
layer, then ``[l]`` for layer ``l`` of a deep RNN. ``"Wax_b[2]"`` is ``W_ax`` of the
right-to-left direction of layer 2; the output layer is ``"Wya"``, ``"by"``. ``select``
takes one layer's or one direction's parameters out of a model's dict, without the
suffix; ``tag_gradients`` adds a suffix to gradients' names; ``init_parameters`` draws
a whole model's parameters.

What this module leaves out: the maths of the RNN, GRU and LSTM cells (assignments 02
and 04) and all the layer code (the exercises of assignment 05).
"""
from __future__ import annotations

import numpy

from .backend import Rng, get_backend

FORWARD, BACKWARD = "_f", "_b"  # the two directions of a bidirectional layer


def make_cell(name: str, shapes, forward, backward, states=("a",)) -> dict:
    """A cell: ``shapes(n_x, n_a) -> {parameter name: shape}`` (every parameter has n_a rows),
    ``forward(xt, state_prev, parameters) -> (state_next, cache)`` and
    ``backward(dstate_next, cache) -> (dxt, dstate_prev, {"dW..": ...})``."""
    names = tuple(shapes(1, 1))

    def zero_state(parameters, m):
        """The initial state a<0> = 0 (and c<0> = 0), for a batch of m examples."""
        n_a = parameters[names[0]].shape[0]
        return tuple(get_backend().zeros((n_a, m)) for _ in states)

    return {"name": name, "states": tuple(states), "parameter_names": names, "shapes": shapes,
            "forward": forward, "backward": backward, "zero_state": zero_state}


def describe(cell: dict) -> str:
    """One line about a cell: its name, its state and its parameters."""
    return f"{cell['name']} cell: state {cell['states']}, parameters {cell['parameter_names']}"


def adapt_cell(name: str, cell_forward, cell_backward, shapes, states=("a",), output=("Wya", "by")) -> dict:
    """A cell around an earlier assignment's cell functions.

    ``cell_forward(xt, *state_prev, parameters) -> (*state_next, yt_pred, cache)`` and
    ``cell_backward(*dstate_next, cache) -> {"dxt": ..., "da_prev": ..., ("dc_prev": ...,) "dW..": ...}``
    are the signatures of ``rnn_cell_forward``/``rnn_cell_backward`` (``states=("a",)``) and of
    ``lstm_cell_forward``/``lstm_cell_backward`` (``states=("a", "c")``). The cell's own output
    layer (parameters named ``output``) gets zero weights and its prediction is dropped.
    """
    names = tuple(shapes(1, 1))

    def forward(xt, state_prev, parameters):
        xp = get_backend()
        n_a = state_prev[0].shape[0]
        unused_output = {output[0]: xp.zeros((1, n_a)), output[1]: xp.zeros((1, 1))}
        *state_next, _, cache = cell_forward(xt, *state_prev, {**parameters, **unused_output})
        return tuple(state_next), cache

    def backward(dstate_next, cache):
        gradients = cell_backward(*dstate_next, cache)
        wanted = ["dxt"] + [f"d{state}_prev" for state in states] + [f"d{p}" for p in names]
        missing = [key for key in wanted if key not in gradients]
        if missing:
            raise KeyError(f"{getattr(cell_backward, '__name__', 'the cell backward')} returned no "
                           f"{', '.join(missing)}: it should return a dict with the keys {wanted}.")
        return (gradients["dxt"], tuple(gradients[f"d{state}_prev"] for state in states),
                {f"d{p}": gradients[f"d{p}"] for p in names})

    return make_cell(name, shapes, forward, backward, states)


# --- two small cells of the course's own, for tests and experiments (not from any assignment) ---

def _linear_forward(xt, state_prev, parameters):
    stacked = get_backend().concatenate([state_prev[0], xt], axis=0)    # [a<t-1>; x<t>], (n_a + n_x, m)
    return (parameters["Wa"] @ stacked + parameters["ba"],), (stacked, parameters)


def _linear_backward(dstate_next, cache):
    stacked, parameters = cache
    da_next = dstate_next[0]
    n_a = da_next.shape[0]
    dstacked = parameters["Wa"].T @ da_next                               # (n_a + n_x, m)
    return (dstacked[n_a:], (dstacked[:n_a],),
            {"dWa": da_next @ stacked.T, "dba": da_next.sum(axis=1, keepdims=True)})


def _leaky_forward(xt, state_prev, parameters):
    xp = get_backend()
    a_prev, c_prev = state_prev
    stacked = xp.concatenate([a_prev, xt], axis=0)                       # (n_a + n_x, m)
    h = xp.tanh(parameters["Wc"] @ stacked + parameters["bc"])           # (n_a, m)
    c_next = 0.5 * c_prev + h
    a_next = xp.tanh(c_next)
    return (a_next, c_next), (stacked, h, a_next, parameters)


def _leaky_backward(dstate_next, cache):
    stacked, h, a_next, parameters = cache
    da_next, dc_next = dstate_next
    n_a = da_next.shape[0]
    dc = dc_next + da_next * (1 - a_next ** 2)                           # c<t> reaches the loss two ways
    du = dc * (1 - h ** 2)
    dstacked = parameters["Wc"].T @ du
    return (dstacked[n_a:], (dstacked[:n_a], 0.5 * dc),
            {"dWc": du @ stacked.T, "dbc": du.sum(axis=1, keepdims=True)})


linear_cell = make_cell("linear", lambda n_x, n_a: {"Wa": (n_a, n_a + n_x), "ba": (n_a, 1)},
                        _linear_forward, _linear_backward)
"""a<t> = W_a [a<t-1>; x<t>] + b_a: no activation function, easy to reason about."""

leaky_cell = make_cell("leaky", lambda n_x, n_a: {"Wc": (n_a, n_a + n_x), "bc": (n_a, 1)},
                       _leaky_forward, _leaky_backward, ("a", "c"))
"""Two states like the LSTM's: c<t> = 0.5 c<t-1> + tanh(W_c [a<t-1>; x<t>] + b_c), a<t> = tanh(c<t>)."""


# --- parameter names --------------------------------------------------------------------------

def layer_tag(layer: int) -> str:
    """The suffix of layer ``layer``'s parameters: ``"[2]"``."""
    return f"[{layer}]"


def select(parameters: dict, suffix: str) -> dict:
    """The parameters whose names end in ``suffix``, without it: ``select(p, "[2]")`` gives
    ``{"Waa": p["Waa[2]"], ...}``; ``select(p, "_b")`` gives ``{"Waa": p["Waa_b"], ...}``."""
    chosen = {name[:len(name) - len(suffix)]: value for name, value in parameters.items() if name.endswith(suffix)}
    if not chosen:
        raise ValueError(f"No parameter name ends in {suffix!r}; the parameters are {sorted(parameters)}. "
                         f"Layer l's names end in '[l]', a bidirectional layer's in '_f' and '_b'.")
    return chosen


def tag_gradients(gradients: dict, suffix: str) -> dict:
    """The parameters' gradients with ``suffix`` added to their names (``"dx"`` is left out):
    ``tag_gradients({"dx": ..., "dWaa": g}, "_f")`` gives ``{"dWaa_f": g}``."""
    return {name + suffix: value for name, value in gradients.items() if name != "dx"}


def init_parameters(cell: dict, n_x: int, n_a: int, n_y: int | None = None, *, L: int | None = None,
                    bidirectional: bool = False, seed: int = 0) -> dict:
    """Random parameters of a whole model, named as in the module docstring.

    ``L=None`` gives one layer with untagged names (``"Waa"``, or ``"Waa_f"``/``"Waa_b"``
    when bidirectional); ``L=3`` three layers tagged ``[1]``, ``[2]``, ``[3]``. Layer 1 reads
    ``x`` (``n_x`` rows), each layer above reads the one below (``n_a`` rows, or ``2 n_a``
    when bidirectional). ``n_y`` adds the output layer ``"Wya"``, ``"by"``. Weights are
    drawn with variance 1/(number of columns), biases with standard deviation 0.1.
    """
    rng = Rng(seed)
    directions = (FORWARD, BACKWARD) if bidirectional else ("",)
    width = n_a * len(directions)                                       # rows of a layer's output
    parameters = {}

    def draw(name, shape):
        scale = 0.1 if name.startswith("b") else 1 / numpy.sqrt(shape[1])
        return rng.standard_normal(shape) * scale

    for layer in ([None] if L is None else range(1, L + 1)):
        n_in = n_x if layer in (None, 1) else width
        for direction in directions:
            for name, shape in cell["shapes"](n_in, n_a).items():
                key = name + direction + ("" if layer is None else layer_tag(layer))
                parameters[key] = draw(name, shape)
    if n_y is not None:
        parameters["Wya"], parameters["by"] = draw("Wya", (n_y, width)), draw("by", (n_y, 1))
    return parameters
