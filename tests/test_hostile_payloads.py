"""Hostile payloads (issue 12): each is rejected naming entry, line and key, or every file it
renders is accepted by its real reader and holds nothing that the validators did not produce.

Payloads are built from the real keys (and near misses of them) with values that are plausible,
mutated (a scope ID, a control character, shell syntax, quotes, a huge number spliced in), or
random text, in single quotes, double quotes or none. Each one is parsed, validated and rendered
to every format in-process (10,000 examples). For a payload that passes, every file is parsed
back by a strict reader of its format written here, and every value in it must be the str() of a
value of the model (or a constant of the template). A sample of those (a few hundred) then goes
to the real readers: netplan's generator, ifquery, nmcli --offline, bash (which sources the
ifcfg files: nothing may run, the variables must come back as the model says) and, for
systemd-networkd, which has no offline parser, the Section.Key table of its binary. A sample of
the rejected ones goes through the agent's CLI: exit 3, one error line, nothing written.

Hypothesis runs derandomized, without a database: CI sees the same examples every time.
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, Optional

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fwcfg_agent.errors import PayloadError
from fwcfg_agent.facts import Facts
from fwcfg_agent.model import Format, HostConfig, Interface
from fwcfg_agent.payload import parse, printable
from fwcfg_agent.render import Plan, PlannedFile, render
from fwcfg_agent.render.env import Templates
from fwcfg_agent.settings import NetDev, build
from tests.agent import agent, journal_runs, snapshot
from tests.conftest import make_guest_root
from tests.test_render_consumers import (
    _networkd_keys,
    _parse_keyfile,
    _parse_unit,
)

# in-process: parse, validate, render, read back
EXAMPLES = int(os.environ.get("FWCFG_HOSTILE_EXAMPLES", "10000"))
CONSUMER_SAMPLES = 250  # valid payloads whose files go to the real readers
CLI_SAMPLES = 15  # rejected payloads run through the CLI
SETTINGS: dict[str, Any] = {
    "derandomize": True, "database": None, "deadline": None, "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                              HealthCheck.filter_too_much, HealthCheck.large_base_example,
                              HealthCheck.function_scoped_fixture],
}
if os.environ.get("FWCFG_HOSTILE_NO_SHRINK"):  # for working on the test: every failure, fast
    SETTINGS["phases"] = (Phase.explicit, Phase.reuse, Phase.generate)
TEMPLATES = Templates()
ALL_FORMATS = tuple(Format)
DEFAULT_INTERFACE = "eth0"

# --- the payloads ---------------------------------------------------------------------------

NICS = (("ens3", "52:54:00:12:34:56"), ("ens4", "52:54:00:12:34:57"), ("eth0", "52:54:00:aa:00:01"),
        # from a hostile sysfs: ignored with a warning
        ("eth0;reboot", "52:54:00:12:34:58"), ("ens5", "52:54:00:12:34:zz"),
        ("a b", "52:54:00:12:34:59"), ("ens6", "52:54:00:12:34:5a\n"))
GOOD_MACS = [m for _, m in NICS[:3]]
ENTRY_NAMES = ("opt/GuestInfo", "opt/org.example/net1", "opt/org.example/dns", "opt/z",
               'opt/we"ird\\name', "opt/new\nline", "opt/\u00fcml\u00e4ut")

HOSTILE = (
    "fe80::1%x;reboot", "fe80::1%eth0", "fe80::1%ens3", "fe80::%x;reboot/64", "fe80::1%",
    "fe80::1%../..", "2001:db8::1%eth0", "10.0.0.1%eth0", "fe80::1%x;touch${IFS}/tmp/p",
    "$(touch /tmp/pwned)", "`id`", "; reboot", "a|b", "&& reboot", "*", "?", "[a]", "~root",
    "'", '"', "\\", "\\n", "$IFS", "${HOME}", "!!", "#", ";", "%", "%n", "a b", " x ", "\t",
    "\r", "\n", "\r\n", "\x0b", "\x0c", "\x00", "\x1b[2J", "\x7f", "\x85", "\x9b", "\u2028",
    "\u2029", "\ufeff", "\u202e", "\u00e9", "\U0001f600", "\u0662\u0664", "\u00b2",
    "\uff11\uff10", "9" * 30, "1" * 5000, "-1", "+5", "0x10", "1e3", "1_000", "0" * 40,
    "A" * 300, "a." * 130, "-", ".", "..", "/", "//", "default", "via", "metric", "Domains=x",
    "[Match]", "\\s", "a;b", "a,b", "a=b", "::ffff:1.2.3.4", "::", "0.0.0.0", "255.255.255.255",
    "224.0.0.1", "ff02::1", "fe80::", "ETHERNET", "Bridge", "yes", "true", "dhcp", "DHCP",
)
SCOPES = ("eth0", "ens3", "ens4", "eth0.100", "1") * 2 + (
    "x;reboot", "a" * 16, "..", ".", "a b", "é", "x\ry", "", "$(id)", "x/y")


# The generator is written against random.Random's interface. With a true Random (seeded by
# hypothesis) it is cheap enough for 10,000 payloads; with hypothesis' own Random
# (st.randoms(use_true_random=False)) each choice is one of hypothesis', which it can shrink.
Rng = random.Random

# Code points for random text: ASCII, Latin-1, control characters, separators, astral planes.
_RANGES = ((0x20, 0x7E), (0x00, 0x1F), (0x7F, 0x9F), (0xA0, 0x24F), (0x2000, 0x206F),
           (0xFEFF, 0xFEFF), (0xFF10, 0xFF19), (0x660, 0x669), (0x1F600, 0x1F64F))


def _text(rng: Rng, n: int = 20) -> str:
    out = []
    for _ in range(rng.randint(0, n)):
        lo, hi = rng.choice(_RANGES)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def _free_text(rng: Rng) -> str:
    """Text for a pass-through key: mostly printable (quotes, '$', unicode), now and then not."""
    if rng.random() < 0.2:
        return _text(rng)
    return "".join(rng.choice(_PRINTABLE) for _ in range(rng.randint(0, 20)))


_PRINTABLE = [chr(c) for c in range(0x20, 0x7F)] + ["\u00e9", "\u2713", "\U0001f600", "\u00a0"]


def _ipv4(rng: Rng) -> str:
    if rng.random() < 0.3:
        return rng.choice(["10.0.0.5", "192.0.2.10", "198.51.100.7", "10.0.0.1", "10.0.0.255",
                           "10.0.0.0", "0.0.0.0", "224.0.0.1", "255.255.255.255", "127.0.0.1",
                           "010.0.0.5"])
    if rng.random() < 0.5:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
    return str(ipaddress.IPv4Address(rng.getrandbits(32)))


def _ipv6(rng: Rng) -> str:
    if rng.random() < 0.3:
        return rng.choice(["2001:db8::5", "2001:db8::1", "2001:DB8:0:0:0:0:0:5",
                           "2001:db8:0000::0005", "fe80::5", "::ffff:10.0.0.5", "::1", "::",
                           "ff02::1", "2001:db8::"])
    if rng.random() < 0.5:
        return f"2001:db8:{rng.randint(0, 0xffff):x}::{rng.randint(1, 0xffff):x}"
    return str(ipaddress.IPv6Address(rng.getrandbits(128)))


def _link_local(rng: Rng) -> str:
    return f"fe80::{rng.randint(0, 0xffff):x}"


def _scoped(rng: Rng) -> str:
    return f"{_link_local(rng)}%{rng.choice(SCOPES)}"


def _prefix(rng: Rng) -> str:
    if rng.random() < 0.2:
        return rng.choice(["024", "08", "64", "128", "00024", "33", "129"])
    return str(rng.randint(0, 140))


def _netmask(rng: Rng) -> str:
    if rng.random() < 0.2:
        return rng.choice(["255.0.255.0", "255.255.255.256", "0xffffff00", "255.255.255.0/24"])
    return str(ipaddress.IPv4Network(f"0.0.0.0/{rng.randint(0, 32)}").netmask)


_LDH = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"


def _hostname(rng: Rng) -> str:
    labels = []
    for _ in range(rng.randint(1, 3)):
        label = "".join(rng.choice(_LDH) for _ in range(rng.randint(1, 12)))
        labels.append(label)
    return ".".join(labels)


def _mac(rng: Rng) -> str:
    if rng.random() < 0.5:
        return rng.choice([*GOOD_MACS, "52-54-00-12-34-57", "52:54:00:AA:00:01",
                           "01:00:5e:00:00:01", "00:00:00:00:00:00"])
    return ":".join(f"{rng.randint(0, 255):02x}" for _ in range(6))


def _network(rng: Rng, v6: bool) -> str:
    """A network, and now and then one with host bits set (an error)."""
    addr = ipaddress.ip_address(rng.getrandbits(128) if v6 else rng.getrandbits(32))
    n = rng.randint(0, addr.max_prefixlen)
    if rng.random() < 0.1:
        return f"{addr}/{n}"
    return str(ipaddress.ip_network(f"{addr}/{n}", strict=False))


def _metric(rng: Rng) -> str:
    return str(rng.randint(0, 2**32 + 5))


def _route(rng: Rng) -> str:
    v6 = rng.random() < 0.5
    r = rng.random()
    dest = "default" if r < 0.2 else rng.choice(HOSTILE[:9]) if r < 0.3 else _network(rng, v6)
    words = [dest]
    if rng.random() < 0.6:
        gw = (rng.choice([_scoped, _link_local, _ipv6]) if v6 else _ipv4)(rng)
        words += ["via", gw]
    if rng.random() < 0.3:
        words += ["metric", _metric(rng)]
    return " ".join(words)


def _choice(*values: str) -> Callable[[Rng], str]:
    return lambda rng: rng.choice(values)


def _either(*gens: Callable[[Rng], str]) -> Callable[[Rng], str]:
    return lambda rng: rng.choice(gens)(rng)


def _with_prefix(gen: Callable[[Rng], str]) -> Callable[[Rng], str]:
    return lambda rng: gen(rng) + ("/" + _prefix(rng) if rng.random() < 0.5 else "")


PLAUSIBLE: dict[str, Callable[[Rng], str]] = {
    "HOSTNAME": _hostname,
    "DOMAIN": lambda rng: " ".join(_hostname(rng) for _ in range(rng.randint(1, 3))),
    "SEARCH": lambda rng: ", ".join(_hostname(rng) for _ in range(rng.randint(1, 3))),
    "DNS1": _either(_ipv4, _ipv6), "DNS2": _either(_ipv6, _scoped), "DNS10": _ipv4,
    "DEVICE": _choice("ens3", "ens4", "eth0", "eth1", "enp0s31f6", "x" * 15, "eth0.100"),
    "HWADDR": _mac,
    "BOOTPROTO": _choice("static", "none", "dhcp", "DHCP", "Static", "bootp"),
    "IPADDR": _with_prefix(_ipv4), "IPADDR1": _ipv4, "PREFIX": _prefix, "PREFIX1": _prefix,
    "NETMASK": _netmask, "NETMASK1": _netmask, "GATEWAY": _ipv4,
    "IPV6ADDR": _with_prefix(_ipv6),
    "IPV6ADDR_SECONDARIES": lambda rng: " ".join(_with_prefix(_ipv6)(rng)
                                                 for _ in range(rng.randint(1, 3))),
    "IPV6_DEFAULTGW": _either(_scoped, _link_local, _ipv6),
    "ROUTE1": _route, "ROUTE2": _route,
    "MTU": lambda rng: str(rng.randint(0, 70000)) if rng.random() < 0.5 else rng.choice(
        ["1500", "9000", "1280", "68"]),
    "TYPE": _choice("Ethernet", "ethernet", "Bridge", "Vlan", "Bond", "Team"),
    "VLAN": _choice("yes", "no"), "VLAN_ID": lambda rng: str(rng.randint(0, 4100)),
    "PHYSDEV": _choice("ens3", "eth0", "bond0", "br0"),
    "BONDING_OPTS": _choice("mode=active-backup miimon=100", "mode=4 lacp_rate=fast", "mode=9",
                            "primary=ens3 mode=1", "arp_interval=100"),
    "MASTER": _choice("bond0", "br0"), "SLAVE": _choice("yes", "no"), "BRIDGE": _choice("br0"),
    "STP": _choice("on", "off"), "DELAY": lambda rng: str(rng.randint(0, 31)),
    "ONBOOT": _choice("yes", "no"), "IPV6INIT": _choice("yes", "no"),
    # issue 14: IPv6 modes and routing with several NICs
    "IPV6_AUTOCONF": _choice("yes", "no", "YES", "maybe"), "IPV6_DISABLED": _choice("yes", "no"),
    "DHCPV6C": _choice("yes", "no"), "DEFROUTE": _choice("yes", "no"),
    "IPV6_DEFROUTE": _choice("yes", "no"),
    "IPV4_ROUTE_METRIC": _metric, "IPV6_ROUTE_METRIC": _metric, "PEERDNS": _choice("yes", "no"),
    # unknown keys, near misses of known ones included: passed through
    "ZONE": _free_text, "NM_CONTROLLED": _choice("no", "yes"), "NAME": _free_text,
    "IPADDR_START": _ipv4, "ROUTE_METRIC": _metric, "IPADDRx": _choice("1"),
    "PATH": _choice("/tmp/evil"), "IFS": _choice("x"), "lower_case": _free_text,
    "BASH_FUNC_x": _choice("() { reboot; }"),
    "DNS" + "1" * 12: _ipv4, "DNS" + "1" * 5000: _ipv4,
}
KEYS = tuple(PLAUSIBLE)
# What an entry starts with, so that a fair share of the payloads passes.
CORE: tuple[Callable[[Rng], dict[str, str]], ...] = (
    lambda rng: {"IPADDR": _ipv4(rng)},
    lambda rng: {"IPV6ADDR": _ipv6(rng)},
    lambda rng: {"BOOTPROTO": "dhcp"},
    lambda rng: {"HOSTNAME": _hostname(rng)},
    lambda rng: {"DNS1": _ipv4(rng)},
    lambda rng: {"IPV6ADDR": f"2001:db8::{rng.randint(1, 0xffff):x}/64",
                 "IPV6_DEFAULTGW": _scoped(rng)},
    lambda rng: {"IPV6ADDR": f"2001:db8::{rng.randint(1, 0xffff):x}/64",
                 "ROUTE1": f"{_network(rng, True)} via {_scoped(rng)}"},
    # issue 14: a bridge, a bond, a VLAN on the NIC most examples have
    lambda rng: {"DEVICE": "br0", "TYPE": "Bridge", "IPADDR": _ipv4(rng)},
    lambda rng: {"DEVICE": "bond0", "TYPE": "Bond", "BOOTPROTO": "dhcp",
                 "BONDING_OPTS": "mode=active-backup miimon=100"},
    lambda rng: {"DEVICE": f"ens3.{rng.randint(1, 4094)}", "TYPE": "Vlan",
                 "IPV6ADDR": _ipv6(rng)},
)


def _value(rng: Rng, key: str) -> str:
    kind = rng.randint(0, 19)
    if kind < 15:
        return PLAUSIBLE[key](rng)
    if kind < 17:  # a hostile piece spliced into a plausible value
        base = PLAUSIBLE[key](rng)
        at = rng.randint(0, len(base))
        return base[:at] + rng.choice(HOSTILE) + base[at:]
    if kind < 19:
        return rng.choice(HOSTILE)
    return _text(rng, 40)


def _quote(value: str, how: str) -> str:
    if how == "single":
        return "'" + value.replace("'", "'\"'\"'") + "'"
    if how == "double":
        return '"' + "".join("\\" + c if c in '"\\$`' else c for c in value) + '"'
    return value


def _entry(rng: Rng) -> bytes:
    pairs = rng.choice(CORE)(rng)
    for key in rng.sample(KEYS, rng.choice([0, 1, 1, 2, 2, 3, 4, 5])):
        pairs[key] = _value(rng, key)
    eol = rng.choice(["\n", "\n", "\r\n"])
    lines = []
    for key, value in pairs.items():
        how = rng.choice(["single"] * 5 + ["double"] * 2 + ["raw"])
        prefix = rng.choice(["", "", "", "export ", "  "])
        lines.append(f"{prefix}{key}={_quote(value, how)}")
        if rng.random() < 0.1:
            lines.append(rng.choice(["", "# a comment", "#\r", "   "]))
    return (eol.join(lines) + eol).encode("utf-8", "surrogatepass")


class Example(NamedTuple):
    entries: tuple[tuple[str, bytes], ...]
    nics: tuple[tuple[str, str], ...]


def _example(rng: Rng) -> Example:
    # the name with a newline (an error for the whole payload) in about 1 in 30
    pool = ENTRY_NAMES if rng.random() < 0.03 else [n for n in ENTRY_NAMES if "\n" not in n]
    names = sorted(rng.sample(pool, rng.choice([1, 1, 1, 2, 2, 3])))
    nics = tuple(rng.sample(NICS, rng.randint(0, 4)))
    return Example(tuple((n, _entry(rng)) for n in names), nics)


# --- in-process: reject with entry, line and key, or render canonical files -----------------


class Rendered(NamedTuple):
    example: Example
    config: HostConfig
    plan: Plan
    # formats that cannot express a setting of the payload (exit 3 for them, checked)
    rejected: tuple[Format, ...] = ()


_ASSIGNMENT = re.compile(r"[ \t]*(export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=")
_KEY_FIRST = re.compile(r"[ \t]*(export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)")


def _facts(ex: Example) -> Facts:
    return Facts(os_release={"ID": "debian", "VERSION_ID": "12"},
                 netdevs=tuple(NetDev(n, m) for n, m in ex.nics), hosts=None,
                 installed=frozenset(), enabled=frozenset())


def _process(ex: Example) -> Optional[Rendered]:
    """Validate and render; None when the payload is rejected (after checking the error)."""
    data = dict(ex.entries)
    try:
        payloads = [parse(name, raw) for name, raw in ex.entries]
        result = build(payloads, [NetDev(n, m) for n, m in ex.nics], DEFAULT_INTERFACE)
    except PayloadError as e:
        _check_error(e, data)
        return None
    files: list[PlannedFile] = []
    rejected: list[Format] = []
    for fmt in ALL_FORMATS:  # one at a time: a format may refuse what the others can say
        try:
            files += render(result.config, [fmt], _facts(ex), TEMPLATES).files
        except PayloadError as e:
            _check_error(e, data)
            rejected.append(fmt)
    return Rendered(ex, result.config, Plan(tuple(files)), tuple(rejected))


def _check_error(e: PayloadError, data: dict[str, bytes]) -> None:
    assert "\n" not in str(e) and "\r" not in str(e), repr(str(e))
    odd = [printable(n) for n in data if CONTROL.search(n) or "\n" in n]
    if e.entry not in data:  # an entry whose name has a control character is refused whole
        assert e.entry in odd and e.line is None, e
        return
    assert e.line is not None, f"no line: {e}"
    lines = data[e.entry].decode().split("\n")
    assert 1 <= e.line <= len(lines), e
    text = lines[e.line - 1]
    if e.key is None:
        # only a line that is not an assignment may go without a key
        assert not _ASSIGNMENT.match(text) or "NUL" in e.reason, f"{e} (line {text[:80]!r})"
    else:  # the line starts with the key (an assignment, or a key without its '=')
        m = _KEY_FIRST.match(text)
        assert m is not None and m.group(2) == e.key, f"{e} (line {text[:80]!r})"


def _canonical(config: HostConfig) -> set[str]:
    """The str() of every value of the model: all a file may say besides template constants."""
    out: set[str] = set()
    for name in (config.hostname, config.fqdn, config.short_hostname, config.domain):
        if name:
            out.add(name)
    out.update(config.search)
    out.update(str(d) for d in config.dns)
    for i in config.interfaces:
        out.update({i.name, i.label, f"fwcfg-{i.name}", f"fwcfg-{i.label}", i.bootproto.value})
        if i.mac:
            out.update({i.mac, i.mac.upper()})
        for a in i.addresses:
            out.update({str(a), str(a.ip), str(a.network.prefixlen)})
        for gw in (i.gateway, i.gateway6):
            if gw is not None:
                out.add(str(gw))
        for r in i.routes:
            out.add(str(r.destination))
            if r.gateway is not None:
                out.add(str(r.gateway))
            if r.metric is not None:
                out.add(str(r.metric))
        if i.mtu is not None:
            out.add(str(i.mtu))
        out.update(str(m) for m in (i.metric4, i.metric6) if m is not None)
        # VLANs, bonds, bridges
        out.update(x for x in (i.parent, i.master, i.master_kind) if x)
        out.update(str(x) for x in (i.vlan_id, i.forward_delay) if x is not None)
        out.update(v for _, v in i.bond_options)
        out.update(f"{k}={v}" for k, v in i.bond_options)
        out.update(f"{v}ms" for _, v in i.bond_options)
    return out


CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
NETWORKD_CONST = {"ipv4", "ipv6", "yes", "no", "solicit", "vlan", "bond", "bridge"}
NM_CONST = {"ethernet", "999", "auto", "manual", "disabled", "0.0.0.0/0", "::/0", "0.0.0.0",
            "::", "onlink=true", "link-local", "dhcp", "true", "vlan", "bond", "bridge", "false"}
IFUPDOWN_CONST = {"auto", "allow-hotplug", "iface", "inet", "inet6", "static", "dhcp", "manual",
                  "address", "gateway", "mtu", "dns-nameservers", "dns-search", "up", "pre-up",
                  "ip", "-6", "route", "replace", "default", "via", "dev", "onlink", "metric",
                  "link", "set", "$IFACE", "accept_ra", "autoconf", "0", "1", "echo", ">",
                  "bond-master", "bond-slaves", "none", "bond-mode", "bond-miimon",
                  "bond-updelay", "bond-downdelay", "bond-lacp-rate", "bond-xmit-hash-policy",
                  "bond-min-links", "bond-primary", "bridge_ports", "bridge_stp", "bridge_fd",
                  "on", "off", "vlan-raw-device"}
# the pre-up writes of IPv6 sysctls where no inet6 stanza carries them
PROC_SYSCTL = re.compile(r"/proc/sys/net/ipv6/conf/(?P<dev>[^/]+)/(accept_ra|autoconf|"
                         r"disable_ipv6|accept_ra_defrtr)\Z")
ROUTE_CONST = {"default", "via", "dev", "onlink", "metric"}
NETPLAN_CONST = {"0.0.0.0/0", "::/0", "link"}  # default routes (Debian 11's netplan: no "default")
IFCFG_CONST = {"Ethernet", "Vlan", "Bond", "Bridge", "yes", "no", "on", "off"}


def _tokens(value: str, seps: str = " ") -> list[str]:
    return [t for t in re.split(f"[{re.escape(seps)}]", value) if t]


def _check_files(r: Rendered) -> None:
    canon = _canonical(r.config)
    ifaces = {i.name: i for i in r.config.interfaces}
    for f in r.plan.files:
        text = f.content.decode("utf-8")
        bad = CONTROL.search(text)
        assert bad is None, (f.path, bad.group())
        if f.format is not Format.HOSTS:
            assert "\t" not in text, f.path
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                assert line.isascii() or f.format is Format.HOSTS, (f.path, line)
        name = os.path.basename(f.path)
        if f.format is Format.HOSTNAME:
            assert text == f"{r.config.hostname}\n"
        elif f.format is Format.HOSTS and name == "hosts":
            _check_hosts(text, canon)
        elif f.format is Format.NETWORKD:
            for _section, items in _parse_unit(text):
                for _key, value in items:
                    assert value and value == value.strip() and not value.endswith("\\")
                    for t in _tokens(value):
                        assert t in canon | NETWORKD_CONST, (f.path, _key, t)
        elif f.format is Format.NM:
            _check_nm(text, canon, f.path)
        elif f.format is Format.NETPLAN:
            _check_netplan(text, canon, r.config)
        elif f.format is Format.IFUPDOWN:
            for line in text.splitlines():
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                assert not line.endswith("\\")
                for t in shlex.split(line):
                    if t.startswith("mac/"):
                        mac, label = re.fullmatch(r"mac/([^/]+)/=(.+)", t).groups()  # type: ignore[union-attr]
                        assert {mac, label} <= canon, t
                    elif PROC_SYSCTL.match(t):
                        dev = PROC_SYSCTL.match(t).group("dev")  # type: ignore[union-attr]
                        assert dev in canon | {"$IFACE"}, (f.path, line, t)
                    else:
                        assert t in canon | IFUPDOWN_CONST, (f.path, line, t)
        elif f.format is Format.IFCFG and name.startswith("route"):
            for line in text.splitlines():
                if not line.startswith("#"):
                    for t in line.split(" "):
                        assert t in canon | ROUTE_CONST, (f.path, line, t)
        elif f.format is Format.IFCFG:
            _check_ifcfg(text, canon, ifaces[name[len("ifcfg-"):]], f.path)


def _check_hosts(text: str, canon: set[str]) -> None:
    inside = False
    for line in text.splitlines():
        if line.startswith("# BEGIN fwcfg-agent"):
            inside = True
        elif line.startswith("# END fwcfg-agent"):
            inside = False
        elif inside:
            fields = line.split("\t")
            assert fields[0] in canon | {"127.0.1.1"}, line
            assert set(fields[1].split(" ")) <= canon, line


def _gkeyfile_unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"s": " ", "n": "\n", "t": "\t", "r": "\r",
                                       "\\": "\\"}[m.group(1)], s)


def _check_nm(text: str, canon: set[str], path: str) -> None:
    for section, items in _parse_keyfile(text).items():
        for key, raw in items.items():
            value = _gkeyfile_unescape(raw)
            if key == "uuid" or (section, key) in (("vlan", "parent"), ("connection", "master")):
                assert UUID.match(value), value
                continue
            for t in _tokens(value, ";,"):
                assert t in canon | NM_CONST, (path, section, key, t)


def _check_netplan(text: str, canon: set[str], config: HostConfig) -> None:
    doc = yaml.load(text, Loader=yaml.CSafeLoader)  # libyaml: netplan's parser
    ints = {i.mtu for i in config.interfaces} | {r.metric for i in config.interfaces
                                                   for r in i.routes}
    ints |= {m for i in config.interfaces for m in (i.metric4, i.metric6)}
    ints |= {x for i in config.interfaces for x in (i.vlan_id, i.forward_delay)}
    ints |= {int(v) for i in config.interfaces for _, v in i.bond_options if v.isdigit()}

    def walk(node: object) -> Iterator[object]:
        if isinstance(node, dict):
            for k, v in node.items():
                yield k
                yield from walk(v)
        elif isinstance(node, list):
            for v in node:
                yield from walk(v)
        else:
            yield node

    for leaf in walk({k: v for k, v in doc["network"].items() if k != "version"}):
        if isinstance(leaf, bool):
            continue
        if isinstance(leaf, int):
            assert leaf in ints, leaf
            continue
        assert isinstance(leaf, str), leaf
        assert leaf in canon | NETPLAN_CONST or leaf in {
            "match", "macaddress", "dhcp4", "addresses", "routes", "to", "via", "on-link",
            "scope", "metric", "nameservers", "search", "mtu", "dhcp6", "accept-ra",
            "link-local", "dhcp4-overrides", "dhcp6-overrides", "route-metric", "use-dns",
            "interfaces", "parameters", "mode", "mii-monitor-interval", "up-delay", "down-delay",
            "min-links", "lacp-rate", "transmit-hash-policy", "primary", "stp", "forward-delay",
            "id", "link", "ethernets", "bonds", "bridges", "vlans"}, leaf


SHELL_VARS = {"BASH_ENV", "CDPATH", "COLUMNS", "ENV", "EUID", "FUNCNEST", "GLOBIGNORE", "GROUPS",
              "HISTFILE", "HOME", "HOSTNAME", "IFS", "LANG", "LANGUAGE", "LINENO", "LINES",
              "MAIL", "MAILCHECK", "MAILPATH", "OLDPWD", "OPTARG", "OPTERR", "OPTIND", "PATH",
              "POSIXLY_CORRECT", "PPID", "PROMPT_COMMAND", "PROMPT_DIRTRIM", "PS0", "PS1", "PS2",
              "PS3", "PS4", "PWD", "RANDOM", "SECONDS", "SHELL", "SHELLOPTS", "SHLVL", "TERM",
              "TIMEFORMAT", "TMOUT", "TMPDIR", "TZ", "UID"}


def _written_extra(iface: Interface) -> dict[str, str]:
    """The pass-through keys an ifcfg file carries: upper case, not a shell's own variable."""
    return {k: v for k, v in iface.extra if k.isupper() and k not in SHELL_VARS
            and not k.startswith(("BASH", "LC_", "LD_"))}


