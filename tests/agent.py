"""Run the agent's CLI against a root and capture what it says; the write guard that keeps every
test (and every agent run it makes, in-process or in a child) inside its own directories."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from fwcfg_agent.cli import main

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def errors(self) -> list[str]:
        return [line for line in self.err.splitlines()
                if line.startswith("fwcfg-agent: error: ")]

    def warnings(self) -> list[str]:
        return [line for line in self.err.splitlines()
                if line.startswith("fwcfg-agent: warning: ")]


def agent(root: Path, *args: str) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    env_backup = {k: os.environ.pop(k) for k in ("INVOCATION_ID", "JOURNAL_STREAM")
                  if k in os.environ}
    before = len(guard.violations)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main([args[0], "--root", str(root), *args[1:]])
    finally:
        os.environ.update(env_backup)
    new = guard.violations[before:]
    assert not new, f"the agent wrote outside the allowed directories: {new}\n{err.getvalue()}"
    return Outcome(code, out.getvalue(), err.getvalue())


def snapshot(root: Path, *tops: str) -> dict[str, tuple[str, int]]:
    """{relative path: (sha256, mode)} of every file under the given top directories."""
    out: dict[str, tuple[str, int]] = {}
    for top in tops:
        base = root / top
        if not base.exists():
            continue
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                p = Path(dirpath) / name
                rel = str(p.relative_to(root))
                out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode & 0o7777)
    return out


Node = tuple[str, ...]


def tree(root: Path, *tops: str, dirs: bool = True) -> dict[str, Node]:
    """Everything under the given top directories, symlinks not followed:
    {relative path: ("file", sha256, mode) | ("link", target) | ("dir", mode)}."""
    out: dict[str, Node] = {}
    for top in tops:
        base = root / top
        if not os.path.lexists(base):
            continue
        todo = [base]
        while todo:
            p = todo.pop()
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                if dirs:
                    out[rel] = ("dir", f"{stat.S_IMODE(st.st_mode):04o}")
                todo.extend(sorted(p.iterdir()))
            else:
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest(),
                            f"{stat.S_IMODE(st.st_mode):04o}")
    return out


# Temp files of the agent (DECISIONS: removed by the next run after a kill).
TEMP_NAME = re.compile(r"(\..*\.fwcfg-agent\..*\.tmp|snapshot\..*\.tmp)\Z")


def temp_files(root: Path) -> list[str]:
    """The agent's temp files anywhere under root, and any *.tmp under its backups."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if TEMP_NAME.match(name) or (rel.startswith("var/lib/fwcfg-agent/backups/")
                                         and name.endswith(".tmp")):
                found.append(rel)
    return sorted(found)


def journal_runs(root: Path) -> list[dict[str, Any]]:
    """Every record of journal.jsonl as stored (one per line), read straight from the file."""
    path = root / "var/lib/fwcfg-agent/journal.jsonl"
    out = []
    for line in path.read_bytes().splitlines() if path.exists() else []:
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


# --- the write guard ------------------------------------------------------------------------
#
# An audit hook that fails the test when the process opens a file for writing, renames, unlinks,
# removes or makes a directory (and a few more mutations) outside the directories it allows. It
# resolves what the kernel would act on: symlinks of the parent directories (and of the final
# component where the call follows it), `..`, and dir_fd-relative names (through
# /proc/self/fd). CPython's "open" event does not carry dir_fd: for a relative name opened for
# writing, every directory the process holds open (and the working directory) must be allowed.
#
# The violation is recorded (the test fails on it) and the call is refused with EPERM before it
# happens, so a broken agent cannot touch anything outside.

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# event -> (indexes of the paths it changes, index of their dir_fd or None)
_MUTATIONS: dict[str, tuple[tuple[tuple[int, Optional[int]], ...], bool]] = {
    # (path index, dir_fd index), follows a final symlink
    "os.rename": (((0, 2), (1, 3)), False),
    "os.remove": (((0, 1),), False),
    "os.rmdir": (((0, 1),), False),
    "os.mkdir": (((0, 2),), False),
    "os.symlink": (((1, 2),), False),
    "os.link": (((1, 3),), False),
    "os.chmod": (((0, 2),), True),
    "os.chown": (((0, 3),), True),
    "os.truncate": (((0, None),), True),
    "os.utime": (((0, 3),), True),
    "os.setxattr": (((0, None),), True),
    "os.removexattr": (((0, None),), True),
    "os.chflags": (((0, None),), True),
    "shutil.rmtree": (((0, 1),), False),
}
# Writes any test may make outside its directories: the byte-code cache of imported modules
# (importlib writes NAME.pyc through NAME.pyc.<id>), /dev/null, hypothesis' example database.
_PYC = re.compile(r".*/__pycache__(/[^/]+\.pyc(\.\d+)?)?\Z")
ALWAYS_ALLOWED = ("/dev/null", str(REPO / ".hypothesis"))

PathArg = Union[str, bytes, int, "os.PathLike[str]", "os.PathLike[bytes]"]


