"""The grading kernel's guard: only the course's own code runs in the kernel.

nbgrader runs a submission top to bottom in one IPython kernel, so in plain nbgrader a
student's cell can patch what the tests rely on (``np.allclose``, the checks,
builtins, IPython's input transformers), read the running test cell (hidden tests
included) and reach whatever the kernel can reach. Here the grader loads this
extension into the kernel (``--IPKernelApp.extensions=autograder.guard``) with a spec
(``COURSE_GUARD_SPEC``) listing the *trusted* cells: the locked cells of the source
notebook (setup, given and test cells, hidden tests included), as nbgrader restores
them. Then, for every cell the kernel is asked to run:

* a trusted setup or given cell runs in the kernel as usual;
* a trusted test cell runs in the kernel; a hidden-test block in it that calls none of the
  student's functions and binds only functions (a grading set-up: references, and swaps
  that make a later exercise run on reference versions of earlier ones, so that a mistake
  is graded once) runs there too (``_run_as_set_up``). At the first other hidden block the
  guard sets the rest of the cell aside (``run_hidden``) in a fork of the kernel that
  holds the notebook's state as it is then. After the last cell, when the jail of the
  student's own cells is gone, each fork runs its cell's rest, hidden blocks and visible
  code alike (``finish``), and the grader adds to the cell what came of it: "hidden tests
  passed", or ``HiddenTestsFailed`` with a hint, never the blocks' code, messages or
  tracebacks. The hint comes from a closed set (``_hint``): the one the test's author gave
  the check that failed, or a fixed sentence for the kind of failure; never text, names,
  codes or times from the student's process. The forks' calls of the student's functions go to a
  *second* jail, which replays the student's cells and whose output nobody sees; there a
  function that changes its arguments in place fails the block, and only random
  generators' advances come back. So no code of the student's that anyone sees runs
  after a hidden input exists: none can print one, keep one or time how long the hidden
  tests took. The functions and classes a set-aside block defines (the references later
  cells' hidden tests compare with) are also defined in the kernel when it is met; other
  names it binds do not reach later cells (in the student's release they do not exist
  either);
* **any other cell is the student's** and never runs in the kernel: its source goes to
  a jailed Python process (``autograder.jail``, ``autograder.student``), and the kernel
  gets, for each exercise function the cell defined, an ``Exercise`` stand-in. A test
  calling ``rnn_forward(x, a0, parameters)`` sends the arguments to the jail as data,
  the student's function runs there, and the result comes back as data
  (``autograder.wire``), with the arguments it changed in place and what it printed.

So the tests that decide the grade, their expected values and the comparison
functions (``check_close``, NumPy) live in a process the student's code cannot reach:
it can only return wrong data, which fails the test. A student's cell that
``sys.exit()``s, loops, forks or floods memory does it in the jail; the kernel stays
responsive, reports the error in that cell and records what happened in the job's
event log (``events.jsonl``), which the grader turns into the submission's status.

The jail's globals mirror the notebook's. Before a request the guard gives the jail the
globals of setup and given cells that the student's code reads (found with
``symtable``): imports and definitions as their statements, functions bound by an
assignment (``from_assignment(...)``, which reads the earlier assignments' references
the jail may see) by re-running it, other values as data. Names a test cell bound last
(hidden inputs, expected values) are never sent. Each exercise name is bound in the jail
as the kernel binds it at that moment: when a hidden block swaps in a reference version
of an earlier exercise (02's tests), the student's later function calls it, and the call
comes back to the kernel (a call-back handle valid for that one request).

After the last test cell nothing can change a grade, so from there on every cell (the
given training demos included) runs in the jail, where the student's functions are
local calls: the demos run as fast as in a plain kernel, and their figures come back
as images.

Nothing the jail sends is trusted: each reply's fields must have their types
(``_checked``), its output is capped here (``CELL_OUTPUT``, ``NOTEBOOK_OUTPUT``), its
figures must be PNGs under ``FIGURE_BYTES`` (at most ``FIGURES_PER_CELL`` a cell,
``NOTEBOOK_FIGURE_BYTES`` in all), and an exception named like one of the grader's
(``GRADER_ERRORS``) is renamed. Every request carries the cell's CPU budget, which the
jail enforces (``autograder.student``).

What it leaves out: what the hidden tests' outcome itself says (passed, failed, or ran past
the time limit: a bit or two per test cell, which any grader that reports a score gives),
and how long they took as a student's *later job* could see it by timing its own cells, if
it ran right after on the same worker (``autograder.grade`` runs jobs in a random order and
returns no clock, which makes that a guess, not a measure).
A test that calls a student's function many thousand times pays a
round trip per call (tens to hundreds of microseconds), and values that are not plain
data (a class of the student's own, a generator) cannot cross: such a call fails with
a TypeError that says so.
"""
from __future__ import annotations

import ast
import contextlib
import fcntl
import io
import json
import os
import select
import resource
import signal
import socket
import symtable
import sys
import time
import types
from pathlib import Path

from . import wire
from .jail import ZYGOTE_VARIABLE, Handle, JailSpec, Limits, exit_text, spawn

