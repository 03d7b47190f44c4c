"""The course's grading command: release, grade, check and demo, on top of nbgrader.

Run ``python -m autograder --help``. Modules: ``course`` (paths and nbgrader
configuration), ``release``, ``grade``, ``feedback``, ``check``, ``submissions``
(filled-in and buggy example submissions) and ``demo``.
"""