def _check_ifcfg(text: str, canon: set[str], iface: Interface, path: str) -> None:
    extra = _written_extra(iface)
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        (word,) = shlex.split(line)  # one word: KEY=value, the value quoted
        key, _, value = word.partition("=")
        if key in extra:
            assert value == extra[key], (path, key)
        elif key in ("DOMAIN", "IPV6ADDR_SECONDARIES", "BONDING_OPTS"):
            assert set(value.split(" ")) <= canon, (path, key, value)
        else:
            assert value in canon | IFCFG_CONST, (path, key, value)


PER_EXAMPLE = 5  # payloads per hypothesis example in the big run


def _check(ex: Example) -> Optional[Rendered]:
    try:
        r = _process(ex)
        if r is not None:
            _check_files(r)
        return r
    except AssertionError as e:
        raise AssertionError(f"{e}\n{ex!r}") from e


@settings(max_examples=EXAMPLES // PER_EXAMPLE, **SETTINGS)
@given(st.randoms(use_true_random=True))
def test_payloads_are_rejected_or_render_canonical_files(rng: Rng) -> None:
    """10,000 payloads from a seeded Random: each failure message holds its payload."""
    for _ in range(PER_EXAMPLE):
        _check(_example(rng))


@settings(max_examples=int(os.environ.get("FWCFG_HOSTILE_SHRINKABLE", "300")), **SETTINGS)
@given(st.randoms(use_true_random=False))
def test_payloads_shrinkable(rng: Rng) -> None:
    """The same generator on hypothesis' own Random: fewer payloads, but a failure shrinks to a
    small one."""
    _check(_example(rng))


def test_the_examples_reach_both_outcomes() -> None:
    """The generator is worth its examples: plenty pass, plenty fail, scope IDs get through."""
    rng = random.Random(12)
    counts = {"valid": 0, "rejected": 0, "scoped": 0, "extra": 0, "some formats": 0,
              "shapes": 0}
    for _ in range(1000):
        ex = _example(rng)
        r = _process(ex)
        counts["valid" if r else "rejected"] += 1
        if r and r.rejected:
            counts["some formats"] += 1
        if r and any(i.virtual for i in r.config.interfaces):
            counts["shapes"] += 1
        if r and any(b"%" in raw for _, raw in ex.entries):
            counts["scoped"] += 1
        if r and any(i.extra for i in r.config.interfaces):
            counts["extra"] += 1
    # (issue 14's keys, each a chance to fail, took the valid ones from over 150 to about 140)
    assert counts["valid"] >= 130 and counts["rejected"] >= 300, counts
    assert counts["scoped"] >= 20 and counts["extra"] >= 30, counts
    assert counts["some formats"] >= 5, counts  # a format that cannot say a setting: exit 3
    assert counts["shapes"] >= 20, counts  # VLANs, bonds, bridges get through


# --- the real readers, on a sample of the payloads that pass --------------------------------


@pytest.fixture(scope="module")
def samples() -> list[Rendered]:
    """Payloads that pass, with at least one interface, from a fixed seed."""
    rng = random.Random(2026)
    found: list[Rendered] = []
    while len(found) < CONSUMER_SAMPLES:
        r = _check(_example(rng))
        if r is not None and r.config.interfaces and not r.rejected:
            found.append(r)
    return found


def _tool(name: str, *also: str) -> str:
    for candidate in (name, *also):
        path = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None) \
            or shutil.which(candidate, path="/usr/sbin:/sbin:/usr/bin:/bin")
        if path:
            return path
    pytest.fail(f"{name} is missing: run tools/bootstrap")


