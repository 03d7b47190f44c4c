"""The array backend: NumPy by default, CuPy on request, identical seeded numbers."""
import importlib.util
import subprocess
import sys

import numpy
import pytest

from course_utils import backend
from course_utils.backend import BackendUnavailable, Rng, set_backend, to_host, using_backend, xp

HAS_CUPY = importlib.util.find_spec("cupy") is not None


def test_default_is_numpy_and_xp_forwards():
    assert backend.get_backend() is numpy
    assert xp.tanh is numpy.tanh
    assert isinstance(xp.zeros((2, 3)), numpy.ndarray)
    assert "numpy" in repr(xp)


def test_env_variable_chooses_backend_at_import():
    code = "import course_utils as c; print(c.backend_name())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"COURSE_BACKEND": "numpy", "PATH": ""}, check=True)
    assert out.stdout.strip() == "numpy"
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"COURSE_BACKEND": "tpu", "PATH": ""})
    assert bad.returncode != 0 and "Unknown backend 'tpu'" in bad.stderr


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of numpy, cupy, auto"):
        set_backend("jax")


@pytest.mark.skipif(HAS_CUPY, reason="CuPy is installed here; this checks the message when it is not")
def test_explicit_cupy_without_cupy_says_how_to_install():
    with pytest.raises(BackendUnavailable, match=r"pip install -e '.\[gpu\]'"):
        set_backend("cupy")
    assert backend.get_backend() is numpy  # a failed switch changes nothing


def test_auto_falls_back_to_numpy_with_one_line_notice(capsys):
    if HAS_CUPY:
        pytest.skip("CuPy is installed: 'auto' may legitimately pick the GPU")
    with using_backend("auto") as chosen:
        assert chosen is numpy
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and "using NumPy" in notice[0]


def test_using_backend_restores_previous():
    with using_backend("numpy"):
        assert backend.backend_name() == "numpy"
    assert backend.get_backend() is numpy


def test_switching_rebinds_every_name_and_drops_the_old_ones():
    import math                                    # a real module with other names than NumPy's

    try:
        backend._switch(math)
        assert vars(xp)["tanh"] is math.tanh and xp.pi == math.pi      # bound: no __getattr__ per lookup
        assert "zeros" not in vars(xp)
        with pytest.raises(AttributeError):
            xp.zeros                               # nothing of the previous backend survives a switch
    finally:
        backend._switch(numpy)
    assert vars(xp)["zeros"] is numpy.zeros and vars(xp)["tanh"] is numpy.tanh
    assert xp.__version__ == numpy.__version__     # names that are not copied still reach the module


def test_xp_survives_copy_and_pickle():
    import copy
    import pickle

    assert copy.deepcopy(xp) is xp and pickle.loads(pickle.dumps(xp)) is xp


def test_rng_is_seeded_and_host_independent():
    a = Rng(3).standard_normal((4, 2))
    b = Rng(3).standard_normal((4, 2))
    expected = numpy.random.default_rng(3).standard_normal((4, 2))  # the documented generator
    numpy.testing.assert_array_equal(to_host(a), expected)
    numpy.testing.assert_array_equal(to_host(a), to_host(b))
    assert Rng(3).standard_normal((2,), dtype=numpy.float32).dtype == numpy.float32
    draws = Rng(0).choice(3, p=xp.array([0.0, 1.0, 0.0]), size=20)
    assert set(draws.tolist()) == {1}


def test_to_host_accepts_lists_and_scalars():
    numpy.testing.assert_array_equal(to_host([1, 2]), numpy.array([1, 2]))
    assert to_host(2.5) == 2.5


@pytest.mark.gpu
def test_cupy_backend_gives_same_numbers_and_runs_exercise_code():
    import cupy

    from tests.notebooks import solution_namespace

    host = to_host(Rng(5).standard_normal((3, 4)))
    with using_backend("cupy"):
        device = Rng(5).standard_normal((3, 4))
        assert isinstance(device, cupy.ndarray) and xp.tanh is cupy.tanh
        numpy.testing.assert_array_equal(device.get(), host)
        ns = solution_namespace("01_notation")
        X, mask = ns["one_hot_batch"]([[2, 1], [0]], 3)
        assert isinstance(X, cupy.ndarray)
        assert ns["decode_batch"](X, mask, ["a", "b", "c"]) == [["c", "b"], ["a"]]
