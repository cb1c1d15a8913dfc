"""Making changed files take effect on the running boot (netplan's generator ran already)."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import socket
from pathlib import Path

import pytest

from fwcfg_agent.activate import after_write
from fwcfg_agent.log import Log

from .agent import agent
from .conftest import make_guest_root
from .forked import in_child


def test_netplan_is_generated_again(tmp_path: Path) -> None:
    root = make_guest_root(tmp_path / "root", {"opt/GuestInfo": b"IPADDR=192.0.2.10/24\n"},
                           installed=("usr/sbin/netplan",))
    assert agent(root, "apply").code == 0
    assert (root / "etc/netplan/90-fwcfg-agent.yaml").exists()
    log = Log(use_journal=False)
    after_write(root, ["hosts", "netplan"], log)
    generated = list((root / "run/systemd/network").glob("*.network"))
    assert generated, "netplan generate wrote no networkd file"
    assert "192.0.2.10/24" in generated[0].read_text()


def test_other_formats_need_nothing(tmp_path: Path) -> None:
    after_write(tmp_path, ["networkd", "hostname"], Log(use_journal=False))
    assert list(tmp_path.iterdir()) == []


def test_broken_netplan_file_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "etc/netplan").mkdir(parents=True)
    (tmp_path / "etc/netplan/90-fwcfg-agent.yaml").write_text("network: [broken\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        after_write(tmp_path, ["netplan"], Log(use_journal=False))
    assert "netplan generate failed" in err.getvalue()


def test_runs_netplans_generator_not_its_python_front_end() -> None:  # (--root: the tests)
    """`netplan generate` only runs the generator; calling it directly skips a Python start-up
    (seconds in a slow guest). This machine has netplan.io (tools/bootstrap)."""
    from fwcfg_agent.activate import _generator

    argv = _generator()
    assert argv is not None and argv[0].endswith("/netplan/generate") and len(argv) == 1


def test_on_the_running_system_netplan_runs_as_the_systemd_generator() -> None:
    """netplan 1.x's generator only works under its generator name; 0.106's works both ways."""
    from fwcfg_agent.activate import SYSTEMD_GENERATORS, _first_executable

    path = _first_executable(SYSTEMD_GENERATORS)
    assert path is not None and "/systemd/system-generators/" in path


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")


@needs_root
def test_the_generator_does_not_wait_for_a_busy_udevd(tmp_path: Path) -> None:
    """On the running system (here: a private mount namespace with /run and /etc/netplan of
    its own) the generator asks udevd to reload; an early-boot udevd that does not answer
    (a socket nobody accepts on) made it wait until our time limit. It runs where that
    socket fails at once, and networkd's file is written."""
    import ctypes

    from fwcfg_agent import activate

    def run() -> object:
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.unshare(activate.CLONE_NEWNS) == 0
        assert libc.mount(b"none", b"/", None, activate.MS_REC | activate.MS_PRIVATE, None) == 0
        for d in (b"/run", b"/etc/netplan"):
            os.makedirs(d, exist_ok=True)
            assert libc.mount(b"tmpfs", d, b"tmpfs", 0, None) == 0
        os.makedirs("/run/udev")
        deaf = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        deaf.bind(activate.UDEV_CONTROL)
        deaf.listen(8)  # connect() succeeds; nobody ever answers
        with open("/etc/netplan/90-fwcfg-agent.yaml", "w") as f:
            f.write(NETPLAN_YAML)
        os.chmod("/etc/netplan/90-fwcfg-agent.yaml", 0o600)
        activate.NETPLAN_TIMEOUT = 15.0
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            ok = activate.netplan_generate(Path("/"), Log(use_journal=False))
        files = sorted(os.listdir("/run/systemd/network"))
        text = "".join(Path(f"/run/systemd/network/{f}").read_text() for f in files)
        return ok, files, text, err.getvalue()

    got = in_child(run)
    assert isinstance(got, tuple)
    ok, files, text, err = got
    assert ok, err
    assert "192.0.2.10/24" in text, (files, text)


@needs_root
def test_shadowed_paths_refuse_connections_in_the_child_only(tmp_path: Path) -> None:
    from fwcfg_agent.activate import shadow

    path = str(tmp_path / "control")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def connect() -> object:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect(path)
            return "connected"
        except OSError as e:
            return errno.errorcode.get(e.errno or 0, str(e.errno))
        finally:
            c.close()

    def shadowed() -> object:
        assert shadow([path, str(tmp_path / "not-there")])
        return connect()

    try:
        assert in_child(shadowed) == "ECONNREFUSED"
        assert connect() == "connected"
    finally:
        server.close()


NETPLAN_YAML = """\
network:
  version: 2
  renderer: networkd
  ethernets:
    eth0:
      match:
        macaddress: "52:54:00:12:34:56"
      addresses:
        - "192.0.2.10/24"
"""
