"""`host check`: the payloads as the guest will judge them, the names and slots as QEMU will.

The guest's parser (payload.parse) and model builder (settings.build) run here unchanged, so a
payload error reads exactly as the guest would log it: entry, line, key. Every problem found is
reported (one line each), not only the first; any error means exit 3, as in the guest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from .. import validate
from ..config import AgentConfig
from ..errors import ConfigError, PayloadError
from ..model import Interface
from ..payload import Payload, parse
from ..settings import NetDev, build, is_iface_key
from ..tuples import NamedTuple
from . import names
from .vm import VM

FWCFG, SMBIOS = "fwcfg", "smbios"
CHANNELS = (FWCFG, SMBIOS)


class HostEntry(NamedTuple):
    name: str
    path: Path  # absolute
    size: int
    data: Optional[bytes]  # None: over MAX_ENTRY_SIZE, not read (as the guest does)


class Report(NamedTuple):
    entries: tuple[HostEntry, ...]
    errors: list[str]
    warnings: list[str]
    notes: list[str]  # what each entry configures, the slot budget

    @property
    def exit_code(self) -> int:
        return PayloadError.exit_code if self.errors else 0


def read_entries(specs: Sequence[str], config: AgentConfig) -> list[HostEntry]:
    """NAME=FILE arguments, read; an entry over MAX_ENTRY_SIZE is not read (check() reports it,
    worded as the guest words it). ConfigError (exit 2) for an argument that is not NAME=FILE
    or a file that cannot be read."""
    entries: list[HostEntry] = []
    for spec in specs:
        name, eq, file = spec.partition("=")
        if not eq or not name or not file:
            raise ConfigError(f"{spec!r}: expected NAME=FILE, e.g. opt/org.example/net0=net0.env")
        path = Path(os.path.abspath(file))
        try:
            size = path.stat().st_size
            data = path.read_bytes() if size <= config.max_entry_size else None
        except OSError as e:
            raise ConfigError(f"{file}: {e.strerror}") from None
        entries.append(HostEntry(name, path, size, data))
    if not entries:
        raise ConfigError("no entries: give NAME=FILE arguments")
    return entries


def _name_problems(entries: Sequence[HostEntry], config: AgentConfig, default_conf: bool,
                   channel: str, others: Sequence[str], errors: list[str],
                   warnings: list[str]) -> None:
    """The name rules of the channel. OTHERS: the fw_cfg names the VM already has besides
    these entries (libvirt's <sysinfo type='fwcfg'>): they share the guest's by_name/ tree."""
    seen: set[str] = set()
    for e in entries:
        problems = names.name_errors(e.name, smbios=channel == SMBIOS)
        errors.extend(f"{e.name}: {reason}" for reason in problems)
        if e.name in seen:
            errors.append(f"{e.name}: is given twice")
        seen.add(e.name)
        if not problems and not config.wants(e.name):
            pattern = names.excluded_by_default(e.name) if default_conf else None
            why = (f"the default EXCLUDE pattern {pattern}" if pattern
                   else "its INCLUDE and EXCLUDE")
            warnings.append(f"{e.name}: the agent will not read it ({why}); it is meant for "
                            "another tool")
    if channel != FWCFG:
        return  # by_name/ is the fw_cfg driver's: OEM string names are only strings
    existing = set(others) - seen
    for short, long in names.prefix_collisions(sorted(seen | existing)):
        if short not in seen and long not in seen:
            continue  # the domain's own business
        whose = " (already in the domain)" if long in existing else ""
        errors.append(f"{short}: is a directory of {long}{whose}: the guest kernel's by_name/ "
                      "tree drops it; rename one of them")


def _slots(entries: Sequence[HostEntry], budget: names.Budget, vm: Optional[VM],
           errors: list[str], warnings: list[str], notes: list[str]) -> None:
    ours = {e.name for e in entries}
    theirs = sorted(set(vm.fwcfg_names) - ours) if vm is not None else []
    used = budget.used + (1 if vm is not None and vm.vmx else 0)
    free = budget.slots - used
    n = len(ours) + len(theirs)
    line = (f"fw_cfg file slots: {n} of the {free} free on {budget.machine} "
            f"({budget.slots} in all, {budget.used} used by QEMU itself with -kernel")
    if vm is not None and vm.vmx:
        line += f", 1 for {names.MSR_FEATURE_CONTROL} (the domain's CPU may expose VMX)"
    line += ")"
    if theirs:
        line += f"; {len(theirs)} of them the domain's own ({', '.join(theirs)})"
    if budget.assumed:
        warnings.append(f"{budget.machine}: the machine type names no QEMU version: counted "
                        f"with QEMU's default of {budget.slots} file slots (machine types that "
                        f"keep QEMU 2.8's layout have {names.LEGACY_FILE_SLOTS})")
    if n > free:
        errors.append(f"{line}: too many, QEMU aborts at start-up; merge entries (one per NIC "
                      "plus one for the host is plenty) or use --channel smbios")
        return
    notes.append(line)
    if n == free and not (vm is not None and vm.vmx):
        warnings.append(f"every free fw_cfg file slot is taken: with a CPU that exposes VMX "
                        f"(e.g. -cpu host with nested virtualization) QEMU adds "
                        f"{names.MSR_FEATURE_CONTROL} and aborts at start-up; leave one free")


def _smbios_size(entries: Sequence[HostEntry], vm: Optional[VM], errors: list[str],
                 notes: list[str]) -> None:
    from .forms import is_agent_string, oem_string

    ours = [oem_string(e.name, e.data or b"") for e in entries]
    # host args --for libvirt --domain-xml replaces the domain's agent strings with these
    theirs = [s for s in (vm.oem_strings if vm is not None else ()) if not is_agent_string(s)]
    size = names.oem_table_bytes(ours + theirs)
    room = names.SMBIOS_21_MAX_TABLE - names.SMBIOS_QEMU_RESERVE
    line = (f"SMBIOS OEM strings: {size} bytes of the {room} QEMU's 32-bit SMBIOS entry point "
            f"leaves ({names.SMBIOS_21_MAX_TABLE} in all, {names.SMBIOS_QEMU_RESERVE} kept for "
            "QEMU's own structures)")
    if theirs:
        line += f"; {len(theirs)} of the strings the domain's own"
    if size > room:
        errors.append(f"{line}: too large, QEMU refuses to start (\"SMBIOS 2.1 table length "
                      "... exceeds 65535\") unless the machine uses the 64-bit entry point "
                      "(-machine ...,smbios-entry-point-type=64); merge or shorten entries")
    else:
        notes.append(line)


def _hwaddr_problems(payloads: Sequence[Payload], vm: VM, errors: list[str]) -> None:
    for p in payloads:
        hw = p.as_dict().get("HWADDR")
        if hw is None:
            continue
        try:
            mac = validate.mac(hw.value)
        except ValueError:
            continue  # settings.build says why, as the guest would
        if mac not in vm.macs:
            nics = ", ".join(vm.macs) or "none"
            errors.append(str(PayloadError(p.entry, f"{mac} is not a NIC of this VM (its NICs: "
                                           f"{nics})", line=hw.line, key="HWADDR")))


def _nic_notes(payloads: Sequence[Payload], vm: Optional[VM], interfaces: Sequence[Interface],
               notes: list[str], warnings: list[str]) -> None:
    by_source = {entry: iface for iface in interfaces for entry in iface.source}
    for p in payloads:
        items = p.as_dict()
        if not any(is_iface_key(k) for k in items):
            continue
        if "HWADDR" in items:
            mac = validate.mac(items["HWADDR"].value)
            where = ""
            if vm is not None:
                where = f" (NIC {vm.macs.index(mac) + 1} of {len(vm.macs)})"
            notes.append(f"{p.entry}: the NIC with HWADDR {mac}{where}")
        elif "DEVICE" in items:
            notes.append(f"{p.entry}: the NIC the guest's kernel names {items['DEVICE'].value} "
                         "(the host cannot check kernel names)")
        elif vm is None:
            notes.append(f"{p.entry}: no HWADDR or DEVICE: the guest's first Ethernet NIC that "
                         "no other entry names (give --domain-xml or --mac to see which)")
        else:
            iface = by_source.get(p.entry)
            picked = iface.mac if iface is not None else None
            if picked is None or picked not in vm.macs:
                warnings.append(f"{p.entry}: no HWADDR or DEVICE, and every NIC of this VM is "
                                "named by another entry: its settings go to DEFAULT_INTERFACE, "
                                "which the guest does not have")
                continue
            notes.append(f"{p.entry}: no HWADDR or DEVICE: the first NIC no other entry "
                         f"names, {picked} (NIC {vm.macs.index(picked) + 1} of {len(vm.macs)}, "
                         f"{vm.order_note})")


def check(entries: Sequence[HostEntry], config: AgentConfig, *, default_conf: bool,
          vm: Optional[VM], budget: names.Budget, channel: str) -> Report:
    errors: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    _name_problems(entries, config, default_conf, channel,
                   vm.fwcfg_names if vm is not None else (), errors, warnings)
    if channel == SMBIOS:
        _smbios_size(entries, vm, errors, notes)
    if channel == FWCFG:
        _slots(entries, budget, vm, errors, warnings, notes)
        if vm is not None and vm.acpi is False:
            # libvirt then passes -no-acpi: no QEMU0002 device, so the guest kernel's fw_cfg
            # driver never probes (its tree has no by_key/) and nothing can be read
            warnings.append("the domain has no <features><acpi/></features>: an x86 guest "
                            "then finds no fw_cfg device (its ACPI QEMU0002 entry)")
    payloads: list[Payload] = []
    complete = True
    for e in sorted(entries, key=lambda e: e.name):  # the guest's order
        if not config.wants(e.name):
            continue
        try:
            if e.data is None:
                raise PayloadError(e.name, f"is {e.size} bytes, more than MAX_ENTRY_SIZE "
                                   f"({config.max_entry_size}); nothing was read from it")
            payloads.append(parse(e.name, e.data))
        except PayloadError as err:
            errors.append(str(err))
            complete = False
    if not complete:
        return Report(tuple(entries), errors, warnings, notes)
    if vm is not None:
        _hwaddr_problems(payloads, vm, errors)
    # The host cannot know the kernel's names: the NICs are called as the agent calls a NIC
    # it knows only by MAC (enxMAC); messages differ from the guest's only in that name.
    netdevs = [NetDev("enx" + mac.replace(":", ""), mac) for mac in vm.macs] if vm else []
    try:
        result = build(payloads, netdevs, config.default_interface)
    except PayloadError as err:
        errors.append(str(err))
        return Report(tuple(entries), errors, warnings, notes)
    # The guest's own warnings (unknown keys, a gateway off the subnet, ...), but not that a
    # HWADDR is not visible: that is about the guest's NICs at boot, checked above instead.
    warnings.extend(w for w in result.warnings if "no NIC with HWADDR" not in w)
    if not errors:
        _nic_notes(payloads, vm, result.config.interfaces, notes, warnings)
    return Report(tuple(entries), errors, warnings, notes)
