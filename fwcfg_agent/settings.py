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
from . import routing, shapes, validate
from .errors import ConfigError
from .keys import Value
from .model import BootProto, HostConfig, Interface, IPAddress, IPInterface
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

    routing.default_routes(interfaces, warnings)
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

    shape = shapes.shape_of(v, name, named=ident is not None)
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
    ip6 = routing.ipv6_settings(v, addresses, gateway6, routes, route_keys)
    rt = routing.routing_settings(v, gateway, gateway6, routes, route_keys)
    metrics = {4: rt.metric4, 6: rt.metric6}
    # a route without a metric of its own gets its family's IPVn_ROUTE_METRIC
    routes = tuple(r if r.metric is not None or metrics[r.version] is None
                   else r._replace(metric=metrics[r.version]) for r in routes)
    routing.check_routes(v, gateway, gateway6, routes, route_keys, rt.metric4, rt.metric6)
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
    return shape._replace(
        mac=mac, bootproto=boot, addresses=tuple(a for a, _ in addresses),
        gateway=gateway, gateway6=gateway6, routes=routes, mtu=mtu, extra=extra, source=sources,
        ipv6_disabled=ip6.disabled, ipv6_init=ip6.init, ipv6_autoconf=ip6.autoconf,
        dhcp6=ip6.dhcp6, defroute=rt.defroute, defroute6=rt.defroute6,
        metric4=rt.metric4, metric6=rt.metric6, peerdns=rt.peerdns,
        origins=origins,
    )


def _check_member(v: dict[str, Value], name: str, master: str, boot: BootProto) -> None:
    """A member of a bond or bridge is not addressed: its addresses go on the bond/bridge."""
    for key in v:
        if is_iface_key(key) and key not in shapes.MEMBER_KEYS:
            raise v[key].error(key, f"{name} is a member of {master}: it is configured "
                                    f"through {master}, not by itself")
    if boot is BootProto.DHCP:
        raise v["BOOTPROTO"].error("BOOTPROTO", f"{name} is a member of {master}: DHCP goes "
                                                f"on {master}")


__all__ = ["NetDev", "Result", "build"]
