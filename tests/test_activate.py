"""Making changed files take effect on the running boot (netplan's generator ran already)."""

from __future__ import annotations

import io
from pathlib import Path

from fwcfg_agent.activate import after_write
from fwcfg_agent.log import Log

from .agent import agent
from .conftest import make_guest_root


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
    import contextlib

    with contextlib.redirect_stderr(err):
        after_write(tmp_path, ["netplan"], Log(use_journal=False))
    assert "netplan generate failed" in err.getvalue()


def test_runs_netplans_generator_not_its_python_front_end() -> None:
    """`netplan generate` only runs the generator; calling it directly skips a Python start-up
    (seconds in a slow guest). This machine has netplan.io (tools/bootstrap)."""
    from fwcfg_agent.activate import _generator

    argv = _generator()
    assert argv is not None and argv[0].endswith("/netplan/generate") and len(argv) == 1
