"""nbgrader's Execute preprocessor with one wall-clock limit per submission.

``--timeout`` (nbgrader's ``Execute.timeout``) is what the student's code may compute in
one cell, in CPU seconds: the jail enforces it (``autograder.student``), so a loaded
machine does not change a verdict. The kernel's wall-clock limit per cell is
``WALL_FACTOR`` times that, a backstop for code that sleeps, waits or evades the CPU
limit. A notebook of N slow cells could still take N times the limit, so ``GuardedExecute`` also gives the whole submission a wall-clock budget
(``submission_timeout`` seconds): each cell's limit is the smaller of the per-cell
limit and what is left of the budget, and once the budget is spent the remaining
code cells are not run but get a ``SubmissionTimeout`` error (so a test cell that
did not run scores zero, as nbgrader scores a cell without an error as passed).

Hidden tests run after the notebook's last cell (``autograder.guard``: ``Guard.finish``),
within what is left of the submission's budget, and their outcomes are added to their test
cells then. The graded notebook records no execution times (``record_timing`` off): a time
there would date the end of the hidden tests.

The kernel is the trusted side, so nothing a student wrote may reach its imports:
``IsolatedKernelManager`` starts it as ``python -I`` (no current folder and no
``PYTHON*`` variables on its import path, no user site) in the job's own empty folder
(``kernel_directory``), never in the folder of the student's notebook. Before the first
cell it asks the guard for its proof (``Guard.proof``): the per-job secret, the guard's
module file (the course's own), the folder it runs in and an import path with no folder
of the job's. Without that proof grading stops: the student's code would run unguarded. A kernel that
dies before its first reply has run no cell yet, so it is started again (``KERNEL_STARTS``
tries in all). One kernel died so in a CI run, before any code of the submission had
run (cause not found); such a failure must not cost a student the whole assignment.
"""
from __future__ import annotations

import ast
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

from .guard import PROBE
KERNEL_STARTS = 3
WALL_FACTOR = 3   # the per-cell wall-clock limit, in multiples of the per-cell CPU limit
DIED_AT_START = "Kernel died before replying to kernel_info"    # jupyter_client's words


class GuardMissing(RuntimeError):
    """The grading kernel did not load autograder.guard: refuse to run student code in it."""


class IsolatedKernelManager(AsyncKernelManager):
    """The grading kernel: this interpreter with ``-I``, whatever the kernel spec says."""

    def format_kernel_cmd(self, extra_arguments=None):
        return [sys.executable, "-I", "-m", "ipykernel_launcher", "-f", os.path.realpath(self.connection_file),
                *(extra_arguments or [])]


