"""One key's value to a model value: the numbered key families, the address, gateway and
route converters, and `Value`, a value with where it came from. Every error names the entry,
the line and the key. (settings.py groups the keys into a host and its interfaces.)"""

from __future__ import annotations

from typing import Callable, Optional, TypeVar

from . import validate
from .errors import PayloadError
from .model import BootProto, IPAddress, IPInterface, Route
from .tuples import NamedTuple

# The numbered families, matched exactly (IPADDR and IPADDR<digits>, never IPADDR_START).
FAMILIES = frozenset({"IPADDR", "PREFIX", "NETMASK", "DNS", "ROUTE"})
DEFAULT_PREFIX4 = 24
DEFAULT_PREFIX6 = 64

T = TypeVar("T")


class Value(NamedTuple):
    """A value with where it came from, for error messages."""

    value: str
    entry: str
    line: int

    def error(self, key: str, reason: str) -> PayloadError:
        return PayloadError(self.entry, reason, line=self.line, key=key)

    def where(self, key: str) -> str:
        return f"{self.entry}, line {self.line}, key {key}"


def numbered(key: str) -> Optional[tuple[str, str]]:
    """A key of a numbered family as (family, ASCII digits): ("IPADDR", "7"), ("IPADDR", "");
    None for any other key (IPADDR_START). String methods, not a regular expression: this runs
    on every first boot, and re would compile its pattern first."""
    name = key.rstrip("0123456789")
    return (name, key[len(name):]) if name in FAMILIES else None


def family(key: str) -> Optional[str]:
    """IPADDR for IPADDR and IPADDR7, None for IPADDR_START (likewise for every family);
    ROUTE and DNS need their number."""
    n = numbered(key)
    if n is None or (not n[1] and n[0] in ("DNS", "ROUTE")):
        return None
    return n[0]


def key_suffix(key: str) -> str:
    n = numbered(key)
    assert n is not None
    return n[1]


def index_of(key: str) -> int:
    digits = key_suffix(key)
    return int(digits) if digits else -1  # at most MAX_INDEX_DIGITS: checked on the way in


def bootproto(value: str) -> BootProto:
    try:
        return BootProto(value.lower())
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not one of static, dhcp, none") from None


def ipv4_interface(v: dict[str, Value], key: str, notices: list[str]) -> IPInterface:
    suffix = key_suffix(key)
    raw = v[key]
    text, _, inline = raw.value.partition("/")
    addr = check(Value(text, raw.entry, raw.line), key, validate.ipv4_address)
    lengths: list[tuple[str, int]] = []
    if inline:
        lengths.append((key, check(Value(inline, raw.entry, raw.line), key,
                                    lambda s: validate.prefix(s, 4))))
    if "PREFIX" + suffix in v:
        lengths.append(("PREFIX" + suffix,
                        get(v, "PREFIX" + suffix, lambda s: validate.prefix(s, 4))))
    if "NETMASK" + suffix in v:
        lengths.append(("NETMASK" + suffix, get(v, "NETMASK" + suffix, validate.netmask)))
    if not lengths:
        notices.append(f"{raw.entry}, line {raw.line}: {key} has no prefix; using "
                       f"/{DEFAULT_PREFIX4}")
        lengths.append((key, DEFAULT_PREFIX4))
    first_key, length = lengths[0]
    for other_key, other in lengths[1:]:
        if other != length:
            bad = v[other_key]
            raise bad.error(other_key, f"says /{other} but {first_key} says /{length}")
    return check(Value(raw.value, raw.entry, raw.line), key,
                  lambda _: validate.host_interface(addr, length))


def ipv6_interface(raw: Value, key: str, word: str) -> IPInterface:
    text, slash, length = word.partition("/")
    addr = check(Value(text, raw.entry, raw.line), key, validate.ipv6_address)
    n = check(Value(length, raw.entry, raw.line), key,
               lambda s: validate.prefix(s, 6)) if slash else DEFAULT_PREFIX6
    return check(raw, key, lambda _: validate.host_interface(addr, n))


def gateway_address(raw: Value, key: str, name: str, warnings: list[str],
             text: Optional[str] = None) -> IPAddress:
    """A gateway's address, without its scope ID: the files are the interface's own, so the
    gateway is on that interface. A scope ID naming another interface is a warning."""
    addr, scope = check(Value(raw.value if text is None else text, raw.entry, raw.line), key,
                         validate.gateway)
    if scope is not None and scope != name:
        warnings.append(f"{raw.where(key)}: the scope ID %{scope} of {addr} is not {name}, the "
                        f"interface these settings are for; {addr} is configured on {name}")
    return addr


def route(raw: Value, key: str, name: str, warnings: list[str]) -> Route:
    words = validate.words(raw.value)
    if not words:
        raise raw.error(key, "is empty; expected 'DEST/PREFIX via GATEWAY [metric N]'")
    dest_text, rest = words[0], words[1:]
    if dest_text == "default":
        dest_text = "::/0" if any(":" in w for w in rest) else "0.0.0.0/0"
    dest = check(Value(dest_text, raw.entry, raw.line), key, validate.network)
    gateway: Optional[IPAddress] = None
    metric: Optional[int] = None
    while rest:
        if len(rest) < 2 or rest[0] not in ("via", "metric"):
            raise raw.error(key, f"expected 'via GATEWAY' or 'metric N', got "
                                 f"{' '.join(rest)[:60]!r}")
        word, arg, rest = rest[0], rest[1], rest[2:]
        if word == "via":
            gateway = gateway_address(raw, key, name, warnings, arg)
            if gateway.version != dest.version:
                raise raw.error(key, f"gateway {gateway} is not of the family of {dest}")
        else:
            metric = check(Value(arg, raw.entry, raw.line), key, validate.metric)
    return Route(dest, gateway, metric)


def check(v: Value, key: str, fn: Callable[[str], T]) -> T:
    try:
        return fn(v.value)
    except ValueError as e:
        raise v.error(key, str(e)) from None


def get(values: dict[str, Value], key: str, fn: Callable[[str], T]) -> T:
    return check(values[key], key, fn)


def opt(values: dict[str, Value], key: str, fn: Callable[[str], T]) -> Optional[T]:
    return check(values[key], key, fn) if key in values else None
