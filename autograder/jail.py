"""The jail: a Python process for student code that sees nothing of the course.

``spawn(spec, fds)`` starts ``python -m autograder.jail``, which confines itself and
then serves student code (``autograder.student``) over two pipes. What it applies,
strongest first (``probe()`` says which of these this machine allows):

* **private file system** (mount namespace + ``pivot_root``): a fresh root holding
  only the system's libraries and Python, read-only (of the host's ``/etc`` only what the
  dynamic linker and the clock read, ``_ETC``); ``course_utils`` and
  ``autograder`` read-only; the earlier assignments' references that the grader
  exposes (``course_utils.reuse``); a writable ``/home/student`` seeded with the
  student's own submission folder and a private ``/tmp``, both in one size-limited
  tmpfs. The repository (``solutions/``, ``.git``), the grading folder (gradebook,
  other submissions, hidden tests) and the host's ``/tmp`` do not exist there, and
  nothing written there reaches the host's disk;
* **separate user**: a fresh unprivileged uid (no capabilities, ``no_new_privs``),
  unique per jail, so the process limit counts this jail alone;
* **process namespace**: the jail's first process is its init; when it ends, or the
  grader dies (``PR_SET_PDEATHSIG``), every process it forked dies with it, and it
  sees no other process of the machine;
* **network namespace**: no interface but a loopback that is down;
* **resource limits** (``setrlimit``, hard limits): address space, CPU seconds, file
  size, processes, open files, no core dumps.

As root all of these apply. Without root it tries an unprivileged user namespace for
the namespaces (mapped to the caller's uid, all capabilities dropped after set-up);
where the kernel forbids that, only the resource limits and a private working
folder apply, and ``probe()`` says so. What it leaves out: cgroups (memory is bounded
by address space per process, not for the jail as a whole: ``processes`` times
``memory_mb`` at worst) and a system-call filter (seccomp: the student's code may make a
user namespace of its own, with capabilities over that namespace only).

Why by hand and not bubblewrap or nsjail: both are system packages that ``pip`` cannot
install, and both start every jail as a fresh program. A jail here is forked from a
zygote that has imported Python, NumPy and matplotlib once (``Zygote``): a few
milliseconds instead of about a second, paid twice per notebook (the student's jail and
the hidden tests' one, see ``autograder.guard``). The system calls it makes through
ctypes are ``unshare``, ``mount``, ``umount2``, ``pivot_root``, ``capset`` and
``prctl``; the two with no libc wrapper go by number (``SYSCALLS``), known for x86_64
and aarch64 only: on any other machine the jail refuses to start and says so.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import importlib
import json
import os
import pkgutil
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOME = "/home/student"
REFERENCE = "/course/reference"  # where the exposed earlier-assignment references appear
ZYGOTE_VARIABLE = "COURSE_JAIL_ZYGOTE"  # the grading worker's zygote socket, for the kernel
_PACKAGES = ("autograder", "course_utils")
_DEVICES = ("null", "zero", "random", "urandom", "full")
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime")   # of the host's /etc, only what Python needs
_UID_BASE = 1_500_000

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_REC, MS_PRIVATE, MNT_DETACH = 4096, 16384, 1 << 18, 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
SYSCALLS = {"x86_64": {"pivot_root": 155, "capset": 126}, "aarch64": {"pivot_root": 41, "capset": 91}}


@dataclasses.dataclass
class Limits:
    """Resource limits of one jail (``grade --memory-mb`` etc. set them)."""
    memory_mb: int = 2048      # address space
    cpu_seconds: int = 600     # CPU time of the jail's processes
    file_mb: int = 64          # largest file it may write
    tmp_mb: int = 256          # its whole writable space (home + /tmp), in RAM
    processes: int = 64        # processes and threads of its uid
    open_files: int = 256


@dataclasses.dataclass
class JailSpec:
    seed: str | None = None                     # host folder copied into /home/student
    reference: str | None = None                # host folder exposed read-only at REFERENCE
    limits: Limits = dataclasses.field(default_factory=Limits)
    env: dict = dataclasses.field(default_factory=dict)   # extra environment variables


# ---------------------------------------------------------------------------------
# grader side


class Handle:
    """The grader's hold on a running jail: its bootstrap process (a session leader outside the
    jail, which forwards interrupts to the jail's init and reports its exit status)."""

    def __init__(self, pid: int, status_fd: int, process: subprocess.Popen | None = None):
        self.pid, self.status_fd, self.process = pid, status_fd, process

    def interrupt(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def exit_status(self, timeout: float = 10) -> int | None:
        """The exit status of the jailed process once it ended (None if it did not within ``timeout``)."""
        if select.select([self.status_fd], [], [], timeout)[0]:
            text = os.read(self.status_fd, 64)
            if self.process is not None:
                self.process.wait()
            with contextlib.suppress(ValueError):
                return int(text)
        return None


def exit_text(code: int | None) -> str:
    """"(exit status N)" of a jailed process, or why there is none: without a process namespace
    (no root) the student's code can kill the bootstrap that reports it."""
    return f"(exit status {code})" if code is not None else "(exit status unknown: the process reporting it ended too)"


def spawn(spec: JailSpec, read_fd: int, write_fd: int, scratch: Path, zygote: str | None = None) -> Handle:
    """Start a jailed student-code server reading requests on ``read_fd``, replying on ``write_fd``.

    ``scratch`` is a folder of the grader's: the jail's mount point and its log live there.
    With a ``zygote`` (see ``Zygote``) the jail is forked from it, with Python and the course's
    modules already imported; otherwise it starts a fresh interpreter.
    """
    mountpoint = scratch / "jail-root"
    mountpoint.mkdir(parents=True, exist_ok=True)
    status_read, status_write = os.pipe()
    fds = [read_fd, write_fd, status_write]
    config = dataclasses.asdict(spec) | {"readonly": _readonly_paths(), "mountpoint": str(mountpoint),
                                         "log": str(scratch / "jail.log")}
    try:
        if zygote and _wait_for(zygote, timeout=30):
            with contextlib.suppress(OSError, ValueError), socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
                sock.connect(zygote)
                socket.send_fds(sock, [json.dumps(config).encode()], fds)
                return Handle(int(sock.recv(64)), status_read)
        with open(scratch / "jail.log", "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "autograder.jail", json.dumps(config | {"fds": fds})],
                                       pass_fds=fds, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       start_new_session=True, env=_base_env(), cwd="/")
        return Handle(process.pid, status_read, process)
    finally:
        os.close(status_write)


def _wait_for(path: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.path.exists(path)


class Zygote:
    """A process that has imported Python, NumPy, matplotlib and course_utils once, and forks
    a jail per request (``spawn(..., zygote=zygote.path)``): a jail then starts in milliseconds
    instead of paying an interpreter start and those imports. One per grading run, shared by
    its workers (it serves one request at a time; a fork takes milliseconds); it dies with the
    grader. Not used with the CuPy backend (CUDA does not survive a fork)."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="course-zygote-")
        self.path = os.path.join(self.folder, "socket")
        env = _base_env() | {"MPLBACKEND": "Agg", "MPLCONFIGDIR": self.folder, "OPENBLAS_NUM_THREADS": "1",
                             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "autograder.jail", "--zygote", self.path],
                                        stdin=subprocess.DEVNULL, env=env, cwd="/")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def probe() -> dict:
    """What this machine allows: ``{"applied": [...], "unavailable": {mechanism: why}}``."""
    with tempfile.TemporaryDirectory(prefix="course-jail-probe-") as scratch:
        config = dataclasses.asdict(JailSpec()) | {"probe": True, "fds": [], "readonly": _readonly_paths(),
                                                   "mountpoint": scratch, "log": os.devnull}
        result = subprocess.run([sys.executable, "-m", "autograder.jail", json.dumps(config)],
                                capture_output=True, text=True, timeout=60, env=_base_env(), cwd="/")
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"applied": [], "unavailable": {"jail": f"it did not start ({result.stderr.strip()[-300:]})"}}


def describe(report: dict) -> str:
    """One line for the grader's output: what isolates student code here, and what does not."""
    line = "Isolation of student code: " + (", ".join(report["applied"]) or "none")
    if report["unavailable"]:
        line += ". UNAVAILABLE on this machine: " + "; ".join(
            f"{name} ({why})" for name, why in report["unavailable"].items())
    return line + "."


def _base_env() -> dict:
    keep = ("COURSE_BACKEND", "COURSE_GRADING_RUN", "LANG", "LC_ALL")
    return {k: v for k, v in os.environ.items() if k in keep} | {"PATH": "/usr/bin:/bin",
                                                                 "PYTHONDONTWRITEBYTECODE": "1"}


def _readonly_paths() -> list[str]:
    """Host paths the jail shows read-only: Python, its packages and the two course packages.

    Only folders of Python's installation (its prefixes, and import-path entries inside
    them or in the user's site-packages): the grader's own import path also holds the
    folder it was started from, which may be any folder of the instructor's. Nothing of
    the repository either (an old-style editable install puts its root on ``sys.path``)
    but the ``autograder`` and ``course_utils`` packages.
    """
    import site

    import autograder
    import course_utils

    repository = Path(autograder.__file__).resolve().parents[1]
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, site.getusersitepackages())}
    candidates = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    candidates |= {Path(p).resolve() for p in sys.path if p and Path(p).is_dir()
                   and any(Path(p).resolve().is_relative_to(prefix) for prefix in prefixes)}
    venv = Path(sys.prefix).resolve()
    paths = {p for p in candidates if not p.is_relative_to(repository) or p.is_relative_to(venv)}
    paths |= {Path(m.__file__).resolve().parent for m in (autograder, course_utils)}
    return sorted(map(str, paths))


