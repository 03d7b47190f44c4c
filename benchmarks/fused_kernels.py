"""BENCHMARK-ONLY fused kernels for the RNN and the GRU (not course material, never imported by notebooks).

The fused LSTM is assignment 06's exercise and its one reference lives in
solutions/06_scaling_up/06_scaling_up.ipynb; the benchmarks load it from there. So that
the benchmark table can put a fused column next to every cell, this module fuses the RNN
of assignment 02 and the full GRU of assignment 04 with the same ideas but one:

* time-major buffers: ``X[t]`` is x<t> (n_x, m), ``A[t + 1]`` is a<t+1>, so every step
  works on contiguous blocks;
* one input projection for the whole sequence (``W_x @ X + b``), one recurrent
  product per step (two for the GRU, whose relevance gate acts before its candidate's
  product), weight gradients after the loop. Here 06's LSTM differs: it stacks every
  step's input [a<t-1>; x<t>; 1] once in one array ``H`` and keeps x<t> and the bias in
  its one product per step, which measured faster on the course's CPU (assignment 06,
  section 3). The GRU's candidate reads Γr ⊙ a<t-1>, which its gates' product cannot
  include; the RNN kernel was not rewritten that way;
* preallocated buffers written in place, sigmoids through ``σ(z) = ½·tanh(z/2) + ½``;
* ``y_pred`` returned contiguous (the loss reads it with the contiguous targets), the
  upstream gradient made time-major once, and ``dW``, ``db``, ``dx`` each one 2-D product
  (or sum) over the T_x·m columns of every step and example, as in assignment 06's
  ``lstm_backward_fused`` (where ``db`` comes out of ``dW``'s product with ``H``'s row of ones).

Same arguments, outputs and gradient keys as ``rnn_forward``/``rnn_backward`` and
``gru_forward``/``gru_backward`` (without the per-step caches: the cache is whatever
the backward pass needs). tests/test_benchmarks.py checks both against PyTorch.
What it leaves out: the output layer and the loss (the fused training step uses
assignment 06's ``output_backward_fused`` and assignment 02's ``softmax_cross_entropy``).
"""
from __future__ import annotations

from course_utils import xp


def _time_major(x):
    """(n, m, T_x) -> (T_x, n, m), contiguous: block t is the slice x[:, :, t]."""
    return xp.ascontiguousarray(x.transpose(2, 0, 1))


def _course_layout(M):
    """(T_x, n, m) -> (n, m, T_x), a view: the inverse of ``_time_major``."""
    return M.transpose(1, 2, 0)


def _columns(M):
    """(T_x, n, m) -> (n, T_x·m), a copy: one column per step and example, the same order for every M."""
    T_x, n, m = M.shape
    return M.transpose(1, 0, 2).reshape(n, T_x * m)


def _from_columns(M_all, m):
    """(n, T_x·m) -> (n, m, T_x), a view: the course layout of ``_columns``' columns."""
    n = M_all.shape[0]
    return M_all.reshape(n, -1, m).transpose(0, 2, 1)


def _probabilities(z):
    """Softmax over axis 1 of (T_x, n_y, m) scores, returned contiguous in the course layout (n_y, m, T_x)."""
    e = xp.exp(z - z.max(axis=1, keepdims=True))
    return xp.ascontiguousarray(_course_layout(e / e.sum(axis=1, keepdims=True)))


def rnn_forward_fused(x, a0, parameters):
    """The RNN of assignment 02 over x (n_x, m, T_x): returns a, y_pred (as rnn_forward) and a cache."""
    n_x, m, T_x = x.shape
    n_a = a0.shape[0]
    Waa = parameters["Waa"]
    X = _time_major(x)                                               # (T_x, n_x, m)
    U = parameters["Wax"] @ X + parameters["ba"]                     # (T_x, n_a, m): every step's input part
    A = xp.empty((T_x + 1, n_a, m), dtype=x.dtype)                   # A[0] = a0, A[t + 1] = a<t+1>
    A[0] = a0
    for t in range(T_x):
        U[t] += Waa @ A[t]
        xp.tanh(U[t], out=A[t + 1])
    y_pred = _probabilities(parameters["Wya"] @ A[1:] + parameters["by"])  # (n_y, m, T_x)
    return _course_layout(A[1:]), y_pred, (X, A, parameters)


def rnn_backward_fused(da, cache):
    """Gradients of the fused RNN, da (n_a, m, T_x): the keys of rnn_backward."""
    X, A, parameters = cache
    n_a, m, T_x = da.shape
    dA = _time_major(da)                                             # (T_x, n_a, m)
    dU = 1 - A[1:] ** 2                                              # tanh' of every step, at once ...
    WaaT = parameters["Waa"].T
    da_next = xp.zeros((n_a, m), dtype=da.dtype)
    for t in reversed(range(T_x)):
        dU[t] *= dA[t] + da_next                                     # ... times the gradient reaching a<t+1>
        da_next = WaaT @ dU[t]
    dU_all = _columns(dU)                                            # (n_a, T_x m)
    return {"dx": _from_columns(parameters["Wax"].T @ dU_all, m), "da0": da_next,
            "dWax": dU_all @ _columns(X).T, "dWaa": dU_all @ _columns(A[:-1]).T,
            "dba": dU_all.sum(axis=1, keepdims=True)}


