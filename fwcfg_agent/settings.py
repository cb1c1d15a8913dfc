"""From parsed payloads to one validated HostConfig.

Entries apply in name order. Host keys (HOSTNAME, DOMAIN, SEARCH, DNSn) may stand in any entry;
a later entry's key overrides an earlier one's, with a notice. Interface keys pick a NIC by
HWADDR, else by DEVICE, else the guest's first Ethernet NIC; entries that pick the same NIC merge
key by key in the same way. One entry per NIC is the documented layout.

Numbered keys are matched exactly: `IPADDR` and `IPADDR<digits>` are addresses (likewise PREFIX
and NETMASK; DNS<digits>, ROUTE<digits>), while `IPADDR_START` or `ROUTE_METRIC` are unknown keys,
passed through like any other. Every value the model holds passed a check in `validate`; unknown
keys' values are kept as text without control characters. Every error names the entry, the line
and the key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Optional, Union

from . import keys as kv
from . import shapes, validate
from .errors import ConfigError
from .keys import Value
from .model import BootProto, HostConfig, Interface, IPAddress, IPInterface, IPNetwork, Route
from .payload import Payload
from .tuples import NamedTuple

# The keys the agent knows, as exact names and numbered families (keys.numbered): IPADDR,
# PREFIX and NETMASK with or without a number, DNS and ROUTE with one. (Sets, not a regular
# expression: this alternation took re 4M instructions to compile, on every first boot.)
HOST_NAMES = frozenset({"HOSTNAME", "DOMAIN", "SEARCH"})
IFACE_NAMES = frozenset({
    "DEVICE", "HWADDR", "BOOTPROTO", "GATEWAY", "MTU", "IPV6ADDR", "IPV6ADDR_SECONDARIES",
    "IPV6_DEFAULTGW", "ONBOOT", "TYPE", "IPV6INIT", "IPV6_DISABLED", "IPV6_AUTOCONF", "DHCPV6C",
    "DEFROUTE", "IPV6_DEFROUTE", "IPV4_ROUTE_METRIC", "IPV6_ROUTE_METRIC", "PEERDNS", "VLAN",
    "PHYSDEV", "VLAN_ID", "BONDING_MASTER", "BONDING_OPTS", "MASTER", "SLAVE", "BRIDGE", "STP",
    "DELAY",
})


def is_host_key(key: str) -> bool:
    """HOSTNAME, DOMAIN, SEARCH, DNS<n>."""
    return key in HOST_NAMES or kv.family(key) == "DNS"


def is_iface_key(key: str) -> bool:
    """An interface's key: IFACE_NAMES, IPADDR[n], PREFIX[n], NETMASK[n], ROUTE<n>."""
    return key in IFACE_NAMES or kv.family(key) in ("IPADDR", "PREFIX", "NETMASK", "ROUTE")
# Known, accepted, and meaningless for a guest that is always configured at boot.
IGNORED_KEYS = frozenset({"ONBOOT"})
# The per-interface IPv6 and routing keys the model holds (and whose place it keeps, for the
# errors of formats that cannot express one).
IPV6_KEYS = ("IPV6INIT", "IPV6_DISABLED", "IPV6_AUTOCONF", "DHCPV6C")
ROUTING_KEYS = ("DEFROUTE", "IPV6_DEFROUTE", "IPV4_ROUTE_METRIC", "IPV6_ROUTE_METRIC",
                "PEERDNS")




class NetDev(NamedTuple):
    """A NIC the guest's kernel shows in /sys/class/net."""

    name: str
    mac: str


class Result(NamedTuple):
    config: HostConfig
    notices: list[str]  # overrides and defaults, logged at info
    warnings: list[str]  # unknown keys and doubtful settings


Identity = Union[tuple[str, str], None]  # ("mac", m) | ("device", d) | None for the default NIC


class Picker(NamedTuple):
    """How a group of interface settings picks its NIC, for error messages: by `key` (HWADDR or
    DEVICE) at `value`, or (key None) as the default NIC, `value` being its first setting under
    the key `first_key`."""

    key: Optional[str]
    first_key: str
    value: Value

    def where(self) -> str:
        return self.value.where(self.key or self.first_key)

    def how(self) -> str:
        return f"by {self.key}" if self.key else "as the first NIC no entry names"


