"""The student side of a graded notebook: runs inside the jail (``autograder.jail``).

It holds the student's code and nothing else. The grading kernel (``autograder.guard``)
sends it requests over a pipe, as data (``autograder.wire``):

* ``exec``: run a cell of the student's (or, after the last test cell, any cell: see
  ``autograder.guard``); reply with the exercise functions it defined and what it printed;
* ``sync``: define the notebook's given globals the student's code reads (statements
  for imports and definitions, data values for the rest);
* ``call``: call one of the student's exercise functions with data arguments; reply
  with the result, the arguments it changed in place, what it printed, or the error
  (type, message and the traceback through the student's own cells only).

While it runs, the student's code may call a function that lives in the kernel: an
exercise the test has swapped for a reference version (see ``bindings``), or a function
passed as an argument. Such a call goes back over the pipe as a ``callback``; the
kernel may in turn call the student again, so both sides serve requests while they
wait for a reply.

Each request carries the cell it belongs to and that cell's CPU budget (``cpu``, the
grader's ``--timeout``): the process's soft ``RLIMIT_CPU`` is set to the CPU time it had
used when the cell began plus the budget, so code that computes past it gets
``CPUTimeExceeded`` (a ``BaseException``, from ``SIGXCPU``), however loaded the machine
is. A student can raise that soft limit or swallow the signal; the kernel's wall-clock
limit, a multiple of the budget (``autograder.execute``), then stops the cell instead.

Output is captured per request and cut at ``OUTPUT_LIMIT`` characters; figures drawn
with matplotlib come back as PNGs (at most ``FIGURE_LIMIT``). After each
request every other process in the jail is killed (a fork bomb does not outlive the
cell that started it), and a forked copy of this process never answers.
"""
from __future__ import annotations

# The builtins this module uses, bound now: in the jail the student's code may replace them in
# ``builtins`` (and then only its own process would suffer, but its verdict should not change).
from builtins import callable, dict, isinstance, len, list, str, tuple, type  # noqa: A004

import builtins
import contextlib
import io
import linecache
import math
import os
import re
import resource
import signal
import sys
import traceback
import warnings

from . import wire

OUTPUT_LIMIT = 20_000
FIGURE_LIMIT, FIGURE_BYTES = 10, 4 * 2**20
_MAGIC = re.compile(r"^\s*[%!]", re.MULTILINE)
_OWN_FILES = os.path.dirname(os.path.abspath(__file__))


class CPUTimeExceeded(BaseException):
    """The cell's CPU budget is spent (raised from SIGXCPU)."""


def _on_cpu_limit(signum, frame):
    raise CPUTimeExceeded("your code used up this cell's CPU time")


def _cpu_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Capture(io.TextIOBase):
    """sys.stdout / sys.stderr of the student's code: keeps the first OUTPUT_LIMIT characters."""

    def __init__(self):
        self.parts, self.size, self.cut = [], 0, 0

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        room = OUTPUT_LIMIT - self.size
        self.parts.append(text[:max(room, 0)])
        self.size += min(len(text), max(room, 0))
        self.cut += max(len(text) - max(room, 0), 0)
        return len(text)

    def take(self) -> str:
        text = "".join(self.parts)
        if self.cut:
            text += f"\n... {self.cut} more characters of output were cut (the limit is {OUTPUT_LIMIT}).\n"
        self.parts, self.size, self.cut = [], 0, 0
        return text


class _Shell:
    """Enough of ``get_ipython()`` for magics in a student's cell to run or be skipped."""

    def __init__(self, namespace):
        self.namespace = namespace

    def run_line_magic(self, name, line, *_):
        print(f"(%{name} is skipped while grading)")

    def run_cell_magic(self, name, line, cell):
        if name in ("time", "timeit", "capture", "prun"):
            exec(compile(cell, "<cell magic>", "exec"), self.namespace)
        else:
            print(f"(%%{name} is skipped while grading)")

    def system(self, *_):
        print("(shell commands do not run while grading)")

    getoutput = system


