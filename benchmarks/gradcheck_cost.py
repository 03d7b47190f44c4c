"""What a gradient check costs: ``course_utils.gradcheck.check_backward`` on the course's
backward passes, at the size of the notebooks' tests and at a learner's size.

    .venv/bin/python -m benchmarks.gradcheck_cost

A check perturbs every entry of every input twice (centred differences) and runs the
whole forward pass each time, so its cost is (2 × entries checked) forward passes: that
is why the notebooks check small shapes, and why ``sparse=K`` (K random entries per
array) exists for larger ones. The table gives the seconds per check, the forward
passes it ran and the cost of one of them, for the RNN (02), the cell-by-cell LSTM (04)
and the fused LSTM (06). Results go to benchmarks/results/gradcheck_cost.md and .csv.
What it leaves out: the float32 case (checks refuse it) and the GPU.
"""
from __future__ import annotations

import argparse
import sys

import numpy

from . import report
from .steps import course_functions

CASES = {  # name: (assignment, forward, backward, what the inputs are)
    "RNN cell (02)": ("02_rnn", "rnn_cell_forward", "rnn_cell_backward", "cell"),
    "RNN sequence (02)": ("02_rnn", "rnn_forward", "rnn_backward", "sequence"),
    "LSTM sequence, cell by cell (04)": ("04_gru_lstm", "lstm_forward", "lstm_backward", "sequence"),
    "LSTM sequence, fused (06)": ("06_scaling_up", "lstm_forward_fused", "lstm_backward_fused", "sequence"),
}
SHAPES = {  # label: ((n_x, n_a, n_y, m, T_x), sparse)
    "tests": ((3, 5, 2, 4, 6), None),              # the notebooks' visible tests: every entry
    "learner": ((27, 50, 27, 1, 25), None),        # a character model: every entry
    "learner-sparse": ((27, 50, 27, 1, 25), 10),   # the same, 10 random entries per array
    "tiny": ((2, 3, 2, 1, 2), None),               # the smoke test's
}


def _inputs(assignment: str, kind: str, shape, seed: int = 0) -> dict:
    n_x, n_a, n_y, m, T_x = shape
    rng = numpy.random.default_rng(seed)
    if assignment == "02_rnn":
        parameters = {"Waa": rng.standard_normal((n_a, n_a)) * 0.5, "Wax": rng.standard_normal((n_a, n_x)) * 0.5,
                      "ba": rng.standard_normal((n_a, 1)) * 0.3, "Wya": rng.standard_normal((n_y, n_a)),
                      "by": rng.standard_normal((n_y, 1))}
    else:
        parameters = {}
        for gate in ("f", "i", "c", "o"):
            parameters["W" + gate] = rng.standard_normal((n_a, n_a + n_x)) * 0.5
            parameters["b" + gate] = rng.standard_normal((n_a, 1)) * 0.3
        parameters["Wy"], parameters["by"] = rng.standard_normal((n_y, n_a)), rng.standard_normal((n_y, 1))
    a0 = rng.standard_normal((n_a, m)) * 0.5
    if kind == "cell":
        return {"xt": rng.standard_normal((n_x, m)), "a_prev": a0, "parameters": parameters}
    return {"x": rng.standard_normal((n_x, m, T_x)), "a0": a0, "parameters": parameters}


def measure(cases, shapes, repeat: int) -> list:
    from course_utils.gradcheck import check_backward
    from course_utils.timing import time_function

    rows = []
    for case in cases:
        assignment, forward_name, backward_name, kind = CASES[case]
        ns = course_functions(assignment)
        forward, backward = ns[forward_name], ns[backward_name]
        for label in shapes:
            shape, sparse = SHAPES[label]
            inputs = _inputs(assignment, kind, shape)
            report_ = check_backward(forward, backward, inputs, sparse=sparse)
            if not report_.ok:
                raise AssertionError(f"{case} fails its gradient check at {shape}:\n{report_}")
            evaluations = 2 * sum(row.n_checked for row in report_.rows)
            check = time_function(check_backward, forward, backward, inputs, sparse=sparse, repeat=repeat, warmup=0)
            one_forward = time_function(forward, **inputs, repeat=3, min_time=0.05)
            rows.append({"check": case, "shape (n_x, n_a, n_y, m, T_x)": str(shape), "entries": "all" if sparse is None else f"{sparse} per array",
                         "seconds": check.median, "forward passes": evaluations,
                         "ms per forward pass": one_forward.median * 1e3})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gradcheck_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="tests,learner,learner-sparse", help="from: " + ", ".join(SHAPES))
    parser.add_argument("--cases", default=None, help="names from: " + "; ".join(CASES) + " (default all)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", default=str(report.RESULTS))
    args = parser.parse_args(argv)
    shapes = args.shapes.split(",")
    cases = args.cases.split(";") if args.cases else list(CASES)
    unknown = [s for s in shapes if s not in SHAPES] + [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown shape or case: {unknown}")
    env = report.environment()
    rows = measure(cases, shapes, args.repeat)
    headers = list(rows[0])
    table = report.markdown_table(headers, [[f"{v:.3g}" if isinstance(v, float) else v for v in row.values()]
                                            for row in rows])
    section = ("## Seconds per `check_backward` (median of " + str(args.repeat) + " run(s))\n\n" + table +
               "\n\nEvery check passes (relative error < 1e-7). Its cost is about (forward passes) × "
               "(ms per forward pass): the fused LSTM makes each forward pass, and so each check, cheaper.")
    report.write("gradcheck_cost", "The cost of gradient checks", env, [section], rows, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
