"""An interface's IPv6 mode and routing, checked against its addresses, gateways and routes, and
the default routes of all interfaces together. settings.py calls these for each interface it
builds; every error names the entry, the line and the key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Optional

from . import keys as kv
from . import validate
from .keys import Value
from .model import Interface, IPAddress, IPInterface, IPNetwork, Route
from .tuples import NamedTuple


class IPv6Settings(NamedTuple):
    disabled: bool
    init: bool
    autoconf: Optional[bool]
    dhcp6: bool


class RoutingSettings(NamedTuple):
    defroute: bool
    defroute6: bool
    metric4: Optional[int]
    metric6: Optional[int]
    peerdns: bool


def ipv6_settings(v: dict[str, Value],
                   addresses: list[tuple[IPInterface, str]],
                   gateway6: Optional[ipaddress.IPv6Address], routes: tuple[Route, ...],
                   route_keys: list[str]) -> IPv6Settings:
    """IPV6INIT, IPV6_DISABLED, IPV6_AUTOCONF, DHCPV6C, checked against each other and against
    the IPv6 addresses, gateway and routes. The one default: with static IPv6 addresses and no
    IPV6_AUTOCONF, no SLAAC and no router advertisements (as ifcfg and NetworkManager read it);
    without either, the distribution's default (None)."""
    disabled = kv.opt(v, "IPV6_DISABLED", validate.yes_no) or False
    init = kv.opt(v, "IPV6INIT", validate.yes_no)
    autoconf = kv.opt(v, "IPV6_AUTOCONF", validate.yes_no)
    dhcp6 = kv.opt(v, "DHCPV6C", validate.yes_no) or False
    off = "IPV6_DISABLED" if disabled else "IPV6INIT" if init is False else None
    if off is not None:
        uses = [key for a, key in addresses if a.version == 6]
        uses += ["IPV6_DEFAULTGW"] if gateway6 is not None else []
        uses += [k for r, k in zip(routes, route_keys) if r.version == 6]
        uses += ["IPV6_AUTOCONF"] if autoconf else []
        uses += ["DHCPV6C"] if dhcp6 else []
        if uses:
            what = "disables IPv6" if off == "IPV6_DISABLED" else "says no IPv6 configuration"
            raise v[uses[0]].error(uses[0], f"configures IPv6, but {v[off].where(off)} {what}")
        autoconf = False
    elif autoconf is None and (dhcp6 or any(a.version == 6 for a, _ in addresses)):
        autoconf = False
    return IPv6Settings(disabled, init is not False, autoconf, dhcp6)


def routing_settings(v: dict[str, Value], gateway: Optional[ipaddress.IPv4Address],
                      gateway6: Optional[ipaddress.IPv6Address], routes: tuple[Route, ...],
                      route_keys: list[str]) -> RoutingSettings:
    """DEFROUTE, IPV6_DEFROUTE, IPV4_ROUTE_METRIC, IPV6_ROUTE_METRIC, PEERDNS. As in ifcfg
    (NetworkManager's ifcfg-rh reads them so), DEFROUTE is IPv4's and IPV6_DEFROUTE IPv6's. Either
    set to no beside a default route of the payload's own of its family (GATEWAY, IPV6_DEFAULTGW,
    a default ROUTEn) contradicts it."""
    defroute = kv.opt(v, "DEFROUTE", validate.yes_no)
    defroute6 = kv.opt(v, "IPV6_DEFROUTE", validate.yes_no)
    for key, family, flag, gw in (("DEFROUTE", 4, defroute, gateway),
                                  ("IPV6_DEFROUTE", 6, defroute6, gateway6)):
        if flag is not False:
            continue
        uses = (["GATEWAY" if family == 4 else "IPV6_DEFAULTGW"] if gw is not None else [])
        uses += [k for r, k in zip(routes, route_keys)
                 if r.destination.prefixlen == 0 and r.version == family]
        if uses:
            raise v[uses[0]].error(uses[0], f"is a default route, but {v[key].where(key)} says "
                                            f"this interface has no IPv{family} default route")
    return RoutingSettings(defroute is not False, defroute6 is not False,
                    kv.opt(v, "IPV4_ROUTE_METRIC", validate.metric),
                    kv.opt(v, "IPV6_ROUTE_METRIC", validate.metric),
                    kv.opt(v, "PEERDNS", validate.yes_no) is not False)


def check_routes(v: dict[str, Value], gateway: Optional[IPAddress],
                  gateway6: Optional[IPAddress], routes: tuple[Route, ...],
                  keys: list[str], metric4: Optional[int] = None,
                  metric6: Optional[int] = None) -> None:
    """One route per destination and metric on an interface: the kernel keeps one of two, and
    netplan calls two default routes a conflict. GATEWAY and IPV6_DEFAULTGW are default routes
    without a metric."""
    seen: dict[tuple[IPNetwork, Optional[int]], str] = {}
    given: list[tuple[IPNetwork, Optional[int], str]] = []
    if gateway is not None:
        given.append((ipaddress.ip_network("0.0.0.0/0"), metric4, "GATEWAY"))
    if gateway6 is not None:
        given.append((ipaddress.ip_network("::/0"), metric6, "IPV6_DEFAULTGW"))
    given += [(r.destination, r.metric, k) for r, k in zip(routes, keys)]
    for dest, metric, key in given:
        first = seen.get((dest, metric))
        if first is not None:
            what = "default route" if dest.prefixlen == 0 else f"route to {dest}"
            raise v[key].error(key, f"a second {what} with the same metric "
                                    f"({'none given' if metric is None else metric}) on this "
                                    f"interface: {v[first].where(first)} gives one already")
        seen[(dest, metric)] = key


def default_routes(interfaces: Sequence[Interface], warnings: list[str]) -> None:
    """Two interfaces with a default route of the same family and metric: the kernel uses one
    (netplan warns too). A warning, as hosts often give every NIC its GATEWAY."""
    seen: dict[tuple[int, Optional[int]], str] = {}
    for iface in interfaces:
        defaults: set[tuple[int, Optional[int]]] = {
            (gw.version, iface.metric4 if gw.version == 4 else iface.metric6)
            for gw in (iface.gateway, iface.gateway6) if gw}
        defaults |= {(r.version, r.metric) for r in iface.routes
                     if r.destination.prefixlen == 0}
        for version, metric in sorted(defaults, key=lambda d: (d[0], d[1] or -1)):
            first = seen.get((version, metric))
            if first is not None:
                warnings.append(f"{iface.name} and {first} both have an IPv{version} default "
                                f"route with the same metric; the kernel uses one of them")
            else:
                seen[(version, metric)] = iface.name