def usable_netdevs(netdevs: Sequence[NetDev], warnings: list[str]) -> list[NetDev]:
    """The NICs whose name and MAC (read from sysfs: untrusted too) pass the checks, with the
    MAC made canonical. The others are left out, with a warning: their name or MAC would end up
    in file names and in files."""
    out: list[NetDev] = []
    for d in netdevs:
        try:
            out.append(NetDev(validate.interface_name(d.name), validate.mac(d.mac)))
        except ValueError as e:
            warnings.append(f"the NIC {d.name[:40]!r} (MAC {d.mac[:40]!r}) is ignored: {e}")
    return out


def build(
    payloads: Sequence[Payload], netdevs: Sequence[NetDev], default_interface: str
) -> Result:
    notices: list[str] = []
    warnings: list[str] = []
    host: dict[str, Value] = {}
    groups: dict[Identity, dict[str, Value]] = {}
    pickers: dict[Identity, Picker] = {}
    host_extra: dict[str, Value] = {}
    try:
        validate.interface_name(default_interface)
    except ValueError as e:
        raise ConfigError(f"DEFAULT_INTERFACE: {e}") from None
    netdevs = usable_netdevs(netdevs, warnings)

    for payload in payloads:
        items = payload.as_dict()
        for key, a in items.items():
            _check_assignment(Value(a.value, payload.entry, a.line), key)
        unknown = [k for k in items if not is_host_key(k) and not is_iface_key(k)]
        iface_keys = [k for k in items if is_iface_key(k)]
        target: Optional[dict[str, Value]] = None
        if iface_keys:
            ident, picker = _identity(payload, iface_keys[0])
            target = groups.setdefault(ident, {})
            pickers.setdefault(ident, picker)
        for key, a in items.items():
            v = Value(a.value, payload.entry, a.line)
            dest = host if is_host_key(key) else target if is_iface_key(key) else None
            if dest is None:
                dest = target if target is not None else host_extra
            old = dest.get(key)
            if old is not None:
                notices.append(
                    f"{payload.entry}, line {a.line}: {key} overrides the value from "
                    f"{old.entry}, line {old.line}"
                )
            dest[key] = v
        if unknown:
            warnings.append(
                f"{payload.entry}: unknown keys kept for templates: {', '.join(sorted(unknown))}"
            )

    by_mac = {d.mac: d.name for d in netdevs}
    # The default NIC is the first Ethernet NIC that no entry picks by HWADDR or DEVICE.
    claimed = {by_mac.get(i[1]) if i[0] == "mac" else i[1] for i in groups if i is not None}
    free = [d for d in netdevs if d.name not in claimed]
    placed: list[shapes.Placed] = []
    names: dict[str, Picker] = {}
    for ident, values in groups.items():
        iface = _interface(ident, values, by_mac, free, default_interface, notices, warnings)
        picker = pickers[ident]
        first = names.get(iface.name)
        if first is not None:
            raise picker.value.error(
                picker.key or picker.first_key,
                f"picks interface {iface.name} {picker.how()}, and {first.where()} picks it "
                f"{first.how()}: use the same HWADDR or DEVICE in both",
            )
        names[iface.name] = picker
        placed.append(shapes.Placed(iface, values))
    interfaces = shapes.link(placed, {d.name: d.mac for d in netdevs})

    _default_routes(interfaces, warnings)
    hostname = kv.opt(host, "HOSTNAME", validate.hostname)
    domains = kv.opt(host, "DOMAIN", validate.domain_list) or ()
    search = kv.opt(host, "SEARCH", validate.domain_list) or ()
    dns = tuple(
        kv.get(host, k, validate.ip_address)
        for k in sorted((k for k in host if kv.family(k) == "DNS"), key=kv.index_of)
    )
    extra = tuple(sorted((k, v.value) for k, v in host_extra.items()))
    config = HostConfig(
        hostname=hostname,
        domain=domains[0] if domains else None,
        dns=dns,
        search=tuple(dict.fromkeys(domains + search)),
        interfaces=tuple(sorted(interfaces, key=lambda i: i.name)),
        extra=extra,
    )
    return Result(config, notices, warnings)


