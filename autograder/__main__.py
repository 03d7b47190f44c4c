"""Command line: ``python -m autograder {release,grade,check,demo}``."""
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
    p.add_argument("--timeout", type=int, default=60, help="seconds a single cell may run (default 60)")

    p = commands.add_parser("check", help="run a notebook and report its visible tests (no gradebook)")
    p.add_argument("notebook", type=Path)
    p.add_argument("--timeout", type=int, default=300, help="seconds a single cell may run")

    commands.add_parser("demo", help="release, make three example submissions, grade them")

    args = parser.parse_args(argv)
    try:
        if args.command == "release":
            from .release import release
            for path in release(args.assignments or None):
                print(f"released {path}")
            return 0
        if args.command == "grade":
            from .grade import format_table, grade
            grades = grade(args.submissions, args.out, workers=args.workers, timeout=args.timeout)
            print(format_table(grades))
            print(f"\nWrote {args.out / 'grades.csv'}, {args.out / 'results.json'} and {args.out / 'feedback'}/")
            return 0
        if args.command == "check":
            from .check import format_report, run_checks
            results, notes = run_checks(args.notebook, timeout=args.timeout)
            print(format_report(results, notes))
            return 0 if results and all(r.passed for r in results) else 1
        from .demo import demo
        return demo()
    except InstructorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
