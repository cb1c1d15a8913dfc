"""Events: structured journald fields with a MESSAGE_ID, or one stderr line each."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fwcfg_agent import log as logmod
from fwcfg_agent.log import MSG_FILE, MSG_INVALID, Log

from .conftest import REPO, make_guest_root


class Capture:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, message: str, **fields: Any) -> None:
        self.sent.append((message, fields))


def test_journal_fields() -> None:
    cap = Capture()
    Log(sender=cap).error("bad", MSG_INVALID, entry="opt/x", line=3, key="IPADDR", unused=None)
    ((message, fields),) = cap.sent
    assert message == "bad"
    assert fields == {"PRIORITY": 3, "SYSLOG_IDENTIFIER": "fwcfg-agent",
                      "MESSAGE_ID": MSG_INVALID, "FWCFG_ENTRY": "opt/x", "FWCFG_LINE": "3",
                      "FWCFG_KEY": "IPADDR"}


def test_stderr_fallback() -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        Log(use_journal=False).warning("careful")
        Log(use_journal=False).debug("hidden")
    assert err.getvalue() == "fwcfg-agent: warning: careful\n"


def test_journald_gone_falls_back_to_stderr() -> None:
    def broken(message: str, **fields: Any) -> None:
        raise OSError("no journald")

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        Log(sender=broken).info("still said")
    assert "still said" in err.getvalue()


def test_a_whole_run_sends_structured_events(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from fwcfg_agent.cli import main

    cap = Capture()
    monkeypatch.setattr(logmod, "_journal_sender", lambda: cap)
    root = make_guest_root(tmp_path / "r", {"opt/GuestInfo": b"HOSTNAME=j1\nIPADDR=10.0.0.5\n"})
    assert main(["apply", "--root", str(root)]) == 0
    ids = [f.get("MESSAGE_ID") for _, f in cap.sent]
    assert ids.count(MSG_FILE) == 3
    file_events = [f for _, f in cap.sent if f.get("MESSAGE_ID") == MSG_FILE]
    assert {f["FWCFG_PATH"] for f in file_events} == {
        "/etc/hostname", "/etc/hosts", "/etc/systemd/network/10-fwcfg-enx525400123456.network"}
    assert all(f["FWCFG_RUN"] and f["FWCFG_ACTION"] for f in file_events)
    bad = make_guest_root(tmp_path / "b",
                          {"opt/GuestInfo": b"HOSTNAME=j1\nMTU=1\nIPADDR=10.0.0.5\n"})
    cap.sent.clear()
    assert main(["apply", "--root", str(bad)]) == 3
    (invalid,) = [f for _, f in cap.sent if f.get("MESSAGE_ID") == MSG_INVALID]
    assert (invalid["FWCFG_ENTRY"], invalid["FWCFG_LINE"], invalid["FWCFG_KEY"]) == (
        "opt/GuestInfo", "2", "MTU")


def _parse_native(datagram: bytes) -> dict[str, bytes]:
    """journald's side of the native protocol: KEY=VALUE lines, or KEY, a 64-bit LE length and
    the value for values that hold newlines."""
    fields: dict[str, bytes] = {}
    pos = 0
    while pos < len(datagram):
        nl = datagram.index(b"\n", pos)
        line = datagram[pos:nl]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            pos = nl + 1
        else:
            key = line
            size = int.from_bytes(datagram[nl + 1:nl + 9], "little")
            value = datagram[nl + 9:nl + 9 + size]
            assert datagram[nl + 9 + size:nl + 10 + size] == b"\n"
            pos = nl + 10 + size
        fields[key.decode()] = value
    return fields


def test_native_protocol_framing() -> None:
    from fwcfg_agent import log as fwlog

    data = fwlog.encode("two\nlines", [("PRIORITY", 3), ("FWCFG_KEY", "IPADDR")])
    assert data.startswith(b"MESSAGE\n" + (9).to_bytes(8, "little") + b"two\nlines\n")
    assert _parse_native(data) == {"MESSAGE": b"two\nlines", "PRIORITY": b"3",
                                   "FWCFG_KEY": b"IPADDR"}


def test_a_whole_run_speaks_journald_protocol(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Under systemd the events go to journald's socket as native-protocol datagrams, without
    systemd-python."""
    from fwcfg_agent.cli import main

    server = _fake_journald(tmp_path, monkeypatch)
    root = make_guest_root(tmp_path / "r", {"opt/GuestInfo": b"HOSTNAME=j1\nIPADDR=10.0.0.5\n"})
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["apply", "--root", str(root)]) == 0
    got = [_parse_native(d) for d in _drain_socket(server)]
    server.close()
    assert err.getvalue() == ""
    assert all(f["SYSLOG_IDENTIFIER"] == b"fwcfg-agent" for f in got)
    files = [f for f in got if f.get("MESSAGE_ID") == MSG_FILE.encode()]
    assert {f["FWCFG_PATH"] for f in files} == {
        b"/etc/hostname", b"/etc/hosts", b"/etc/systemd/network/10-fwcfg-enx525400123456.network"}
    assert got[-1]["MESSAGE"].startswith(b"applied 3 change(s)")


FULL_RUN_PROBE = """
import sys
from fwcfg_agent import log as fwlog
fwlog.SOCKET = sys.argv[1]
from fwcfg_agent.cli import main
code = main(sys.argv[2:])
print(",".join(m for m in {heavy!r} if m in sys.modules))
sys.exit(code)
"""