def _check_assignment(v: Value, key: str) -> None:
    """What holds for every assignment, known key or not: an ASCII identifier for a key, a
    key number that int() can take, text without control characters for a value. (The parser
    ensures all of it already; a Payload made some other way must not get further.)"""
    kv.check(Value(key, v.entry, v.line), key, validate.key)
    n = kv.numbered(key)
    if n and n[1]:
        kv.check(Value(n[1], v.entry, v.line), key, validate.index)
    kv.check(v, key, validate.text)








def _identity(payload: Payload, first_key: str) -> tuple[Identity, Picker]:
    items = payload.as_dict()
    hw = items.get("HWADDR")
    if hw is not None:
        v = Value(hw.value, payload.entry, hw.line)
        return ("mac", kv.check(v, "HWADDR", validate.mac)), Picker("HWADDR", "HWADDR", v)
    dev = items.get("DEVICE")
    if dev is not None:
        v = Value(dev.value, payload.entry, dev.line)
        return (("device", kv.check(v, "DEVICE", validate.interface_name)),
                Picker("DEVICE", "DEVICE", v))
    a = items[first_key]
    return None, Picker(None, first_key, Value(a.value, payload.entry, a.line))


def _interface(
    ident: Identity,
    v: dict[str, Value],
    by_mac: dict[str, str],
    netdevs: Sequence[NetDev],
    default_interface: str,
    notices: list[str],
    warnings: list[str],
) -> Interface:
    sources = tuple(dict.fromkeys(x.entry for x in v.values()))
    device = kv.opt(v, "DEVICE", validate.interface_name)
    mac: Optional[str] = None
    if ident is not None and ident[0] == "mac":
        mac = ident[1]
        kernel_name = by_mac.get(mac)
        if kernel_name is not None:
            if device is not None and device != kernel_name:
                warnings.append(
                    f"{sources[0]}: DEVICE={device} but the NIC with HWADDR {mac} is named "
                    f"{kernel_name}; the files use {kernel_name} and match by MAC"
                )
            name = kernel_name
        else:
            name = device or "enx" + mac.replace(":", "")
            warnings.append(
                f"{sources[0]}: no NIC with HWADDR {mac} is visible now; the files call it "
                f"{name} and match by MAC where the format can"
            )
    elif device is not None:
        name = device
    elif netdevs:
        # the first Ethernet NIC, matched by its MAC: its kernel name may not be final yet
        name, mac = netdevs[0].name, netdevs[0].mac
        notices.append(f"{sources[0]}: no DEVICE or HWADDR; settings go to the first Ethernet "
                       f"NIC, {name} ({mac})")
    else:
        name = default_interface
        notices.append(f"{sources[0]}: no DEVICE or HWADDR and no NIC visible; settings go to "
                       f"{name}")

    shape = _shape(ident, name, v)
    if shape.kind != "ethernet":
        mac = None
    boot = kv.opt(v, "BOOTPROTO", kv.bootproto) or BootProto.STATIC

    # every address with the key (and its place) that gave it
    addresses: list[tuple[IPInterface, str]] = []
    for key in sorted((k for k in v if kv.family(k) == "IPADDR"), key=kv.index_of):
        addresses.append((kv.ipv4_interface(v, key, notices), key))
    for k in v:
        family = kv.family(k)
        if family in ("PREFIX", "NETMASK") and "IPADDR" + kv.key_suffix(k) not in v:
            raise v[k].error(k, f"there is no IPADDR{kv.key_suffix(k)} for it to apply to")
    if "IPV6ADDR" in v:
        addresses.append((kv.ipv6_interface(v["IPV6ADDR"], "IPV6ADDR", v["IPV6ADDR"].value),
                          "IPV6ADDR"))
    if "IPV6ADDR_SECONDARIES" in v:
        for word in validate.words(v["IPV6ADDR_SECONDARIES"].value):
            addresses.append((kv.ipv6_interface(v["IPV6ADDR_SECONDARIES"],
                                                "IPV6ADDR_SECONDARIES", word),
                              "IPV6ADDR_SECONDARIES"))
    seen: dict[IPAddress, str] = {}
    for a, key in addresses:
        first = seen.get(a.ip)
        if first is not None:
            where = "in the same key" if first == key else f"by {v[first].where(first)}"
            raise v[key].error(key, f"address {a.ip} is given twice (also {where})")
        seen[a.ip] = key

    if shape.master is not None:
        _check_member(v, name, shape.master, boot)
        boot = BootProto.NONE  # nothing of its own: its bond or bridge is configured
    elif boot is BootProto.STATIC and not addresses:
        # point at BOOTPROTO if given, else at the first setting for this NIC
        key = "BOOTPROTO" if "BOOTPROTO" in v else next(iter(v))
        raise v[key].error(key, f"interface {name} is static (BOOTPROTO) but has no IPADDR "
                                "or IPV6ADDR")
    gateway = kv.opt(v, "GATEWAY", validate.ipv4_address)
    gateway6 = None
    if "IPV6_DEFAULTGW" in v:
        gw6 = kv.gateway_address(v["IPV6_DEFAULTGW"], "IPV6_DEFAULTGW", name, warnings)
        if not isinstance(gw6, ipaddress.IPv6Address):
            raise v["IPV6_DEFAULTGW"].error("IPV6_DEFAULTGW", f"{gw6} is not an IPv6 address")
        gateway6 = gw6
    nets = [a.network for a, _ in addresses]
    for gw, key in ((gateway, "GATEWAY"), (gateway6, "IPV6_DEFAULTGW")):
        if gw is not None and boot is not BootProto.DHCP and not any(
            gw in n for n in nets
        ) and not (gw.version == 6 and gw.is_link_local):
            warnings.append(
                f"{v[key].where(key)}: {gw} is not in any of {name}'s subnets; it is "
                "configured as on-link"
            )
    route_keys = sorted((k for k in v if kv.family(k) == "ROUTE"), key=kv.index_of)
    routes = tuple(kv.route(v[k], k, name, warnings) for k in route_keys)
    ip6 = _ipv6_settings(v, addresses, gateway6, routes, route_keys)
    routing = _routing_settings(v, gateway, gateway6, routes, route_keys)
    metrics = {4: routing.metric4, 6: routing.metric6}
    # a route without a metric of its own gets its family's IPVn_ROUTE_METRIC
    routes = tuple(r if r.metric is not None or metrics[r.version] is None
                   else r._replace(metric=metrics[r.version]) for r in routes)
    _check_routes(v, gateway, gateway6, routes, route_keys, routing.metric4, routing.metric6)
    mtu = kv.opt(v, "MTU", validate.mtu)
    if mtu is not None and mtu < validate.MTU_MIN_IPV6 and any(a.version == 6 for a, _ in
                                                                  addresses):
        raise v["MTU"].error("MTU", f"{mtu} is below IPv6's minimum of {validate.MTU_MIN_IPV6}")
    extra = tuple(sorted(
        (k, x.value) for k, x in v.items() if not is_iface_key(k) and not is_host_key(k)
    ))
    origins = tuple((k, v[k].entry, v[k].line) for k in (*IPV6_KEYS, *ROUTING_KEYS,
                                                          *shapes.SHAPE_KEYS, "HWADDR")
                    if k in v)
    return Interface(
        name=name, mac=mac, bootproto=boot, addresses=tuple(a for a, _ in addresses),
        gateway=gateway, gateway6=gateway6, routes=routes, mtu=mtu, extra=extra, source=sources,
        ipv6_disabled=ip6.disabled, ipv6_init=ip6.init, ipv6_autoconf=ip6.autoconf,
        dhcp6=ip6.dhcp6, defroute=routing.defroute, defroute6=routing.defroute6,
        metric4=routing.metric4, metric6=routing.metric6, peerdns=routing.peerdns,
        origins=origins, **shape._asdict(),
    )


