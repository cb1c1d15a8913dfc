"""`fwcfg-agent host preview`: the guest's own dry run on a throwaway root of each kind; and
the host half imports neither pyudev nor systemd-python."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fwcfg_agent.host.preview import DISTROS
from tests.agent import guard
from tests.test_host_check import MAC0, MAC1, NET0, host, payload

REPO = Path(__file__).resolve().parent.parent
FIRST = b"IPADDR=192.0.2.20/24\n"


@pytest.fixture(autouse=True)
def temp_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


WANT = {
    "debian12": "/etc/network/interfaces.d/fwcfg-enx525400123456 (mode 0644, ifupdown, created)",
    "ubuntu": "/etc/netplan/90-fwcfg-agent.yaml (mode 0600, netplan, created)",
    "el8": "/etc/sysconfig/network-scripts/ifcfg-enp1s0 (mode 0644, ifcfg, created)",
    "el9": "/etc/NetworkManager/system-connections/fwcfg-enx525400123456.nmconnection (mode "
           "0600, nm, created)",
    "fedora": "/etc/NetworkManager/system-connections/fwcfg-enx525400123456.nmconnection (mode "
              "0600, nm, created)",
    "networkd": "/etc/systemd/network/10-fwcfg-enx525400123456.network (mode 0644, networkd, "
                "created)",
}


def test_every_distro_is_covered() -> None:
    assert set(WANT) == set(DISTROS)


@pytest.mark.parametrize("distro", sorted(DISTROS))
def test_each_kind_of_guest_gets_its_files(tmp_path: Path, distro: str) -> None:
    with guard.confined(tmp_path):
        r = host("preview", "--distro", distro, "--mac", MAC0,
                 f"opt/net0={payload(tmp_path, NET0)}")
    assert r.code == 0, r.err
    assert r.out.startswith(f"=== {distro}: ")
    writes = re.findall(r"^### Write (.*)$", r.out, re.M)
    assert writes[:2] == ["/etc/hostname (mode 0644, hostname, created)",
                          "/etc/hosts (mode 0644, hosts, updated)"]
    assert WANT[distro] in writes, writes
    assert "192.0.2.10" in r.out
    if distro == "ubuntu":  # cloud-init is installed there: the agent keeps it off the network
        assert any(w.startswith("/etc/cloud/cloud.cfg.d/99-fwcfg-agent.cfg") for w in writes)
    assert list(tmp_path.iterdir()) == [tmp_path / "p.env"]  # the throwaway root is gone


def test_first_nic_and_all_distros_by_default(tmp_path: Path) -> None:
    r = host("preview", "--mac", MAC1, "--mac", MAC0, f"opt/a={payload(tmp_path, FIRST)}")
    assert r.code == 0, r.err
    assert re.findall(r"^=== (\w+):", r.out, re.M) == sorted(DISTROS)
    # the NICs are numbered in --mac order: the first NIC is MAC1's
    start = r.out.index("=== networkd:")
    assert "### Write /etc/systemd/network/10-fwcfg-enx525400123457.network" in r.out[start:]
    assert f"MACAddress={MAC1}" in r.out[start:]


def test_a_bad_payload_previews_nothing(tmp_path: Path) -> None:
    r = host("preview", f"opt/a={payload(tmp_path, b'IPADDR=1.2.3.4.5')}")
    assert r.code == 3 and r.out == ""
    assert "opt/a, line 1, key IPADDR" in r.err


def test_the_host_half_loads_no_pyudev_or_systemd(tmp_path: Path) -> None:
    p = payload(tmp_path, NET0)
    code = f"""
import sys, tempfile
tempfile.tempdir = {str(tmp_path)!r}
from fwcfg_agent.cli import main
for argv in (["check", "opt/a={p}"], ["args", "--for", "libvirt", "opt/a={p}"],
             ["preview", "opt/a={p}"]):
    assert main(["host", *argv]) == 0, argv
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("pyudev", "systemd"))
assert not bad, bad
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       check=False, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr


def test_the_guests_agent_conf_decides(tmp_path: Path) -> None:
    """--agent-conf is the guest's agent.conf: what it excludes is not written (as `check`
    warns), and its FORMATS choose the files."""
    conf = tmp_path / "agent.conf"
    conf.write_text("EXCLUDE='opt/other/*'\nFORMATS='hostname networkd'\n")
    other = payload(tmp_path, b"HOSTNAME=not-ours.example.org\n", "other.env")
    entries = [f"opt/net0={payload(tmp_path, NET0)}", f"opt/other/x={other}"]
    checked = host("check", "--agent-conf", str(conf), *entries)
    assert "opt/other/x: the agent will not read it" in checked.err
    with guard.confined(tmp_path):
        r = host("preview", "--agent-conf", str(conf), "--distro", "el9", "--mac", MAC0,
                 *entries)
    assert r.code == 0, r.err
    writes = re.findall(r"^### Write (.*)$", r.out, re.M)
    assert "/etc/systemd/network/10-fwcfg-enx525400123456.network (mode 0644, networkd, " \
           "created)" in writes, writes
    assert not any("NetworkManager" in w or "hosts" in w for w in writes)
    assert "/etc/hostname (mode 0644, hostname, created)" in writes
    assert "not-ours" not in r.out and "web1.example.org" in r.out
    assert host("preview", "--agent-conf", str(tmp_path / "nope.conf"), *entries).code == 2
