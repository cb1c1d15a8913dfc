"""The validated settings: what the payloads ask for, independent of any output format.

The output formats themselves are described in formats.py."""

from __future__ import annotations

import enum
import ipaddress
from typing import NamedTuple, Optional, Union

from .formats import NETWORK_FORMATS, Format

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class BootProto(str, enum.Enum):
    STATIC = "static"
    DHCP = "dhcp"
    NONE = "none"  # no addresses of its own from DHCP; static ones if given (as ifcfg)

    def __str__(self) -> str:
        return self.value


class Route(NamedTuple):
    destination: IPNetwork
    gateway: Optional[IPAddress] = None
    metric: Optional[int] = None

    @property
    def version(self) -> int:
        return self.destination.version


class Interface(NamedTuple):
    """One NIC's settings.

    `name` is the kernel name the files use; `mac` (lower case) is set when the payload picked the
    NIC by HWADDR (or the NIC is the first Ethernet NIC, picked by no key), and then every format
    that can match by MAC does so. `source` lists the fw_cfg entries the settings came from.

    Every field holds what a check in `validate` returned: `name` passed `interface_name` (and so
    may appear in file names), `mac` is canonical, addresses, gateways and routes are ipaddress
    objects without scope IDs (the templates write their str()). Only `extra`, the keys the agent
    passes through, holds payload text as it came, without control characters.
    """

    name: str
    mac: Optional[str] = None
    bootproto: BootProto = BootProto.STATIC
    addresses: tuple[IPInterface, ...] = ()
    gateway: Optional[ipaddress.IPv4Address] = None
    gateway6: Optional[ipaddress.IPv6Address] = None
    routes: tuple[Route, ...] = ()
    mtu: Optional[int] = None
    extra: tuple[tuple[str, str], ...] = ()
    source: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """A stable name for files and profiles: the kernel name for a NIC picked by DEVICE,
        `enx<MAC>` (systemd's MAC-based naming) for one matched by MAC, whose kernel name may
        still change while udev renames it."""
        return self.name if self.mac is None else "enx" + self.mac.replace(":", "")

    @property
    def ipv4(self) -> tuple[ipaddress.IPv4Interface, ...]:
        return tuple(a for a in self.addresses if isinstance(a, ipaddress.IPv4Interface))

    @property
    def ipv6(self) -> tuple[ipaddress.IPv6Interface, ...]:
        return tuple(a for a in self.addresses if isinstance(a, ipaddress.IPv6Interface))

    @property
    def dhcp(self) -> bool:
        return self.bootproto is BootProto.DHCP


class HostConfig(NamedTuple):
    """Everything the entries set, validated."""

    hostname: Optional[str] = None
    domain: Optional[str] = None
    dns: tuple[IPAddress, ...] = ()
    search: tuple[str, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def short_hostname(self) -> Optional[str]:
        return self.hostname.split(".", 1)[0] if self.hostname else None

    @property
    def fqdn(self) -> Optional[str]:
        if not self.hostname:
            return None
        if "." in self.hostname or not self.domain:
            return self.hostname
        return f"{self.hostname}.{self.domain}"


__all__ = ["NETWORK_FORMATS", "BootProto", "Format", "HostConfig", "IPAddress", "IPInterface",
           "IPNetwork", "Interface", "Route"]