def _files(r: Rendered, fmt: Format) -> list[tuple[str, bytes]]:
    return [(f.path, f.content) for f in r.plan.files if f.format is fmt]


def _describe(r: Rendered) -> str:
    return f"payload {r.example!r}"


def test_netplan_generate_accepts_every_sample(tmp_path: Path, samples: list[Rendered]) -> None:
    # netplan's generator itself (`netplan generate` runs it; the Python wrapper costs 0.25 s)
    generate = _tool("/usr/lib/netplan/generate", "/lib/netplan/generate", "netplan")
    for n, r in enumerate(samples):
        root = tmp_path / str(n)
        ((path, content),) = _files(r, Format.NETPLAN)
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True)
        dest.write_bytes(content)
        dest.chmod(0o600)
        args = [generate, "--root-dir", str(root)]
        if generate.endswith("netplan"):
            args.insert(1, "generate")
        p = subprocess.run(args, capture_output=True, text=True)
        assert p.returncode == 0, (p.stderr, content.decode(), _describe(r))
        stderr = p.stderr
        if _shared_default(r.config):  # netplan warns (and goes on), as the agent does
            stderr = re.sub(r".*(default route consistency|Conflicting default route).*\n", "",
                            stderr)
        assert "warning" not in stderr.lower() and "error" not in stderr.lower(), (
            p.stderr, _describe(r))
        made = list((root / "run/systemd/network").glob("10-netplan-*.network"))
        assert len(made) == len(r.config.interfaces), (made, _describe(r))
        shutil.rmtree(root)


