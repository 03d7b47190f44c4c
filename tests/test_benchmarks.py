"""benchmarks/ at a tiny size, so the scripts cannot rot (no timing is asserted), the fused
kernels that only the benchmarks use against the course's reference code, and the timing
helper they share with the notebooks (course_utils.timing)."""
from __future__ import annotations

import csv
import subprocess
import sys

import numpy
import pytest

from course_utils import using_backend
from course_utils.gradcheck import check_backward
from course_utils.timing import Timing, time_function
from tests.notebooks import ROOT, solution_namespace


def test_time_function_warms_up_repeats_and_synchronises():
    calls, syncs = [], []
    timing = time_function(lambda k: calls.append(k), 7, repeat=4, warmup=2, sync=lambda: syncs.append(1),
                           label="append")
    assert calls == [7] * 6 and len(syncs) == 5 and len(timing.times) == 4
    assert isinstance(timing, Timing) and timing.best <= timing.median and "append" in str(timing)
    slow = time_function(lambda: sum(range(20000)), repeat=1, min_time=0.02, warmup=0)
    assert sum(slow.times) >= 0.02 and len(slow.times) > 1
    capped = time_function(lambda: None, repeat=2, min_time=60, max_repeat=5, warmup=0)
    assert len(capped.times) == 5
    with pytest.raises(ValueError, match="repeat"):
        time_function(lambda: None, repeat=0)


@pytest.fixture(scope="module")
def references():
    return {"02": solution_namespace("02_rnn"), "04": solution_namespace("04_gru_lstm")}


def _rnn_problem(rng, n_x, n_a, n_y, m, T_x):
    parameters = {"Waa": rng.standard_normal((n_a, n_a)) * 0.5, "Wax": rng.standard_normal((n_a, n_x)),
                  "ba": rng.standard_normal((n_a, 1)), "Wya": rng.standard_normal((n_y, n_a)),
                  "by": rng.standard_normal((n_y, 1))}
    return parameters, rng.standard_normal((n_x, m, T_x)), rng.standard_normal((n_a, m))


def _gru_problem(rng, n_x, n_a, n_y, m, T_x):
    parameters = {f"W{g}": rng.standard_normal((n_a, n_a + n_x)) * 0.6 for g in "urc"}
    parameters.update({f"b{g}": rng.standard_normal((n_a, 1)) * 0.3 for g in "urc"})
    parameters["Wy"], parameters["by"] = rng.standard_normal((n_y, n_a)), rng.standard_normal((n_y, 1))
    return parameters, rng.standard_normal((n_x, m, T_x)), rng.standard_normal((n_a, m))


@pytest.mark.parametrize("cell", ["rnn", "gru"])
@pytest.mark.parametrize("shape", [(3, 5, 4, 2, 6), (2, 3, 2, 1, 1)])
def test_fused_kernels_match_the_reference_and_the_gradient_checker(references, cell, shape):
    from benchmarks.fused_kernels import FUSED
    forward, backward = FUSED[cell]
    ns = references["02"] if cell == "rnn" else references["04"]
    rng = numpy.random.default_rng(sum(shape))
    parameters, x, a0 = (_rnn_problem if cell == "rnn" else _gru_problem)(rng, *shape)
    da = rng.standard_normal(a0.shape + (x.shape[2],))
    a, y_pred, cache = forward(x, a0, parameters)
    a_ref, y_ref, caches_ref = ns[f"{cell}_forward"](x, a0, parameters)
    numpy.testing.assert_allclose(a, a_ref, rtol=1e-12, atol=1e-14)
    numpy.testing.assert_allclose(y_pred, y_ref, rtol=1e-12, atol=1e-14)
    got, want = backward(da, cache), ns[f"{cell}_backward"](da, caches_ref)
    assert set(got) == set(want)
    for key in want:
        numpy.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-12, err_msg=key)
    check_backward(forward, backward, {"x": x, "a0": a0, "parameters": parameters}).assert_ok()


def test_fused_kernels_keep_float32(references):
    from benchmarks.fused_kernels import FUSED
    rng = numpy.random.default_rng(0)
    for cell, make in (("rnn", _rnn_problem), ("gru", _gru_problem)):
        parameters, x, a0 = make(rng, 3, 4, 2, 2, 5)
        single = {k: v.astype(numpy.float32) for k, v in parameters.items()}
        forward, backward = FUSED[cell]
        a, _, cache = forward(x.astype(numpy.float32), a0.astype(numpy.float32), single)
        gradients = backward(numpy.ones(a.shape, numpy.float32), cache)
        assert a.dtype == numpy.float32 and all(g.dtype == numpy.float32 for g in gradients.values()), cell


