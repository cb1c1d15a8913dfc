"""Checks for single values. Each returns the normalised value or raises ValueError(reason).

What a check returns is what the files say: ipaddress objects (written with str()), ints, and
names that passed a whitelist. Nothing of the input string reaches a file unless a check has
accepted every character of it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Optional

from .model import IPAddress, IPInterface, IPNetwork
from .payload import control_char

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
# Interface names as the kernel allows them (1-15 bytes; no '/', ':' or whitespace), narrowed
# to characters that are inert in every format and in file names.
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}\Z")
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}\Z")
_DECIMAL = re.compile(r"[0-9]+\Z")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

MTU_MIN, MTU_MAX, MTU_MIN_IPV6 = 68, 65535, 1280
MAX_INDEX_DIGITS = 9  # IPADDR<n>, DNS<n>, ROUTE<n>: n < 10**9


def text(value: str) -> str:
    """Free text (the value of a key the agent passes through): one line, no control
    characters."""
    c = control_char(value)
    if c:
        raise ValueError(f"contains the control character U+{ord(c):04X} (values are one "
                         "line of text without control characters)")
    return value


def key(value: str) -> str:
    """A payload key: an ASCII shell variable name."""
    if not _KEY.match(value):
        raise ValueError(f"{value[:40]!r} is not a key (letters, digits and '_', not starting "
                         "with a digit)")
    return value


def index(digits: str) -> int:
    """The number of a numbered key (DNS2, IPADDR1, ROUTE3): ASCII digits, at most
    MAX_INDEX_DIGITS of them."""
    if not _DECIMAL.match(digits):
        raise ValueError(f"{digits[:20]!r} is not a key number")
    if len(digits) > MAX_INDEX_DIGITS:
        raise ValueError(f"the key number ({len(digits)} digits) is too large: at most "
                         f"{MAX_INDEX_DIGITS} digits")
    return int(digits)


def _decimal(value: str, top: int, what: str) -> int:
    """A non-negative ASCII decimal number up to `top` (never int() on a huge or non-ASCII
    string: str.isdigit() is true for '²' and '٣', and int() refuses 4300+ digits)."""
    if not _DECIMAL.match(value) or len(value.lstrip("0")) > len(str(top)) or int(value) > top:
        raise ValueError(f"{value[:40]!r} is not {what}")
    return int(value)


def hostname(value: str) -> str:
    """A host name as RFC 1123 allows: labels of 1-63 letters, digits and hyphens, 253 in all."""
    if not value:
        raise ValueError("is empty")
    if len(value) > 253:
        raise ValueError(f"is {len(value)} characters long; at most 253 are allowed")
    for label in value.split("."):
        if not label:
            raise ValueError(f"{value!r} has an empty label")
        if len(label) > 63:
            raise ValueError(f"label {label[:20]!r}... is {len(label)} characters; at most 63")
        if not _LABEL.match(label):
            raise ValueError(
                f"label {label!r} may hold only letters, digits and inner hyphens (RFC 1123)"
            )
    if value.split(".")[-1].isdigit() and "." in value:
        raise ValueError(f"{value!r} looks like an address, not a name")
    return value


def words(value: str, separators: str = " \t") -> list[str]:
    """Split on the ASCII separators only (str.split() also splits on NBSP, U+3000, ...,
    which a shell reading the same value does not)."""
    for sep in separators[1:]:
        value = value.replace(sep, separators[0])
    return [w for w in value.split(separators[0]) if w]


def domain_list(value: str) -> tuple[str, ...]:
    names = tuple(words(value, " \t,"))
    if not names:
        raise ValueError("is empty")
    for name in names:
        hostname(name)
    return names


def _no_scope(value: str, what: str) -> None:
    if "%" in value:
        raise ValueError(f"{value[:60]!r}: a scope ID ('%...') is allowed only on a link-local "
                         f"IPv6 gateway, not on {what}")


def ip_address(value: str) -> IPAddress:
    _no_scope(value, "an address")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value[:60]!r} is not an IP address") from None


def ipv4_address(value: str) -> ipaddress.IPv4Address:
    addr = ip_address(value)
    if not isinstance(addr, ipaddress.IPv4Address):
        raise ValueError(f"{value!r} is not an IPv4 address")
    return addr


def ipv6_address(value: str) -> ipaddress.IPv6Address:
    addr = ip_address(value)
    if not isinstance(addr, ipaddress.IPv6Address):
        raise ValueError(f"{value!r} is not an IPv6 address")
    return addr


def gateway(value: str) -> tuple[IPAddress, Optional[str]]:
    """A gateway: an address, and for a link-local IPv6 one optionally `%IFNAME`, the interface
    it is reached through. Returns the address without the scope ID, and the scope ID (an
    interface name) or None. The files the agent writes are per interface: they say which
    interface a gateway is on without a scope ID (which most of their readers refuse)."""
    text, percent, scope = value.partition("%")
    addr = ip_address(text)
    if not percent:
        return addr, None
    if addr.version != 6 or not addr.is_link_local:
        raise ValueError(f"{value[:60]!r}: a scope ID ('%...') is allowed only on a link-local "
                         "IPv6 gateway (fe80::/10)")
    try:
        return addr, interface_name(scope)
    except ValueError as e:
        raise ValueError(f"the scope ID of {text} {e}") from None


def prefix(value: str, version: int) -> int:
    top = 32 if version == 4 else 128
    return _decimal(value, top, f"a prefix length from 0 to {top}")


def netmask(value: str) -> int:
    """A dotted IPv4 netmask, returned as its prefix length."""
    if not value or "/" in value or not all(c in "0123456789." for c in value):
        raise ValueError(f"{value[:40]!r} is not a contiguous IPv4 netmask")
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{value}").prefixlen
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not a contiguous IPv4 netmask") from None


def host_interface(address: IPAddress, length: int) -> IPInterface:
    if length == 0:  # netplan refuses it, and every destination would be on the link
        raise ValueError(f"{address}/0: an address needs a prefix length of 1 or more")
    iface = ipaddress.ip_interface(f"{address}/{length}")
    net = iface.network
    if net.num_addresses > 2 and address == net.network_address:
        raise ValueError(f"{address} is the network address of {net}")
    if (
        isinstance(net, ipaddress.IPv4Network)
        and net.num_addresses > 2
        and address == net.broadcast_address
    ):
        raise ValueError(f"{address} is the broadcast address of {net}")
    if address.is_multicast or address.is_unspecified:
        raise ValueError(f"{address} cannot be an interface address")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # RFC 4291 2.5.5.2: not assigned to interfaces (and Python writes it one way up to
        # 3.12, another from 3.13)
        raise ValueError(f"{address} is an IPv4-mapped address, not an interface's (IPv4 "
                         "addresses go in IPADDR)")
    return iface


def network(value: str) -> IPNetwork:
    _no_scope(value, "a route's destination")
    try:
        return ipaddress.ip_network(value)
    except ValueError as e:
        raise ValueError(f"{value[:60]!r} is not a network ({str(e)[:100]})") from None


def mac(value: str) -> str:
    """A NIC's MAC address, canonical: lower case, ':'-separated."""
    if not _MAC.match(value):
        raise ValueError(f"{value[:40]!r} is not a MAC address (six hex octets separated by ':')")
    norm = value.replace("-", ":").lower()
    first = int(norm[:2], 16)
    if first & 1:
        raise ValueError(f"{value!r} is a multicast address, not a NIC's")
    if norm == "00:00:00:00:00:00":
        raise ValueError("00:00:00:00:00:00 is not a NIC's address")
    return norm


