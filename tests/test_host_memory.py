"""course_utils keeps freed host memory, so a training step's temporaries do not page-fault."""
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the setting is glibc's (other C libraries are left as they are)")

# Twenty 2 MB arrays alive at once, then freed, ten times over: the pattern of a training step.
# The script prints the minor page faults of the last nine rounds.
ROUNDS = """
import resource
{setup}
import numpy
def step():
    arrays = [numpy.ones(2 ** 19, dtype=numpy.float32) for _ in range(20)]
    return sum(float(a[0]) for a in arrays)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(9):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(setup: str) -> int:
    out = subprocess.run([sys.executable, "-c", ROUNDS.format(setup=setup)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_importing_course_utils_stops_the_page_faults_of_repeated_steps():
    pages = 9 * 20 * 2 ** 21 // 4096                 # every page of every round, if none were kept
    assert faults("") > pages // 2, "glibc's default returns the memory: the test's premise"
    assert faults("import course_utils") < pages // 100
