"""Which formats to write for a root: chosen from os-release and what is installed.

| the root                                         | network format |
|--------------------------------------------------|----------------|
| RHEL/CentOS/Rocky/Alma/Oracle 7 and 8            | ifcfg          |
| RHEL-like 9 and later, Fedora                    | nm             |
| netplan installed (Ubuntu, Debian cloud images)  | netplan        |
| NetworkManager enabled                           | nm             |
| systemd-networkd enabled                         | networkd       |
| ifupdown installed (Debian)                      | ifupdown       |
| NetworkManager installed                         | nm             |
| anything else                                    | networkd       |

hostname and hosts are always written. FORMATS= in agent.conf or --format replace the whole list.
"""

from __future__ import annotations

from .facts import Facts
from .formats import Format

_EL = ("rhel", "centos", "rocky", "almalinux", "ol", "fedora")


def _el_major(facts: Facts) -> int | None:
    ids = [facts.os_release.get("ID", ""), *facts.os_release.get("ID_LIKE", "").split()]
    if not any(i in _EL for i in ids):
        return None
    if facts.os_release.get("ID") == "fedora":
        return 99
    version = facts.os_release.get("VERSION_ID", "").split(".")[0]
    return int(version) if version.isdigit() else 99


def network_format(facts: Facts) -> Format:
    el = _el_major(facts)
    if el is not None:
        return Format.IFCFG if el < 9 else Format.NM
    if "netplan" in facts.installed:
        return Format.NETPLAN
    for manager, fmt in (("nm", Format.NM), ("networkd", Format.NETWORKD),
                         ("ifupdown", Format.IFUPDOWN)):
        if manager in facts.enabled:
            return fmt
    if "ifupdown" in facts.installed:
        return Format.IFUPDOWN
    if "nm" in facts.installed:
        return Format.NM
    return Format.NETWORKD


def formats(facts: Facts) -> tuple[Format, ...]:
    return (Format.HOSTNAME, Format.HOSTS, network_format(facts))