def _run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_train_step_benchmark_runs_every_implementation(tmp_path):
    pytest.importorskip("torch")
    result = _run("benchmarks.train_step", "--sizes", "tiny", "--rounds", "1", "--repeat", "1", "--min-time", "0",
                  "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "train_step.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 2 * 3                                  # cells x dtypes x implementations
    assert all(not row["error"] and float(row["median_ms"]) > 0 and row["rounds"] == "1" for row in rows), rows
    table = (tmp_path / "train_step.md").read_text()
    assert "fused / torch" in table and "reference / fused" in table and "n/a" not in table
    assert "NumPy" in table and "PyTorch" in table                  # the machine and versions are recorded


def test_train_step_benchmark_without_a_gpu_says_so(tmp_path):
    from course_utils.backend import BackendUnavailable, _load_cupy
    try:
        _load_cupy()
        pytest.skip("this machine has a GPU")
    except BackendUnavailable:
        pass
    result = _run("benchmarks.train_step", "--gpu", "--out", str(tmp_path))
    assert result.returncode == 0 and "No GPU" in result.stdout and not list(tmp_path.iterdir())


@pytest.mark.gpu
def test_train_step_benchmark_on_the_gpu(tmp_path):
    result = _run("benchmarks.train_step", "--gpu", "--sizes", "tiny", "--rounds", "1", "--repeat", "1",
                  "--min-time", "0", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "train_step_gpu.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(not row["error"] for row in rows if row["implementation"] != "torch-cuda"), rows


def test_gradcheck_cost_benchmark(tmp_path):
    from benchmarks import gradcheck_cost
    assert gradcheck_cost.main(["--shapes", "tiny", "--repeat", "1", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "gradcheck_cost.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(gradcheck_cost.CASES) and all(int(r["forward passes"]) > 0 for r in rows)


@pytest.mark.slow
def test_notebooks_benchmark(tmp_path):
    from benchmarks import notebooks
    assert notebooks.main(["--assignments", "01_notation", "--modes", "graded", "--out", str(tmp_path)]) == 0
    assert "01_notation.ipynb | graded" in (tmp_path / "notebooks.md").read_text()


@pytest.mark.slow
def test_grading_benchmark(tmp_path):
    from benchmarks import grading
    assert grading.main(["--assignment", "01_notation", "--batch", "1", "--workers", "1,2", "--own-runs", "1", "--rounds", "1",
                         "--out", str(tmp_path)]) == 0
    with open(tmp_path / "grading.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["grader"], row["workers"]) for row in rows] == [
        ("nbgrader alone", "1"), ("course grader", "1"), ("course grader", "2")]


@pytest.mark.gpu
def test_fused_kernels_on_the_gpu():
    from benchmarks.fused_kernels import FUSED
    from course_utils import to_device, to_host
    rng = numpy.random.default_rng(1)
    for cell, make in (("rnn", _rnn_problem), ("gru", _gru_problem)):
        parameters, x, a0 = make(rng, 5, 6, 3, 4, 7)
        forward, backward = FUSED[cell]
        a, _, cache = forward(x, a0, parameters)
        host = backward(numpy.ones(a.shape), cache)
        with using_backend("cupy"):
            a, _, cache = forward(to_device(x), to_device(a0), {k: to_device(v) for k, v in parameters.items()})
            device = backward(to_device(numpy.ones(a.shape)), cache)
        for key, value in host.items():
            numpy.testing.assert_allclose(to_host(device[key]), value, rtol=1e-9, atol=1e-12, err_msg=key)


def test_report_marks_a_commit_whose_code_was_changed_but_not_earlier_results(tmp_path):
    from benchmarks.report import commit
    git = lambda *args: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],  # noqa: E731
                                       cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()
    git("init", "-q")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "kernel.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "results" / "table.md").write_text("old\n")
    git("add", ".")
    git("commit", "-q", "-m", "start")
    head = git("rev-parse", "--short", "HEAD")
    assert commit(tmp_path) == head
    (tmp_path / "benchmarks" / "results" / "table.md").write_text("new\n")       # a rerun's output
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert commit(tmp_path) == head
    (tmp_path / "kernel.py").write_text("x = 2\n")                               # the code measured
    assert commit(tmp_path) == f"{head} with uncommitted changes"
