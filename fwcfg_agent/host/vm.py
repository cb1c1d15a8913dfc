"""What the host knows about the VM: its NICs (by MAC, in the order the guest will see them)
and its machine type, from a libvirt domain XML or from --mac options."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from .. import validate
from ..errors import ConfigError
from ..tuples import NamedTuple


class VM(NamedTuple):
    macs: tuple[str, ...]  # canonical, in the guest's NIC order (as far as the host can tell)
    machine: Optional[str]  # the domain's machine type, if it names one
    order_note: str  # how the order was decided, for messages
    acpi: Optional[bool] = None  # libvirt: whether <features> has <acpi/>; None: unknown
    # libvirt: what the domain already passes. fw_cfg entry names of its <sysinfo type='fwcfg'>
    # (they take slots beside the agent's), its SMBIOS OEM strings (they take table space).
    fwcfg_names: tuple[str, ...] = ()
    oem_strings: tuple[str, ...] = ()
    vmx: bool = False  # its CPU may expose VMX: QEMU then adds etc/msr_feature_control


def _may_expose_vmx(dom: ET.Element) -> bool:
    """Whether the domain's <cpu> may give the guest VMX: the host's CPU (host-passthrough,
    host-model, maximum) or a vmx feature asked for. Named models are not judged (False)."""
    cpu = dom.find("cpu")
    if cpu is None:
        return False
    if cpu.get("mode") in ("host-passthrough", "host-model", "maximum"):
        return True
    return any(f.get("name") == "vmx" and f.get("policy", "require") in ("require", "force")
               for f in cpu.findall("feature"))


def from_macs(macs: Sequence[str]) -> VM:
    out = []
    for m in macs:
        try:
            out.append(validate.mac(m))
        except ValueError as e:
            raise ConfigError(f"--mac: {e}") from None
    if len(set(out)) != len(out):
        raise ConfigError("--mac: a MAC is given twice")
    return VM(tuple(out), None, "in the order of --mac")


def _pci_key(iface: ET.Element) -> Optional[tuple[int, int, int, int]]:
    addr = iface.find("address")
    if addr is None or addr.get("type") != "pci":
        return None
    try:
        return tuple(int(addr.get(k, "0"), 0) for k in ("domain", "bus", "slot",
                                                         "function"))  # type: ignore[return-value]
    except ValueError:
        return None


def from_domain_xml(path: Path) -> VM:
    """The NICs of a libvirt domain (`virsh dumpxml`): every <interface> with a <mac>. The guest
    numbers NICs in PCI order: when every NIC has a PCI <address> (as `virsh dumpxml` shows a
    defined domain) that order is used, else the document's (libvirt assigns PCI slots in it)."""
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError) as e:
        raise ConfigError(f"{path}: cannot read the domain XML ({e})") from None
    dom = tree.getroot()
    if dom.tag != "domain":
        raise ConfigError(f"{path}: not a libvirt domain (the root element is <{dom.tag}>)")
    found: list[tuple[Optional[tuple[int, int, int, int]], int, str]] = []
    for i, iface in enumerate(dom.findall("./devices/interface")):
        mac_el = iface.find("mac")
        if mac_el is None or not mac_el.get("address"):
            raise ConfigError(f"{path}: interface {i + 1} has no <mac address=...>: the host "
                              "cannot tell which NIC an entry's HWADDR names")
        try:
            mac = validate.mac(mac_el.get("address", ""))
        except ValueError as e:
            raise ConfigError(f"{path}: interface {i + 1}: {e}") from None
        found.append((_pci_key(iface), i, mac))
    keys = [k for k, _, _ in found]
    if found and all(k is not None for k in keys):
        found.sort(key=lambda f: (f[0], f[1]))
        note = "in PCI address order"
    else:
        note = "in the order of the domain XML (no PCI address on every NIC)"
    os_type = dom.find("./os/type")
    machine = os_type.get("machine") if os_type is not None else None
    macs = tuple(m for _, _, m in found)
    if len(set(macs)) != len(macs):
        raise ConfigError(f"{path}: two interfaces have the same MAC")
    acpi = dom.find("./features/acpi") is not None
    fwcfg = tuple(e.get("name", "") for e in dom.findall("./sysinfo[@type='fwcfg']/entry"))
    oem = tuple(e.text or "" for e in dom.findall("./sysinfo[@type='smbios']/oemStrings/entry"))
    return VM(macs, machine, note, acpi, fwcfg, oem, _may_expose_vmx(dom))
