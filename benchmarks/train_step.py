"""Time one training step of RNN, GRU and LSTM: the course's reference code, the fused
version, and PyTorch, side by side.

    .venv/bin/python -m benchmarks.train_step              # the CPU table, a few minutes
    .venv/bin/python -m benchmarks.train_step --gpu        # CuPy and cuDNN too (needs a GPU)

A step is forward, softmax cross-entropy summed over time, and backpropagation
through time of every parameter (see benchmarks/steps.py). Each implementation runs in
a process of its own (NumPy's and PyTorch's thread pools would fight for the cores),
the processes alternate (reference, fused, torch, then again in another order) for
``--rounds`` rounds, each process takes the median of its timed steps, and the table
shows the median over the rounds and the ratios. Results go to
benchmarks/results/train_step.md and .csv (train_step_gpu.* with ``--gpu``).

``--gpu`` times ``fused-cupy``, ``reference-cupy`` and ``torch-cuda`` (cuDNN) next to the
NumPy fused version at the large sizes and (256, 100, 512, 1024), in float32. Without a
usable GPU it says so and writes nothing. What it leaves out: the optimiser's update,
and timings of single operations (use a profiler for those).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from . import report
from .report import thread_env
from .steps import IMPLEMENTATIONS, SIZES

CPU_IMPLEMENTATIONS = ("reference", "fused", "torch")
SLOW = 1.0  # seconds: slower steps are timed once per process (the rounds still give a median)
GPU_IMPLEMENTATIONS = ("fused", "fused-cupy", "reference-cupy", "torch-cuda")


def worker(implementation: str, plan: list, repeat: int, min_time: float) -> None:
    """Time every (cell, size, dtype) of ``plan`` with one implementation; print one JSON line each."""
    from course_utils.timing import time_function
    from .steps import make_step, sync_for

    for cell, size, dtype in plan:
        row = {"implementation": implementation, "cell": cell, "size": size, "dtype": dtype}
        try:
            step, sync = make_step(implementation, cell, SIZES[size], dtype), sync_for(implementation)
            first = time_function(step, repeat=1, warmup=1, sync=sync)   # a step over SLOW s is timed once
            timing = first if first.median > SLOW else time_function(
                step, repeat=repeat, min_time=min_time, max_repeat=max(repeat, 200), warmup=0, sync=sync)
            row.update(seconds=timing.median, runs=len(timing.times))
        except Exception as err:  # e.g. an assignment not written yet: the table says why
            row.update(error=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:160])
        print(json.dumps(row), flush=True)


def _run_worker(implementation: str, plan: list, repeat: int, min_time: float, threads: int | None) -> list:
    command = [sys.executable, "-m", "benchmarks.train_step", "--worker", implementation,
               "--plan", json.dumps(plan), "--repeat", str(repeat), "--min-time", str(min_time)]
    env = dict(os.environ, **thread_env(threads))      # read by OpenBLAS, OpenMP and PyTorch at start-up
    result = subprocess.run(command, cwd=report.ROOT, capture_output=True, text=True, env=env)
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 and not rows:
        raise RuntimeError(f"the {implementation} worker failed:\n{result.stderr[-2000:]}")
    return rows


def measure(implementations, plan, rounds: int, repeat: int, min_time: float, threads: int | None = None,
            log=print) -> dict:
    """{(implementation, cell, size, dtype): [per-round medians] or an error string}."""
    results: dict = {}
    for r in range(rounds):
        order = list(implementations[r % len(implementations):]) + list(implementations[:r % len(implementations)])
        for implementation in order:
            log(f"round {r + 1}/{rounds}: {implementation} ...")
            for row in _run_worker(implementation, plan, repeat, min_time, threads):
                key = (implementation, row["cell"], row["size"], row["dtype"])
                if "error" in row:
                    results[key] = row["error"]
                elif not isinstance(results.get(key), str):
                    results.setdefault(key, []).append(row["seconds"])
    return results


def _ms(value) -> str:
    if isinstance(value, str):
        return "n/a"
    return f"{statistics.median(value) * 1e3:.3g}"


def _ratio(numerator, denominator) -> str:
    if isinstance(numerator, (str, type(None))) or isinstance(denominator, (str, type(None))):
        return "n/a"
    return f"{statistics.median(numerator) / statistics.median(denominator):.2f}×"


def tables(implementations, plan, results) -> tuple[list, list]:
    """(markdown sections, CSV rows) for the results."""
    baseline = "torch-cuda" if "torch-cuda" in implementations else "torch"
    headers = ["cell", "(m, T_x, n_x, n_a)", "dtype", *[f"{i} ms" for i in implementations]]
    headers += [f"{i} / {baseline}" for i in implementations if i != baseline]
    if "reference" in implementations and "fused" in implementations:
        headers.append("reference / fused")
    if "fused" in implementations and "fused-cupy" in implementations:
        headers.append("fused (NumPy) / fused-cupy")
    rows, csv_rows, errors = [], [], {}
    for cell, size, dtype in plan:
        got = {i: results.get((i, cell, size, dtype), "not run") for i in implementations}
        row = [cell, str(SIZES[size]), dtype, *[_ms(got[i]) for i in implementations]]
        row += [_ratio(got[i], got.get(baseline)) for i in implementations if i != baseline]
        if "reference / fused" in headers:
            row.append(_ratio(got["reference"], got["fused"]))
        if "fused (NumPy) / fused-cupy" in headers:
            row.append(_ratio(got["fused"], got["fused-cupy"]))
        rows.append(row)
        for i, value in got.items():
            if isinstance(value, str):
                errors.setdefault(value, []).append(f"{i} {cell} {size} {dtype}")
            csv_rows.append({"implementation": i, "cell": cell, "size": str(SIZES[size]), "dtype": dtype,
                             "median_ms": "" if isinstance(value, str) else statistics.median(value) * 1e3,
                             "rounds": "" if isinstance(value, str) else len(value),
                             "error": value if isinstance(value, str) else ""})
    sections = ["## Milliseconds per training step (median over rounds) and ratios\n\n"
                + report.markdown_table(headers, rows)
                + f"\n\nA ratio below 1 means faster than {baseline}. `reference` is the course's code as learners "
                  "write it (one cell function per step; it allocates its outputs with `xp.zeros`, i.e. in "
                  "float64, so its float32 rows are partly float64); `fused` is assignment 06's fused LSTM and "
                  "the benchmark-only fused RNN/GRU (benchmarks/fused_kernels.py)."]
    if errors:
        sections.append("## Not measured\n\n" + "\n".join(f"- {why}: {', '.join(which[:4])}"
                                                          + (" ..." if len(which) > 4 else "")
                                                          for why, which in errors.items()))
    return sections, csv_rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default="rnn,gru,lstm")
    parser.add_argument("--sizes", default=None, help="names from: " + ", ".join(SIZES)
                        + " (default small,medium,large; with --gpu large,gpu)")
    parser.add_argument("--dtypes", default=None, help="default float32,float64 (float32 with --gpu)")
    parser.add_argument("--implementations", default=None, help="from: " + ", ".join(IMPLEMENTATIONS))
    parser.add_argument("--gpu", action="store_true", help="compare CuPy and cuDNN (needs a GPU)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="timed steps per process, at least")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds of timed steps per process, at least")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS/OpenMP threads per process (default: the libraries' own, one per core)")
    parser.add_argument("--out", default=str(report.RESULTS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, json.loads(args.plan), args.repeat, args.min_time)
        return 0

    env = report.environment()
    if args.gpu and env["GPU"].startswith("none"):
        print(f"No GPU to benchmark: {env['GPU']}. Nothing written.")
        return 0
    implementations = (args.implementations.split(",") if args.implementations
                       else GPU_IMPLEMENTATIONS if args.gpu else CPU_IMPLEMENTATIONS)
    unknown = [i for i in implementations if i not in IMPLEMENTATIONS]
    sizes = (args.sizes or ("large,gpu" if args.gpu else "small,medium,large")).split(",")
    unknown += [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown implementation or size: {', '.join(unknown)}")
    dtypes = (args.dtypes or ("float32" if args.gpu else "float32,float64")).split(",")
    plan = [(cell, size, dtype) for cell in args.cells.split(",") for size in sizes for dtype in dtypes]

    results = measure(implementations, plan, args.rounds, args.repeat, args.min_time, args.threads)
    sections, csv_rows = tables(implementations, plan, results)
    settings = (f"{args.rounds} rounds; each process: 1 warm-up step, then at least {args.repeat} timed steps "
                f"and {args.min_time} s (one step if it takes over {SLOW} s); threads per process: {args.threads or 'the libraries default (one per core)'}")
    name = "train_step_gpu" if args.gpu else "train_step"
    title = "One training step (forward, softmax cross-entropy, BPTT): course code against PyTorch"
    report.write(name, title, dict(env, settings=settings), sections, csv_rows, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
