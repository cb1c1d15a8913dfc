"""Shared fixtures, and a tripwire: no test may touch the real /sys, /etc or agent state."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent import guard
from tests.fakeroot import (
    write_fwcfg_tree,
    write_netdev,
    write_os_release,
    write_qemu_acpi_device,
)

REPO = Path(__file__).resolve().parent.parent

# Paths of the real system the agent would read or write. A test that reaches them is broken:
# everything must go through --root.
_FORBIDDEN = (
    "/sys/firmware", "/sys/class/net", "/sys/bus/acpi", "/sys/bus/platform",
    "/etc/hostname", "/etc/hosts", "/etc/os-release", "/etc/fwcfg-agent", "/etc/netplan",
    "/etc/systemd/network", "/etc/NetworkManager", "/etc/network", "/etc/sysconfig",
    "/etc/cloud", "/var/lib/fwcfg-agent", "/run/fwcfg-agent.lock", "/usr/lib/os-release",
    "/proc/sys/kernel/random/boot_id",
)
_WATCHED = {"open", "os.listdir", "os.scandir", "os.mkdir", "os.rename", "os.remove",
            "os.chmod", "os.symlink", "os.truncate"}
_armed = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _armed or event not in _WATCHED or not args:
        return
    path = args[0]
    if isinstance(path, int) or path is None:
        return
    try:
        text = os.fsdecode(path)
    except TypeError:
        return
    if not text.startswith("/"):
        return
    norm = os.path.normpath(text)
    for bad in _FORBIDDEN:
        if norm == bad or norm.startswith(bad + "/"):
            raise AssertionError(f"test touched the real system: {event} {norm}")


sys.addaudithook(_hook)


@pytest.fixture(autouse=True)
def tripwire() -> Iterator[None]:
    global _armed
    _armed = True
    try:
        yield
    finally:
        _armed = False


@pytest.fixture(autouse=True)
def write_guard(tmp_path: Path) -> Iterator[None]:
    """Fail any test that writes outside its tmp_path (see tests/agent.py, Guard: only the
    byte-code cache, /dev/null and hypothesis' database are allowed besides). A test narrows it
    further with `guard.confined(root)`."""
    allowed = [tmp_path]
    if os.environ.get("FWCFG_REGEN_GOLDEN"):  # rewriting the golden files on purpose
        allowed.append(REPO / "tests/golden")
    guard.arm(allowed)
    try:
        yield
    finally:
        found = guard.disarm()
    if found:
        pytest.fail(f"the test wrote outside {tmp_path}: {found}")


def make_guest_root(
    root: Path,
    entries: dict[str, bytes],
    *,
    nics: tuple[tuple[str, str], ...] = (("ens3", "52:54:00:12:34:56"),),
    os_release: dict[str, str] | None = None,
    hosts: str | None = "127.0.0.1\tlocalhost\n",
    installed: tuple[str, ...] = (),
) -> Path:
    """A root that looks like a freshly booted QEMU guest to the agent."""
    write_qemu_acpi_device(root)
    write_fwcfg_tree(root, entries)
    for name, mac in nics:
        write_netdev(root, name, mac)
    write_os_release(root, **(os_release or {"ID": "debian", "VERSION_ID": "12"}))
    if hosts is not None:
        (root / "etc/hosts").write_text(hosts)
    for rel in installed:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("")
    return root


@pytest.fixture
def guest_root(tmp_path: Path) -> Path:
    return tmp_path / "root"
