"""assignments/ is exactly what nbgrader generates from solutions/, and reveals nothing."""
import filecmp
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.course import ASSIGNMENTS, SOLUTIONS, assignment_names
from autograder.release import release
from tests.notebooks import nbgrader_meta

SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
HIDDEN_REGION = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def _files(folder: Path) -> set:
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("release")
    release(release_dir=target)
    return target


def test_every_assignment_is_released():
    assert assignment_names() and sorted(p.name for p in ASSIGNMENTS.iterdir() if p.is_dir()) == assignment_names()


def test_assignments_folder_has_no_drift(fresh_release):
    assert _files(fresh_release) == _files(ASSIGNMENTS), "run `python -m autograder release` and commit assignments/"
    for relative in _files(fresh_release):
        assert filecmp.cmp(fresh_release / relative, ASSIGNMENTS / relative, shallow=False), (
            f"{relative} differs from a fresh release: run `python -m autograder release` and commit it")


def _significant_lines(region: str) -> list:
    return [line.strip() for line in region.splitlines()
            if len(line.strip()) > 12 and not line.strip().startswith("#")]


def released_text(assignment: str) -> str:
    """Every file a student of ``assignment`` receives, as one text."""
    return "\n".join(p.read_text(errors="replace") for p in (ASSIGNMENTS / assignment).rglob("*") if p.is_file())


@pytest.mark.parametrize("assignment", assignment_names())
def test_release_contains_no_solution_or_hidden_test(assignment):
    released = released_text(assignment)
    assert "BEGIN SOLUTION" not in released and "HIDDEN TESTS" not in released
    for source_nb in (SOLUTIONS / assignment).glob("*.ipynb"):
        nb = nbformat.read(source_nb, as_version=4)
        for cell in nb.cells:
            for region in SOLUTION_REGION.findall(cell.source) + HIDDEN_REGION.findall(cell.source):
                for line in _significant_lines(region):
                    assert line not in released, f"{assignment}: released files contain {line!r}"
    solution_only = {p.name for p in (SOLUTIONS / assignment).iterdir()} - {p.name for p in (ASSIGNMENTS / assignment).iterdir()}
    assert "bugs.toml" in solution_only or not (SOLUTIONS / assignment / "bugs.toml").exists()


@pytest.mark.parametrize("assignment", assignment_names())
def test_every_exercise_has_a_test_cell_with_points(assignment):
    nb = nbformat.read(next((SOLUTIONS / assignment).glob("*.ipynb")), as_version=4)
    meta = [nbgrader_meta(c) for c in nb.cells]
    solutions = [m["grade_id"] for m in meta if m.get("solution")]
    tests = {m["grade_id"]: m.get("points", 0) for m in meta if m.get("grade")}
    assert solutions, "an assignment needs graded exercises"
    for name in solutions:
        assert tests.get(f"test_{name}", 0) > 0, f"exercise {name} has no test cell test_{name} with points"


def test_new_gradebook_has_the_schema_version_nbgrader_stamps(tmp_path, monkeypatch):
    """autograder.gradebook stamps what nbgrader's own `alembic heads` subprocess prints."""
    from nbgrader.api import Gradebook, get_alembic_version
    from sqlalchemy import create_engine, text

    from autograder import gradebook

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    gradebook.create(url)
    with create_engine(url).connect() as connection:
        [(stamped,)] = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    assert stamped == get_alembic_version()  # the `alembic` command, as nbgrader runs it
    with Gradebook(url) as gb:  # nbgrader opens it as its own and can write to it
        gb.add_student("ada")
        assert [s.id for s in gb.students] == ["ada"]
    gradebook.create(url)  # an existing gradebook is left as it is
    with Gradebook(url) as gb:
        assert [s.id for s in gb.students] == ["ada"]
