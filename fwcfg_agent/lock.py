"""One run at a time: an flock, waited for a bounded time. The one flock loop of the agent:
the run lock (ROOT/run/fwcfg-agent.lock) and the raw reader's device lock both use it.

Only builtin modules are imported here: the fast path uses this module. The error classes are
imported only to raise one: a boot that takes the lock does not load them.
"""

import fcntl
import os
import time

from .rootfs import chase, makedirs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Optional

RUN_LOCK = "run/fwcfg-agent.lock"
EAGAIN, EACCES = 11, 13  # flock's "held by another process" (EWOULDBLOCK is EAGAIN on Linux)


def flock(fd: int, timeout: float) -> bool:
    """Take an exclusive flock on fd, waiting at most `timeout` seconds. False if another
    process holds it that long; OSError for anything but contention."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno not in (EAGAIN, EACCES):
                raise
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def open_lock_file(root: str, rel: str) -> int:
    """Open (creating it and its directory inside the root) a lock file; RootError, naming the
    path, when the root does not let us."""
    path = chase(root, rel)
    try:
        makedirs(root, os.path.dirname(rel))
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        from .errors import RootError

        raise RootError(path, e) from None


class RunLock:
    """`with RunLock(root):` holds the run lock. timeout=0 tries once (the fast path)."""

    def __init__(self, root: str, timeout: float = 10.0) -> None:
        self.root = root
        self.timeout = timeout
        self.fd: Optional[int] = None

    def __enter__(self) -> "RunLock":
        fd = open_lock_file(self.root, RUN_LOCK)
        try:
            held = flock(fd, self.timeout)
        except OSError as e:
            os.close(fd)
            from .errors import RootError

            raise RootError(chase(self.root, RUN_LOCK), e) from None
        if not held:
            os.close(fd)
            from .errors import LockError

            raise LockError(f"another fwcfg-agent run holds {chase(self.root, RUN_LOCK)} "
                            f"(waited {self.timeout:g} s)")
        self.fd = fd
        return self

    def __exit__(self, et: "Optional[type[BaseException]]", ev: "Optional[BaseException]",
                 tb: "Optional[TracebackType]") -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None