def _fd_path(fd: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def resolve(path: PathArg, dir_fd: Optional[int] = None, *,
            follow: bool = False) -> Optional[str]:
    """The absolute path the kernel would act on (None for an fd it cannot name)."""
    if isinstance(path, int):
        return _fd_path(path)
    text = os.fsdecode(path)
    if not text.startswith("/"):
        base = _fd_path(dir_fd) if dir_fd is not None and dir_fd >= 0 else os.getcwd()
        if base is None:
            return None
        text = os.path.join(base, text)
    head, tail = os.path.split(text.rstrip("/") or "/")
    if tail in ("", ".", ".."):
        return os.path.realpath(text)
    full = os.path.join(os.path.realpath(head), tail)
    return os.path.realpath(full) if follow else full


def _open_dirs() -> list[str]:
    """The directories this process holds open (candidates for an openat's dir_fd)."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        target = _fd_path(int(name))
        if target and target.startswith("/") and os.path.isdir(target):
            out.append(target)
    return out


class Guard:
    def __init__(self) -> None:
        self.allowed: Optional[list[str]] = None  # None: not armed
        self.violations: list[str] = []
        self.fatal = False  # in a child: exit at once on a violation
        self.watch: Optional[list[str]] = None  # see watching()
        self._busy = False

    def ok(self, path: str) -> bool:
        if self.allowed is None:
            return True
        if _PYC.match(path):
            return True
        return any(path == a or path.startswith(a.rstrip("/") + "/")
                   for a in (*self.allowed, *ALWAYS_ALLOWED))

    def targets(self, event: str, args: tuple[Any, ...]) -> list[str]:
        """The paths (resolved) that this event would change; empty if it changes nothing."""
        if event == "open":
            path, _mode, flags = args
            if path is None or not isinstance(flags, int) or not flags & _WRITE_FLAGS:
                return []
            follow = not flags & os.O_NOFOLLOW and not (
                flags & os.O_CREAT and flags & os.O_EXCL)
            if isinstance(path, int):
                return []  # fdopen: the fd was checked when it was opened by name
            if os.fsdecode(path).startswith("/"):
                named = resolve(path, follow=follow)
                return [named] if named else []
            # relative: dir_fd is not in the event, so every directory the process holds open
            # is a candidate (the working directory if it holds none)
            name = os.fsdecode(path)
            return [resolve(os.path.join(d, name), follow=follow) or d
                    for d in (_open_dirs() or [os.getcwd()])]
        spec = _MUTATIONS.get(event)
        if spec is None:
            return []
        out = []
        for index, fd_index in spec[0]:
            if index >= len(args) or args[index] is None:
                continue
            dir_fd = args[fd_index] if fd_index is not None and fd_index < len(args) else None
            named = resolve(args[index], dir_fd if isinstance(dir_fd, int) else None,
                            follow=spec[1])
            if named and named.startswith("/"):  # not a pipe or socket given by its fd
                out.append(named)
        return out

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.allowed is None or self._busy or (event != "open" and event not in _MUTATIONS):
            return
        self._busy = True  # the hook's own os.listdir/readlink must not re-enter it
        try:
            targets = self.targets(event, args)
        finally:
            self._busy = False
        if self.watch is not None:
            self.watch.extend(targets)
        bad = [p for p in targets if not self.ok(p)]
        if not bad:
            return
        what = f"{event} {bad[0]} (args {args!r})"
        self.violations.append(what)
        if self.fatal:
            os.write(2, f"GUARD: write outside the allowed directories: {what}\n".encode())
            os._exit(86)
        raise PermissionError(1, "test guard: write outside the allowed directories", bad[0])

    def arm(self, allowed: Sequence[Path | str]) -> None:
        self.allowed = [os.path.realpath(a) for a in allowed]

    def disarm(self) -> list[str]:
        self.allowed = None
        found, self.violations = self.violations, []
        return found

    @contextlib.contextmanager
    def watching(self) -> Iterator[list[str]]:
        """Collect the (resolved) paths of every mutating call made inside the block."""
        saved, self.watch = self.watch, []
        try:
            yield self.watch
        finally:
            self.watch = saved

    @contextlib.contextmanager
    def confined(self, *allowed: Path) -> Iterator[None]:
        """Allow only `allowed` (and ALWAYS_ALLOWED) inside the block; fail on a violation."""
        saved = self.allowed
        before = len(self.violations)
        self.arm(allowed)
        try:
            yield
        finally:
            self.allowed = saved
        new = self.violations[before:]
        assert not new, f"write outside {[str(a) for a in allowed]}: {new}"


guard = Guard()
sys.addaudithook(guard.hook)


# --- the agent in a child process: guarded, and killed with SIGKILL at a chosen step ---------

# Mutating file-system events under the root, in order; the child SIGKILLs itself at the Nth
# (before it happens). The guard refuses (exit 86) any write outside the root.
CHILD = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from tests.agent import guard
n, root, argv = int(sys.argv[1]), os.path.realpath(sys.argv[2]), sys.argv[3:]
seen = [0]
def killer(event, args):
    if n <= 0 or guard.allowed is None:
        return
    if event != "open" and event not in MUTATIONS:
        return
    guard._busy = True
    try:
        paths = guard.targets(event, args)
    finally:
        guard._busy = False
    if any(p == root or p.startswith(root + "/") for p in paths):
        seen[0] += 1
        if seen[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
from tests.agent import _MUTATIONS as MUTATIONS
guard.fatal = True
guard.arm([root])
sys.addaudithook(killer)
from fwcfg_agent.cli import main
sys.exit(main([argv[0], "--root", root, *argv[1:]]))
"""


def run_child(root: Path, *args: str, kill_at: int = 0) -> subprocess.CompletedProcess[str]:
    """The agent in a child process (guarded: exit 86 on a write outside root); with kill_at,
    SIGKILLed just before its kill_at-th mutating file-system call under root."""
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD.format(repo=str(REPO)), str(kill_at),
                           str(root), *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 86 and "GUARD:" not in proc.stderr, proc.stderr
    return proc
