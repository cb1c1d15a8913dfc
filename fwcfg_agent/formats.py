"""Every output format, each in one declarative entry: its files (template, path, mode), how
the agent tells that the root uses it (markers of the installed manager, the unit whose
enablement says it is in use), whether its files name NICs by their kernel names, what a
running system needs after a change (activation), and the real program that checks its output.

Adding a format is one member of `Format`, one entry in `SPECS` and its template; the
renderer, the detection, the NIC waits, activation, the state's list of managed paths and the
consumer tests all read this table. Which format a root gets (the precedence between them)
is detect.py's policy.
"""

from __future__ import annotations

import enum
from typing import Optional

from .tuples import NamedTuple


class Format(str, enum.Enum):
    """The files the agent can write. The value is the name used by --format and FORMATS=."""

    HOSTNAME = "hostname"
    HOSTS = "hosts"
    IFCFG = "ifcfg"
    NETPLAN = "netplan"
    NETWORKD = "networkd"
    NM = "nm"
    IFUPDOWN = "ifupdown"

    def __str__(self) -> str:
        return self.value


class FileSpec(NamedTuple):
    template: str
    # The path as the guest sees it. In a per-interface file, {name} is the NIC's kernel name
    # and {label} Interface.label (enx<MAC> for a NIC matched by MAC: stable while udev renames).
    path: str
    mode: int
    per_interface: bool = False


class FormatSpec(NamedTuple):
    files: tuple[FileSpec, ...]
    network: bool = True  # configures NICs: nothing to write without interfaces
    markers: tuple[str, ...] = ()  # files (under the root) whose presence says it is installed
    unit: Optional[str] = None  # the unit whose enablement says it is the manager in use
    names_nics: bool = False  # files name NICs by kernel name: wait for udev's names first
    activation: Optional[str] = None  # what a running system needs after a change (activate.py)
    consumer: tuple[str, ...] = ()  # the program that checks its output (the test suite runs it)
    shared: bool = False  # a block inside a file the admin owns (never removed, only rewritten)


SPECS: dict[Format, FormatSpec] = {
    Format.HOSTNAME: FormatSpec(
        (FileSpec("hostname.j2", "/etc/hostname", 0o644),), network=False),
    Format.HOSTS: FormatSpec(
        (FileSpec("hosts.j2", "/etc/hosts", 0o644),), network=False, shared=True),
    Format.IFCFG: FormatSpec(
        (FileSpec("ifcfg.j2", "/etc/sysconfig/network-scripts/ifcfg-{name}", 0o644, True),
         FileSpec("route.j2", "/etc/sysconfig/network-scripts/route-{name}", 0o644, True),
         FileSpec("route6.j2", "/etc/sysconfig/network-scripts/route6-{name}", 0o644, True)),
        markers=("etc/sysconfig/network-scripts/ifup-eth", "usr/libexec/nm-ifcfg-rh"),
        names_nics=True, consumer=("bash",)),
    Format.NETPLAN: FormatSpec(
        (FileSpec("netplan.yaml.j2", "/etc/netplan/90-fwcfg-agent.yaml", 0o600),),
        markers=("usr/sbin/netplan", "usr/bin/netplan", "usr/lib/netplan/generate",
                 "lib/netplan/generate"),
        activation="netplan-generate", consumer=("netplan", "generate", "--root-dir")),
    Format.NETWORKD: FormatSpec(
        (FileSpec("networkd.network.j2", "/etc/systemd/network/10-fwcfg-{label}.network",
                  0o644, True),
         FileSpec("networkd.netdev.j2", "/etc/systemd/network/10-fwcfg-{label}.netdev",
                  0o644, True)),
        markers=("usr/lib/systemd/systemd-networkd", "lib/systemd/systemd-networkd"),
        unit="systemd-networkd.service", consumer=("systemd-analyze", "verify")),
    Format.NM: FormatSpec(
        (FileSpec("nm.nmconnection.j2",
                  "/etc/NetworkManager/system-connections/fwcfg-{label}.nmconnection", 0o600,
                  True),),
        markers=("usr/sbin/NetworkManager",), unit="NetworkManager.service",
        consumer=("nmcli", "--offline")),
    Format.IFUPDOWN: FormatSpec(
        (FileSpec("ifupdown.j2", "/etc/network/interfaces.d/fwcfg-{label}", 0o644, True),),
        markers=("usr/sbin/ifup", "sbin/ifup"), unit="networking.service",
        consumer=("ifquery",)),
}

NETWORK_FORMATS = tuple(f for f, spec in SPECS.items() if spec.network)
# cloud-init is no format, but where it is installed a drop-in keeps it off the network.
CLOUD_INIT_MARKERS = ("usr/bin/cloud-init", "etc/cloud/cloud.cfg")
CLOUD_INIT_DROPIN = FileSpec("cloud-init.cfg.j2", "/etc/cloud/cloud.cfg.d/99-fwcfg-agent.cfg",
                             0o644)


def managed_paths() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(files, directories) the agent may write or remove: each format's fixed paths, and the
    directory of each per-interface path (any plain file name in it)."""
    files: list[str] = []
    dirs: list[str] = []
    for spec in (*SPECS.values(), FormatSpec((CLOUD_INIT_DROPIN,))):
        for f in spec.files:
            if "{" in f.path:
                dirs.append(f.path.rpartition("/")[0] + "/")
            else:
                files.append(f.path)
    return tuple(dict.fromkeys(files)), tuple(dict.fromkeys(dirs))
