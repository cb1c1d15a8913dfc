"""VLANs, bonds and bridges: their keys, the bonding options the kernel knows, and the checks
that tie interfaces together (parents, members, loops, duplicate VLAN IDs). Every error names
the entry, the line and the key. settings.py builds each interface; `link` checks them together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Callable, Optional

from . import keys as kv
from . import validate
from .keys import Value
from .model import BootProto, Interface
from .tuples import NamedTuple

KINDS = {"ethernet": "ethernet", "vlan": "vlan", "bond": "bond", "bridge": "bridge"}
SHAPE_KEYS = ("VLAN", "PHYSDEV", "VLAN_ID", "BONDING_MASTER", "BONDING_OPTS", "MASTER", "SLAVE",
              "BRIDGE", "STP", "DELAY")
# The keys a member of a bond or bridge may have: it carries no addresses of its own.
MEMBER_KEYS = frozenset({"DEVICE", "HWADDR", "TYPE", "ONBOOT", "BOOTPROTO", "MTU", "MASTER",
                         "SLAVE", "BRIDGE", "IPV6INIT"})

# The kernel's bonding modes (Documentation/networking/bonding.rst), by name and number.
BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
              "balance-tlb", "balance-alb")
XMIT_HASH_POLICIES = ("layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4", "vlan+srcmac")
LACP_RATES = ("slow", "fast")
# Every option the kernel's bonding driver knows (its sysfs attributes): the ones not in
# BOND_OPTIONS below are refused as "not supported by fwcfg-agent", never dropped.
KERNEL_BOND_OPTIONS = frozenset({
    "mode", "miimon", "updelay", "downdelay", "peer_notif_delay", "use_carrier",
    "arp_interval", "arp_ip_target", "arp_validate", "arp_all_targets", "arp_missed_max",
    "primary", "primary_reselect", "fail_over_mac", "xmit_hash_policy", "resend_igmp",
    "num_grat_arp", "num_unsol_na", "lacp_rate", "lacp_active", "ad_select", "min_links",
    "lp_interval", "packets_per_slave", "tlb_dynamic_lb", "ad_actor_sys_prio",
    "ad_actor_system", "ad_user_port_key", "all_slaves_active", "max_bonds",
    "ns_ip6_target", "coupled_control"})
INT_MAX = 2**31 - 1


def _named(names: Sequence[str], what: str) -> Callable[[str], str]:
    """A value given by name or by its number in the kernel's table."""
    def check(value: str) -> str:
        v = value.lower()
        if v in names:
            return v
        if v.isdigit() and int(v) < len(names) and v == str(int(v)):
            return names[int(v)]
        raise ValueError(f"{value[:40]!r} is not a {what} ({', '.join(names)})")
    return check


def _ms(value: str) -> str:
    return str(validate._decimal(value, INT_MAX, "a time in milliseconds"))


def _count(value: str) -> str:
    return str(validate._decimal(value, INT_MAX, "a count"))


class BondOption(NamedTuple):
    check: Callable[[str], str]
    modes: tuple[str, ...] = BOND_MODES  # the modes the kernel takes it in


BOND_OPTIONS: dict[str, BondOption] = {
    "mode": BondOption(_named(BOND_MODES, "bonding mode")),
    "miimon": BondOption(_ms),
    "updelay": BondOption(_ms),
    "downdelay": BondOption(_ms),
    "lacp_rate": BondOption(_named(LACP_RATES, "LACP rate"), ("802.3ad",)),
    "xmit_hash_policy": BondOption(_named(XMIT_HASH_POLICIES, "transmit hash policy")),
    "min_links": BondOption(_count),
    "primary": BondOption(validate.interface_name, ("active-backup", "balance-tlb",
                                                    "balance-alb")),
}
_OPTION_WORD = re.compile(r"([a-z_0-9]+)=(\S+)\Z")


def bond_options(v: Value, key: str) -> tuple[tuple[str, str], ...]:
    """BONDING_OPTS ("mode=active-backup miimon=100") as canonical (name, value) pairs, mode
    first (balance-rr, the kernel's default, when not given), the others in the kernel's
    documentation order of BOND_OPTIONS."""
    given: dict[str, str] = {}
    for word in validate.words(v.value):
        m = _OPTION_WORD.match(word)
        if m is None:
            raise v.error(key, f"{word[:40]!r} is not OPTION=VALUE")
        name, value = m.groups()
        if name in given:
            raise v.error(key, f"{name} is given twice")
        if name not in BOND_OPTIONS:
            if name in KERNEL_BOND_OPTIONS:
                raise v.error(key, f"{name} is a bonding option fwcfg-agent does not support "
                                   f"(supported: {', '.join(BOND_OPTIONS)})")
            raise v.error(key, f"{name[:40]!r} is not a bonding option the kernel knows")
        try:
            given[name] = BOND_OPTIONS[name].check(value)
        except ValueError as e:
            raise v.error(key, f"{name}: {e}") from None
    mode = given.setdefault("mode", "balance-rr")
    for name in given:
        if mode not in BOND_OPTIONS[name].modes:
            raise v.error(key, f"{name} does not apply to mode {mode} (only "
                               f"{', '.join(BOND_OPTIONS[name].modes)})")
    return tuple((name, given[name]) for name in BOND_OPTIONS if name in given)


