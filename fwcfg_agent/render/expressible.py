"""What an output format cannot say. A setting no template of a format can express is never
dropped: rendering that format fails with exit 3, naming the entry, line and key, before any
file is written (the plan is made before the first write).

Each rule is one (format, key, test, reason) row; the test reads the validated Interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

from ..errors import PayloadError
from ..formats import Format
from ..model import HostConfig, Interface
from ..tuples import NamedTuple


class Rule(NamedTuple):
    format: Format
    key: str
    applies: Callable[[Interface], bool]
    reason: str


RULES: tuple[Rule, ...] = (
    Rule(Format.NETPLAN, "DEFROUTE", lambda i: not i.defroute and i.dhcp,
         "netplan cannot keep DHCP from adding a default route (it can only drop every route "
         "DHCP brings); use IPV4_ROUTE_METRIC"),
    Rule(Format.NETPLAN, "IPV6_DEFROUTE", lambda i: not i.defroute6 and i.accept_ra,
         "netplan cannot keep router advertisements from adding a default route (it can only "
         "drop every route they bring); use IPV6_ROUTE_METRIC with IPV6_AUTOCONF=no, or "
         "IPV6_AUTOCONF=no on a static interface"),
    Rule(Format.IFUPDOWN, "DEFROUTE", lambda i: not i.defroute and i.dhcp,
         "ifupdown cannot keep dhclient from adding a default route; use IPV4_ROUTE_METRIC"),
    Rule(Format.NETPLAN, "IPV6_ROUTE_METRIC", lambda i: i.metric6 is not None and i.accept_ra,
         "netplan cannot set the metric of routes from router advertisements; add "
         "IPV6_AUTOCONF=no or leave the metric out"),
    Rule(Format.NETPLAN, "IPV6_ROUTE_METRIC",
         lambda i: (i.dhcp and i.dhcp6 and None not in (i.metric4, i.metric6)
                    and i.metric6 != i.metric4),
         "netplan gives DHCPv4 and DHCPv6 one route metric; IPV4_ROUTE_METRIC and "
         "IPV6_ROUTE_METRIC must be equal here"),
    Rule(Format.IFUPDOWN, "IPV6_ROUTE_METRIC", lambda i: i.metric6 is not None and i.accept_ra,
         "ifupdown cannot set the metric of routes from router advertisements; add "
         "IPV6_AUTOCONF=no or leave the metric out"),
    Rule(Format.NETPLAN, "DHCPV6C", lambda i: i.dhcp6 and not i.accept_ra,
         "netplan starts DHCPv6 only when a router advertisement asks for it, and here they "
         "are not accepted; add IPV6_AUTOCONF=yes"),
    Rule(Format.NETPLAN, "PEERDNS", lambda i: not i.peerdns and i.accept_ra,
         "netplan cannot ignore the name servers of router advertisements; add "
         "IPV6_AUTOCONF=no"),
    Rule(Format.IFUPDOWN, "PEERDNS", lambda i: not i.peerdns and (i.dhcp or i.dhcp6),
         "ifupdown cannot keep dhclient from writing the DHCP server's name servers"),
)


def check(config: HostConfig, formats: Sequence[Format]) -> None:
    """PayloadError for the first interface setting a format in `formats` cannot express."""
    if Format.IFUPDOWN in formats:
        _ifupdown_names(config)
    for iface in config.interfaces:
        for rule in RULES:
            if rule.format in formats and rule.applies(iface):
                where = iface.origin(rule.key)
                assert where is not None, rule.key  # the rules only test keys that were given
                raise PayloadError(where[0], f"{iface.name}: the {rule.format} format cannot "
                                   f"express this: {rule.reason}; nothing was written",
                                   line=where[1], key=rule.key)


def _ifupdown_names(config: HostConfig) -> None:
    """ifupdown names a bridge's ports and a VLAN's raw device by their kernel names, which a
    NIC picked by HWADDR may not have yet when the agent runs (udev renames NICs in parallel).
    A bond's members name their bond themselves (bond-master), so they may be picked by MAC."""
    parents = {i.parent for i in config.interfaces if i.kind == "vlan"}
    for iface in config.interfaces:
        if iface.mac is None:
            continue
        role = ("a port of the bridge " + str(iface.master) if iface.master_kind == "bridge"
                else "the parent of a VLAN" if iface.name in parents else None)
        where = iface.origin("HWADDR")
        if role is not None and where is not None:
            raise PayloadError(where[0], f"{iface.name}: the ifupdown format cannot express "
                               f"this: ifupdown names {role} by its kernel name, and a NIC "
                               "picked by HWADDR may not have its final name yet; pick it by "
                               "DEVICE; nothing was written", line=where[1], key="HWADDR")
