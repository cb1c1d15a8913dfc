"""What the agent learns about the root before rendering: OS, NICs, installed managers.

Every read goes through the run's Reader, so the fast path replays exactly these reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Optional

from . import nics
from .errors import PayloadError
from .formats import CLOUD_INIT_MARKERS, SPECS
from .payload import parse
from .rootfs import Reader
from .settings import NetDev
from .tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .model import HostConfig

# Files whose presence says a network manager (or cloud-init) is installed, and the units
# whose enablement (a wants/ link) says which is in use: from the formats' table.
MANAGER_MARKERS: dict[str, tuple[str, ...]] = {
    **{f.value: spec.markers for f, spec in SPECS.items() if spec.markers},
    "cloud-init": CLOUD_INIT_MARKERS,
}
MANAGER_UNITS: dict[str, str] = {f.value: spec.unit for f, spec in SPECS.items() if spec.unit}
WANTS_DIRS = ("multi-user.target.wants", "network-online.target.wants", "sysinit.target.wants")
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")


class Facts(NamedTuple):
    os_release: Mapping[str, str] = MappingProxyType({})
    netdevs: tuple[NetDev, ...] = ()
    hosts: Optional[str] = None  # the current /etc/hosts, for the managed block
    installed: frozenset[str] = frozenset()  # see MANAGER_MARKERS
    enabled: frozenset[str] = frozenset()

    @property
    def has_cloud_init(self) -> bool:
        return "cloud-init" in self.installed


def read_os_release(reader: Reader) -> dict[str, str]:
    for rel in OS_RELEASE:
        data = reader.read(rel)
        if data is None:
            continue
        out: dict[str, str] = {}
        for line in data.splitlines():
            try:
                out.update((a.key, a.value) for a in parse(rel, line).assignments)
            except PayloadError:
                continue  # os-release is not ours to judge: skip what we cannot read
        return out
    return {}


def read_netdevs(reader: Reader, *, with_names: bool) -> tuple[NetDev, ...]:
    """The Ethernet NICs, in ifindex order, recorded as the fast path compares them."""
    found = nics.read(reader.root)
    reader.fact("n", "names" if with_names else "macs",
                nics.signature(found, with_names=with_names))
    return tuple(NetDev(n.name, n.mac) for n in found)


def gather(reader: Reader, *, with_names: bool = False) -> Facts:
    installed = frozenset(
        m for m, paths in MANAGER_MARKERS.items() if any([reader.exists(p) for p in paths])
    )
    enabled = frozenset(
        m for m, unit in MANAGER_UNITS.items()
        if any([reader.exists(f"etc/systemd/system/{w}/{unit}") for w in WANTS_DIRS])
    )
    hosts = reader.text("etc/hosts")
    return Facts(read_os_release(reader), read_netdevs(reader, with_names=with_names), hosts,
                 installed, enabled)


# What ifupdown needs in the guest for each shape: the package, and the files any of which
# says it is installed (its program, its if-pre-up.d script that reads the stanza's options).
IFUPDOWN_TOOLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bond": ("ifenslave", ("sbin/ifenslave", "usr/sbin/ifenslave",
                           "etc/network/if-pre-up.d/ifenslave")),
    "vlan": ("vlan", ("sbin/vconfig", "usr/sbin/vconfig", "etc/network/if-pre-up.d/vlan")),
    "bridge": ("bridge-utils", ("sbin/brctl", "usr/sbin/brctl",
                                "etc/network/if-pre-up.d/bridge")),
}


def missing_ifupdown_tools(reader: Reader, config: HostConfig) -> list[str]:
    """One warning per kind of device (bond, VLAN, bridge) the ifupdown files configure
    whose package the root lacks: ifup would then not create it. A warning, not an error: the
    image may get the package later, and every other setting still applies. The checks go
    through the Reader, so a later boot that finds the package installed is a full run."""
    out: list[str] = []
    for kind, (package, paths) in IFUPDOWN_TOOLS.items():
        names = [i.name for i in config.interfaces if i.kind == kind]
        if names and not any([reader.exists(p) for p in paths]):
            out.append(f"ifupdown: {', '.join(names)} {'is a' if len(names) == 1 else 'are'} "
                       f"{kind}{'' if len(names) == 1 else 's'}, but the root has no {package} "
                       f"(none of /{', /'.join(paths)}): install {package} in the image, or "
                       "ifup will not create "
                       f"{'it' if len(names) == 1 else 'them'}")
    return out