class GuardedExecute(Execute):
    submission_timeout = Integer(600, help="seconds the whole submission may run").tag(config=True)
    kernel_directory = Unicode("", help="the kernel's working folder: empty, the grader's").tag(config=True)
    secret = Unicode("", help="the per-job secret the guard must echo").tag(config=True)
    untrusted = Unicode("", help="a folder no entry of the kernel's import path may lie in").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", IsolatedKernelManager)   # nbgrader's default is the plain one
        super().__init__(*args, **kwargs)
        self.record_timing = False   # no clock in the graded notebook: it would time the hidden tests

    def preprocess(self, nb, resources=None, km=None):
        self._deadline = time.monotonic() + self.submission_timeout
        self.timeout_func = self._cell_timeout
        resources = resources or {}
        if self.kernel_directory:
            resources.setdefault("metadata", {})["path"] = self.kernel_directory
        return super().preprocess(nb, resources, km)

    def _check_proof(self, reply: dict) -> None:
        expression = reply["content"].get("user_expressions", {}).get("proof", {})
        try:
            proof = json.loads(ast.literal_eval(expression["data"]["text/plain"]))
        except (KeyError, ValueError, SyntaxError, TypeError):
            raise GuardMissing("The grading kernel did not load autograder.guard "
                               f"({reply['content'].get('ename')}: {reply['content'].get('evalue')}).") from None
        from . import guard
        problems = []
        if proof.get("secret") != self.secret:
            problems.append("it did not echo this job's secret")
        if proof.get("file") != str(Path(guard.__file__).resolve()):
            problems.append(f"its guard is {proof.get('file')!r}, not the course's")
        if not proof.get("safe_path"):
            problems.append("it puts its working folder on its import path (not started with -I)")
        if self.kernel_directory and proof.get("cwd") != self.kernel_directory:
            problems.append(f"it runs in {proof.get('cwd')!r}, not in its own folder")
        untrusted = Path(self.untrusted) if self.untrusted else None
        if untrusted and any(not entry or Path(entry).resolve().is_relative_to(untrusted)
                             for entry in proof.get("path", [])):
            problems.append("a folder of the submission is on its import path")
        if problems:
            raise GuardMissing("The grading kernel failed the guard's proof (autograder.guard): " + "; ".join(problems))

    def _cell_timeout(self, cell) -> int:
        return max(1, min(WALL_FACTOR * self.timeout, int(self._deadline - time.monotonic()) + 1))

    async def async_start_new_kernel_client(self):
        for tries_left in reversed(range(KERNEL_STARTS)):
            try:
                kc = await super().async_start_new_kernel_client()
                break
            except RuntimeError as err:
                if DIED_AT_START not in str(err) or not tries_left:
                    raise
                self.log.warning("The grading kernel died before its first reply (no cell had run): "
                                 "starting it again")
                self.km = self.km or self.create_kernel_manager()     # nbclient dropped the dead one
                await self.async_start_new_kernel()
        reply = await kc.execute_interactive(PROBE, silent=True, store_history=False, timeout=60,
                                             user_expressions={"proof": PROBE}, output_hook=lambda msg: None)
        self._check_proof(reply)
        return kc

    # nbclient binds the synchronous name to its own coroutine: bind it to the one above
    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.source.strip() and time.monotonic() >= self._deadline:
            message = f"not run: the submission used up its {self.submission_timeout} s limit before this cell"
            cell.outputs = [new_output("error", ename="SubmissionTimeout", evalue=message,
                                       traceback=[f"SubmissionTimeout: {message}"])]
        else:
            cell.get("metadata", {}).pop("execution", None)   # the submitter's own timings, if any
            cell, resources = super().preprocess_cell(cell, resources, index)
        if index == len(self.nb.cells) - 1:
            self._add_hidden_test_outputs()
        return cell, resources

    async def _async_add_hidden_test_outputs(self):
        """After the last cell: the guard runs the hidden-test blocks it set aside (``Guard.finish``);
        each test cell gets their outputs, in the order the cells ran."""
        seconds = max(self._deadline - time.monotonic(), 0)
        finish = f"__course_guard__.finish({seconds}, {WALL_FACTOR * self.timeout})"
        reply = await self.kc.execute_interactive("", silent=True, store_history=False, timeout=seconds + 60,
                                                  user_expressions={"outputs": finish}, output_hook=lambda msg: None)
        outputs = reply["content"]["user_expressions"]["outputs"]
        if outputs.get("status") != "ok":
            raise RuntimeError(f"the guard could not run the hidden tests: {outputs.get('ename')}: "
                               f"{outputs.get('evalue')}")
        cells = iter(self.nb.cells)
        for key, cell_outputs in json.loads(ast.literal_eval(outputs["data"]["text/plain"])):
            cell = next((c for c in cells if c.cell_type == "code" and c.source.strip() == key), None)
            if cell is None:
                raise RuntimeError("grader error: the guard ran hidden tests of a cell that is not in the notebook")
            cell.outputs.extend(nbformat.from_dict(output) for output in cell_outputs)

    _add_hidden_test_outputs = run_sync(_async_add_hidden_test_outputs)