class Stub:
    """A kernel function as the student's code sees it: calling it asks the kernel."""

    def __init__(self, server, token):
        self.server, self.token = server, token

    def __call__(self, *args, **kwargs):
        reply = self.server.ask({"op": "callback", "fn": self.token, "args": list(args), "kwargs": kwargs},
                                arguments=(args, kwargs))
        if not reply["ok"]:
            error = reply["error"]
            kind = getattr(builtins, error["type"], None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = RuntimeError
            raise kind(error["message"])
        return reply["result"]


class Server:
    def __init__(self, read_fd, write_fd, report):
        self.read_fd, self.write_fd, self.report = read_fd, write_fd, report
        self.pid = os.getpid()
        self.own = {}           # exercise name -> the student's function
        self.namespace = {"__name__": "__main__", "__builtins__": builtins,
                          "display": lambda *objects, **_: [print(repr(o)) for o in objects]}
        self.namespace["get_ipython"] = lambda: _Shell(self.namespace)
        self.capture = _Capture()
        self.cells = 0
        self.cell, self.cell_started = None, 0.0   # the grader's cell being run, and the CPU time at its start

    # -- the pipe ---------------------------------------------------------------
    def send(self, message) -> None:
        if os.getpid() != self.pid:  # a forked copy of this process must never answer
            os._exit(0)
        wire.send(self.write_fd, wire.encode(message, callables=self.token))

    def reply(self, message) -> None:
        """Send a reply; one holding something that is not data becomes the student's TypeError."""
        try:
            self.send(message)
        except wire.Unsendable as err:
            what = message.get("name") or "your code"
            self.send({"op": "done", "ok": False, "out": message.get("out", ""), "figures": [], "error": {
                "type": "TypeError", "builtin": True, "traceback": [], "message": (
                    f"{what} gave the grader {err}, which it cannot read: return arrays, numbers, strings, "
                    "lists, tuples or dicts, as the exercise asks.")}})

    def token(self, function):
        if isinstance(function, Stub):
            return function.token
        for name, own in self.own.items():
            if own is function:
                return {"ex": name}
        raise wire.Unsendable(f"the function {getattr(function, '__name__', function)!r} "
                              "(only the exercise functions can be passed to the grader)")

    def function(self, token):
        if isinstance(token, dict) and "ex" in token:
            own = self.own.get(token["ex"])
            if own is None:
                return Stub(self, {"missing": token["ex"]})
            return own
        return Stub(self, token)

    def receive(self):
        frame = wire.receive(self.read_fd)
        if frame is None:
            os._exit(0)  # the kernel is gone
        request = wire.decode(frame, tokens=self.function)
        if request.get("op") == "call":  # what the arguments were, to tell what the call changed
            request["tracker"] = tracker = wire.Tracker()
            tracker.remember(request["args"])
            tracker.remember(request["kwargs"])
        return request

    def ask(self, message, arguments):
        """Send a call-back to the kernel and serve its requests until it returns."""
        self.send(message)
        while True:
            request = self.receive()
            if request["op"] == "return":
                args, kwargs = arguments
                for key, value in request.get("mutated", {}).items():
                    wire.update_in_place(args[int(key)] if key.isdigit() else kwargs[key], value)
                return request
            self.reply(self.handle(request))

    # -- requests ---------------------------------------------------------------
    def serve(self) -> int:
        self.send({"op": "ready", "report": self.report})
        while True:
            request = self.receive()
            if request["op"] == "close":
                return 0
            self.reply(self.handle(request))

    def budget(self, request) -> None:
        """Let this process compute for what is left of the current cell's CPU budget."""
        seconds = request.get("cpu")
        if not isinstance(seconds, (int, float)):
            return
        if request.get("cell") != self.cell:
            self.cell, self.cell_started = request.get("cell"), _cpu_time()
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        soft = math.ceil(self.cell_started + seconds)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))

    def handle(self, request) -> dict:
        self.budget(request)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self.capture
        try:
            self.bind(request.get("bindings", {}))  # absent: as the last request had them
            if request["op"] == "exec":
                reply = self.execute(request)
            elif request["op"] == "call":
                reply = self.call(request)
            elif request["op"] == "sync":
                reply = self.sync(request)
            else:
                reply = {"ok": False, "error": {"type": "RuntimeError", "message": f"unknown request {request['op']!r}",
                                                "traceback": []}}
        finally:
            sys.stdout, sys.stderr = saved
            self.reap()
        reply["op"] = "done"
        reply["out"] = self.capture.take()
        reply["figures"] = _figures()
        return reply

    def bind(self, bindings) -> None:
        """Make the student's globals see each exercise name as the kernel currently binds it."""
        for name, function in bindings.items():
            if isinstance(function, Stub) and "missing" in function.token:
                continue
            self.namespace[name] = function

    def execute(self, request) -> dict:
        source = request["source"]
        self.cells += 1
        filename = f"<{request.get('label') or f'cell {self.cells}'}>"
        try:
            if _MAGIC.search(source):
                from IPython.core.inputtransformer2 import TransformerManager
                source = TransformerManager().transform_cell(source)
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            exec(compile(source, filename, "exec"), self.namespace)
        except BaseException as err:  # the student's code may raise anything, SystemExit included
            return {"ok": False, "error": _describe(err), "defined": self.defined(request)}
        return {"ok": True, "defined": self.defined(request)}

    def sync(self, request) -> dict:
        """The notebook's given globals the student's code reads (see ``autograder.guard``)."""
        self.namespace.update(request["values"])
        failed = []
        for statement in request["statements"]:
            try:
                exec(compile(statement, "<given cell>", "exec"), self.namespace)
            except Exception as err:  # the name stays undefined; the guard logs why
                failed.append(f"{statement.splitlines()[0][:80]}: {type(err).__name__}: {err}")
        return {"ok": True, "failed": failed}

    def defined(self, request) -> list:
        names = []
        for name in request.get("exercises", []):
            value = self.namespace.get(name)
            if callable(value) and not isinstance(value, Stub) and self.own.get(name) is not value:
                self.own[name] = value
                names.append(name)
        return names

    def call(self, request) -> dict:
        name, args, kwargs = request["name"], request["args"], request["kwargs"]
        function = self.own.get(name)
        if function is None:
            return {"ok": False, "error": {"type": "NameError", "message": f"name {name!r} is not defined",
                                           "traceback": []}}
        try:
            result = function(*args, **kwargs)
        except BaseException as err:
            return {"ok": False, "error": _describe(err)}
        values = {**{str(i): a for i, a in enumerate(args)}, **kwargs}
        tracker = request["tracker"]
        return {"ok": True, "result": result, "name": name,
                "mutated": {k: v for k, v in values.items() if tracker.changed(v)}}

    def reap(self) -> None:
        """Kill every other process in the jail. Only in the jail's own pid namespace, as an
        unprivileged user: there this process is pid 2 (under the supervisor), and kill(-1)
        reaches the jail's processes alone. Anywhere else kill(-1) would reach the machine's."""
        if os.getpid() != self.pid:
            os._exit(0)
        if not (self.pid == 2 and os.getuid() != 0 and "process namespace" in self.report["applied"]):
            return
        for _ in range(100):  # until no other process is left (a fork bomb may still be forking)
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                break
        while True:  # every child got SIGKILL: wait for them (orphans are the supervisor's to reap)
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break


