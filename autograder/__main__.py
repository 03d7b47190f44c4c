"""Command line: ``python -m autograder {release,grade,check,demo,mutants}``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .course import InstructorError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("release", help="regenerate assignments/ from solutions/")
    p.add_argument("assignments", nargs="*", help="assignment names (default: all)")

    p = commands.add_parser("grade", help="autograde SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb")
    p.add_argument("submissions", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for grades.csv, results.json, feedback/")
    p.add_argument("--workers", type=int, default=1, help="submissions graded in parallel (default 1)")
    p.add_argument("--timeout", type=int, default=60,
                   help="CPU seconds the student's code may use in one cell (default 60); a cell's wall-clock "
                        "limit is 3 times that")
    p.add_argument("--submission-timeout", type=int, default=600,
                   help="seconds a whole submission may run (default 600)")
    p.add_argument("--memory-mb", type=int, default=2048, help="memory of the process running student code")
    p.add_argument("--max-notebook-mb", type=float, default=20, help="largest notebook accepted (default 20)")

    p = commands.add_parser("check", help="run a notebook and report its visible tests (no gradebook)")
    p.add_argument("notebook", type=Path)
    p.add_argument("--timeout", type=int, default=300, help="seconds a single cell may run")

    commands.add_parser("demo", help="release, make three example submissions, grade them")

    p = commands.add_parser("mutants", help="grade every catalogued bug (bugs.toml); show how many each test catches")
    p.add_argument("--out", type=Path, default=None, help="grading folder (default grading/mutants)")
    p.add_argument("--workers", type=int, default=2)

    args = parser.parse_args(argv)
    try:
        if args.command == "release":
            from .release import release
            for path in release(args.assignments or None):
                print(f"released {path}")
            return 0
        if args.command == "grade":
            from .grade import format_table, grade
            from .jail import Limits
            limits = Limits(memory_mb=args.memory_mb, cpu_seconds=args.submission_timeout + 10)
            grades = grade(args.submissions, args.out, workers=args.workers, timeout=args.timeout,
                           submission_timeout=args.submission_timeout, limits=limits,
                           max_notebook_mb=args.max_notebook_mb)
            print(format_table(grades))
            print(f"\nWrote {args.out / 'grades.csv'}, {args.out / 'results.json'} and {args.out / 'feedback'}/")
            return 0
        if args.command == "check":
            from .check import format_report, run_checks
            results, notes = run_checks(args.notebook, timeout=args.timeout)
            print(format_report(results, notes))
            return 0 if results and all(r.passed for r in results) else 1
        if args.command == "mutants":
            from .mutants import format_summary, run
            rows, out = run(args.out, workers=args.workers)
            print(format_summary(rows))
            print(f"\nGrades of every mutant: {out / 'results' / 'grades.csv'}")
            return 0 if all(not r.missed for r in rows) else 1
        from .demo import demo
        return demo()
    except InstructorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
