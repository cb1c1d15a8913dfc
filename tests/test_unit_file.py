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


def test_ordering_for_early_boot() -> None:
    d = _directives()
    values: dict[str, list[str]] = {}
    for k, v in d:
        values.setdefault(k, []).extend(v.split())
    assert values["DefaultDependencies"] == ["no"]
    assert "network-pre.target" in values["Before"]
    assert "network-pre.target" in values["Wants"]
    for manager in ("systemd-networkd.service", "NetworkManager.service", "networking.service"):
        assert manager in values["Before"]
    assert "local-fs.target" in values["After"]
    assert values["Type"] == ["oneshot"]
    assert values["ConditionKernelCommandLine"] == ["!fwcfg-agent=off"]
    assert values["TimeoutStartSec"] and values["TimeoutStartSec"][0] != "infinity"
    assert "network-pre.target" not in values.get("After", [])


def test_every_ordering_line_says_why() -> None:
    lines = UNIT.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.split("=", 1)[0] in ("After", "Before", "Wants", "Requires", "Conflicts",
                                     "DefaultDependencies", "ConditionKernelCommandLine"):
            # a comment right above, or above the one directive it is paired with
            above = lines[max(0, i - 2):i]
            assert any(a.startswith("#") for a in above), f"no comment above {line!r}"