def _shared_default(config: HostConfig) -> bool:
    """Two interfaces with a default route of the same family and metric."""
    seen: set[tuple[int, Optional[int]]] = set()
    for i in config.interfaces:
        mine: set[tuple[int, Optional[int]]] = {
            (gw.version, i.metric4 if gw.version == 4 else i.metric6)
            for gw in (i.gateway, i.gateway6) if gw is not None}
        mine |= {(r.version, r.metric) for r in i.routes if r.destination.prefixlen == 0}
        if seen & mine:
            return True
        seen |= mine
    return False


def test_networkd_knows_every_setting(samples: list[Rendered]) -> None:
    known = _networkd_keys()
    for r in samples:
        for path, content in _files(r, Format.NETWORKD):
            for section, items in _parse_unit(content.decode()):
                for key, _ in items:
                    assert f"{section}.{key}" in known, (path, section, key, _describe(r))


def test_ifquery_parses_every_sample(tmp_path: Path, samples: list[Rendered]) -> None:
    ifquery = _tool("ifquery")
    for r in samples:
        for iface in r.config.interfaces:
            ((_, content),) = [(p, c) for p, c in _files(r, Format.IFUPDOWN)
                               if p.endswith(f"fwcfg-{iface.label}")]
            path = tmp_path / "interfaces"
            path.write_bytes(content)
            p = subprocess.run([ifquery, "-i", str(path), iface.label], capture_output=True,
                               text=True)
            assert p.returncode == 0 and p.stderr == "", (p.stderr, _describe(r))
            options = p.stdout.splitlines()
            for a in iface.addresses:  # ifquery splits the prefix off into a netmask
                assert f"address: {a.ip}" in options, (options, _describe(r))
            canon = _canonical(r.config)
            for option in options:
                name, _, value = option.partition(": ")
                if name not in ("address", "gateway", "mtu", "dns-nameservers", "dns-search",
                                "up", "pre-up"):
                    continue  # what ifquery derives itself (netmask, broadcast, ...)
                words = shlex.split(value) if name in ("up", "pre-up") else value.split(" ")
                if name == "address":
                    words = [w.split("/")[0] for w in words]
                    canon = canon | {str(a.ip) for a in iface.addresses}
                words = [w for w in words if not (PROC_SYSCTL.match(w) and PROC_SYSCTL.match(
                    w).group("dev") in canon | {"$IFACE"})]  # type: ignore[union-attr]
                assert set(words) <= canon | IFUPDOWN_CONST, (option, _describe(r))


