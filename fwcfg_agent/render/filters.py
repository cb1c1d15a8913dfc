"""The templates' own filters and tests (jinja2's built-ins are jinja2's), as plain functions
that need neither jinja2 nor any heavy module. `env.py` registers them in the jinja2 environment.
"""

from __future__ import annotations

from . import escape

TYPE_CHECKING = False  # typing is not loaded for this module: mypy reads it, Python does not
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# How the templates are written (whitespace control, no HTML escaping): the jinja2 environment
# that precompiles them at build time and the one that runs them are both made with these.
SYNTAX: dict[str, Any] = {"autoescape": False, "trim_blocks": True, "lstrip_blocks": True,
                          "keep_trailing_newline": True}


# The escaping functions: one per output format, in escape.py (see its table). shquote, yamlstr
# and keyfile are the names the templates have always used; override templates may use them.
shquote = escape.shell
yamlstr = escape.yaml
keyfile = escape.keyfile


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
    # escaping, one filter per format (escape.py)
    "sh": escape.shell, "shvar": escape.shell_name, "word": escape.word, "unit": escape.unit,
    "yaml": escape.yaml, "hosts": escape.hosts, "comment": escape.comment,
}
TESTS: dict[str, Callable[..., bool]] = {"offlink": offlink, "carries_dns": carries_dns}
