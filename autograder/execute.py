"""nbgrader's Execute preprocessor with one wall-clock limit per submission.

nbgrader's ``--timeout`` bounds each cell, so a notebook of N slow cells may take N
times the limit. ``GuardedExecute`` also gives the whole submission a budget
(``submission_timeout`` seconds): each cell's limit is the smaller of the per-cell
limit and what is left of the budget, and once the budget is spent the remaining
code cells are not run but get a ``SubmissionTimeout`` error (so a test cell that
did not run scores zero, as nbgrader scores a cell without an error as passed).

Before the first cell it checks that the kernel loaded ``autograder.guard``; without
it the student's code would run in the kernel, so grading stops instead. A kernel that
dies before its first reply has run no cell yet, so it is started again (``KERNEL_STARTS``
tries in all). One kernel died so in a CI run, before any code of the submission had
run (cause not found); such a failure must not cost a student the whole assignment.
"""
from __future__ import annotations

import time

from jupyter_core.utils import run_sync
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer

PROBE = "__course_guard__.check()"
KERNEL_STARTS = 3
DIED_AT_START = "Kernel died before replying to kernel_info"    # jupyter_client's words


class GuardMissing(RuntimeError):
    """The grading kernel did not load autograder.guard: refuse to run student code in it."""


class GuardedExecute(Execute):
    submission_timeout = Integer(600, help="seconds the whole submission may run").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._deadline = time.monotonic() + self.submission_timeout
        self.timeout_func = self._cell_timeout
        return super().preprocess(nb, resources, km)

    def _cell_timeout(self, cell) -> int:
        return max(1, min(self.timeout, int(self._deadline - time.monotonic()) + 1))

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
                                             output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok":
            raise GuardMissing("The grading kernel did not load autograder.guard "
                               f"({reply['content'].get('ename')}: {reply['content'].get('evalue')}).")
        return kc

    # nbclient binds the synchronous name to its own coroutine: bind it to the one above
    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.source.strip() and time.monotonic() >= self._deadline:
            message = f"not run: the submission used up its {self.submission_timeout} s limit before this cell"
            cell.outputs = [new_output("error", ename="SubmissionTimeout", evalue=message,
                                       traceback=[f"SubmissionTimeout: {message}"])]
            return cell, resources
        return super().preprocess_cell(cell, resources, index)
