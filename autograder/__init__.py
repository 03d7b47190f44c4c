"""The course's grading command: release, grade, check, demo and mutants, on top of nbgrader.

Run ``python -m autograder --help``. Modules: ``course`` (paths and nbgrader
configuration), ``release``, ``grade``, ``feedback``, ``check``, ``submissions``
(filled-in and buggy example submissions), ``demo`` and ``mutants`` (every catalogued
bug graded, caught per function).

How grading resists a hostile submission (``grade`` puts these together):

* ``grade``'s intake: of a submission only the expected notebook is taken, as a regular
  file (``lstat``, never through a link); other files are dropped, and student or
  assignment folders that are links or have invalid names are not graded;
* ``integrity``: before anything runs, the notebook is compared with the release;
  removed or stripped locked cells and changed nbgrader metadata make it ``tampered``,
  edited locked cells are restored by nbgrader;
* ``guard``: the grading kernel runs only the release's locked cells (setup, given,
  tests). Every other cell is the student's and runs in a jail; tests call the
  student's functions there through data-only messages (``wire``, ``student``), so no
  student code shares a process with the tests, their expected values, the comparison
  functions or the hidden tests. Hidden-test blocks are set aside in a fork of the
  kernel and run after the last cell, once the student's jail is gone, calling a second
  jail; they report only passed/failed and a hint; the kernel caps what the jail's replies may
  show and starts as ``python -I`` in a folder no student wrote (``execute``);
* ``jail``: that process has its own user, a private file system (no solutions/, no
  gradebook, no other submission), no network, its own process namespace and resource
  limits (``jail.probe()`` says which of these the machine allows);
* ``execute``: the per-cell limit is CPU time in the jail (load does not change a
  verdict), with a wall-clock backstop, and one wall-clock limit per submission;
* ``feedback``: the page is sanitised and forbids scripts;
* ``grade``: only the grader writes the gradebook, after the jobs, and publishes a run
  with one atomic rename; the status column tells graded, failed, timeout, tampered and
  missing apart.
"""