def gru_forward_fused(x, a0, parameters):
    """The full GRU of assignment 04 (c = a, Γr before the candidate's product) over x (n_x, m, T_x)."""
    n_x, m, T_x = x.shape
    n_a = a0.shape[0]
    W = xp.concatenate([parameters["Wu"], parameters["Wr"], parameters["Wc"]])   # (3n_a, n_a + n_x)
    b = xp.concatenate([parameters["bu"], parameters["br"], parameters["bc"]])
    X = _time_major(x)
    G = W[:, n_a:] @ X + b                                           # (T_x, 3n_a, m): [z_u; z_r; z_c] input parts
    G[:, :2 * n_a] *= 0.5                                            # σ(z) = ½ tanh(z/2) + ½ for Γu, Γr
    W_ur, W_c = W[:2 * n_a, :n_a] * 0.5, W[2 * n_a:, :n_a]
    A = xp.empty((T_x + 1, n_a, m), dtype=x.dtype)
    A[0] = a0
    RA = xp.empty((T_x, n_a, m), dtype=x.dtype)                      # Γr * a<t-1>, the candidate's input
    for t in range(T_x):
        a_prev, ur, c_tilde = A[t], G[t, :2 * n_a], G[t, 2 * n_a:]
        ur += W_ur @ a_prev
        xp.tanh(ur, out=ur)
        ur *= 0.5
        ur += 0.5                                                    # (2n_a, m): [Γu; Γr]
        gamma_u = ur[:n_a]
        xp.multiply(ur[n_a:], a_prev, out=RA[t])
        c_tilde += W_c @ RA[t]
        xp.tanh(c_tilde, out=c_tilde)
        xp.subtract(c_tilde, a_prev, out=A[t + 1])                   # a = Γu (c̃ - a_prev) + a_prev
        A[t + 1] *= gamma_u
        A[t + 1] += a_prev
    y_pred = _probabilities(parameters["Wy"] @ A[1:] + parameters["by"])
    return _course_layout(A[1:]), y_pred, (X, A, RA, G, W)


def gru_backward_fused(da, cache):
    """Gradients of the fused GRU, da (n_a, m, T_x): the keys of gru_backward."""
    X, A, RA, G, W = cache                                           # G[t] = [Γu; Γr; c̃] of step t
    n_a, m, T_x = da.shape
    dA = _time_major(da)
    D = G * (1 - G)                                                  # σ' for Γu and Γr ...
    D[:, 2 * n_a:] = 1 - G[:, 2 * n_a:] ** 2                         # ... tanh' for c̃
    dZ = xp.empty_like(G)                                            # gradients of the pre-activations
    W_ur_T, W_c_T = W[:2 * n_a, :n_a].T, W[2 * n_a:, :n_a].T
    da_next = xp.zeros((n_a, m), dtype=da.dtype)
    for t in reversed(range(T_x)):
        a_prev, dz = A[t], dZ[t]
        gamma_u, gamma_r, c_tilde = G[t, :n_a], G[t, n_a:2 * n_a], G[t, 2 * n_a:]
        da_t = dA[t] + da_next
        xp.subtract(c_tilde, a_prev, out=dz[:n_a])
        dz[:n_a] *= da_t                                             # dΓu = da (c̃ - a_prev)
        xp.multiply(da_t, gamma_u, out=dz[2 * n_a:])                 # dc̃ = da Γu
        dz[2 * n_a:] *= D[t, 2 * n_a:]
        d_ra = W_c_T @ dz[2 * n_a:]                                  # gradient of Γr * a_prev
        xp.multiply(d_ra, a_prev, out=dz[n_a:2 * n_a])               # dΓr
        dz[:2 * n_a] *= D[t, :2 * n_a]
        da_next = da_t * (1 - gamma_u) + d_ra * gamma_r + W_ur_T @ dz[:2 * n_a]
    dZ_all = _columns(dZ)                                            # (3n_a, T_x m)
    dW_x = dZ_all @ _columns(X).T                                    # (3n_a, n_x)
    dW_ur_a = dZ_all[:2 * n_a] @ _columns(A[:-1]).T
    dW_c_a = dZ_all[2 * n_a:] @ _columns(RA).T
    db = dZ_all.sum(axis=1, keepdims=True)
    gradients = {"dx": _from_columns(W[:, n_a:].T @ dZ_all, m), "da0": da_next}
    for k, (name, dW_a) in enumerate([("u", dW_ur_a[:n_a]), ("r", dW_ur_a[n_a:]), ("c", dW_c_a)]):
        rows = slice(k * n_a, (k + 1) * n_a)
        gradients[f"dW{name}"] = xp.concatenate([dW_a, dW_x[rows]], axis=1)
        gradients[f"db{name}"] = db[rows]
    return gradients


FUSED = {"rnn": (rnn_forward_fused, rnn_backward_fused), "gru": (gru_forward_fused, gru_backward_fused)}
