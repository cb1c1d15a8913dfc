"""Render a HostConfig to a plan: every file's path, bytes and mode. No I/O happens here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Optional, Protocol

from ..facts import Facts
from ..model import NETWORK_FORMATS, Format, HostConfig, Interface


class Renderer(Protocol):
    """What rendering needs: a template's text by name (`env.Templates`: jinja2, with the
    packaged templates precompiled)."""

    def render(self, name: str, **context: Any) -> str: ...


HOSTS_BEGIN = "# BEGIN fwcfg-agent (managed: edits here are replaced at boot)"
HOSTS_END = "# END fwcfg-agent"
CLOUD_INIT_DROPIN = "/etc/cloud/cloud.cfg.d/99-fwcfg-agent.cfg"


class PlannedFile(NamedTuple):
    path: str  # as the guest sees it: /etc/hostname
    content: bytes
    mode: int
    format: Format
    # A file whose content merges ours with the admin's (/etc/hosts) is never removed, only
    # rewritten; it is "shared".
    shared: bool = False


class Plan(NamedTuple):
    files: tuple[PlannedFile, ...] = ()
    hostname: Optional[str] = None  # to pass to sethostname() on the running system
    formats: tuple[Format, ...] = ()

    def paths(self) -> list[str]:
        return [f.path for f in self.files]


# (template, path pattern, mode) per format. {name} is the interface's kernel name (ifcfg knows
# NICs only by name: the agent waits for udev to name them first); {label} is Interface.label,
# stable while udev renames a NIC matched by MAC.
NAMED_FORMATS = frozenset({Format.IFCFG})
PER_INTERFACE: dict[Format, tuple[tuple[str, str, int], ...]] = {
    Format.IFCFG: (
        ("ifcfg.j2", "/etc/sysconfig/network-scripts/ifcfg-{name}", 0o644),
        ("route.j2", "/etc/sysconfig/network-scripts/route-{name}", 0o644),
        ("route6.j2", "/etc/sysconfig/network-scripts/route6-{name}", 0o644),
    ),
    Format.NETWORKD: (("networkd.network.j2", "/etc/systemd/network/10-fwcfg-{label}.network",
                       0o644),),
    Format.NM: (("nm.nmconnection.j2",
                 "/etc/NetworkManager/system-connections/fwcfg-{label}.nmconnection", 0o600),),
    Format.IFUPDOWN: (("ifupdown.j2", "/etc/network/interfaces.d/fwcfg-{label}", 0o644),),
}
PER_HOST: dict[Format, tuple[tuple[str, str, int], ...]] = {
    Format.HOSTNAME: (("hostname.j2", "/etc/hostname", 0o644),),
    Format.NETPLAN: (("netplan.yaml.j2", "/etc/netplan/90-fwcfg-agent.yaml", 0o600),),
}


def render(
    config: HostConfig, formats: Sequence[Format], facts: Facts, templates: Renderer
) -> Plan:
    files: list[PlannedFile] = []
    for fmt in formats:
        if fmt is Format.HOSTNAME and not config.hostname:
            continue
        if fmt is Format.HOSTS:
            if config.hostname:
                files.append(_hosts(config, facts, templates))
            continue
        if fmt in NETWORK_FORMATS and not config.interfaces:
            continue
        for template, path, mode in PER_HOST.get(fmt, ()):
            text = templates.render(template, config=config, facts=facts)
            files.append(PlannedFile(path, text.encode(), mode, fmt))
        for iface in config.interfaces:
            for template, pattern, mode in PER_INTERFACE.get(fmt, ()):
                text = templates.render(template, config=config, iface=iface, facts=facts)
                if text.strip():  # an empty rendering (no routes) means "no such file"
                    path = pattern.format(name=iface.name, label=iface.label)
                    files.append(PlannedFile(path, text.encode(), mode, fmt))
    if facts.has_cloud_init and config.interfaces and any(f in NETWORK_FORMATS for f in formats):
        text = templates.render("cloud-init.cfg.j2", config=config, facts=facts)
        files.append(PlannedFile(CLOUD_INIT_DROPIN, text.encode(), 0o644, Format.HOSTS))
    return Plan(tuple(files), config.hostname, tuple(formats))


def _hosts(config: HostConfig, facts: Facts, templates: Renderer) -> PlannedFile:
    block = templates.render("hosts.j2", config=config, facts=facts).rstrip("\n")
    managed = f"{HOSTS_BEGIN}\n{block}\n{HOSTS_END}\n"
    current = facts.hosts if facts.hosts is not None else "127.0.0.1\tlocalhost\n"
    text = replace_block(current, managed)
    return PlannedFile("/etc/hosts", text.encode(), 0o644, Format.HOSTS, shared=True)


def replace_block(current: str, managed: str) -> str:
    """Put the managed block where the old one was, or at the end; keep every other line."""
    lines = current.splitlines(keepends=True)
    out: list[str] = []
    placed = False
    inside = False
    for line in lines:
        if line.rstrip("\n") == HOSTS_BEGIN:
            inside = True
            if not placed:
                out.append(managed)
                placed = True
            continue
        if inside:
            if line.rstrip("\n") == HOSTS_END:
                inside = False
            continue
        out.append(line)
    if not placed:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(managed)
    return "".join(out)


def remove_block(current: str) -> str:
    return replace_block(current, "").replace("\n\n\n", "\n\n")


__all__ = ["Interface", "Plan", "PlannedFile", "render"]
