"""Events to the systemd journal (structured, with a MESSAGE_ID) or to stderr.

Under systemd (the unit), events go to journald with FWCFG_* fields, so
`journalctl -u fwcfg-agent MESSAGE_ID=...` finds them: through the native protocol spoken
directly (journald.py), with systemd-python's journal.send for a message too large for one
datagram. Elsewhere (a shell, a test, a root without journald) they go to stderr as one line
each.
"""

from __future__ import annotations

import os
import sys

from . import journald

TYPE_CHECKING = False  # typing is not loaded at start-up: the fast path logs through here
if TYPE_CHECKING:
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



def _journal_sender() -> Optional[Sender]:
    if not journald.under_systemd():
        return None  # not started by systemd: a person or a test is reading stderr
    if not os.path.exists(journald.SOCKET):
        return None
    try:
        return journald.Socket()
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
                 sender: Optional[Sender] = None, use_journal: bool = True) -> None:
        self.debug_enabled = debug
        self.quiet = quiet
        self._sender = sender if sender is not None else (
            _journal_sender() if use_journal else None)
        # The unit we run in, named in every message as OBJECT_SYSTEMD_UNIT (journald trusts
        # that field from root). journald tells a message's unit from the sender's /proc entry;
        # a process that exits before journald has looked has its last messages stored without
        # _SYSTEMD_UNIT, and `journalctl -u` finds them by this field instead.
        self._unit = journald.own_unit() if sender is None and self._sender is not None else None

    @property
    def to_journal(self) -> bool:
        return self._sender is not None

    def event(self, priority: int, message: str, message_id: Optional[str] = None,
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
        """The end of the run: wait (bounded) until journald has read our messages, so that
        the last ones are attributed to the unit too (OBJECT_SYSTEMD_UNIT covers the race that
        remains: journald reads the datagram before it looks up the sender)."""
        if isinstance(self._sender, journald.Socket):
            self._sender.drain()
            self._sender.close()
            self._sender = None

    def error(self, message: str, message_id: Optional[str] = None, **fields: object) -> None:
        self.event(ERR, message, message_id, **fields)

    def warning(self, message: str, **fields: object) -> None:
        self.event(WARNING, message, MSG_WARNING, **fields)

    def info(self, message: str, message_id: Optional[str] = None, **fields: object) -> None:
        self.event(INFO, message, message_id, **fields)

    def debug(self, message: str, **fields: object) -> None:
        self.event(DEBUG, message, None, **fields)