def test_networkmanager_accepts_every_sample(samples: list[Rendered]) -> None:
    nmcli = _tool("nmcli")
    for r in samples:
        for iface in r.config.interfaces:
            ((_, content),) = [(p, c) for p, c in _files(r, Format.NM)
                               if p.endswith(f"fwcfg-{iface.label}.nmconnection")]
            p = subprocess.run([nmcli, "--offline", "connection", "modify", "connection.id",
                                f"fwcfg-{iface.label}"], input=content, capture_output=True)
            assert p.returncode == 0 and p.stderr == b"", (p.stderr.decode(), _describe(r))
            theirs = _parse_keyfile(p.stdout.decode())
            for family, addrs in (("ipv4", iface.ipv4), ("ipv6", iface.ipv6)):
                read = {ipaddress.ip_interface(v.split(",")[0]) for k, v in theirs[family].items()
                        if re.fullmatch(r"address\d+", k)}
                assert read == set(addrs), _describe(r)


BATCH_SCRIPT = r"""
for f in "$@"; do
  ( set -eu
    __before=" $(compgen -v | tr '\n' ' ') "
    . "$f"
    for __v in $(compgen -v); do
      case "$__before" in *" $__v "*) continue ;; esac
      case "$__v" in __*) continue ;; esac
      printf '%s\0%s\0' "$__v" "${!__v}"
    done ) || { echo "sourcing $f failed" >&2; exit 9; }
  printf '\1\0'
done
"""


