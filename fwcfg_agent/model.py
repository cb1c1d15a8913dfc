"""The validated settings: what the payloads ask for, independent of any output format.

The output formats themselves are described in formats.py."""

from __future__ import annotations

import enum
import ipaddress
from typing import Optional, Union

from .formats import NETWORK_FORMATS, Format
from .tuples import NamedTuple

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
    # IPv6 on the link (see README "IPv6 on each interface"): IPV6_DISABLED=yes (no IPv6 at all,
    # not even a link-local address), IPV6INIT=no (no IPv6 configuration: no SLAAC, no RAs, no
    # DHCPv6; the kernel's link-local address stays), SLAAC and RAs (IPV6_AUTOCONF: None when
    # the payload says nothing and gives no static IPv6 address, i.e. the distribution's
    # default; static IPv6 addresses make it False unless IPV6_AUTOCONF=yes), DHCPv6 (DHCPV6C).
    ipv6_disabled: bool = False
    ipv6_init: bool = True
    ipv6_autoconf: Optional[bool] = None
    dhcp6: bool = False
    # Routing with several NICs: DEFROUTE=no and IPV6_DEFROUTE=no (no IPv4, no IPv6 default
    # route on this NIC, from any source: the keys' meaning in ifcfg), the metric of its default
    # routes, of its routes without a metric of their own and of the routes DHCP or RAs bring
    # (IPV4_ROUTE_METRIC, IPV6_ROUTE_METRIC), and PEERDNS=no (name servers from DHCP, DHCPv6 or
    # RAs are not used).
    defroute: bool = True
    defroute6: bool = True
    metric4: Optional[int] = None
    metric6: Optional[int] = None
    peerdns: bool = True
    # Shapes beyond one flat NIC (see README "VLANs, bonds and bridges"): `kind` is
    # ethernet, vlan, bond or bridge. A VLAN has its `parent` (an interface name) and `vlan_id`;
    # a bond its `bond_options` (canonical kernel option names and values, `mode` first); a
    # bridge `stp` and `forward_delay` (seconds). A member of a bond or bridge names it in
    # `master` (and `master_kind`); it carries no addresses of its own.
    kind: str = "ethernet"
    parent: Optional[str] = None
    vlan_id: Optional[int] = None
    bond_options: tuple[tuple[str, str], ...] = ()
    stp: bool = False
    forward_delay: Optional[int] = None
    master: Optional[str] = None
    master_kind: Optional[str] = None
    # Where the keys above came from, for the errors of formats that cannot express one:
    # (key, entry, line).
    origins: tuple[tuple[str, str, int], ...] = ()

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

    @property
    def accept_ra(self) -> bool:
        """Router advertisements are accepted (explicitly, or by the distribution's default)."""
        return not self.ipv6_disabled and self.ipv6_init and self.ipv6_autoconf is not False

    @property
    def virtual(self) -> bool:
        """A device the configuration creates (VLAN, bond, bridge), not a NIC."""
        return self.kind != "ethernet"

    def members(self, config: HostConfig) -> tuple[Interface, ...]:
        """The interfaces of `config` enslaved to this bond or bridge."""
        return tuple(i for i in config.interfaces if i.master == self.name)

    def vlans(self, config: HostConfig) -> tuple[Interface, ...]:
        """The VLANs of `config` on top of this interface."""
        return tuple(i for i in config.interfaces if i.kind == "vlan" and i.parent == self.name)

    def origin(self, key: str) -> Optional[tuple[str, int]]:
        """The entry and line that set `key`, if the payload set it."""
        for k, entry, line in self.origins:
            if k == key:
                return entry, line
        return None


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
