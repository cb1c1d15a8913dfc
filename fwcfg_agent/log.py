"""Events to the systemd journal (structured, with a MESSAGE_ID) or to stderr.

Under systemd (the unit), events go to journald with FWCFG_* fields, so
`journalctl -u fwcfg-agent MESSAGE_ID=...` finds them. Elsewhere (a shell, a test, a root
without journald) they go to stderr as one line each.

journald's native protocol is spoken directly (the second half of this module): the agent runs
on the boot path, where importing systemd-python (with logging, uuid, datetime, socket and
traceback behind it) took a third of a first boot in a guest. The protocol itself is small
(systemd's "Native Journal Protocol"): each field is `KEY=VALUE\\n`, or, for a value that holds
a newline, `KEY\\n`, the value's length as a little-endian 64-bit number, the value and `\\n`.
A message too large for one datagram goes through systemd-python's journal.send, which passes
it in a sealed memfd; without systemd-python the event falls back to stderr.

Only builtin modules are imported here: the fast path logs through this module.
"""

import os
import sys

TYPE_CHECKING = False  # typing is not loaded at start-up: mypy reads it, Python does not
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Callable, Optional

    Sender = Callable[..., Any]

# MESSAGE_IDs, stable across releases: journalctl MESSAGE_ID=<id>.
MSG_APPLIED = "4daab396a9c74e34b1dcbbe0fe2d4c28"  # a run changed files
MSG_FILE = "479d71ec005240d4b512e0b3bacabb48"  # one file created, updated or removed
MSG_INVALID = "89ef3e72707c421f85a5b595ebfb20f2"  # bad payload or config: nothing written
MSG_UNCHANGED = "9aff2b147c144ded8d0b5f889b7eb995"  # a run found nothing to change
MSG_NOTHING = "f7a58138bf6a42929ab34b21d02ef6ab"  # no fw_cfg device, or no entries for us
MSG_WARNING = "9228c1b8157b45a39dae8c6ecf5294e7"  # unknown keys, overrides, doubtful settings

# syslog priorities
ERR, WARNING, NOTICE, INFO, DEBUG = 3, 4, 5, 6, 7


def _journal_sender() -> "Optional[Sender]":
    if not under_systemd():
        return None  # not started by systemd: a person or a test is reading stderr
    if not os.path.exists(SOCKET):
        return None
    try:
        return Socket()
    except OSError:
        return None


def one_line(message: str) -> str:
    """A message as one line of text: a control character (from a payload or a path, say) is
    shown escaped, so that nothing can forge a second line. The journal keeps fields whole."""
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


class Log:
    def __init__(self, *, debug: bool = False, quiet: bool = False,
                 sender: "Optional[Sender]" = None, use_journal: bool = True) -> None:
        self.debug_enabled = debug
        self.quiet = quiet
        self._sender = sender if sender is not None else (
            _journal_sender() if use_journal else None)
        # The unit we run in, named in every message as OBJECT_SYSTEMD_UNIT (journald trusts
        # that field from root). journald tells a message's unit from the sender's /proc entry;
        # a process that exits before journald has looked has its last messages stored without
        # _SYSTEMD_UNIT, and `journalctl -u` finds them by this field instead.
        self._unit = own_unit() if sender is None and self._sender is not None else None

    @property
    def to_journal(self) -> bool:
        return self._sender is not None

    def event(self, priority: int, message: str, message_id: "Optional[str]" = None,
              **fields: object) -> None:
        if priority == DEBUG and not self.debug_enabled:
            return
        if self._sender is not None:
            extra = {f"FWCFG_{k.upper()}": str(v) for k, v in fields.items() if v is not None}
            if message_id:
                extra["MESSAGE_ID"] = message_id
            if self._unit:
                extra["OBJECT_SYSTEMD_UNIT"] = self._unit
            try:
                self._sender(message, PRIORITY=priority, SYSLOG_IDENTIFIER="fwcfg-agent", **extra)
                return
            except OSError:
                pass  # journald went away: fall back to stderr
        if self.quiet and priority > WARNING:
            return
        label = {ERR: "error: ", WARNING: "warning: "}.get(priority, "")
        print(f"fwcfg-agent: {label}{one_line(message)}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """The end of the run. It does not wait for journald to read what was sent: a datagram
        stays in journald's queue after the sender has gone, with the sender's uid that the
        kernel attached when it was sent, and OBJECT_SYSTEMD_UNIT (from root) is what
        `journalctl -u` and `systemctl status` find it by when journald can no longer see the
        process's unit. In early boot, when journald is busy, waiting until it had read the
        last message took up to half a second of a later boot that otherwise takes 0.2 s."""
        if isinstance(self._sender, Socket):
            self._sender.close()
            self._sender = None

    def error(self, message: str, message_id: "Optional[str]" = None, **fields: object) -> None:
        self.event(ERR, message, message_id, **fields)

    def warning(self, message: str, **fields: object) -> None:
        self.event(WARNING, message, MSG_WARNING, **fields)

    def info(self, message: str, message_id: "Optional[str]" = None, **fields: object) -> None:
        self.event(INFO, message, message_id, **fields)

    def debug(self, message: str, **fields: object) -> None:
        self.event(DEBUG, message, None, **fields)


# --- journald's native protocol -------------------------------------------------------------

SOCKET = "/run/systemd/journal/socket"
CGROUP = "/proc/self/cgroup"
EMSGSIZE, ENOBUFS = 90, 105


def field(key: str, value: object) -> bytes:
    """One field in the native protocol's framing."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
    if b"\n" in data:
        return key.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
    return key.encode() + b"=" + data + b"\n"


def encode(message: str, fields: "Iterable[tuple[str, object]]") -> bytes:
    return field("MESSAGE", message) + b"".join(field(k, v) for k, v in fields)


def under_systemd() -> bool:
    """Started by systemd (a unit), so journald is the place for our messages."""
    return bool(os.environ.get("INVOCATION_ID") or os.environ.get("JOURNAL_STREAM"))


def unit_of(cgroup: str) -> "Optional[str]":
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


def own_unit() -> "Optional[str]":
    """The service this process runs in (None outside one)."""
    try:
        with open(CGROUP, encoding="utf-8", errors="replace") as fh:
            return unit_of(fh.read())
    except OSError:
        return None


class Socket:
    """A connection to journald: send(message, **FIELDS), as systemd.journal.send is called."""

    def __init__(self, path: "Optional[str]" = None) -> None:
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
    def _send_large(message: str, fields: "dict[str, object]") -> None:
        try:
            from systemd import journal  # passes the message in a memfd
        except ImportError:
            raise OSError(EMSGSIZE, "message too large for a datagram") from None
        journal.send(message, **{k: str(v) for k, v in fields.items()})

    def close(self) -> None:
        self._sock.close()