class _Shape(NamedTuple):
    kind: str = "ethernet"
    parent: Optional[str] = None
    vlan_id: Optional[int] = None
    bond_options: tuple[tuple[str, str], ...] = ()
    stp: bool = False
    forward_delay: Optional[int] = None
    master: Optional[str] = None
    master_kind: Optional[str] = None


def _shape(ident: Identity, name: str, v: dict[str, Value]) -> _Shape:
    """What the entry's interface is (NIC, VLAN, bond, bridge) and what it belongs to; every
    key of a shape it is not is an error."""
    kind = shapes.kind_of(v)
    if kind != "ethernet":
        if "HWADDR" in v:
            raise v["HWADDR"].error("HWADDR", f"a {kind} is named by DEVICE; fwcfg-agent does "
                                              "not set its MAC")
        if ident is None:
            key = next(iter(v))
            raise v[key].error(key, f"a {kind} needs DEVICE, its name")
    own = {"vlan": ("VLAN", "PHYSDEV", "VLAN_ID"), "bond": ("BONDING_MASTER", "BONDING_OPTS"),
           "bridge": ("STP", "DELAY")}
    for other, keys in own.items():
        for key in keys:
            if key in v and other != kind and not (key in ("VLAN", "BONDING_MASTER")
                                                   and not validate.yes_no(v[key].value)):
                raise v[key].error(key, f"is for a {other}, and {name} is a {kind}")
    shape = _Shape(kind)
    if kind == "vlan":
        parent, vid = shapes.vlan_of(name, v)
        shape = shape._replace(parent=parent, vlan_id=vid)
    elif kind == "bond":
        opts = (shapes.bond_options(v["BONDING_OPTS"], "BONDING_OPTS") if "BONDING_OPTS" in v
                else (("mode", "balance-rr"),))
        shape = shape._replace(bond_options=opts)
    elif kind == "bridge":
        on = kv.opt(v, "STP", shapes.stp) or False
        delay = kv.opt(v, "DELAY", shapes.forward_delay)
        if on and delay is not None and delay < 2:
            raise v["DELAY"].error("DELAY", "with STP on, the kernel takes 2 to 30 seconds")
        shape = shape._replace(stp=on, forward_delay=delay)
    master = kv.opt(v, "MASTER", validate.interface_name)
    slave = kv.opt(v, "SLAVE", validate.yes_no)
    bridge = kv.opt(v, "BRIDGE", validate.interface_name)
    if master is not None and not slave:
        key = "SLAVE" if "SLAVE" in v else "MASTER"
        raise v[key].error(key, "a member of a bond needs MASTER=BOND and SLAVE=yes")
    if slave and master is None:
        raise v["SLAVE"].error("SLAVE", "says this is a member of a bond, but there is no "
                                        "MASTER")
    if master is not None and bridge is not None:
        raise v["BRIDGE"].error("BRIDGE", f"{name} is a member of the bond {master} already "
                                          f"({v['MASTER'].where('MASTER')})")
    if master is not None:
        shape = shape._replace(master=master, master_kind="bond")
    elif bridge is not None:
        shape = shape._replace(master=bridge, master_kind="bridge")
    return shape