def test_bash_sources_every_ifcfg_sample_inertly(tmp_path: Path,
                                                 samples: list[Rendered]) -> None:
    _tool("bash")
    work = tmp_path / "cwd"
    work.mkdir()
    paths: list[Path] = []
    expected: list[tuple[Rendered, dict[str, str]]] = []
    for n, r in enumerate(samples):
        for iface in r.config.interfaces:
            ((_, content),) = [(p, c) for p, c in _files(r, Format.IFCFG)
                               if p.endswith(f"/ifcfg-{iface.name}")]
            path = tmp_path / f"ifcfg-{n}-{iface.name}"
            path.write_bytes(content)
            paths.append(path)
            expected.append((r, _expected_ifcfg(r.config, iface)))
    pwned = [Path("/tmp/pwned"), Path("/tmp/p")]
    existed = [p.exists() for p in pwned]
    p = subprocess.run(["env", "-i", "bash", "--noprofile", "--norc", "-c", BATCH_SCRIPT, "bash",
                        *map(str, paths)], capture_output=True, cwd=work)
    assert p.returncode == 0 and p.stderr == b"", p.stderr.decode()
    blocks = p.stdout.split(b"\1\0")
    assert blocks[-1] == b"" and len(blocks) == len(paths) + 1
    for block, (r, want) in zip(blocks, expected):
        fields = block.split(b"\0")
        got = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields) - 1, 2)}
        assert got == want, _describe(r)
    assert list(work.iterdir()) == [], "sourcing an ifcfg file created files"
    assert [q.exists() for q in pwned] == existed, "sourcing an ifcfg file ran a command"


