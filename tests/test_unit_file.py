"""The systemd unit: systemd-analyze verify accepts it, and its ordering is what boot needs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .conftest import REPO

UNIT = REPO / "units/fwcfg-agent.service"


def _directives() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.append((k, v))
    return out


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: run tools/bootstrap"
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    exe = root / "usr/bin/fwcfg-agent"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    shutil.copy(UNIT, units)
    r = subprocess.run([tool, "verify", "--man=no", f"--root={root}",
                        "/etc/systemd/system/fwcfg-agent.service"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a unit with a bad ExecStart is refused."""
    tool = shutil.which("systemd-analyze")
    assert tool
    root = tmp_path / "root"
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / "fwcfg-agent.service").write_text(UNIT.read_text())
    r = subprocess.run([tool, "verify", "--man=no", f"--root={root}",
                        "/etc/systemd/system/fwcfg-agent.service"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "not executable" in r.stdout + r.stderr


# The network managers the packages order the agent before, as the host installs them (tools/
# bootstrap: the same Debian release and systemd as the guests).
MANAGERS = ("systemd-networkd.service", "NetworkManager.service", "networking.service")


def _boot_root(tmp_path: Path, unit_text: str) -> Path:
    """A root with the host's systemd units, every network manager enabled and the agent
    installed and enabled as its packages do (sysinit.target.wants)."""
    root = tmp_path / "root"
    units = root / "usr/lib/systemd/system"
    host = Path("/usr/lib/systemd/system")
    missing = [m for m in MANAGERS if not (host / m).exists()]
    assert not missing, f"{missing} not installed on this host: run tools/bootstrap"
    shutil.copytree(host, units, symlinks=True)
    (root / "usr/bin").mkdir(parents=True)
    exe = root / "usr/bin/fwcfg-agent"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (units / "fwcfg-agent.service").write_text(unit_text)
    wants = root / "etc/systemd/system/sysinit.target.wants"
    wants.mkdir(parents=True)
    (wants / "fwcfg-agent.service").symlink_to("/usr/lib/systemd/system/fwcfg-agent.service")
    subprocess.run(["systemctl", f"--root={root}", "enable", *MANAGERS], check=True,
                   capture_output=True, timeout=60)
    return root


def _verify_boot(root: Path) -> subprocess.CompletedProcess[str]:
    """systemd-analyze verify of the boot's whole transaction (multi-user.target): it reports
    ordering cycles, and the jobs it deletes to break them."""
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: run tools/bootstrap"
    return subprocess.run([tool, "verify", "--man=no", f"--root={root}", "multi-user.target"],
                          capture_output=True, text=True, timeout=120)


def test_boot_with_every_manager_has_no_ordering_cycle(tmp_path: Path) -> None:
    """The agent's ordering fits the boot of a system with networkd, NetworkManager and
    ifupdown all enabled, with the real units of udev, journald and the managers."""
    r = _verify_boot(_boot_root(tmp_path, UNIT.read_text()))
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "cycle" not in out and "fwcfg-agent" not in out, out


def test_verify_of_the_boot_catches_an_ordering_cycle(tmp_path: Path) -> None:
    """The check above can fail: an agent ordered after network.target (and so after the
    managers it must precede) makes systemd break the boot's transaction."""
    text = UNIT.read_text().replace("\nAfter=", "\nAfter=network.target ", 1)
    r = _verify_boot(_boot_root(tmp_path, text))
    assert "ordering cycle" in r.stdout + r.stderr, r.stdout + r.stderr


def test_ordering_for_early_boot() -> None:
    d = _directives()
    values: dict[str, list[str]] = {}
    for k, v in d:
        values.setdefault(k, []).extend(v.split())
    assert values["DefaultDependencies"] == ["no"]
    assert "network-pre.target" in values["Before"]
    assert "network-pre.target" in values["Wants"]
    for manager in MANAGERS:
        assert manager in values["Before"]
    assert "local-fs.target" in values["After"]
    assert values["Type"] == ["oneshot"]
    assert values["ConditionKernelCommandLine"] == ["!fwcfg-agent=off"]
    assert values["TimeoutStartSec"] and values["TimeoutStartSec"][0] != "infinity"
    assert "network-pre.target" not in values.get("After", [])
    # never before the root is writable; journald takes its events
    for unit in ("local-fs.target", "systemd-remount-fs.service", "systemd-journald.service"):
        assert unit in values["After"], unit
    assert "modprobe@qemu_fw_cfg.service" in values["Wants"]
    assert "modprobe@qemu_fw_cfg.service" in values["After"]
    # virtio-net's driver loads from the start of boot, and the agent does not wait for it
    assert "modprobe@virtio_net.service" in values["Wants"]
    assert "modprobe@virtio_net.service" not in values["After"]
    # alongside udev's coldplug, not after it: the agent loads the NIC drivers itself
    assert "systemd-udev-trigger.service" not in values["After"]
    assert "systemd-udev-settle.service" not in values["After"] + values.get("Wants", [])
    # udevd's sockets are there, so the uevents of the NICs the agent brings up queue for it
    for unit in ("systemd-udevd-kernel.socket", "systemd-udevd-control.socket"):
        assert unit in values["After"], unit
    for unit in ("ifupdown-pre.service", "cloud-init-local.service", "sysinit.target",
                 "systemd-hostnamed.service", "network.service"):
        assert unit in values["Before"], unit
    assert values["Nice"] and int(values["Nice"][0]) < 0


def test_every_ordering_line_says_why() -> None:
    lines = UNIT.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.split("=", 1)[0] in ("After", "Before", "Wants", "Requires", "Conflicts",
                                     "DefaultDependencies", "ConditionKernelCommandLine"):
            # a comment right above, or above the one directive it is paired with
            above = lines[max(0, i - 2):i]
            assert any(a.startswith("#") for a in above), f"no comment above {line!r}"