def test_a_first_boot_under_systemd_loads_no_heavy_modules(tmp_path: Path) -> None:
    """The unit's full run logs to journald without systemd-python (and its logging, uuid,
    datetime, socket) and sets the hostname without the socket module; argparse and
    subprocess are not needed either."""
    heavy = ("systemd", "logging", "uuid", "datetime", "socket", "subprocess", "argparse")
    path = str(tmp_path / "journal.socket")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    root = make_guest_root(tmp_path / "r", {"opt/GuestInfo": b"HOSTNAME=j1\nIPADDR=10.0.0.5\n"})
    try:
        proc = subprocess.run(
            [sys.executable, "-c", FULL_RUN_PROBE.format(heavy=heavy), path,
             "apply", "--root", str(root)],
            env={"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"], "INVOCATION_ID": "0" * 32},
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "", proc.stdout
        assert b"MESSAGE=applied 3 change(s)" in b"".join(_drain_socket(server))
    finally:
        server.close()


UNIT_CGROUP = "0::/system.slice/fwcfg-agent.service\n"


def _fake_journald(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   cgroup: str | None = None) -> socket.socket:
    """A datagram socket in journald's place, for the log to send to (read with
    _drain_socket), as under systemd (INVOCATION_ID set); with `cgroup`, what the log reads as
    its /proc/self/cgroup (the unit it names)."""
    from fwcfg_agent import log as fwlog

    path = str(tmp_path / "journal.socket")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    monkeypatch.setattr(fwlog, "SOCKET", path)
    if cgroup is not None:
        (tmp_path / "cgroup").write_text(cgroup)
        monkeypatch.setattr(fwlog, "CGROUP", str(tmp_path / "cgroup"))
    monkeypatch.setenv("INVOCATION_ID", "0" * 32)
    return server


def _drain_socket(server: Any) -> list[bytes]:
    """What was sent to the server so far (it is made non-blocking)."""
    server.setblocking(False)
    got = []
    while True:
        try:
            got.append(server.recv(65536))
        except BlockingIOError:
            return got


@pytest.mark.parametrize(("cgroup", "unit"), [
    ("0::/system.slice/fwcfg-agent.service\n", "fwcfg-agent.service"),
    ("12:pids:/system.slice/x.service\n1:name=systemd:/system.slice/fwcfg-agent.service\n"
     "0::/\n", "fwcfg-agent.service"),
    ("0::/system.slice/system-fwcfg\\x2dagent.slice/fwcfg-agent@eth0.service\n",
     "fwcfg-agent@eth0.service"),
    ("0::/user.slice/user-0.slice/session-3.scope\n", None),  # a shell: no unit to name
    ("0::/init.scope\n", None),
    ("0::/system.slice/.service\n", None),
    ("0::/system.slice/a b.service\n", None),
    ("0::/system.slice/a\nb.service\n", None),
    ("garbage", None),
    ("", None),
])
def test_the_unit_is_read_from_the_cgroup_path(cgroup: str, unit: str | None) -> None:
    from fwcfg_agent import log as fwlog

    assert fwlog.unit_of(cgroup) == unit


def test_every_message_names_its_unit_for_journalctl_u(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast run exits within milliseconds; journald, busy in early boot, may look up the
    sender's /proc entry after it is gone and store the message without _SYSTEMD_UNIT. Seen in
    a guest: `journalctl -u fwcfg-agent` then showed no "nothing changed". Each message carries
    OBJECT_SYSTEMD_UNIT, which `journalctl -u` matches for messages from root."""
    from fwcfg_agent import fast

    server = _fake_journald(tmp_path, monkeypatch, cgroup=UNIT_CGROUP)
    root = make_guest_root(tmp_path / "r", {"opt/GuestInfo": b"HOSTNAME=j1\nIPADDR=10.0.0.5\n"})
    from fwcfg_agent.cli import main

    assert main(["apply", "--root", str(root)]) == 0
    assert fast.run(["apply", "--root", str(root)]).code == 0
    got = [_parse_native(d) for d in _drain_socket(server)]
    server.close()
    assert got and all(f["OBJECT_SYSTEMD_UNIT"] == b"fwcfg-agent.service" for f in got), got
    assert got[-1]["MESSAGE_ID"] == logmod.MSG_UNCHANGED.encode(), got[-1]


def test_the_last_message_reaches_journald_after_the_run_has_ended(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run does not wait for journald to read its messages (in early boot that wait took
    up to half a second of a later boot): a datagram waits in the receiver's queue after the
    sender has closed its socket, so journald reads it whenever it gets to it, still naming
    the unit. Here the receiver reads nothing until the sender is gone."""
    server = _fake_journald(tmp_path, monkeypatch, cgroup=UNIT_CGROUP)

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"the log slept {seconds} s")

    monkeypatch.setattr("time.sleep", no_sleep)
    log = Log()
    assert log.to_journal
    log.info("nothing changed", logmod.MSG_UNCHANGED)
    log.close()  # no wait for the reader
    got = [_parse_native(d) for d in _drain_socket(server)]
    server.close()
    assert [f["MESSAGE"] for f in got] == [b"nothing changed"]
    assert got[0]["OBJECT_SYSTEMD_UNIT"] == b"fwcfg-agent.service"
