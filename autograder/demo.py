"""``python -m autograder demo``: the course's main job, end to end.

Regenerates assignments/ from solutions/, makes three example submissions of every
assignment (the reference solutions filled in, the untouched release, and one with
a typical bug from the assignment's bugs.toml), grades them with two workers, and
prints the grade table and where the feedback is. Everything it writes goes under
grading/demo/ (git-ignored).
"""
from __future__ import annotations

import shutil
import time

from .course import ROOT, assignment_names, notebook_names
from .grade import format_table, grade
from .release import release
from .submissions import filled_in, load_bugs, untouched, write_submission

DEMO_DIR = ROOT / "grading" / "demo"


def demo(workers: int = 2) -> int:
    started = time.perf_counter()
    print("1. Releasing assignments/ from solutions/ (nbgrader generate_assignment) ...")
    release()
    submitted = DEMO_DIR / "submitted"
    shutil.rmtree(submitted, ignore_errors=True)
    print("2. Making example submissions ...")
    for assignment in assignment_names():
        bugs = load_bugs(assignment)
        for notebook in notebook_names(assignment):
            write_submission(submitted, "solution", assignment, notebook, filled_in(assignment, notebook))
            write_submission(submitted, "untouched", assignment, notebook, untouched(assignment, notebook))
            if bugs:
                write_submission(submitted, "buggy", assignment, notebook,
                                 filled_in(assignment, notebook, bug=bugs[0]))
                print(f"   buggy/{assignment}: {bugs[0].description} (should fail {bugs[0].test})")
    print(f"3. Grading with {workers} workers (nbgrader autograde) ...")
    grades = grade(submitted, DEMO_DIR / "results", workers=workers)
    print()
    print(format_table(grades))
    results = DEMO_DIR / "results"
    print(f"\nGrades: {results / 'grades.csv'}\nPer test: {results / 'results.json'}"
          f"\nFeedback: {results / 'feedback'}/<student>/<assignment>/<notebook>.html"
          f"\nDone in {time.perf_counter() - started:.0f} s.")
    return 0
