"""The templates' own filters and tests, and the few jinja2 built-ins they use, as plain
functions that need neither jinja2 nor any heavy module.

The jinja2 environment (`env.py`) registers the project's filters and tests from here. The
light runtime (`lite.py`) runs the templates with all of them, built-ins included: `BUILTIN_*`
reimplement, for the forms the templates use, what jinja2's filters and tests of the same name do
(tests/test_render_lite.py renders every golden case both ways and compares the bytes).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not loaded for this module: mypy reads it, Python does not
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

try:  # the C half of json: json.dumps without loading json (and re)
    from _json import encode_basestring_ascii as _json_str
except ImportError:  # pragma: no cover - CPython always has it
    from json import dumps as _json_str

# How the templates are written (whitespace control, no HTML escaping): both the jinja2
# environment and the generated code of the light runtime are made with these.
SYNTAX: dict[str, Any] = {"autoescape": False, "trim_blocks": True, "lstrip_blocks": True,
                          "keep_trailing_newline": True}


def shquote(value: object) -> str:
    """Quote for a file that a shell sources (ifcfg): nothing in it can expand or run."""
    s = str(value)
    return "'" + s.replace("'", "'\"'\"'") + "'"


def yamlstr(value: object) -> str:
    """A YAML double-quoted scalar: the JSON string (JSON strings are valid YAML)."""
    return str(_json_str(str(value)))


def keyfile(value: object) -> str:
    """A GKeyFile value: escape backslash, leading space and control characters."""
    s = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    s = s.replace("\r", "\\r")
    return "\\s" + s[1:] if s.startswith(" ") else s


def netmask(iface: Any) -> str:
    return str(iface.netmask)


def _uuid5(namespace: bytes, name: str) -> str:
    """RFC 4122 name-based (SHA-1) uuid, as uuid.uuid5 computes it, without importing uuid."""
    from ..digest import hash_function

    b = bytearray(hash_function("sha1")(namespace + name.encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


NAMESPACE_URL = bytes.fromhex("6ba7b8119dad11d180b400c04fd430c8")  # RFC 4122 NameSpace_URL
# The namespace of the stable ids the templates derive (NetworkManager connection uuids):
# _uuid5(NAMESPACE_URL, "https://github.com/fwcfg-agent"), spelled out so that loading this
# module costs no hashing (a test checks the derivation).
UUID_NAMESPACE = bytes.fromhex("597703537d81523aa71cdb942659486a")


def uuid5(value: object) -> str:
    """A uuid that depends only on `value`: the same interface gets the same uuid on every run."""
    return _uuid5(UUID_NAMESPACE, str(value))


def offlink(gateway: Any, iface: Any) -> bool:
    """Jinja test: no static subnet of `iface` holds `gateway` (a link-local IPv6 gateway is
    always on the link). The formats must then mark the route on-link, or the kernel refuses it
    ("Nexthop has invalid gateway"). A DHCP-only interface has no static subnet: its gateways are
    off-link by this definition, which is harmless (on-link only skips the kernel's check)."""
    if gateway is None:
        return False
    if gateway.version == 6 and gateway.is_link_local:
        return False
    return not any(a.version == gateway.version and gateway in a.network
                   for a in iface.addresses)


def carries_dns(iface: Any, config: Any) -> bool:
    """Jinja test: the host's DNS servers and search domains are written for `iface`. They go to
    every interface with static addresses; when none has any, to the DHCP ones; when there are
    none of those either, to all (so that they are never silently dropped)."""
    if not (config.dns or config.search):
        return False
    if any(i.addresses for i in config.interfaces):
        return bool(iface.addresses)
    if any(i.dhcp for i in config.interfaces):
        return bool(iface.dhcp)
    return True


FILTERS: dict[str, Callable[..., Any]] = {
    "shquote": shquote, "yamlstr": yamlstr, "keyfile": keyfile, "netmask": netmask,
    "uuid5": uuid5,
}
TESTS: dict[str, Callable[..., bool]] = {"offlink": offlink, "carries_dns": carries_dns}


class Unsupported(Exception):
    """A form of a built-in that only jinja2 itself implements: render with jinja2."""


# -- jinja2's built-ins, for the light runtime ---------------------------------------------


def attr(obj: Any, name: str) -> Any:
    """jinja2's attribute lookup (`x.a`): the attribute, else the item, else unsupported."""
    try:
        return getattr(obj, name)
    except AttributeError:
        pass
    try:
        return obj[name]
    except (TypeError, LookupError, AttributeError):
        raise Unsupported(f"no attribute {name!r}") from None


def _attr_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else attr(obj, part)
    return obj


def _join(value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    if attribute is not None:
        raise Unsupported("join(attribute=)")
    return str(d).join(map(str, value))


def _map(value: Iterable[Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
    if args and not kwargs:  # map("filter", *arguments)
        func = ALL_FILTERS.get(args[0])
        if func is None:
            raise Unsupported(f"map({args[0]!r})")
        return (func(item, *args[1:]) for item in value)
    if not args and set(kwargs) == {"attribute"}:
        return (_attr_path(item, kwargs["attribute"]) for item in value)
    raise Unsupported("map() with these arguments")


def _test(name: Any, args: tuple[Any, ...]) -> Callable[[Any], bool]:
    if name is None:
        return bool
    func = ALL_TESTS.get(name)
    if func is None:
        raise Unsupported(f"test {name!r}")
    return lambda item: bool(func(item, *args))


def _select(value: Iterable[Any], name: Any = None, *args: Any) -> Iterator[Any]:
    test = _test(name, args)
    return (item for item in value if test(item))


def _reject(value: Iterable[Any], name: Any = None, *args: Any) -> Iterator[Any]:
    test = _test(name, args)
    return (item for item in value if not test(item))


def _selectattr(value: Iterable[Any], attr: str, name: Any = None,
                *args: Any) -> Iterator[Any]:
    test = _test(name, args)
    return (item for item in value if test(_attr_path(item, attr)))


def _rejectattr(value: Iterable[Any], attr: str, name: Any = None,
                *args: Any) -> Iterator[Any]:
    test = _test(name, args)
    return (item for item in value if not test(_attr_path(item, attr)))


def _unique(value: Iterable[Any], case_sensitive: bool = False,
            attribute: Any = None) -> Iterator[Any]:
    """jinja2's unique: the first of each value; strings compare case-insensitively."""
    seen = set()
    for item in value:
        key = _attr_path(item, attribute) if attribute is not None else item
        if not case_sensitive and isinstance(key, str):
            key = key.lower()
        if key not in seen:
            seen.add(key)
            yield item


def _first(value: Iterable[Any]) -> Any:
    for item in value:
        return item
    raise Unsupported("first of an empty sequence")


BUILTIN_FILTERS: dict[str, Callable[..., Any]] = {
    "join": _join, "list": list, "map": _map, "select": _select, "reject": _reject,
    "selectattr": _selectattr, "rejectattr": _rejectattr, "unique": _unique, "first": _first,
    "length": len, "count": len, "upper": lambda s: str(s).upper(),
    "lower": lambda s: str(s).lower(), "string": str,
}
BUILTIN_TESTS: dict[str, Callable[..., bool]] = {
    "none": lambda v: v is None, "eq": lambda a, b: bool(a == b),
    "ne": lambda a, b: bool(a != b), "upper": lambda s: str(s).isupper(),
    "lower": lambda s: str(s).islower(), "in": lambda a, b: a in b,
    "true": lambda v: v is True, "false": lambda v: v is False,
}
BUILTIN_TESTS["equalto"] = BUILTIN_TESTS["=="] = BUILTIN_TESTS["eq"]
BUILTIN_TESTS["!="] = BUILTIN_TESTS["ne"]
ALL_FILTERS = {**BUILTIN_FILTERS, **FILTERS}
ALL_TESTS = {**BUILTIN_TESTS, **TESTS}