# ---------------------------------------------------------------------------------
# jail side (python -m autograder.jail CONFIG)

_libc = ctypes.CDLL(None, use_errno=True)


def _syscall(name: str) -> int:
    """The number of a system call without a libc wrapper, on this machine's architecture."""
    machine = os.uname().machine
    if machine not in SYSCALLS:
        raise OSError(0, f"the jail knows the system call numbers of {', '.join(SYSCALLS)} only, "
                         f"not of {machine}: it cannot confine student code here")
    return SYSCALLS[machine][name]


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    _check(_libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(),
                       ctypes.c_ulong(flags), data and data.encode()), f"mount {target}")


def _enter_namespaces(unavailable: dict) -> bool:
    """Unshare mount, pid, network, ipc and uts namespaces; True if they exist now."""
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    if os.geteuid() == 0:
        try:
            _check(_libc.unshare(flags), "unshare")
            return True
        except OSError as err:
            unavailable["namespaces"] = str(err)
            return False
    uid, gid = os.getuid(), os.getgid()
    try:
        _check(_libc.unshare(flags | CLONE_NEWUSER), "unshare (user namespace)")
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
        unavailable["separate user"] = "not root: a user namespace maps the jail to the grader's own uid"
        return True
    except OSError as err:
        unavailable["namespaces"] = (f"not root and no unprivileged user namespaces ({err}): "
                                     "student code can read what the grader's user can read, and has the network")
        unavailable["separate user"] = "not root"
        return False