def forward_delay(text: str) -> int:
    return validate._decimal(text, 30, "a forward delay in seconds (0 to 30)")


class Placed(NamedTuple):
    """An interface and where its entry's keys are, for errors."""

    iface: Interface
    values: dict[str, Value]


def _err(p: Placed, keys: Sequence[str], reason: str) -> Exception:
    key = next((k for k in keys if k in p.values), None) or next(iter(p.values))
    return p.values[key].error(key, reason)


def link(placed: Sequence[Placed], nic_names: dict[str, str]) -> list[Interface]:
    """Check the interfaces together; returns them, with a bare interface added for each NIC
    that is a VLAN's parent or a bond's or bridge's member and no entry configures (by name:
    `nic_names` maps the visible NICs' names to their MACs)."""
    by_name = {p.iface.name: p for p in placed}
    out = [p.iface for p in placed]
    vlan_ids: dict[tuple[str, int], Placed] = {}
    for p in placed:
        i = p.iface
        if i.virtual and i.name in nic_names:
            raise _err(p, ("DEVICE",), f"{i.name} is a NIC of this guest; a {i.kind} needs a "
                                       "name of its own")
        if i.master is not None:
            key = "MASTER" if i.master_kind == "bond" else "BRIDGE"
            if i.master == i.name:
                raise _err(p, (key,), f"{i.name} cannot be a member of itself (a loop)")
            master = by_name.get(i.master)
            if master is None:
                raise _err(p, (key,), f"no entry defines the {i.master_kind} {i.master}")
            if master.iface.kind != i.master_kind:
                raise _err(p, (key,), f"{i.master} is a {master.iface.kind}, not a "
                                      f"{i.master_kind}")
            allowed = ("ethernet",) if i.master_kind == "bond" else ("ethernet", "bond", "vlan")
            if i.kind not in allowed:
                loop = " (a loop)" if master.iface.master == i.name else ""
                raise _err(p, (key,), f"a {i.kind} cannot be a member of a {i.master_kind}"
                                      f"{loop}")
        if i.kind == "vlan":
            assert i.parent is not None and i.vlan_id is not None
            keys = ("PHYSDEV", "DEVICE")
            parent = by_name.get(i.parent)
            if parent is None and i.parent in nic_names:
                bare = Interface(name=i.parent, source=i.source,  # named as PHYSDEV names it
                                 bootproto=BootProto.NONE)
                out.append(bare)
                by_name[i.parent] = Placed(bare, {})
            elif parent is None:
                raise _err(p, keys, f"the parent {i.parent} of VLAN {i.name} is neither a NIC "
                                    "of this guest nor an interface an entry defines")
            elif parent.iface.kind not in ("ethernet", "bond"):
                raise _err(p, keys, f"the parent {i.parent} is a {parent.iface.kind}; a VLAN "
                                    "goes on a NIC or a bond")
            elif parent.iface.master is not None:
                raise _err(p, keys, f"the parent {i.parent} is a member of "
                                    f"{parent.iface.master}; put the VLAN on "
                                    f"{parent.iface.master}")
            first = vlan_ids.setdefault((i.parent, i.vlan_id), p)
            if first is not p:
                where = next(first.values[k].where(k) for k in ("VLAN_ID", "DEVICE")
                             if k in first.values)
                raise _err(p, ("VLAN_ID", "DEVICE"), f"VLAN ID {i.vlan_id} on {i.parent} is "
                                                     f"defined already ({where})")
    for p in placed:
        i = p.iface
        if i.kind == "bond":
            members = [m.name for m in out if m.master == i.name]
            primary = dict(i.bond_options).get("primary")
            if primary is not None and primary not in members:
                raise _err(p, ("BONDING_OPTS",), f"primary={primary} is not a member of "
                                                 f"{i.name} ({', '.join(members) or 'none'})")
    return out


