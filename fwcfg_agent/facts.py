"""What the agent learns about the root before rendering: OS, NICs, installed managers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple, Optional

from .errors import PayloadError
from .fast import MANAGER_MARKERS, MANAGER_UNITS, WANTS_DIRS
from .paths import Root
from .payload import parse
from .settings import NetDev

ARPHRD_ETHER = "1"


class Facts(NamedTuple):
    os_release: Mapping[str, str] = MappingProxyType({})
    netdevs: tuple[NetDev, ...] = ()
    hosts: Optional[str] = None  # the current /etc/hosts, for the managed block
    installed: frozenset[str] = frozenset()  # see fast.MANAGER_MARKERS
    enabled: frozenset[str] = frozenset()

    @property
    def has_cloud_init(self) -> bool:
        return "cloud-init" in self.installed


def read_os_release(root: Root) -> dict[str, str]:
    for rel in ("etc/os-release", "usr/lib/os-release"):
        try:
            data = (root / rel).read_bytes()
        except OSError:
            continue
        out: dict[str, str] = {}
        for line in data.splitlines():
            try:
                out.update((a.key, a.value) for a in parse(rel, line).assignments)
            except PayloadError:
                continue  # os-release is not ours to judge: skip what we cannot read
        return out
    return {}


def read_netdevs(root: Root) -> tuple[NetDev, ...]:
    """Physical Ethernet NICs, in ifindex order (name order where ifindex is unknown)."""
    base = root.class_net
    try:
        names = os.listdir(base)
    except OSError:
        return ()
    found: list[tuple[int, str, str]] = []
    for name in names:
        d = base / name
        try:
            if (d / "type").read_text().strip() != ARPHRD_ETHER:
                continue
            if not (d / "device").exists() or (d / "wireless").exists():
                continue
            mac = (d / "address").read_text().strip().lower()
        except OSError:
            continue
        try:
            index = int((d / "ifindex").read_text())
        except (OSError, ValueError):
            index = 1 << 30
        found.append((index, name, mac))
    found.sort()
    return tuple(NetDev(name, mac) for _, name, mac in found)


def gather(root: Root) -> Facts:
    installed = frozenset(
        m for m, paths in MANAGER_MARKERS.items() if any((root / p).exists() for p in paths)
    )
    enabled = frozenset(
        m for m, unit in MANAGER_UNITS.items()
        if any((root / "etc/systemd/system" / w / unit).exists() for w in WANTS_DIRS)
    )
    try:
        hosts: Optional[str] = (root / "etc/hosts").read_text(encoding="utf-8", errors="replace")
    except OSError:
        hosts = None
    return Facts(read_os_release(root), read_netdevs(root), hosts, installed, enabled)