def _bind(host: str, root: str, readonly: bool = True) -> None:
    if not os.path.exists(host):
        return
    target = root + host
    if os.path.islink(host) and os.path.dirname(host) == "/":   # merged /usr: /lib -> usr/lib
        if not os.path.lexists(target):
            os.symlink(os.readlink(host), target)
        return
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if os.path.isdir(host):
        os.makedirs(target, mode=0o755, exist_ok=True)
    elif not os.path.exists(target):
        Path(target).touch()
    _mount(host, target, None, MS_BIND | MS_REC)
    if readonly:
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _chown_tree(folder: str, uid: int) -> None:
    """Give the student's uid its home; a link inside is changed itself, never what it points to."""
    for path, folders, files in os.walk(folder):
        os.chown(path, uid, uid, follow_symlinks=False)
        for name in files + [f for f in folders if os.path.islink(os.path.join(path, f))]:
            os.chown(os.path.join(path, name), uid, uid, follow_symlinks=False)


def _seed(source: str, home: str) -> None:
    """Copy the student's submission folder into the jail's home, links as links (never followed
    by the grader: the intake admits only the notebook, and this holds if that ever changes)."""
    shutil.copytree(source, home, symlinks=True, dirs_exist_ok=True)


def _private_root(config: dict, uid: int) -> None:
    """Build the jail's root in a tmpfs and pivot into it (see the module docstring)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = config["mountpoint"]  # an empty folder of the grader's, only a mount point
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={config['limits']['tmp_mb']}m,mode=755")
    for path in _SYSTEM + tuple(f"/etc/{name}" for name in _ETC):
        _bind(path, root)
    for path in config["readonly"]:
        _bind(path, root)
    if config.get("reference"):   # copied, not bound: a bind mount would show the grader's run folder
        shutil.copytree(config["reference"], root + REFERENCE, symlinks=True)   # in /proc/self/mountinfo
    os.makedirs(root + "/dev", mode=0o755, exist_ok=True)
    for name in _DEVICES:
        _bind(f"/dev/{name}", root, readonly=False)
    os.symlink("/proc/self/fd", root + "/dev/fd")
    home, tmp = root + HOME, root + "/tmp"
    os.makedirs(home, mode=0o700)
    os.makedirs(tmp, mode=0o1777, exist_ok=True)
    os.chmod(tmp, 0o1777)
    if config.get("seed"):
        _seed(config["seed"], home)
    _chown_tree(home, uid)
    os.makedirs(root + "/proc", mode=0o555)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV)
    os.makedirs(root + "/.old", mode=0o700)
    _check(_libc.syscall(_syscall("pivot_root"), root.encode(), (root + "/.old").encode()), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old", MNT_DETACH), "umount old root")
    os.rmdir("/.old")


def _limit(limits: dict) -> None:
    mb = 1024 * 1024
    for which, value in [(resource.RLIMIT_AS, limits["memory_mb"] * mb),
                         (resource.RLIMIT_CPU, limits["cpu_seconds"]),
                         (resource.RLIMIT_FSIZE, limits["file_mb"] * mb),
                         (resource.RLIMIT_NPROC, limits["processes"]),
                         (resource.RLIMIT_NOFILE, limits["open_files"]),
                         (resource.RLIMIT_CORE, 0)]:
        resource.setrlimit(which, (value, value))


def _drop_privileges(uid: int | None) -> None:
    # The bounding set first, while this process may still change it (CAP_SETPCAP): then no setuid
    # file can give a capability back. (A user namespace the student's code makes still gives it
    # every capability inside that namespace, over nothing of the host's; refusing those needs a
    # seccomp filter, which this jail does not have.)
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == errno.EINVAL:   # past the last capability this kernel knows
                break
            if uid is not None or ctypes.get_errno() != errno.EPERM:   # EPERM: no capabilities to drop
                _check(-1, "capability bounding set")
            break
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()                 # no effective, permitted or inheritable caps
    _check(_libc.syscall(_syscall("capset"), header, data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _environment(config: dict, home: str) -> dict:
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib", "PYTHONDONTWRITEBYTECODE": "1",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return env | config["env"]


def _wait_for_init(child: int, config: dict) -> int:
    """The bootstrap outside the pid namespace: forward interrupts to the jail's init, kill it if
    the kernel that asked for it dies, and report its exit status on the status pipe."""
    fds = config["fds"]
    for fd in fds[:2]:
        os.close(fd)
    signal.signal(signal.SIGINT, lambda *_: os.kill(child, signal.SIGINT))
    if config.get("watch_pid") and hasattr(os, "pidfd_open"):  # no threads here: not after CLONE_NEWPID
        ended, watched = os.pidfd_open(child), os.pidfd_open(config["watch_pid"])
        while ended not in select.select([ended, watched], [], [])[0]:
            os.kill(child, signal.SIGKILL)  # the kernel that asked for this jail is gone
    _, status = os.waitpid(child, 0)
    if len(fds) > 2:
        os.write(fds[2], str(os.waitstatus_to_exitcode(status)).encode())
    return 0


def _supervise(student: int, config: dict) -> int:
    """The jail's init (pid 1, root, out of the student's reach): it reaps orphans, forwards
    interrupts to the student process and ends, with the whole namespace, when the student
    process ends or the bootstrap dies."""
    for fd in config["fds"][:2]:
        os.close(fd)
    signal.signal(signal.SIGINT, lambda *_: os.kill(student, signal.SIGINT))
    while True:
        pid, status = os.wait()
        if pid == student:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


def main(config: dict) -> int:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # die with the process that started it
    report = {"applied": [], "unavailable": {}}
    # A uid of its own, from the bootstrap's host pid (unique while the jail lives); root only.
    uid = _UID_BASE + os.getpid() % 1_000_000 if os.geteuid() == 0 else None
    namespaced = _enter_namespaces(report["unavailable"])
    ready_read, ready_write = os.pipe()
    child = os.fork()  # with a new pid namespace, the child is its first process (init)
    if child:
        os.close(ready_write)
        os.read(ready_read, 1)  # the child holds its PR_SET_PDEATHSIG before this process may die
        return _wait_for_init(child, config)
    if namespaced:  # an init ignores signals it has no handler for, PR_SET_PDEATHSIG's SIGKILL included
        signal.signal(signal.SIGTERM, lambda *_: os._exit(1))
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    else:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.close(ready_read)
    os.close(ready_write)
    if len(config["fds"]) > 2:
        os.close(config["fds"][2])
    try:
        if namespaced:
            _private_root(config, uid or 0)
            home = HOME
            report["applied"] += ["private file system (pivot_root)", "process namespace", "network namespace"]
            student = os.fork()
            if student:
                return _supervise(student, config)
        else:
            home = tempfile.mkdtemp(prefix="course-student-")
            if config.get("seed"):
                _seed(config["seed"], home)
            _chown_tree(home, uid or os.getuid())
            report["unavailable"]["private file system"] = "no mount namespace"
        os.chdir(home)
        _limit(config["limits"])
        report["applied"].append("resource limits (memory, CPU, file size, processes, open files)")
        _drop_privileges(uid)
        if uid is not None:
            report["applied"].insert(0, f"separate user (uid {uid}, no capabilities)")
    except OSError as err:
        print(f"autograder.jail: could not confine the student process: {err}", file=sys.stderr)
        return 70
    if config.get("probe"):
        print(json.dumps(report), flush=True)
        return 0
    env = _environment(config, home)
    if config.get("reference"):
        env["COURSE_REUSE_DIR"] = REFERENCE if namespaced else config["reference"]
    os.environ.clear()
    os.environ.update(env)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    _close_all_but(config["fds"][:2])
    from .student import serve
    return serve(*config["fds"][:2], report)


def _close_all_but(keep: list[int]) -> None:
    """Close every file descriptor above 2 but the two pipes: what the jail inherited (the grader's
    log, the zygote's socket) must not reach the student's code."""
    edges = [2, *sorted(keep), 1 << 20]
    for low, high in zip(edges, edges[1:]):
        os.closerange(low + 1, high)


def _preload() -> None:
    """What a notebook's setup cell imports, once, for every jail the zygote forks."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import course_utils
    for module in pkgutil.iter_modules(course_utils.__path__):
        with contextlib.suppress(Exception):
            importlib.import_module(f"course_utils.{module.name}")
    from . import student  # noqa: F401


def zygote(path: str) -> int:
    """Serve fork requests on the unix socket ``path`` (see ``Zygote``)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # die with the grader
    _preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked bootstraps are reaped by the kernel
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as server:
        server.bind(path + ".new")
        os.chmod(path + ".new", 0o600)
        server.listen(8)
        os.rename(path + ".new", path)
        while True:
            connection, _ = server.accept()
            with connection:
                data, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
                pid_of_caller = struct.unpack("3i", connection.getsockopt(
                    socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[0]
                config = json.loads(data) | {"fds": fds, "watch_pid": pid_of_caller}
                child = os.fork()
                if child == 0:
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    server.close()
                    os.setsid()
                    connection.close()
                    log = os.open(config["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                    os.dup2(log, 1)
                    os.dup2(log, 2)
                    os.close(log)
                    os._exit(main(config))
                connection.send(str(child).encode())
                for fd in fds:
                    os.close(fd)


if __name__ == "__main__":
    sys.exit(zygote(sys.argv[2]) if sys.argv[1] == "--zygote" else main(json.loads(sys.argv[1])))