def mtu(value: str) -> int:
    n = _decimal(value, MTU_MAX, f"an MTU from {MTU_MIN} to {MTU_MAX}")
    if n < MTU_MIN:
        raise ValueError(f"{value!r} is not an MTU from {MTU_MIN} to {MTU_MAX}")
    return n


def interface_name(value: str) -> str:
    """An interface name as the kernel allows it, narrowed to characters that are inert in
    every format and in file names: 1-15 of A-Z a-z 0-9 _ . -, not '.' or '..'."""
    if not _IFNAME.match(value) or value in (".", ".."):
        raise ValueError(
            f"{value[:40]!r} is not an interface name (1-15 of A-Z a-z 0-9 _ . -, not '.' "
            "or '..')"
        )
    return value


ifname = interface_name  # the name the payload code has always used


def metric(value: str) -> int:
    return _decimal(value, 0xFFFFFFFF, "a route metric (0 to 4294967295)")


def yes_no(value: str) -> bool:
    """An ifcfg boolean: yes or no (any case; also true/false, 1/0, as ifcfg-rh reads them)."""
    v = value.lower()
    if v in ("yes", "true", "1", "y"):
        return True
    if v in ("no", "false", "0", "n"):
        return False
    raise ValueError(f"{value[:40]!r} is not yes or no")