SPEC_VARIABLE = "COURSE_GUARD_SPEC"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
FIGURES_PER_CELL = 20
FIGURE_BYTES = 4 * 2**20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CELL_OUTPUT = 20_000                  # characters of student output shown per cell
NOTEBOOK_OUTPUT = 400_000             # ... and in the whole notebook
NOTEBOOK_FIGURE_BYTES = 16 * 2**20    # bytes of figures shown in the whole notebook
ERROR_CHARACTERS, ERROR_LINES = 2000, 200
PROOF_VARIABLE = "COURSE_GUARD_SECRET"
# Error names from which the grader reads a status (autograder.grade): a student's exception of
# that name is renamed, so that it cannot make a row say "timeout" or "failed".
GRADER_ERRORS = {"CellTimeoutError", "SubmissionTimeout", "CellCPUTimeout", "CPUTimeExceeded", "HiddenTestsFailed",
                 "HiddenTestsTimeout", "StudentProcessEnded", "DeadKernelError", "UnresponsiveKernelError",
                 "GuardMissing"}
PROBE = "__course_guard__.proof()"   # the grader's first request to the kernel (autograder.execute)
KERNEL_MEMORY_MB = 4096               # the trusted kernel's own address-space limit
OTHER_INPUTS = "other inputs than the visible tests (other shapes and seeds, m = 1, T_x = 1, non-square sizes)"
GENERIC_HINT = "the results differ from the expected ones on " + OTHER_INPUTS
_RED, _GREEN, _RESET = "\x1b[0;31m", "\x1b[0;32m", "\x1b[0m"


def _key(source: str) -> str:
    return source.strip()


class HiddenTestsFailed(AssertionError):
    """The student's function changed its arguments in place during hidden tests."""


class StudentError(Exception):
    """An error raised by the student's code in the jail, shown with the student's own traceback."""

    lines: list = []

    def _render_traceback_(self):
        return [line.rstrip("\n") for line in self.lines]


class CellCPUTimeout(RuntimeError):
    """The student's code used up the cell's CPU time (``autograder.student``)."""

    def _render_traceback_(self):
        return [f"{_RED}✘ {type(self).__name__}: {self}{_RESET}"]


class StudentProcessEnded(RuntimeError):
    """The jailed process is gone (it exited, was killed at a limit, or broke the protocol)."""

    def _render_traceback_(self):
        return [f"{_RED}✘ {type(self).__name__}: {self}{_RESET}"]


# The hint of a failed hidden test for each failure that is not a check's (see _hint).
HIDDEN_HINTS = {
    HiddenTestsFailed: "your function changed one of its arguments in place on " + OTHER_INPUTS
                       + "; work on a copy or build new arrays",
    StudentProcessEnded: "your code ended or broke the process that runs it on " + OTHER_INPUTS,
    CellCPUTimeout: "your code ran past the limit of CPU time on " + OTHER_INPUTS,
}
HIDDEN_TIMEOUT = "your code ran past the time limit on " + OTHER_INPUTS


class Exercise:
    """The kernel's stand-in for one of the student's exercise functions."""

    def __init__(self, guard: "Guard", name: str):
        self.guard, self.__name__, self.__qualname__ = guard, name, name

    def __call__(self, *args, **kwargs):
        return self.guard.call(self.__name__, args, kwargs)

    def __repr__(self):
        return f"<your function {self.__name__}>"


def _student_error(error: dict) -> BaseException:
    """An exception of the same kind as the student's, rendered with the student's traceback."""
    import builtins

    kind = getattr(builtins, error["type"], None) if error.get("builtin") else None
    if not (isinstance(kind, type) and issubclass(kind, Exception)):
        kind = StudentError
    name = error["type"] if error["type"] not in GRADER_ERRORS else f"{error['type']}FromYourCode"
    cls = type(name, (kind,), {"_render_traceback_": StudentError._render_traceback_})
    err = cls(error["message"])
    err.lines = error.get("traceback") or [f"{error['type']}: {error['message']}"]
    return err


def _definitions(source: str) -> dict:
    """Name -> (statement, global names it reads, kind) for the imports, functions, classes and plain
    assignments at a cell's top level (``kind`` is "assign" for the last: they are recomputed, so
    the guard uses them only for functions, e.g. those ``from_assignment`` returns)."""
    found = {}
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return found
    for position, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                single = type(node)(**{**node.__dict__, "names": [alias]})
                found[(alias.asname or alias.name).split(".")[0]] = (ast.unparse(single), set(), "define", position)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = (ast.unparse(node), _globals_read(ast.unparse(node)), "define", position)
        elif isinstance(node, ast.Assign) and all(isinstance(t, (ast.Name, ast.Tuple)) for t in node.targets):
            statement = ast.unparse(node)
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        found[name.id] = (statement, _globals_read(statement), "assign", position)
    return found


def _top_level_names(source: str) -> set:
    """Names a cell binds at its top level."""
    try:
        table = symtable.symtable(source, "<cell>", "exec")
    except SyntaxError:
        return set()
    return {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}


def _globals_read(source: str) -> set:
    """Global names a piece of code reads (at its top level or inside its functions)."""
    try:
        top = symtable.symtable(source, "<cell>", "exec")
    except SyntaxError:
        return set()
    names, tables = {s.get_name() for s in top.get_symbols() if s.is_referenced()}, list(top.get_children())
    while tables:
        table = tables.pop()
        names |= {s.get_name() for s in table.get_symbols() if s.is_global() and s.is_referenced()}
        tables += table.get_children()
    return names


class _Link:
    """One jailed student process as the guard holds it: its pipes and what it has been given."""

    def __init__(self):
        self.jail = None                      # autograder.jail.Handle, once started
        self.to_jail = self.from_jail = -1
        self.ready = False
        self.ended = ""                       # why it ended, once it has
        self.mirrored: dict[str, int] = {}    # name -> id of the kernel value this jail has
        self.last_sync = self.last_bindings = None
        self.replayed = 0                     # how many of Guard.student_runs it has run


class _Sealed(BaseException):
    """A hidden block run as a set-up called the student's code (a BaseException: a test's
    ``except Exception`` must not swallow it)."""