def _check_member(v: dict[str, Value], name: str, master: str, boot: BootProto) -> None:
    """A member of a bond or bridge is not addressed: its addresses go on the bond/bridge."""
    for key in v:
        if (is_iface_key(key) or is_host_key(key)) and key not in shapes.MEMBER_KEYS \
                and not is_host_key(key):
            raise v[key].error(key, f"{name} is a member of {master}: it is configured "
                                    f"through {master}, not by itself")
    if boot is BootProto.DHCP:
        raise v["BOOTPROTO"].error("BOOTPROTO", f"{name} is a member of {master}: DHCP goes "
                                                f"on {master}")


class _IPv6(NamedTuple):
    disabled: bool
    init: bool
    autoconf: Optional[bool]
    dhcp6: bool


class _Routing(NamedTuple):
    defroute: bool
    defroute6: bool
    metric4: Optional[int]
    metric6: Optional[int]
    peerdns: bool


def _ipv6_settings(v: dict[str, Value],
                   addresses: list[tuple[IPInterface, str]],
                   gateway6: Optional[ipaddress.IPv6Address], routes: tuple[Route, ...],
                   route_keys: list[str]) -> _IPv6:
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
    return _IPv6(disabled, init is not False, autoconf, dhcp6)


def _routing_settings(v: dict[str, Value], gateway: Optional[ipaddress.IPv4Address],
                      gateway6: Optional[ipaddress.IPv6Address], routes: tuple[Route, ...],
                      route_keys: list[str]) -> _Routing:
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
    return _Routing(defroute is not False, defroute6 is not False,
                    kv.opt(v, "IPV4_ROUTE_METRIC", validate.metric),
                    kv.opt(v, "IPV6_ROUTE_METRIC", validate.metric),
                    kv.opt(v, "PEERDNS", validate.yes_no) is not False)


def _check_routes(v: dict[str, Value], gateway: Optional[IPAddress],
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


def _default_routes(interfaces: Sequence[Interface], warnings: list[str]) -> None:
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


















__all__ = ["NetDev", "Result", "build", "ipaddress"]
