"""A run's identity and its journal line: run id, time, boot id, and the JSON encoding of the
record, the same for the fast path and the full path.

Only builtin modules are imported here: the fast path uses this module (json would load re,
and even its C half _json is a shared library to load).
"""

import os
import time

from . import __version__
from .rootfs import chase, makedirs, read_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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
    on the disk before this returns: a run records what it will change before changing it."""
    makedirs(root, STATE_DIR)
    fd = os.open(chase(root, JOURNAL, follow_last=False),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, line(rec))
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
