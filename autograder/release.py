"""``python -m autograder release``: regenerate assignments/ from solutions/ with nbgrader.

Each assignment's release folder is removed first, so a file deleted from the source
disappears from the release too. The gradebook used while generating is a temporary
one: releasing never touches a grading gradebook.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from . import gradebook
from .course import ASSIGNMENTS, InstructorError, assignment_names, nbgrader_api, nbgrader_config, require_assignment


def release(assignments: list[str] | None = None, release_dir: Path = ASSIGNMENTS,
            db_url: str | None = None) -> list[Path]:
    """Generate the student version of each assignment into ``release_dir``."""
    names = assignments or assignment_names()
    for name in names:
        require_assignment(name)
    written = []
    with tempfile.TemporaryDirectory(prefix="rnn-course-release-") as scratch:
        db_url = db_url or f"sqlite:///{scratch}/gradebook.db"
        gradebook.create(db_url)
        config = nbgrader_config(release_directory=Path(release_dir).resolve(), db_url=db_url)
        api = nbgrader_api(config)
        for name in names:
            target = Path(release_dir) / name
            if target.exists():
                shutil.rmtree(target)
            result = api.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                raise InstructorError(f"nbgrader could not generate {name}:\n{result.get('error') or result['log']}")
            written.append(target)
    return written
