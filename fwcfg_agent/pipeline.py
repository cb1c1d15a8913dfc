"""Read the entries, then parse, model and render them to a plan. Only reading touches I/O."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Optional

from . import detect
from .config import AgentConfig
from .errors import PayloadError, SourceError
from .facts import Facts
from .formats import SPECS, Format
from .fsutil import sha256
from .log import Log
from .paths import Root
from .payload import Payload, parse
from .render import Plan, render
from .rootfs import Reader
from .settings import Result, build
from .sources import Entry, Source, open_source
from .sources.sysfs import SysfsSource


class Collected(NamedTuple):
    source: str
    entries: tuple[Entry, ...]  # the entries the agent reads, in name order

    def describe(self) -> list[dict[str, object]]:
        return [
            {"name": e.name, "key": e.info.key, "size": e.info.size, "sha256": sha256(e.data)}
            for e in self.entries
        ]


def collect(reader: Reader, config: AgentConfig, kind: str, log: Log) -> Collected:
    """The entries for the agent. Read through sysfs, every read goes through `reader` (and
    so into the run's record); the raw reader's are not recorded (no fast path then)."""
    root = Root(Path(reader.root))
    with open_source(root, kind, max_entry_size=config.max_entry_size,
                     device_wait=config.device_wait, log=log) as opened:
        source: Source = SysfsSource(reader) if opened.kind == "sysfs" else opened
        infos = source.entries()
        names = [i.name for i in infos]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise SourceError(f"the fw_cfg directory lists {', '.join(dup)} more than once")
        mine = sorted((i for i in infos if config.wants(i.name)), key=lambda i: i.name)
        entries: list[Entry] = []
        for info in mine:
            if info.size > config.max_entry_size:
                raise PayloadError(
                    info.name, f"is {info.size} bytes, more than MAX_ENTRY_SIZE "
                    f"({config.max_entry_size}); nothing was read from it"
                )
            entries.append(Entry(info, source.read(info)))
        return Collected(source.kind, tuple(entries))


def parse_all(collected: Collected) -> list[Payload]:
    return [parse(e.name, e.data) for e in collected.entries]


class Planned(NamedTuple):
    payloads: tuple[Payload, ...]
    result: Result
    formats: tuple[Format, ...]
    plan: Plan


def choose_formats(config: AgentConfig, override: Optional[Sequence[Format]],
                   facts: Facts) -> tuple[Format, ...]:
    if override:
        return tuple(override)
    if config.formats:
        return config.formats
    return detect.formats(facts)


def needs_final_names(formats: Sequence[Format]) -> bool:
    """Formats whose files name NICs by their kernel names (ifcfg) need udev to have named
    them first. The others match NICs by MAC (ifupdown with `mac/` patterns): no wait."""
    return any(SPECS[f].names_nics for f in formats)


def make_plan(collected: Collected, config: AgentConfig, formats: Sequence[Format],
              facts: Facts, template_dir: Path, cache_dir: Optional[Path]) -> Planned:
    """Parse, validate, render. jinja2 renders (render/env.py): an override in `template_dir`
    first, then the packaged templates, precompiled at build time. It is loaded here, after
    validation: a bad payload never pays for it. `cache_dir` is no longer used (nothing is
    compiled at run time but overrides, and only on runs that render)."""
    payloads = parse_all(collected)
    result = build(payloads, facts.netdevs, config.default_interface)
    from .render.env import Templates

    plan = render(result.config, formats, facts, Templates(template_dir))
    return Planned(tuple(payloads), result, tuple(formats), plan)