def _expected_ifcfg(config: HostConfig, iface: Interface) -> dict[str, str]:
    from tests.test_render_consumers import _expected_ifcfg as base

    want = {k: v for k, v in base(config, iface).items()
            if k not in dict(iface.extra)}  # the base adds every extra key but a few
    extra = _written_extra(iface)
    want.update(extra)
    return want


# --- the CLI: exit 3, one line naming entry, line and key, nothing written ------------------


def test_rejected_payloads_exit_3_and_write_nothing(tmp_path: Path) -> None:
    rng = random.Random(3)
    seen = 0
    while seen < CLI_SAMPLES:
        ex = _example(rng)
        if _process(ex) is not None:
            continue
        seen += 1
        d = Path(tempfile.mkdtemp(dir=tmp_path))
        # the NICs as a fake sysfs can hold them (no '/' in a directory name)
        nics = tuple((n, m) for n, m in ex.nics if "/" not in n and n not in (".", ".."))
        root = make_guest_root(d / "root", dict(ex.entries), nics=nics)
        before = snapshot(root, "etc")
        r = agent(root, "apply")
        assert r.code == 3, (r.code, r.err, ex)
        assert "Traceback" not in r.err and "internal error" not in r.err, r.err
        errors = [x for x in r.err.splitlines() if x.startswith("fwcfg-agent: error: ")]
        assert len(errors) == 1, (r.err, ex)
        # (a key of thousands of characters is shown cut, with "...")
        assert re.search(r", line \d+(, key [A-Za-z_][A-Za-z0-9_]*(\.\.\.)?)?: |"
                         r": the entry's name holds a control character", errors[0]), errors[0]
        assert snapshot(root, "etc") == before, ex
        (run,) = journal_runs(root)  # the run is journalled as invalid, and that is all
        assert run["outcome"] == "invalid", run
        shutil.rmtree(d)


