"""A run: one at a time (the run lock), its identity (run id, time, boot id) and its journal
line (the JSON encoding of the record), the same for the fast path and the full path.

The lock is an flock, waited for a bounded time: the one flock loop of the agent, for the run
lock (ROOT/run/fwcfg-agent.lock) and the raw reader's device lock.

Only builtin modules are imported here: the fast path uses this module (json would load re,
and even its C half _json is a shared library to load). The error classes are imported only to
raise one: a boot that takes the lock does not load them.
"""

import fcntl
import os
import time

from . import __version__
from .rootfs import chase, makedirs, read_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, Optional


def boot_id(root: str) -> str:
    data = read_in_root(root, "proc/sys/kernel/random/boot_id")
    return data.decode("ascii", "replace").strip() if data else "unknown"


def new_run() -> "tuple[str, str]":
    """A new run id (sortable by time, unique) and the run's time in ISO 8601 (UTC)."""
    now = time.time()
    micro = int(now * 1e6) % 1000000
    gm = time.gmtime(now)
    run = time.strftime("%Y%m%dT%H%M%S", gm) + f".{micro:06d}Z-{os.urandom(3).hex()}"
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", gm) + f".{micro:06d}Z"
    return run, iso


def record(root: str, command: str, outcome: str, run: str = "",
           **fields: "Any") -> "dict[str, Any]":
    """A journal record: one JSON object per run, the same fields from either path."""
    new_id, iso = new_run()
    return {"run": run or new_id, "time": iso, "boot_id": boot_id(root),
            "version": __version__, "command": command, "outcome": outcome, **fields}


STATE_DIR = "var/lib/fwcfg-agent"
JOURNAL = STATE_DIR + "/journal.jsonl"


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
            "\f": "\\f"}


def _json_str(text: str) -> str:
    """A JSON string, as json.dumps (ensure_ascii) writes it: short escapes where JSON has them,
    \\uXXXX for every other control or non-ASCII character (a surrogate pair beyond U+FFFF)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # the run's ids, times and names: nothing to escape
    out = []
    for c in text:
        n = ord(c)
        if " " <= c <= "~" and c not in '"\\':
            out.append(c)
        elif c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif n > 0xFFFF:
            n -= 0x10000
            out.append(f"\\u{0xD800 | (n >> 10):04x}\\u{0xDC00 | (n & 0x3FF):04x}")
        else:
            out.append(f"\\u{n:04x}")
    return '"' + "".join(out) + '"'


class RawJSON(str):
    """JSON text to put in a record as it is (the entry list the snapshot kept)."""


def dumps(value: "Any") -> str:
    """JSON, as json.dumps(value, sort_keys=True, separators=(",", ":")) writes it."""
    if isinstance(value, RawJSON):
        return str.__str__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return str(_json_str(value))
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json_str(str(k))}:{dumps(v)}"
                              for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot record a {type(value).__name__} in the journal")


def line(rec: "dict[str, Any]") -> bytes:
    return dumps(rec).encode("ascii") + b"\n"


def append(root: str, rec: "dict[str, Any]", *, sync: bool = False) -> None:
    """Append a record to the journal (created inside the root as needed). With sync, it is
    on the disk before this returns: a run records what it will change before changing it;
    a journal this call creates (or directories it makes) is on the disk too: its entry in
    the state directory, and theirs."""
    made = makedirs(root, STATE_DIR)
    fd = os.open(chase(root, JOURNAL, follow_last=False),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        data = line(rec)
        os.write(fd, data)
        if sync:
            if made or os.fstat(fd).st_size == len(data):  # the first record: a new file
                from .fsutil import sync_dirs

                sync_dirs({os.path.dirname(chase(root, d)) for d in made}
                          | {chase(root, STATE_DIR)})
            os.fsync(fd)
    finally:
        os.close(fd)


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


# The code this run is: the digest of the agent's modules and packaged templates that the build
# recorded next to this module (codeid.py computes and writes it).
FILE = "_codeid"
SIZE = 32  # bytes: SHA-256
_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def read(package_dir: str = _PACKAGE) -> "Optional[bytes]":
    """The digest the build recorded, or None (no file, or not a digest)."""
    try:  # (os.open and os.read: no file object for one small read)
        fd = os.open(os.path.join(package_dir, FILE), os.O_RDONLY | os.O_CLOEXEC)
        try:
            text = os.read(fd, 4 * SIZE)
        finally:
            os.close(fd)
        value = bytes.fromhex(text.decode("ascii").strip())
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    return value if len(value) == SIZE else None


_digest: "Optional[bytes]" = None


def code_digest() -> bytes:
    """The digest of the templates and the rendering and model code this process runs: the
    build's `_codeid`, else computed from the files (once per process)."""
    global _digest
    if _digest is None:
        _digest = read()
    if _digest is None:  # a source checkout: no build ran
        from .codeid import compute

        _digest = compute()
    return _digest
