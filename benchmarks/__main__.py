"""``python -m benchmarks``: every benchmark in turn, with its defaults (about 15 minutes on 2 cores).

Each one also runs alone, with options (``--help``):

* ``python -m benchmarks.train_step``: a training step of RNN, GRU, LSTM, course code against PyTorch;
* ``python -m benchmarks.gradcheck_cost``: what a gradient check costs;
* ``python -m benchmarks.notebooks``: each solution notebook, end to end;
* ``python -m benchmarks.grading``: autograde time per submission with 1 and 2 workers.

Tables are printed and written to benchmarks/results/.
"""
import sys
import time

from . import gradcheck_cost, grading, notebooks, train_step

BENCHMARKS = {"train_step": train_step, "gradcheck_cost": gradcheck_cost, "notebooks": notebooks,
              "grading": grading}


def main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        start = time.perf_counter()
        print(f"=== {name}", flush=True)
        BENCHMARKS[name].main([])
        print(f"=== {name}: {time.perf_counter() - start:.0f} s\n", flush=True)
    return 0


sys.exit(main())
