"""Is a submitted notebook the release, filled in? Checked before anything runs.

``inspect(path, release, ...)`` compares a submission with the released notebook, cell
by cell through nbgrader's ``grade_id``s, and returns a ``Verdict``:

* ``failed``: not a notebook this grader can run: over the size limit, not valid
  JSON/nbformat, no cells at all, or none of the release's cells (another
  assignment's notebook, named after this one);
* ``tampered``: a locked cell of the release (a test or a given cell) was removed or
  lost its nbgrader metadata, a cell's nbgrader metadata (grade, solution, locked,
  points) was changed, a cell claims a ``grade_id`` the release does not have, or
  one ``grade_id`` appears twice, or locked cells were moved (they are put back in the
  release's order). The submission is still graded, as it is otherwise: a removed test
  scores 0, so tampering never raises a score;
* otherwise fine, with notes (e.g. locked cells that were edited: nbgrader restores
  their source from the gradebook before the run, so the edit has no effect).

The verdict also carries the notebook to grade, normalised so that nbgrader can run
it: the release's nbgrader metadata on every cell it knows, none on any other cell.
What it leaves out: the content of solution cells (the tests judge those).
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import nbformat

from .course import nbgrader_meta

_FIELDS = ("grade", "solution", "locked", "points")


@dataclasses.dataclass
class Verdict:
    status: str = ""                      # "", "failed" or "tampered"
    reasons: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    notebook: nbformat.NotebookNode | None = None

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons + self.notes)


def _read(path: Path, max_mb: float) -> tuple[nbformat.NotebookNode | None, str]:
    size = path.stat().st_size
    if size > max_mb * 2**20:
        return None, (f"the notebook is {size / 2**20:.0f} MB, over the {max_mb:g} MB limit "
                      "(clear its outputs: Kernel > Restart & Clear Output, then save)")
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # nbformat raises JSON, validation and encoding errors alike
        return None, f"not a valid notebook ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
    if not nb.cells:
        return None, "the notebook has no cells"
    return nb, ""


def inspect(path: Path, release: nbformat.NotebookNode, assignment: str,
            other_releases: dict[str, nbformat.NotebookNode], max_mb: float = 20) -> Verdict:
    """The verdict on the submitted notebook at ``path`` (see the module docstring)."""
    nb, problem = _read(Path(path), max_mb)
    if nb is None:
        return Verdict("failed", [problem])
    expected = {nbgrader_meta(c)["grade_id"]: c for c in release.cells if nbgrader_meta(c).get("grade_id")}
    if not _exercise_ids(nb) & _exercise_ids(release):
        return Verdict("failed", [_foreign(nb, assignment, other_releases)])
    verdict = Verdict(notebook=nb)
    seen = set()
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if not meta:
            continue
        grade_id = meta.get("grade_id")
        if grade_id not in expected or grade_id in seen:
            verdict.reasons.append(f"a cell claims nbgrader id {grade_id!r}, which the release does not have"
                                   if grade_id not in expected else f"cell {grade_id!r} appears twice")
            del cell.metadata["nbgrader"]
            continue
        seen.add(grade_id)
        original = expected[grade_id]
        released = nbgrader_meta(original)
        changed = [f"{field} {released.get(field)!r} -> {meta.get(field)!r}"
                   for field in _FIELDS if meta.get(field) != released.get(field)]
        if changed:
            verdict.reasons.append(f"the nbgrader metadata of {grade_id!r} was changed ({', '.join(changed)})")
        if released.get("locked") and cell.source.strip() != original.source.strip():
            verdict.notes.append(f"locked cell {grade_id!r} was edited and is graded as released")
        cell.metadata["nbgrader"] = copy.deepcopy(original.metadata["nbgrader"])
    plain_sources = {c.source.strip() for c in nb.cells if not nbgrader_meta(c)}
    for grade_id, original in expected.items():
        released = nbgrader_meta(original)
        if grade_id not in seen and released.get("locked"):
            kind = "test" if released.get("grade") else "locked"
            how = "lost its nbgrader metadata" if original.source.strip() in plain_sources else "was removed"
            verdict.reasons.append(f"{kind} cell {grade_id!r} {how}")
    _restore_order(nb, list(expected), verdict)
    if verdict.reasons:
        verdict.status = "tampered"
    return verdict


def _restore_order(nb, release_order: list[str], verdict: Verdict) -> None:
    """Put moved locked cells back in the release's order, in the places locked cells hold: a test
    run before another, or a given cell run early, would change what the tests see."""
    rank = {grade_id: i for i, grade_id in enumerate(release_order)}
    slots = [i for i, cell in enumerate(nb.cells) if nbgrader_meta(cell).get("locked")]
    ordered = sorted((nb.cells[i] for i in slots), key=lambda cell: rank[nbgrader_meta(cell)["grade_id"]])
    moved = [nbgrader_meta(cell)["grade_id"] for i, cell in zip(slots, ordered) if nb.cells[i] is not cell]
    if moved:
        verdict.reasons.append(f"locked cells were moved ({', '.join(map(repr, moved[:5]))}); "
                               "they are graded in the release's order")
        for i, cell in zip(slots, ordered):
            nb.cells[i] = cell


def _exercise_ids(nb) -> set:
    """The grade_ids of exercise and test cells (given cells' ids, given_1 ..., repeat across notebooks)."""
    metas = [nbgrader_meta(c) for c in nb.cells]
    return {meta["grade_id"] for meta in metas if meta.get("grade_id") and (meta.get("grade") or meta.get("solution"))}


def _foreign(nb, assignment: str, other_releases: dict[str, nbformat.NotebookNode]) -> str:
    ids = _exercise_ids(nb)
    for other, release in other_releases.items():
        if ids & _exercise_ids(release):
            return f"this is the notebook of {other}, not of {assignment}"
    return f"this is not the notebook of {assignment}: none of its exercise or test cells are in it"
