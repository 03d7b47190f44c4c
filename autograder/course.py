"""Where the course lives and how nbgrader is configured for it.

The configuration comes from ``nbgrader_config.py`` at the repository root (the one
file an instructor edits); the commands here override only the working folders.
"""
from __future__ import annotations

from pathlib import Path

from traitlets.config import Config, PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
ASSIGNMENTS = ROOT / "assignments"
BUGS_FILE = "bugs.toml"


class InstructorError(Exception):
    """A mistake in how a command was called (bad path, unknown assignment)."""


def assignment_names() -> list[str]:
    """Assignments are the folders of solutions/ that hold a notebook, in course order."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def notebook_names(assignment: str) -> list[str]:
    """The notebooks of an assignment, without the .ipynb suffix."""
    return sorted(p.stem for p in (SOLUTIONS / assignment).glob("*.ipynb"))


def nbgrader_meta(cell) -> dict:
    """A cell's nbgrader metadata (grade_id, solution, grade, locked, points); {} for a plain cell."""
    return cell.get("metadata", {}).get("nbgrader", {})


def require_assignment(assignment: str) -> None:
    if assignment not in assignment_names():
        raise InstructorError(f"Unknown assignment {assignment!r}. The course has: "
                              f"{', '.join(assignment_names())} (folders of {SOLUTIONS}).")


def nbgrader_config(**course_directory) -> Config:
    """The course configuration, with ``CourseDirectory`` traits overridden by keyword."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    for key, value in course_directory.items():
        config.CourseDirectory[key] = str(value) if isinstance(value, Path) else value
    return config


def nbgrader_api(config: Config):
    """nbgrader's in-process API (one start-up, many students). Create a new gradebook with
    ``autograder.gradebook.create`` first: nbgrader's own way runs ``alembic`` through PATH."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
