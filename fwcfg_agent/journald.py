"""journald's native protocol, spoken directly: one datagram of fields per message.

The agent runs on the boot path, where importing systemd-python (with logging, uuid, datetime,
socket and traceback behind it) took a third of a first boot in a guest. The protocol itself is
small (systemd's "Native Journal Protocol"): each field is `KEY=VALUE\\n`, or, for a value that
holds a newline, `KEY\\n`, the value's length as a little-endian 64-bit number, the value and
`\\n`. A message too large for one datagram goes through systemd-python's journal.send, which
passes it in a sealed memfd; without systemd-python the caller falls back to stderr.

Only builtin modules are imported here: the fast path uses this module too.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Optional

SOCKET = "/run/systemd/journal/socket"
CGROUP = "/proc/self/cgroup"
SIOCOUTQ = 0x5411  # bytes sent on a socket that the receiver has not read yet
EMSGSIZE, ENOBUFS = 90, 105


def field(key: str, value: object) -> bytes:
    """One field in the native protocol's framing."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
    if b"\n" in data:
        return key.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
    return key.encode() + b"=" + data + b"\n"


def encode(message: str, fields: Iterable[tuple[str, object]]) -> bytes:
    return field("MESSAGE", message) + b"".join(field(k, v) for k, v in fields)


def under_systemd() -> bool:
    """Started by systemd (a unit), so journald is the place for our messages."""
    return bool(os.environ.get("INVOCATION_ID") or os.environ.get("JOURNAL_STREAM"))


def unit_of(cgroup: str) -> Optional[str]:
    """The service a process runs in, from its /proc/PID/cgroup text: the last component of the
    unified hierarchy's path (`0::/system.slice/NAME.service`), or of the `name=systemd` line on
    a legacy hierarchy. None for a scope, a slice or anything that is not a plain unit name."""
    for line in cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or parts[1] not in ("", "name=systemd"):
            continue
        name = parts[2].rsplit("/", 1)[-1]
        stem = name[:-len(".service")]
        if name.endswith(".service") and stem and all(
                c.isascii() and (c.isalnum() or c in ":_.@-\\") for c in stem):
            return name
    return None


def own_unit() -> Optional[str]:
    """The service this process runs in (None outside one)."""
    try:
        with open(CGROUP, encoding="utf-8", errors="replace") as fh:
            return unit_of(fh.read())
    except OSError:
        return None


class Socket:
    """A connection to journald: send(message, **FIELDS), as systemd.journal.send is called."""

    def __init__(self, path: Optional[str] = None) -> None:
        import _socket

        self.path = path or SOCKET
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)

    def __call__(self, message: str, **fields: object) -> None:
        data = encode(message, fields.items())
        try:
            self._sock.sendto(data, self.path)
        except OSError as e:
            if e.errno not in (EMSGSIZE, ENOBUFS):
                raise
            self._send_large(message, fields)

    @staticmethod
    def _send_large(message: str, fields: dict[str, object]) -> None:
        try:
            from systemd import journal  # passes the message in a memfd
        except ImportError:
            raise OSError(EMSGSIZE, "message too large for a datagram") from None
        journal.send(message, **{k: str(v) for k, v in fields.items()})

    def drain(self, timeout: float = 0.5) -> None:
        """Wait (bounded) until journald has read what we sent. journald tells a message's unit
        from the sender's /proc entry: a process that exits first has its last messages stored
        without _SYSTEMD_UNIT, and `journalctl -u` does not show them. Half a second at most:
        in a loaded early boot journald took longer than 0.1 s (the wait ends as soon as it has
        read everything, so an idle journald costs nothing)."""
        import fcntl

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                queued = int.from_bytes(fcntl.ioctl(self._sock.fileno(), SIOCOUTQ, bytes(4)),
                                        sys.byteorder)
            except OSError:
                return
            if queued == 0:
                return
            time.sleep(0.001)

    def close(self) -> None:
        self._sock.close()
