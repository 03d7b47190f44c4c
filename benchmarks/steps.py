"""One training step (forward, softmax cross-entropy, backpropagation through time) of each
implementation that benchmarks/train_step.py compares.

Every course step is assignment 06's ``training_step`` (its source notebook's given cell),
which takes the three functions of a version; the loss is 02's ``softmax_cross_entropy``:

* ``reference``: the course's reference solutions as learners write them, loaded from the
  source notebooks (``tests.notebooks.solution_namespace``): 02's ``rnn_forward`` and
  ``rnn_backward``, 04's ``gru_*`` and ``lstm_*``, and 02's ``output_backward`` (a loop over time);
* ``fused``: assignment 06's fused LSTM and ``output_backward_fused``, and the
  benchmark-only fused RNN and GRU of ``benchmarks/fused_kernels.py``.
* ``torch``: ``torch.nn.RNN``/``GRU``/``LSTM`` + ``nn.Linear`` + ``cross_entropy`` summed
  over time and averaged over the batch, then ``backward()``, with the same weights. The input
  requires a gradient, so that PyTorch computes ``dx`` as every course backward pass does.
  Weights are copied with ``course_utils.pytorch_layout``. (PyTorch's GRU applies its reset
  gate after the recurrent product: the same work, not quite the same function.)

A suffix picks the device: ``reference-cupy`` and ``fused-cupy`` run the same code with
the CuPy backend, ``torch-cuda`` is PyTorch with cuDNN. A step is a function of no
arguments whose work has finished when it returns (``course_utils.timing`` synchronises).
Sizes are ``(m, T_x, n_x, n_a)`` with ``n_y = n_x`` (a character model). What it leaves
out: the optimiser's update (the same for every implementation) and timing itself.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy

CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": (), "gru": ("u", "r", "c"), "lstm": ("f", "i", "c", "o")}
IMPLEMENTATIONS = ("reference", "fused", "torch", "reference-cupy", "fused-cupy", "torch-cuda")


@dataclasses.dataclass(frozen=True)
class Size:
    m: int
    T_x: int
    n_x: int
    n_a: int

    def __str__(self) -> str:
        return f"({self.m}, {self.T_x}, {self.n_x}, {self.n_a})"


SIZES = {
    "tiny": Size(2, 4, 5, 3),            # the smoke test's: seconds for everything
    "small": Size(1, 25, 27, 50),        # one name at a time, a character vocabulary
    "medium": Size(32, 50, 64, 128),
    "large": Size(64, 100, 128, 256),
    "gpu": Size(256, 100, 512, 1024),    # the GPU comparison's
}


def problem(cell: str, size: Size, dtype: str, seed: int = 0) -> dict:
    """Host (NumPy) arrays of one training batch: parameters in the course's layout, a
    one-hot input ``x`` (n_x, m, T_x), targets ``Y`` one-hot (n_y, m, T_x) and ``labels`` (m, T_x).

    Weights are uniform in ±1/sqrt(n_a), PyTorch's default for recurrent layers (random
    normal weights drive long backward passes into subnormal numbers, which time the
    CPU's slow path instead of the implementation)."""
    rng = numpy.random.default_rng(seed)
    m, T_x, n_x, n_a = size.m, size.T_x, size.n_x, size.n_a
    draw = lambda *shape: (rng.uniform(-1, 1, shape) / numpy.sqrt(n_a)).astype(dtype)  # noqa: E731
    if cell == "rnn":
        parameters = {"Waa": draw(n_a, n_a), "Wax": draw(n_a, n_x), "ba": draw(n_a, 1),
                      "Wya": draw(n_x, n_a), "by": draw(n_x, 1)}
        parameters["Wy"] = parameters["Wya"]     # the name the training step of assignment 06 reads
    else:
        parameters = {}
        for gate in GATES[cell]:
            parameters[f"W{gate}"], parameters[f"b{gate}"] = draw(n_a, n_a + n_x), draw(n_a, 1)
        parameters["Wy"], parameters["by"] = draw(n_x, n_a), draw(n_x, 1)
    eye = numpy.eye(n_x, dtype=dtype)
    inputs, labels = rng.integers(0, n_x, (m, T_x)), rng.integers(0, n_x, (m, T_x))
    return {"parameters": parameters, "x": eye[inputs].transpose(2, 0, 1).copy(),
            "Y": eye[labels].transpose(2, 0, 1).copy(), "labels": labels, "a0": numpy.zeros((n_a, m), dtype)}