_UNSET = object()


def _is_set_up(value) -> bool:
    """What a grading set-up may bind: functions, classes, modules, and collections of functions."""
    if isinstance(value, dict):
        return all(map(_is_set_up, value.values()))
    if isinstance(value, (list, tuple)):
        return all(map(_is_set_up, value))
    return callable(value) or isinstance(value, types.ModuleType)


class _SetAside:
    """A test cell's hidden tests set aside by ``Guard.run_hidden``: the fork that will run them, and its pipes."""

    def __init__(self, key: str, cell: int, pid: int, go: socket.socket, result: int):
        self.key, self.cell = key, cell   # the test cell and the number of its run
        self.pid, self.go, self.result = pid, go, result

    def close(self) -> None:
        if self.pid:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            self.go.close()
            os.close(self.result)
            self.pid = 0


class Guard:
    def __init__(self, shell, spec: dict):
        self.shell, self.spec = shell, spec
        self.trusted = {_key(cell["source"]): cell for cell in spec["trusted"]}
        self.exercises = list(spec["exercises"])
        # the last test cell of each notebook -> all its test cells: once they have run, the epilogue
        self.last_tests = {_key(tests[-1]): {_key(t) for t in tests} for tests in spec["notebook_tests"] if tests}
        self.tests_run: set = set()
        self.student_sources: dict[str, int] = {}
        self.student_cells: list[str] = []
        self.reads: set = set()           # global names the student's code reads
        self.student_names: set = set()   # names the student's cells bind
        self.owner: dict[str, str] = {}   # name -> kind of the cell that bound it last
        self.definitions: dict = {}       # name -> (statement, reads) of the given cell that bound it
        self.hidden: dict[str, list] = {}  # test cell -> its code from the first hidden block on
        self.hidden_keys: dict[str, int] = {}  # test cell -> its number in run_hidden's calls
        self.handles: dict = {}           # call-back handles, valid during one request
        self.request_number = 0           # the current request, which names those handles
        self.persistent: dict = {}        # call-back handles of mirrored kernel functions
        self.persistent_ids: dict = {}
        self.before: dict[str, int] = {}
        self.cells_run = self.figures_shown = 0
        self.epilogue = False   # after the last test cell: every cell runs in the jail
        self.quiet = False      # inside a hidden-test block: show nothing
        self.depth = 0
        self.link = self.visible = _Link()   # the jail of the student's cells and the visible tests
        self.hidden_link = _Link()            # the jail of hidden-test calls, from finish on
        self.set_aside: list[_SetAside] = []  # hidden-test blocks waiting for finish (run_hidden)
        self.in_fork = False                  # this process is a fork running hidden tests
        self.proved = False                   # the grader has had the proof (see proof)
        self.sealed = False                   # no request may reach a jail (see _run_as_set_up)
        self.student_runs: list = []          # (cell index, globals it reads), in the order they ran
        self.during = ""
        self.shown = 0                        # characters of student output shown in this cell
        self.shown_in_notebook = self.figure_bytes = 0
        self.cell_number = 0                  # cells run so far: the jail's CPU budget is per cell
        self.cell_cpu = spec.get("cell_cpu")  # that budget, in seconds (grade --timeout)
        self.cell_started = time.monotonic()
        self.stats = {"requests": 0, "callbacks": 0, "seconds": 0.0, "bytes": 0}
        self.secret = os.environ.pop(PROOF_VARIABLE, "")
        self.events = open(spec["events"], "a", buffering=1)
        shell.input_transformers_cleanup.insert(0, self.transform)
        shell.events.register("pre_run_cell", self.before_cell)
        shell.events.register("post_run_cell", self.after_cell)
        shell.user_ns["__course_guard__"] = self
        self.log("guard", pid=os.getpid())

    # -- events ------------------------------------------------------------------
    def log(self, event: str, **details) -> None:
        """One line of the job's event log; a fork's events are named "hidden ...": what the
        student's code did there decides no status (autograder.grade), only the cell's outcome."""
        name = f"hidden {event}" if self.in_fork and not event.startswith("hidden") else event
        self.events.write(json.dumps({"event": name, "time": time.time(), **details}) + "\n")

    # -- which code runs where -----------------------------------------------------
    def _kind(self, source: str) -> str:
        cell = self.trusted.get(_key(source))
        if cell is None or (self.epilogue and cell["kind"] == "given"):
            return "student"
        if cell["kind"] == "probe" and self.proved:   # the grader's first request only: a cell of
            return "student"                          # that source after it is the student's
        return cell["kind"]

    def transform(self, lines: list[str]) -> list[str]:
        source = "".join(lines)
        kind = self._kind(source)
        if kind == "student":
            index = self.student_sources.setdefault(_key(source), len(self.student_cells))
            if index == len(self.student_cells):
                self.student_cells.append(source)
            return [f"__course_guard__.run_student({index})\n"]
        if kind == "test":
            return self._split_hidden(source)
        return lines

    def _split_hidden(self, source: str) -> list[str]:
        """A test cell with each hidden-test block replaced by a call of ``run_hidden``; the cell from
        its first block on is kept as [(code, hidden?), ...]."""
        key, out, rest, block = _key(source), [], [], None
        for line in source.splitlines(keepends=True):
            marker = line.strip()
            if marker == HIDDEN_BEGIN and block is None:
                if line[:len(line) - len(line.lstrip())]:  # refused by grade's spec; fail closed
                    return ["raise RuntimeError('grader error: an indented hidden-test block')\n"]
                # the cell by its number, never by its source: a traceback of the visible code
                # above shows this line, and the source holds the hidden tests
                number = self.hidden_keys.setdefault(key, len(self.hidden_keys))
                out.append(f"__course_guard__.run_hidden({number}, {sum(hidden for _, hidden in rest)})\n")
                block = []
            elif marker == HIDDEN_END and block is not None:
                rest.append(("".join(block), True))
                block = None
            elif block is not None:
                block.append(line)
            else:
                out.append(line)
                if rest and not rest[-1][1]:
                    rest[-1] = (rest[-1][0] + line, False)
                elif rest:
                    rest.append((line, False))
        if block is not None:  # an unterminated block: nbgrader refuses such a source; fail closed
            return ["raise RuntimeError('grader error: an unterminated hidden-test block')\n"]
        self.hidden[key] = rest
        return out

    def before_cell(self, info) -> None:
        self.before = {name: id(value) for name, value in self.shell.user_ns.items()}
        self.figures_shown = self.shown = 0
        self.cell_number += 1
        self.cell_started = time.monotonic()

    def after_cell(self, result) -> None:
        """Note which kind of cell (re)bound each name; after the last test cell, once every test
        cell of its notebook has run, switch to the jail (the epilogue)."""
        source = result.info.raw_cell if result.info else ""
        kind = self._kind(source)
        changed = [name for name, value in self.shell.user_ns.items() if self.before.get(name) != id(value)]
        definitions = _definitions(source) if kind == "given" and changed else {}
        self.cells_run += 1
        for name in changed:
            self.owner[name] = kind
            if name in definitions:
                statement, needs, how, position = definitions[name]
                self.definitions[name] = (statement, needs, how, (self.cells_run, position))
            else:
                self.definitions.pop(name, None)
        if self.set_aside and self.set_aside[-1].cell == self.cell_number and not result.success:
            self.set_aside.pop().close()   # its visible tests failed: the rest of the cell would not have run
        if kind == "test":
            self.tests_run.add(_key(source))
        if self.last_tests.get(_key(source), {None}) <= self.tests_run:   # a copy run early counts for nothing
            self.epilogue = True

    def run_hidden(self, number: int, index: int) -> None:
        """Run a test cell's hidden-test block ``index``, or set the rest of the cell aside.

        A block that calls none of the student's functions and binds only functions (the
        references and the swaps of a grading set-up) runs here, in the kernel, like a given
        cell. At the first other block, a fork of this kernel takes the rest of the cell, holding
        the notebook's state as it is then, and waits: after the notebook's last cell
        (``finish``) it runs that rest, hidden blocks and visible code alike, its calls of the
        student's functions going to a second jail that replays the student's cells and whose
        output nobody sees. By then the jail of the student's own cells is gone, so no cell the
        student sees can print a hidden input, keep one, or time how long the blocks took. The
        functions and classes those blocks define are defined here too, for later cells' blocks."""
        key = next(key for key, n in self.hidden_keys.items() if n == number)
        if self.set_aside and self.set_aside[-1].cell == self.cell_number:   # a fork has the rest
            return
        if self._run_as_set_up(key, index):
            return
        self._define(key, index)
        go_kernel, go_fork = socket.socketpair()
        result_read, result_write = os.pipe()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # an interrupt of the kernel's
        try:                                                               # group must not reach the fork
            pid = os.fork()
            if pid == 0:
                try:
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                    go_kernel.close()
                    os.close(result_read)
                    self._run_set_aside(self._rest(key, index), go_fork, result_write)
                finally:
                    os._exit(0)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        go_fork.close()
        os.close(result_write)
        self.set_aside.append(_SetAside(key, self.cell_number, pid, go_kernel, result_read))

    def _rest(self, key: str, index: int) -> list:
        """The cell from its hidden block ``index`` on: [(code, hidden?), ...]."""
        blocks = [position for position, (_, hidden) in enumerate(self.hidden[key]) if hidden]
        return self.hidden[key][blocks[index]:]

    def _run_as_set_up(self, key: str, index: int) -> bool:
        """Run hidden block ``index`` here if it is a grading set-up: it calls none of the student's
        functions (``request`` refuses while ``sealed``) and binds only functions. Otherwise undo
        what it bound and the hooks it registered, and say so (False)."""
        namespace, events = self.shell.user_ns, self.shell.events.callbacks
        names, hooks = dict(namespace), {event: list(callbacks) for event, callbacks in events.items()}
        self.sealed, set_up = True, False
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compile(self._rest(key, index)[0][0], "<hidden tests>", "exec"), namespace)
            set_up = all(_is_set_up(value) for name, value in namespace.items() if names.get(name, _UNSET) is not value)
        except (Exception, _Sealed):
            pass
        finally:
            self.sealed = False
            if not set_up:
                namespace.clear()
                namespace.update(names)
                for event, callbacks in hooks.items():
                    events[event][:] = callbacks
        return set_up

    def _define(self, key: str, index: int) -> None:
        """Run the top-level function and class definitions of a cell's hidden blocks from ``index``
        on (the references later cells' hidden tests compare with), nothing else."""
        for code, hidden in self._rest(key, index):
            try:
                definitions = [node for node in ast.parse(code).body if isinstance(
                    node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))] if hidden else []
                if definitions:
                    exec(compile(ast.Module(definitions, []), "<hidden tests>", "exec"), self.shell.user_ns)
            except Exception as err:   # the fork defines them as the block does; later cells lack them
                self.log("hidden definitions failed", message=f"{type(err).__name__}: {err}"[:2000])

    def _run_set_aside(self, rest: list, go: socket.socket, result_fd: int) -> None:
        """In the fork: wait for ``finish`` to hand over the hidden jail, run the rest of the cell, report."""
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the kernel
        self.in_fork = True
        for fd in (self.visible.to_jail, self.visible.from_jail):
            with contextlib.suppress(OSError):
                os.close(fd)
        message, fds, _, _ = socket.recv_fds(go, 4096, 3)
        if len(fds) != 3:   # finish skipped this cell
            return
        state = json.loads(message)
        self.link = self.hidden_link = _Link()
        self.link.to_jail, self.link.from_jail, status_fd = fds
        self.link.jail, self.link.ready, self.link.replayed = Handle(state["pid"], status_fd), True, state["replayed"]
        self.cell_started, self.quiet, report = time.monotonic(), True, {"ok": True}
        self.stats = dict.fromkeys(self.stats, 0)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                self._replay()
                for code, hidden in rest:
                    exec(compile(code if hidden else _python(code), "<hidden tests>", "exec"), self.shell.user_ns)
            except Exception as err:
                self.log("hidden test failed", message=f"{type(err).__name__}: {err}"[:2000])
                report = {"ok": False, "hint": _hint(err)}
        os.write(result_fd, json.dumps(report | {"replayed": self.link.replayed, "ended": bool(self.link.ended),
                                                 "stats": self.stats}).encode())

    def finish(self, seconds: float, cell_seconds: float) -> str:
        """Run the test cells set aside, in the order they ran, once the student's own jail is gone.
        Each gets the same wall-clock limit, fixed before any runs (``cell_seconds``, or an equal
        share of the ``seconds`` left to the submission), so that how long one took changes
        nothing in another's outcome. Returns, as JSON, the outputs to add to each of those
        cells: a list of [cell source, outputs]."""
        self._stop(self.visible)
        share = min(cell_seconds, seconds / max(len(self.set_aside), 1))
        added = []
        for cell in self.set_aside:
            outcome, hint = self._run_block(cell, share) if share >= 1 else ("not run", "")
            cell.close()
            added.append([cell.key, _hidden_outputs(outcome, hint)])
        self._stop(self.hidden_link)
        return json.dumps(added)

    def _run_block(self, block: "_SetAside", seconds: float) -> tuple[str, str]:
        """Hand the hidden jail to the fork of one test cell and wait for its report: (outcome, hint)."""
        if self.hidden_link.ended or self.hidden_link.jail is None:
            self._stop(self.hidden_link)
            self.link = self.hidden_link = _Link()
            self._ensure_ready()
            self.link = self.visible
        link = self.hidden_link
        state = json.dumps({"pid": link.jail.pid, "replayed": link.replayed}).encode()
        socket.send_fds(block.go, [state], [link.to_jail, link.from_jail, link.jail.status_fd])
        report, deadline = b"", time.monotonic() + seconds
        while select.select([block.result], [], [], max(deadline - time.monotonic(), 0))[0]:
            chunk = os.read(block.result, 65536)
            if not chunk:
                break
            report += chunk
        else:   # past its time: the fork and the jail go, the next cell gets a fresh jail
            self.log("hidden tests timeout", seconds=seconds)
            link.ended = "timeout"
            return "timeout", HIDDEN_TIMEOUT
        try:
            report = json.loads(report)
        except ValueError:
            self.log("hidden tests lost")
            link.ended = "lost"
            return "failed", "the grader's process for these hidden tests ended without a result (see the job's log)"
        link.replayed, link.ended = report["replayed"], "ended" if report["ended"] else ""
        for name in self.stats:
            self.stats[name] += report["stats"][name]
        return ("passed", "") if report["ok"] else ("failed", report["hint"])

    def _stop(self, link: _Link) -> None:
        """End a jail: ask it to close, kill it if it does not."""
        if link.jail and not link.ended:
            with contextlib.suppress(OSError):
                wire.send(link.to_jail, wire.encode({"op": "close"}))
            if link.jail.exit_status(timeout=5) is None:
                link.jail.kill()
        elif link.jail:
            link.jail.kill()
        if link.jail:
            for fd in (link.to_jail, link.from_jail, link.jail.status_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)
        link.ended = link.ended or "closed"

    def run_student(self, index: int) -> None:
        source = self.student_cells[index]
        python = _python(source)
        self.student_names |= _top_level_names(python)
        reads = _globals_read(python)
        self.student_runs.append((index, reads))
        self.visible.replayed = len(self.student_runs)
        reply = self._exec(index, reads)
        for name in reply.get("defined", []):
            if name in self.exercises:
                self.shell.user_ns[name] = Exercise(self, name)
        self.reads |= reads
        if not reply["ok"]:
            raise self._error(reply["error"])

    def _error(self, error: dict) -> BaseException:
        """The exception a failed request raises in the kernel."""
        # The jail's word for it is only believed if the cell has run long enough on this machine's
        # cores to have used the budget: a student's exception of that name is renamed instead.
        if error["type"] == "CPUTimeExceeded" and self.cell_cpu and \
                time.monotonic() - self.cell_started >= self.cell_cpu / (os.cpu_count() or 1):
            self.log("cpu limit", during=self.during)
            return CellCPUTimeout(f"your code ran past this cell's limit of {self.cell_cpu} s of CPU time "
                                  "and was stopped")
        return _student_error(error)

    def _exec(self, index: int, reads: set) -> dict:
        return self.request({"op": "exec", "source": self.student_cells[index], "label": f"cell {index + 1}",
                             "exercises": self.exercises}, reads=reads)

    def _replay(self) -> None:
        """Run in the current jail the student's cells it has not run yet, in the order they ran."""
        while self.link.replayed < len(self.student_runs):
            index, reads = self.student_runs[self.link.replayed]
            self.link.replayed += 1
            self._exec(index, reads)

    def call(self, name: str, args: tuple, kwargs: dict):
        reply = self.request({"op": "call", "name": name, "args": list(args), "kwargs": kwargs},
                             arguments=(args, kwargs))
        if not reply["ok"]:
            raise self._error(reply["error"])
        return reply.get("result")

    # -- the jail --------------------------------------------------------------------
    def _start_jail(self) -> None:
        scratch = Path(self.spec["scratch"])
        to_jail, self.link.to_jail = os.pipe()
        self.link.from_jail, from_jail = os.pipe()
        for fd in (to_jail, from_jail):
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ: 1 MB, fewer round trips for arrays
        jail = dict(self.spec["jail"])
        limits = Limits(**jail.pop("limits"))
        self.link.jail = spawn(JailSpec(limits=limits, **jail), to_jail, from_jail, scratch,
                          zygote=os.environ.get(ZYGOTE_VARIABLE))
        os.close(to_jail)
        os.close(from_jail)
        self.link.ready = False

    def proof(self) -> str:
        """What the grader checks before any cell runs (``autograder.execute``): the per-job
        secret it gave this kernel, and that this is the course's guard, imported from the
        course's package by an interpreter whose import path holds no folder of the job's."""
        self.proved = True
        return json.dumps({"secret": self.secret, "file": str(Path(__file__).resolve()), "cwd": os.getcwd(),
                           "safe_path": bool(sys.flags.safe_path), "path": sys.path})

    def _ensure_ready(self) -> None:
        if self.link.ended:
            raise StudentProcessEnded(self.link.ended)
        if self.link.jail is None:
            self._start_jail()
        if not self.link.ready:
            frame = wire.receive(self.link.from_jail)
            if frame is None:
                log = (Path(self.spec["scratch"]) / "jail.log").read_text()[-500:]
                self.log("jail failed", log=log)
                raise RuntimeError(f"The grader could not start the jail for student code: {log}")
            self.log("jail", report=wire.decode(frame)["report"])
            self.link.ready = True

    def _receive(self) -> dict:
        try:
            frame = wire.receive(self.link.from_jail)
            if frame is None:
                self._ended("died")
            message = wire.decode(frame, tokens=self._function)
            if type(message) is not dict or message.get("op") not in ("done", "callback"):
                raise wire.WireError("a message that is neither a reply nor a call-back")
            return message
        except wire.WireError as err:
            self._kill()
            self._ended("broken", why=str(err))

    def _ended(self, event: str, **details):
        code = self.link.jail.exit_status(timeout=10 if event == "died" else 1)
        self.log(event, code=code, during=self.during, **details)
        self.link.ended = {
            "died": f"your code ended the Python process that runs it {exit_text(code)}; "
                    "the cells after this one cannot use your functions",
            "killed": "your code did not stop when interrupted after running past the time limit, "
                      "so it was killed; the cells after this one cannot use your functions",
            "broken": "your code broke the grader's connection to it; the cells after this one cannot use your functions",
        }[event]
        raise StudentProcessEnded(self.link.ended)

    def _kill(self) -> None:
        self.link.jail.kill()

    def _token(self, function) -> dict:
        if isinstance(function, Exercise):
            return {"ex": function.__name__}
        if id(function) in self.persistent_ids:
            return {"cb": self.persistent_ids[id(function)]}
        handle = f"r{self.request_number}.{len(self.handles)}"   # valid in this request only
        self.handles[handle] = function
        return {"cb": handle}

    def _function(self, token):
        if isinstance(token, dict) and "ex" in token and token["ex"] in self.exercises:
            return self.shell.user_ns.get(token["ex"]) if isinstance(
                self.shell.user_ns.get(token["ex"]), Exercise) else Exercise(self, token["ex"])
        handle = token.get("cb") if isinstance(token, dict) else None
        if type(handle) is str and (handle in self.handles or handle in self.persistent):
            return self.handles[handle] if handle in self.handles else self.persistent[handle]
        raise wire.WireError(f"unknown function token {token!r:.200}")

    def _bindings(self) -> dict | None:
        """Each exercise name as the kernel binds it now (the student's own, or a kernel function);
        None when nothing changed since the last request and no kernel function is bound (a
        kernel function gets a fresh call-back handle with every request, valid for that one)."""
        namespace = self.shell.user_ns
        current = {name: namespace[name] for name in self.exercises if callable(namespace.get(name))}
        own = all(isinstance(value, Exercise) for value in current.values())
        signature = tuple((name, value.__name__) for name, value in current.items()) if own else None
        if own and signature == self.link.last_bindings:
            return None
        self.link.last_bindings = signature
        return current

    def _sync(self, reads: set) -> None:
        """Give the jail the given cells' globals that its code reads and it lacks (or has old).

        An import, function or class comes as its statement (the jail defines its own); any
        other value as data; a kernel function (e.g. one ``from_assignment`` returned) as a
        call-back. Names that a test cell bound last (hidden inputs, expected values) or that
        the student's cells bind are never sent.
        """
        state = (self.cells_run, len(self.reads), frozenset(reads))
        if state == self.link.last_sync:  # nothing ran since, and nothing new is read
            return
        self.link.last_sync = state
        namespace, statements, values = self.shell.user_ns, [], {}
        queue, seen = list(self.reads | reads), set()
        while queue:
            name = queue.pop()
            if name in seen or self.owner.get(name) != "given" or name in self.student_names \
                    or name in self.exercises or name not in namespace:
                continue
            seen.add(name)
            value = namespace[name]
            if self.link.mirrored.get(name) == id(value):
                continue
            self.link.mirrored[name] = id(value)
            statement, needs, kind, order = self.definitions.get(name, (None, (), None, (0, 0)))
            if kind == "define" or (kind == "assign" and callable(value)):
                statements.append((order, statement))
                queue.extend(needs)
            elif isinstance(value, types.ModuleType):
                package, _, module = value.__name__.rpartition(".")
                statements.append(((0, 0), f"from {package} import {module} as {name}" if package
                                   else f"import {module} as {name}"))
            else:
                try:
                    wire.encode(value, callables=self._persistent_token)
                    values[name] = value
                except wire.Unsendable:
                    pass
        if statements or values:  # statements in notebook order, so that each finds what it uses
            ordered = list(dict.fromkeys(statement for _, statement in sorted(statements, key=lambda s: s[0])))
            reply = self.request({"op": "sync", "statements": ordered, "values": values}, sync=False)
            if reply.get("failed"):
                self.log("sync failed", statements=reply["failed"])

    def _persistent_token(self, function) -> dict:
        """A call-back handle that stays valid: for kernel functions the jail keeps in its globals."""
        if isinstance(function, Exercise):
            return {"ex": function.__name__}
        handle = self.persistent_ids.setdefault(id(function), f"p{len(self.persistent)}")
        self.persistent[handle] = function
        return {"cb": handle}

    def request(self, message: dict, arguments=None, sync: bool = True, reads: set = frozenset()) -> dict:
        """Send a request to the jail and serve its call-backs until it answers."""
        if self.sealed:   # a hidden block tried as a set-up (_run_as_set_up) reached the student's code
            raise _Sealed()
        self._ensure_ready()
        if sync and self.depth == 0:
            self._sync(reads)
        if self.depth == 0:
            self.handles, self.request_number = {}, self.request_number + 1
            self.during = message.get("label") or f"a call of {message.get('name')}"
        bindings = self._bindings()
        if bindings is not None:
            message["bindings"] = bindings
        message["cell"], message["cpu"] = self.cell_number, self.cell_cpu
        self.depth += 1
        self.stats["requests"] += 1
        started = time.perf_counter()
        try:
            frame = wire.encode(message, callables=self._token)
            self.stats["bytes"] += len(frame)
            try:
                wire.send(self.link.to_jail, frame)
            except KeyboardInterrupt:  # a half-sent request: the jail cannot follow any more
                self._kill()
                self._ended("killed")
            except OSError:            # the jail is gone
                self._kill()
                self._ended("died")
            while True:
                reply = self._wait()
                if reply["op"] == "callback":
                    try:
                        self._serve_callback(reply)
                    except KeyboardInterrupt:  # answered with an error: let the student's code unwind
                        self._interrupt()
                        raise
                    continue
                reply = self._checked(reply)
                self._print(reply["out"])
                self._show(reply["figures"])
                if arguments is not None:
                    self._apply_changes(message.get("name", "your function"), arguments, reply["mutated"])
                return reply
        except wire.Unsendable as err:
            raise TypeError(f"cannot pass {err} to your function") from None
        finally:
            self.depth -= 1
            if self.depth == 0:
                self.stats["seconds"] += time.perf_counter() - started

    def _checked(self, reply) -> dict:
        """The jail's reply, with every field of the type the protocol gives it (else the
        connection is broken): the jail is the student's, so nothing in it is trusted."""
        fields = {"ok": bool, "out": str, "figures": list, "mutated": dict, "defined": list,
                  "error": dict, "failed": list, "report": dict}
        if type(reply) is not dict or any(k in reply and type(reply[k]) is not t for k, t in fields.items()):
            self._kill()
            self._ended("broken", why="a reply of the wrong form")
        error = reply.get("error")
        if error is not None:
            lines = error.get("traceback")
            if type(error.get("type")) is not str or type(error.get("message", "")) is not str or not (
                    lines is None or (type(lines) is list and all(type(line) is str for line in lines))):
                self._kill()
                self._ended("broken", why="an error of the wrong form")
            error["type"] = error["type"][:100] if error["type"].isidentifier() else "Exception"
            error["message"] = _text(error.get("message", "")[:ERROR_CHARACTERS])
            error["traceback"] = [_text(line[:ERROR_CHARACTERS]) for line in (lines or [])[:ERROR_LINES]]
        if "out" in reply:
            reply["out"] = _text(reply["out"])
        return {"out": "", "figures": [], "mutated": {}, "defined": [], "ok": False,
                "error": {"type": "RuntimeError", "message": "no reply", "traceback": []}} | reply

    def _print(self, text: str) -> None:
        """Print the student's output, at most CELL_OUTPUT characters in one cell (counted here,
        in the kernel, whatever the jail claims)."""
        if not text or self.quiet:
            return
        room = max(min(CELL_OUTPUT - self.shown, NOTEBOOK_OUTPUT - self.shown_in_notebook), 0)
        self.shown += len(text)
        self.shown_in_notebook += min(len(text), room)
        if len(text) > room:
            text = text[:room] + (f"\n... output cut: more than {CELL_OUTPUT} characters in one cell "
                                  f"(or {NOTEBOOK_OUTPUT} in the notebook).\n" if room or self.shown - len(text) <= CELL_OUTPUT
                                  else "")
        print(text, end="")

    def _apply_changes(self, name: str, arguments, changes: dict) -> None:
        """Apply what the student's function changed in its arguments to the kernel's objects.
        In a hidden-test block nothing changes but random generators advancing: a function
        that writes into its inputs fails the block (the test's values stay as they were)."""
        args, kwargs = arguments
        for key, value in changes.items():
            if type(key) is not str or not (key.isdigit() and int(key) < len(args) or key in kwargs):
                continue
            old = args[int(key)] if key.isdigit() else kwargs[key]
            if self.quiet and not wire.is_random_state(old):
                raise HiddenTestsFailed(f"{name} changed an argument in place")
            wire.update_in_place(old, value)

    def _show(self, figures: list) -> None:
        """Display the PNG figures the student's code drew (at most FIGURES_PER_CELL per cell,
        each at most FIGURE_BYTES)."""
        if figures and not self.quiet:
            from IPython.display import Image, display
            for png in figures[:max(FIGURES_PER_CELL - self.figures_shown, 0)]:
                if type(png) is bytes and png.startswith(PNG_SIGNATURE) and len(png) <= FIGURE_BYTES \
                        and self.figure_bytes + len(png) <= NOTEBOOK_FIGURE_BYTES:
                    self.figure_bytes += len(png)
                    display(Image(data=png, format="png"))
            self.figures_shown += len(figures)

    def _wait(self) -> dict:
        try:
            return self._receive()
        except KeyboardInterrupt:
            self._interrupt()
            raise

    def _interrupt(self) -> None:
        """The cell ran past its time limit: interrupt the student's code, kill it if it does not stop."""
        self.link.jail.interrupt()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if select.select([self.link.from_jail], [], [], max(deadline - time.monotonic(), 0))[0]:
                with contextlib.suppress(StudentProcessEnded):
                    reply = self._receive()
                    if reply["op"] == "done":
                        self.log("interrupted")
                        return
                    if reply["op"] == "callback":
                        wire.send(self.link.to_jail, wire.encode({"op": "return", "ok": False, "error": {
                            "type": "KeyboardInterrupt", "message": "interrupted"}}))
                        continue
                return
        self._kill()
        with contextlib.suppress(StudentProcessEnded):
            self._ended("killed")

    def _serve_callback(self, request: dict) -> None:
        self.stats["callbacks"] += 1
        try:
            function, args, kwargs = self._function(request["fn"]), request["args"], request["kwargs"]
            result = function(*args, **kwargs)
            frame = wire.encode({"op": "return", "ok": True, "result": result}, callables=self._token)
        except BaseException as err:
            frame = wire.encode({"op": "return", "ok": False,
                                 "error": {"type": type(err).__name__, "message": str(err)}})
            wire.send(self.link.to_jail, frame)
            if isinstance(err, KeyboardInterrupt):
                raise
            return
        wire.send(self.link.to_jail, frame)

    def close(self) -> None:
        self.log("stats", **self.stats)
        for link in (self.visible, self.hidden_link):
            self._stop(link)
        for block in self.set_aside:
            block.close()