# --- the findings of issue 12, through the CLI ----------------------------------------------
# Before: the first five were written into the files as they were (exit 0), the big key number
# and IPADDRx were "internal error" (exit 1).

FINDINGS = [
    (b"DEVICE=ens3\nIPV6ADDR=2001:db8::5/64\nIPV6_DEFAULTGW='fe80::1%x;reboot'\n", 3,
     "IPV6_DEFAULTGW"),
    (b"DEVICE=ens3\nIPV6ADDR=2001:db8::5/64\nROUTE1='fe80::%x;reboot/64 via 2001:db8::1'\n", 3,
     "ROUTE1"),
    (b'IPADDR=10.0.0.5\nDNS1="fe80::53%x\rDomains=evil.example"\n', 2, "DNS1"),
    (b"IPADDR=10.0.0.5\nZONE='a\rb'\n", 2, "ZONE"),
    (b"DEVICE=ens3\nIPV6ADDR=2001:db8::5/64\nIPV6ADDR_SECONDARIES='2001:db8::5'\n", 3,
     "IPV6ADDR_SECONDARIES"),
    (b"IPADDR=10.0.0.5\nDNS" + b"1" * 5000 + b"=192.0.2.53\n", 2, "DNS111"),
]


@pytest.mark.parametrize(("payload", "line", "key"), FINDINGS,
                         ids=["gw6-scope", "route-scope", "dns-cr", "extra-cr", "dup-address",
                              "big-index"])
def test_findings_exit_3_naming_entry_line_key(tmp_path: Path, payload: bytes, line: int,
                                              key: str) -> None:
    root = make_guest_root(tmp_path / "root", {"opt/GuestInfo": payload})
    before = snapshot(root, "etc")
    r = agent(root, "apply")
    assert r.code == 3, r.err
    (error,) = [x for x in r.err.splitlines() if x.startswith("fwcfg-agent: error: ")]
    assert f"opt/GuestInfo, line {line}, key {key}" in error, error
    assert snapshot(root, "etc") == before


@pytest.mark.parametrize("extra", [b"IPADDRx=1", b"IPADDR_START=10.0.0.9", b"ROUTE_METRIC=100"])
def test_near_miss_keys_are_passed_through(tmp_path: Path, extra: bytes) -> None:
    root = make_guest_root(tmp_path / "root", {"opt/GuestInfo": b"IPADDR=10.0.0.5\n" + extra
                                               + b"\n"})
    r = agent(root, "apply", "--format", "networkd", "--format", "ifcfg")
    assert r.code == 0, r.err
    key, value = extra.decode().split("=")
    assert f"unknown keys kept for templates: {key}" in r.err
    network = (root / "etc/systemd/network/10-fwcfg-enx525400123456.network").read_text()
    assert network.count("\nAddress=") == 1 and "[Route]" not in network
    ifcfg = (root / "etc/sysconfig/network-scripts/ifcfg-ens3").read_text()
    if key.isupper():
        assert f"\n{key}='{value}'\n" in ifcfg
    else:  # not an ifcfg word: named in a comment only
        assert f"\n# not written, a shell variable or not an ifcfg word: {key}\n" in ifcfg