def _figures() -> list:
    """PNGs of the figures the request drew (only if it used matplotlib), then closed."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None or not pyplot.get_fignums():
        return []
    images = []
    for number in pyplot.get_fignums()[:FIGURE_LIMIT]:
        buffer = io.BytesIO()
        with contextlib.suppress(Exception):
            pyplot.figure(number).savefig(buffer, format="png", bbox_inches="tight")
            images.append(buffer.getvalue()[:FIGURE_BYTES])
    pyplot.close("all")
    return images


def _describe(err: BaseException) -> dict:
    """Type, message and the traceback through the student's own code (no grader frames); the
    type and message alone where the student's code has broken the traceback module."""
    try:
        return _traceback_of(err)
    except Exception:
        return {"type": type(err).__name__, "builtin": False, "message": repr(err)[:2000], "traceback": []}


def _traceback_of(err: BaseException) -> dict:
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith(_OWN_FILES)]
    lines = traceback.format_list(frames)
    lines += traceback.format_exception_only(type(err), err)
    kind = type(err)
    return {"type": kind.__name__, "builtin": getattr(builtins, kind.__name__, None) is kind,
            "message": str(err)[:2000], "traceback": ["Traceback (most recent call last):\n", *lines]}


def serve(read_fd: int, write_fd: int, report: dict) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGXCPU, _on_cpu_limit)
    warnings.filterwarnings("ignore", message=".*non-interactive.*")  # plt.show() under Agg
    return Server(read_fd, write_fd, report).serve()
