"""Checks for single values. Each returns the normalised value or raises ValueError(reason)."""

from __future__ import annotations

import ipaddress
import re

from .model import IPAddress, IPInterface, IPNetwork

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}\Z")
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}\Z")

MTU_MIN, MTU_MAX, MTU_MIN_IPV6 = 68, 65535, 1280


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


def domain_list(value: str) -> tuple[str, ...]:
    names = tuple(value.replace(",", " ").split())
    if not names:
        raise ValueError("is empty")
    for name in names:
        hostname(name)
    return names


def ip_address(value: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


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


def prefix(value: str, version: int) -> int:
    top = 32 if version == 4 else 128
    if not value.isdigit() or int(value) > top:
        raise ValueError(f"{value!r} is not a prefix length from 0 to {top}")
    return int(value)


def netmask(value: str) -> int:
    """A dotted IPv4 netmask, returned as its prefix length."""
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{value}").prefixlen
    except ValueError:
        raise ValueError(f"{value!r} is not a contiguous IPv4 netmask") from None


def host_interface(address: IPAddress, length: int) -> IPInterface:
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
    return iface


def network(value: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(value)
    except ValueError as e:
        raise ValueError(f"{value!r} is not a network ({e})") from None


def mac(value: str) -> str:
    if not _MAC.match(value):
        raise ValueError(f"{value!r} is not a MAC address (six hex octets separated by ':')")
    norm = value.replace("-", ":").lower()
    first = int(norm[:2], 16)
    if first & 1:
        raise ValueError(f"{value!r} is a multicast address, not a NIC's")
    if norm == "00:00:00:00:00:00":
        raise ValueError("00:00:00:00:00:00 is not a NIC's address")
    return norm


def mtu(value: str) -> int:
    if not value.isdigit() or not MTU_MIN <= int(value) <= MTU_MAX:
        raise ValueError(f"{value!r} is not an MTU from {MTU_MIN} to {MTU_MAX}")
    return int(value)


def ifname(value: str) -> str:
    """Interface names as the kernel allows them, narrowed to characters safe in file names."""
    if not _IFNAME.match(value) or value in (".", ".."):
        raise ValueError(
            f"{value!r} is not an interface name (1-15 of A-Z a-z 0-9 _ . -, not '.' or '..')"
        )
    return value


def metric(value: str) -> int:
    if not value.isdigit() or int(value) > 0xFFFFFFFF:
        raise ValueError(f"{value!r} is not a route metric")
    return int(value)
