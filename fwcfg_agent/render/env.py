"""The jinja2 environment: packaged templates, overridden by /etc/fwcfg-agent/templates/."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from pathlib import Path
from typing import Any

import jinja2

from ..errors import ConfigError
from .cache import TemplateCache, packaged_cache_dir


def packaged_template_dir() -> Path:
    """`fwcfg_agent/templates` when installed; the checkout's `templates/` when run from it."""
    installed = Path(__file__).resolve().parent.parent / "templates"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent.parent / "templates"


def shquote(value: object) -> str:
    """Quote for a file that a shell sources (ifcfg): nothing in it can expand or run."""
    s = str(value)
    return "'" + s.replace("'", "'\"'\"'") + "'"


def yamlstr(value: object) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(str(value))


def keyfile(value: object) -> str:
    """A GKeyFile value: escape backslash, leading space and control characters."""
    s = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    s = s.replace("\r", "\\r")
    return "\\s" + s[1:] if s.startswith(" ") else s


def netmask(iface: ipaddress.IPv4Interface) -> str:
    return str(iface.netmask)


def _uuid5(namespace: bytes, name: str) -> str:
    """RFC 4122 name-based (SHA-1) uuid, as uuid.uuid5 computes it, without importing uuid."""
    b = bytearray(hashlib.sha1(namespace + name.encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NAMESPACE_URL = bytes.fromhex("6ba7b8119dad11d180b400c04fd430c8")  # RFC 4122 NameSpace_URL
# Fixed namespace for the stable ids the templates derive (NetworkManager connection uuids).
UUID_NAMESPACE = bytes.fromhex(_uuid5(_NAMESPACE_URL, "https://github.com/fwcfg-agent")
                               .replace("-", ""))


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


class Templates:
    """The templates, compiled through a bytecode cache: the one shipped in the package
    (`fwcfg-agent-precompile` at build time), then `cache_dir` (written at run time)."""

    def __init__(self, override_dir: Path | None = None,
                 cache_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None and override_dir.is_dir():
            loaders.append(jinja2.FileSystemLoader(str(override_dir)))
        loaders.append(jinja2.FileSystemLoader(str(packaged_template_dir())))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            bytecode_cache=TemplateCache([packaged_cache_dir(packaged_template_dir())],
                                         cache_dir),
        )
        self.env.filters.update(shquote=shquote, yamlstr=yamlstr, keyfile=keyfile,
                                netmask=netmask, uuid5=uuid5)
        self.env.tests.update(offlink=offlink, carries_dns=carries_dns)

    def render(self, name: str, **context: Any) -> str:
        try:
            return self.env.get_template(name).render(**context)
        except jinja2.TemplateNotFound:
            raise ConfigError(f"template {name} not found (packaged templates: "
                              f"{packaged_template_dir()})") from None
        except jinja2.TemplateError as e:
            where = name
            if isinstance(e, jinja2.TemplateSyntaxError):
                where = f"{e.filename or name}:{e.lineno}"
            raise ConfigError(f"template {where}: {e}") from e