def kind_of(v: dict[str, Value]) -> str:
    """ethernet, vlan, bond or bridge, from TYPE, VLAN=yes and BONDING_MASTER=yes."""
    kinds: list[tuple[str, str]] = []
    if "TYPE" in v:
        t = v["TYPE"].value.lower()
        if t not in KINDS:
            raise v["TYPE"].error("TYPE", f"{v['TYPE'].value[:40]!r}: one of Ethernet, Vlan, "
                                          "Bond, Bridge")
        kinds.append(("TYPE", KINDS[t]))
    if "VLAN" in v and _yes(v, "VLAN"):
        kinds.append(("VLAN", "vlan"))
    if "BONDING_MASTER" in v and _yes(v, "BONDING_MASTER"):
        kinds.append(("BONDING_MASTER", "bond"))
    if not kinds:
        return "bond" if "BONDING_OPTS" in v else "ethernet"
    for key, kind in kinds[1:]:
        if kind != kinds[0][1]:
            raise v[key].error(key, f"says {kind}, but {v[kinds[0][0]].where(kinds[0][0])} "
                                    f"says {kinds[0][1]}")
    return kinds[0][1]


def _yes(v: dict[str, Value], key: str) -> bool:
    try:
        return validate.yes_no(v[key].value)
    except ValueError as e:
        raise v[key].error(key, str(e)) from None


def vlan_of(name: str, v: dict[str, Value]) -> tuple[str, int]:
    """A VLAN's parent and ID: PHYSDEV and VLAN_ID, else from a DEVICE named PARENT.ID."""
    parent: Optional[str] = None
    vid: Optional[int] = None
    if "PHYSDEV" in v:
        try:
            parent = validate.interface_name(v["PHYSDEV"].value)
        except ValueError as e:
            raise v["PHYSDEV"].error("PHYSDEV", str(e)) from None
    if "VLAN_ID" in v:
        try:
            vid = validate._decimal(v["VLAN_ID"].value, 4094, "a VLAN ID (1 to 4094)")
        except ValueError as e:
            raise v["VLAN_ID"].error("VLAN_ID", str(e)) from None
        if vid == 0:
            raise v["VLAN_ID"].error("VLAN_ID", "0 is not a VLAN ID (1 to 4094)")
    head, dot, tail = name.rpartition(".")
    if dot and head and tail.isdigit():
        if parent is None:
            parent = head
        if vid is None and 1 <= int(tail) <= 4094 and tail == str(int(tail)):
            vid = int(tail)
    key = "DEVICE" if "DEVICE" in v else "TYPE"
    if parent is None or vid is None:
        raise v[key].error(key, f"VLAN {name} needs PHYSDEV and VLAN_ID (1 to 4094), or a "
                                "DEVICE named PARENT.ID such as eth0.100")
    if parent == name:
        raise v[key].error(key, f"VLAN {name} cannot be its own parent (a loop)")
    return parent, vid


def stp(text: str) -> bool:
    t = text.lower()
    if t in ("on", "off"):
        return t == "on"
    return validate.yes_no(text)


def shape_of(v: dict[str, Value], name: str, named: bool) -> Interface:
    """What the entry's interface is (NIC, VLAN, bond, bridge) and what it belongs to; every
    key of a shape it is not is an error."""
    kind = kind_of(v)
    if kind != "ethernet":
        if "HWADDR" in v:
            raise v["HWADDR"].error("HWADDR", f"a {kind} is named by DEVICE; fwcfg-agent does "
                                              "not set its MAC")
        if not named:
            key = next(iter(v))
            raise v[key].error(key, f"a {kind} needs DEVICE, its name")
    own = {"vlan": ("VLAN", "PHYSDEV", "VLAN_ID"), "bond": ("BONDING_MASTER", "BONDING_OPTS"),
           "bridge": ("STP", "DELAY")}
    for other, keys in own.items():
        for key in keys:
            if key in v and other != kind and not (key in ("VLAN", "BONDING_MASTER")
                                                   and not validate.yes_no(v[key].value)):
                raise v[key].error(key, f"is for a {other}, and {name} is a {kind}")
    shape = Interface(name, kind=kind)
    if kind == "vlan":
        parent, vid = vlan_of(name, v)
        shape = shape._replace(parent=parent, vlan_id=vid)
    elif kind == "bond":
        opts = (bond_options(v["BONDING_OPTS"], "BONDING_OPTS") if "BONDING_OPTS" in v
                else (("mode", "balance-rr"),))
        shape = shape._replace(bond_options=opts)
    elif kind == "bridge":
        on = kv.opt(v, "STP", stp) or False
        delay = kv.opt(v, "DELAY", forward_delay)
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
