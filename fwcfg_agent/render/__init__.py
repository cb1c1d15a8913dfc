"""Render a HostConfig to a plan: every file's path, bytes and mode. No I/O happens here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Protocol

from ..facts import Facts
from ..formats import CLOUD_INIT_DROPIN, NETWORK_FORMATS, SPECS, Format
from ..model import HostConfig, Interface
from ..tuples import NamedTuple


class Renderer(Protocol):
    """What rendering needs: a template's text by name (`env.Templates`: jinja2, with the
    packaged templates precompiled)."""

    def render(self, name: str, **context: Any) -> str: ...


HOSTS_BEGIN = "# BEGIN fwcfg-agent (managed: edits here are replaced at boot)"
HOSTS_END = "# END fwcfg-agent"


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


def render(
    config: HostConfig, formats: Sequence[Format], facts: Facts, templates: Renderer
) -> Plan:
    """Each format's files, as formats.SPECS lists them. An empty rendering of a per-interface
    file (no routes) means "no such file". A setting a format cannot express is a PayloadError
    (expressible.py), raised before anything is rendered."""
    from .expressible import check

    check(config, formats)
    files: list[PlannedFile] = []
    for fmt in formats:
        spec = SPECS[fmt]
        if fmt is Format.HOSTS:
            if config.hostname:
                files.append(_hosts(config, facts, templates))
            continue
        if (spec.network and not config.interfaces) or (not spec.network
                                                         and not config.hostname):
            continue
        for f in spec.files:
            for iface in config.interfaces if f.per_interface else (None,):
                context = {"iface": iface} if iface is not None else {}
                text = templates.render(f.template, config=config, facts=facts, **context)
                if iface is not None and not text.strip():
                    continue
                path = f.path if iface is None else f.path.format(name=iface.name,
                                                                    label=iface.label)
                files.append(PlannedFile(path, text.encode(), f.mode, fmt))
    if facts.has_cloud_init and config.interfaces and any(f in NETWORK_FORMATS for f in formats):
        text = templates.render(CLOUD_INIT_DROPIN.template, config=config, facts=facts)
        files.append(PlannedFile(CLOUD_INIT_DROPIN.path, text.encode(), CLOUD_INIT_DROPIN.mode,
                                 Format.HOSTS))
    return Plan(tuple(files), config.hostname, tuple(formats))


def _hosts(config: HostConfig, facts: Facts, templates: Renderer) -> PlannedFile:
    block = templates.render(SPECS[Format.HOSTS].files[0].template, config=config,
                             facts=facts).rstrip("\n")
    managed = f"{HOSTS_BEGIN}\n{block}\n{HOSTS_END}\n"
    current = facts.hosts if facts.hosts is not None else "127.0.0.1\tlocalhost\n"
    text = replace_block(current, managed)
    (spec,) = SPECS[Format.HOSTS].files
    return PlannedFile(spec.path, text.encode(), spec.mode, Format.HOSTS, shared=True)


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
