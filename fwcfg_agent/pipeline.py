"""Read the entries, then parse, model and render them to a plan. Only reading touches I/O."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from functools import partial
from typing import Optional

from . import detect, device
from .channels import CREDENTIAL, FW_CFG, SMBIOS, dmi_mentions_agent
from .config import AgentConfig
from .errors import NoDeviceError, PayloadError, SourceError
from .facts import Facts
from .formats import SPECS, Format
from .fsutil import sha256
from .log import Log
from .paths import Root
from .payload import Payload, parse
from .render import Plan, render
from .rootfs import Reader
from .settings import Result, build
from .sources import Entry, EntryInfo, Source, credentials, dmi, open_source
from .sources.sysfs import SysfsSource
from .tuples import NamedTuple


class Collected(NamedTuple):
    """The entries for the agent, in name order, from every channel. `source` is how fw_cfg was
    read: "sysfs", "raw", or "none" (no fw_cfg device: the entries came by other channels).
    `channels[i]` is the channel of `entries[i]` (fw_cfg, smbios, credential; fw_cfg where the
    tuple is shorter)."""

    source: str
    entries: tuple[Entry, ...]
    channels: tuple[str, ...] = ()

    def channel(self, i: int) -> str:
        return self.channels[i] if i < len(self.channels) else FW_CFG

    def describe(self) -> list[dict[str, object]]:
        """One record per entry for the journal and `show`: its name, channel, key (fw_cfg: the
        item's selector; smbios: the OEM string's number; credential: none), size, sha256."""
        out: list[dict[str, object]] = []
        for i, e in enumerate(self.entries):
            channel = self.channel(i)
            out.append({"name": e.name, "channel": channel,
                        "key": None if channel == CREDENTIAL else e.info.key,
                        "size": e.info.size, "sha256": sha256(e.data)})
        return out


class _Offer(NamedTuple):
    """An entry one channel offers, before it is read."""

    name: str
    channel: str
    where: str  # for messages: "fw_cfg item 0x21", "SMBIOS OEM string 2", ...
    key: int
    size: Optional[int]  # known before reading (fw_cfg), else None
    read: Callable[[], bytes]


def _too_large(offer: _Offer, size: int, limit: int, read: bool) -> PayloadError:
    if not read:
        return PayloadError(offer.name, f"is {size} bytes, more than MAX_ENTRY_SIZE ({limit}); "
                            "nothing was read from it")
    return PayloadError(offer.name, f"{offer.where} is {size} bytes, more than MAX_ENTRY_SIZE "
                        f"({limit})")


def _take(source: str, offers: list[_Offer], config: AgentConfig) -> Collected:
    """Merge the channels' offers by name (one name in two places is an error naming both),
    then read them in name order, each within MAX_ENTRY_SIZE."""
    by_name: dict[str, _Offer] = {}
    for offer in offers:
        other = by_name.setdefault(offer.name, offer)
        if other is not offer:
            raise PayloadError(offer.name, f"comes twice: as {other.where} ({other.channel}) and "
                               f"as {offer.where} ({offer.channel}); remove one")
    entries: list[Entry] = []
    channels: list[str] = []
    limit = config.max_entry_size
    for name in sorted(by_name):
        offer = by_name[name]
        if offer.size is not None and offer.size > limit:
            raise _too_large(offer, offer.size, limit, read=False)
        data = offer.read()
        if len(data) > limit:
            raise _too_large(offer, len(data), limit, read=True)
        entries.append(Entry(EntryInfo(name, offer.key, len(data)), data))
        channels.append(offer.channel)
    return Collected(source, tuple(entries), tuple(channels))


def _fwcfg_offers(source: Source, config: AgentConfig) -> list[_Offer]:
    infos = source.entries(config.wants)  # what the config leaves out is not looked at
    names = [i.name for i in infos]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise SourceError(f"the fw_cfg directory lists {', '.join(dup)} more than once")
    return [_Offer(i.name, FW_CFG, f"fw_cfg item {i.key:#x}", i.key, i.size,
                   partial(source.read, i))
            for i in infos]


def _record_no_device(reader: Reader) -> None:
    """Put what says "no fw_cfg device" (device.device_present's inputs) into the run's record,
    so that the next boot's replay sees a device that appears."""
    reader.exists(device.FWCFG_SYSFS)
    for name in reader.listdir(device.ACPI_DEVICES) or ():
        if name.startswith(device.ACPI_HID + ":"):
            reader.read(f"{device.ACPI_DEVICES}/{name}/status")
    for base in device.DT_BASES:
        for name in reader.listdir(base) or ():
            if name.startswith(device.DT_NODE):
                reader.read(f"{base}/{name}/status")


def collect(reader: Reader, config: AgentConfig, kind: str, log: Log) -> Collected:
    """The entries for the agent from every channel: fw_cfg, SMBIOS OEM strings, systemd
    system credentials. Every read of the root goes through `reader` (and so into the run's
    record), but the raw fw_cfg reader's, which are not recorded (no fast path then).
    NoDeviceError when there is no fw_cfg device and nothing mentions the agent in the other
    channels: the boot has nothing for it."""
    table = dmi.read_table(reader)
    # what the config leaves out is not looked at further: not even its name is judged
    oem = dmi.agent_strings(reader, table, config.wants)
    creds = credentials.credentials(reader, config.wants)
    offers = [_Offer(s.name, SMBIOS, s.where, s.number, None, s.payload) for s in oem]
    offers += [_Offer(c.name, CREDENTIAL, c.where, 0, None, partial(c.read, reader))
               for c in creds]
    root = Root(reader.root)
    with ExitStack() as stack:
        try:
            opened = stack.enter_context(open_source(
                root, kind, max_entry_size=config.max_entry_size,
                device_wait=config.device_wait, log=log))
        except NoDeviceError:
            if not (dmi_mentions_agent(table) or creds):
                raise
            _record_no_device(reader)
            log.debug("no fw_cfg device; reading SMBIOS OEM strings and system credentials")
            return _take("none", offers, config)
        source: Source = SysfsSource(reader) if opened.kind == "sysfs" else opened
        return _take(source.kind, _fwcfg_offers(source, config) + offers, config)


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
              facts: Facts, template_dir: str) -> Planned:
    """Parse, validate, render. jinja2 renders (render/env.py): an override in `template_dir`
    first, then the packaged templates, precompiled at build time. It is loaded here, after
    validation: a bad payload never pays for it."""
    payloads = parse_all(collected)
    result = build(payloads, facts.netdevs, config.default_interface)
    from .render.env import Templates

    plan = render(result.config, formats, facts, Templates(template_dir))
    return Planned(tuple(payloads), result, tuple(formats), plan)