def _python(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager
    try:
        return TransformerManager().transform_cell(source)
    except Exception:
        return ""


def _text(text: str) -> str:
    """``text`` as valid UTF-8 (a lone surrogate would break the kernel's messages)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _hidden_outputs(outcome: str, hint: str) -> list[dict]:
    """The outputs a test cell gets for its hidden tests (``Guard.finish``), as nbformat has them."""
    if outcome == "passed":
        return [{"output_type": "stream", "name": "stdout", "text": f"{_GREEN}✔ hidden tests passed.{_RESET}\n"}]
    if outcome == "not run":
        message = "the hidden tests did not run: the submission used up its time limit"
        return [{"output_type": "error", "ename": "SubmissionTimeout", "evalue": message,
                 "traceback": [f"SubmissionTimeout: {message}"]}]
    ename = "HiddenTestsTimeout" if outcome == "timeout" else "HiddenTestsFailed"
    return [{"output_type": "error", "ename": ename, "evalue": hint,
             "traceback": [f"{_RED}✘ Hidden tests failed.{_RESET} Hint: {hint}"]}]


def _hint(err: BaseException) -> str:
    """What a student may learn from a failed hidden test, from a closed set: the hint the test's
    author gave the check that failed (``CheckFailure.hint``), or a fixed sentence for the kind of
    failure. Nothing the student's process chose (a message, an exception's name, an exit status,
    which argument it changed) and nothing measured (seconds): each could carry a hidden input."""
    from course_utils.checks import CheckFailure, NotImplementedYet

    if isinstance(err, NotImplementedYet):
        return str(err)
    if isinstance(err, CheckFailure) and not hasattr(err, "lines"):
        return err.hint or GENERIC_HINT
    for kind, hint in HIDDEN_HINTS.items():
        if isinstance(err, kind):
            return hint
    if hasattr(err, "lines"):  # raised by the student's code
        return "your code raised an exception on " + OTHER_INPUTS
    if isinstance(err, AssertionError):
        return GENERIC_HINT
    return "checking your results on other inputs failed: check the types and shapes your function returns"


def load_ipython_extension(shell) -> None:
    path = os.environ.get(SPEC_VARIABLE)
    if not path:
        raise RuntimeError(f"autograder.guard needs {SPEC_VARIABLE} (set by python -m autograder grade)")
    import atexit
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the grader's worker
    spec = json.loads(Path(path).read_text())
    # The kernel's own memory limit (soft: the jails it starts set theirs): what the jail sends
    # is bounded by the wire's caps, and a test's arithmetic on it cannot take the machine.
    memory = max(KERNEL_MEMORY_MB, 2 * spec["jail"]["limits"]["memory_mb"]) * 2**20
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    resource.setrlimit(resource.RLIMIT_AS, (memory if hard == resource.RLIM_INFINITY else min(memory, hard), hard))
    guard = Guard(shell, spec)
    atexit.register(guard.close)