@functools.lru_cache(maxsize=None)
def course_functions(assignment: str, given: tuple = ()) -> dict:
    """The reference functions of a source notebook, and the given cells ``given`` (by grade_id)."""
    from tests.notebooks import run_given_cells, solution_namespace

    return run_given_cells(solution_namespace(assignment), assignment, *given)


def _on_device(data: dict) -> dict:
    from course_utils import to_device
    return {key: ({k: to_device(v) for k, v in value.items()} if isinstance(value, dict) else
                  value if key == "labels" else to_device(value)) for key, value in data.items()}


def course_step(implementation: str, cell: str, data: dict):
    """A step of the course's code, ``reference`` or ``fused``, on the current backend: assignment
    06's ``training_step`` with the forward, backward and output-layer functions of that version."""
    data = _on_device(data)
    ns06 = course_functions("06_scaling_up", given=("training_step",))
    if implementation == "reference":
        ns = course_functions("02_rnn" if cell == "rnn" else "04_gru_lstm")
        functions = (ns[f"{cell}_forward"], ns[f"{cell}_backward"], ns06["output_backward_per_step"])
    elif implementation == "fused":
        from .fused_kernels import FUSED
        forward, backward = (ns06["lstm_forward_fused"], ns06["lstm_backward_fused"]) if cell == "lstm" else FUSED[cell]
        functions = (forward, backward, ns06["output_backward_fused"])
    else:
        raise ValueError(f"unknown course implementation {implementation!r}")
    training_step, parameters, x, Y = ns06["training_step"], data["parameters"], data["x"], data["Y"]
    return lambda: training_step(parameters, x, Y, *functions)


def torch_step(cell: str, data: dict, device: str = "cpu"):
    """A step of torch.nn.RNN/GRU/LSTM with the course's weights copied in."""
    import torch

    parameters = data["parameters"]
    n_x, m, T_x = data["x"].shape
    n_a = data["a0"].shape[0]
    dtype = getattr(torch, str(data["x"].dtype))
    module = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    recurrent = module(n_x, n_a, dtype=dtype, device=device)
    linear = torch.nn.Linear(n_a, n_x, dtype=dtype, device=device)
    tensor = lambda array: torch.as_tensor(numpy.ascontiguousarray(array), device=device)  # noqa: E731
    output_key = "Wya" if cell == "rnn" else "Wy"
    if cell == "rnn":
        weights = {"weight_hh_l0": parameters["Waa"], "weight_ih_l0": parameters["Wax"],
                   "bias_ih_l0": parameters["ba"][:, 0], "bias_hh_l0": numpy.zeros(n_a)}
    else:
        from course_utils.pytorch_layout import gru_to_pytorch, lstm_to_pytorch
        weights = (gru_to_pytorch if cell == "gru" else lstm_to_pytorch)(parameters)
    with torch.no_grad():
        for name, value in weights.items():
            getattr(recurrent, name).copy_(tensor(value))
        linear.weight.copy_(tensor(parameters[output_key]))
        linear.bias.copy_(tensor(parameters["by"][:, 0]))
    x = tensor(data["x"].transpose(2, 1, 0)).requires_grad_()            # (T_x, m, n_x): dx too, as the course computes
    labels = tensor(data["labels"].T.reshape(-1))                        # (T_x m,)
    with_gradients = [x, *recurrent.parameters(), *linear.parameters()]

    def step():
        for leaf in with_gradients:
            leaf.grad = None
        out, _ = recurrent(x)                                            # (T_x, m, n_a)
        logits = linear(out).reshape(T_x * m, n_x)
        loss = torch.nn.functional.cross_entropy(logits, labels, reduction="sum") / m
        loss.backward()
        return loss
    return step


def make_step(implementation: str, cell: str, size: Size, dtype: str, seed: int = 0):
    """The step function of ``implementation`` for ``cell`` at ``size`` in ``dtype``."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {implementation!r}: choose from {', '.join(IMPLEMENTATIONS)}")
    data = problem(cell, size, dtype, seed)
    if implementation.startswith("torch"):
        return torch_step(cell, data, device="cuda" if implementation == "torch-cuda" else "cpu")
    from course_utils import set_backend
    set_backend("cupy" if implementation.endswith("-cupy") else "numpy")
    return course_step(implementation.removesuffix("-cupy"), cell, data)


def sync_for(implementation: str):
    """What waits for the device after a step of ``implementation``."""
    if implementation == "torch-cuda":
        import torch
        return torch.cuda.synchronize
    from course_utils.timing import synchronize
    return synchronize
