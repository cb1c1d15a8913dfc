"""What each host needs, as text to paste or pipe: one function per host and channel.

Every value is escaped for the syntax it lands in: QEMU's option parser (a comma is written
twice), the shell (shlex.quote), XML (ElementTree's serializer), virt-install's option parser
(shlex with ',' as the separator: double quotes), Cloud Hypervisor's option parser (no escape
at all: a path holding one of its separators is refused), Proxmox's `args` (split like a shell
command line, then quoted again for the shell that runs `qm`).

The SMBIOS channel puts each entry in an OEM string (SMBIOS type 11) of one of two forms:
`fwcfg-agent:NAME=TEXT` for a one-line payload of inert characters, else
`fwcfg-agent.base64:NAME=B64` (the payload's bytes, standard base64).
"""

from __future__ import annotations

import base64
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import NamedTuple, Optional

from ..errors import ConfigError
from .check import FWCFG, SMBIOS

HOSTS = ("qemu", "libvirt", "virt-install", "cloud-hypervisor", "proxmox")
OEM_TEXT = "fwcfg-agent:"
OEM_BASE64 = "fwcfg-agent.base64:"
# A payload sent as TEXT: one line of characters no host's syntax treats specially.
_INERT = re.compile(r"[A-Za-z0-9._+@~/:=%-]+\Z")
_CH_SPECIAL = re.compile(r'[,:"\[\]]')


class Item(NamedTuple):
    name: str
    path: str  # where the VM host finds the file (absolute)
    data: bytes


def oem_string(name: str, data: bytes) -> str:
    line = data[:-1] if data.endswith(b"\n") else data
    text = line.decode("ascii", "replace")
    if line and b"\n" not in line and _INERT.match(text):
        return f"{OEM_TEXT}{name}={text}"
    return f"{OEM_BASE64}{name}={base64.b64encode(data).decode('ascii')}"


def qemu_value(text: str) -> str:
    """A value in QEMU's option syntax: a comma is written twice."""
    return text.replace(",", ",,")


def _no_control(text: str, what: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ConfigError(f"{what} {text!r} holds a control character")
    return text


def qemu_args(items: Sequence[Item], channel: str) -> list[str]:
    """The QEMU options, as argv words."""
    out: list[str] = []
    for it in items:
        if channel == FWCFG:
            path = _no_control(it.path, "the path")
            out += ["-fw_cfg", f"name={it.name},file={qemu_value(path)}"]
        else:
            out += ["-smbios", f"type=11,value={qemu_value(oem_string(it.name, it.data))}"]
    return out


def _shell_lines(words: Sequence[str], pairs: bool = True) -> str:
    """argv words as shell text, an option and its value per line, continued with '\\'."""
    quoted = [shlex.quote(w) for w in words]
    if pairs:
        lines = [" ".join(quoted[i:i + 2]) for i in range(0, len(quoted), 2)]
    else:
        lines = [" ".join(quoted)]
    return " \\\n".join(lines) + "\n"


def for_qemu(items: Sequence[Item], channel: str) -> str:
    return _shell_lines(qemu_args(items, channel))


def sysinfo_element(items: Sequence[Item], channel: str) -> ET.Element:
    if channel == FWCFG:
        el = ET.Element("sysinfo", {"type": "fwcfg"})
        for it in items:
            ET.SubElement(el, "entry", {"name": it.name, "file": _no_control(it.path, "the path")})
        return el
    el = ET.Element("sysinfo", {"type": "smbios"})
    oem = ET.SubElement(el, "oemStrings")
    for it in items:
        ET.SubElement(oem, "entry").text = oem_string(it.name, it.data)
    return el


def _xml(el: ET.Element) -> str:
    _indent(el)
    return ET.tostring(el, encoding="unicode").replace(" />", "/>")


def _indent(el: ET.Element, level: int = 0) -> None:
    """ET.indent, which Python 3.9 lacks."""
    pad = "\n" + "  " * level
    if len(el):
        if not (el.text or "").strip():
            el.text = pad + "  "
        for child in el:
            _indent(child, level + 1)
        last = el[-1]
        last.tail = pad
    if level and not (el.tail or "").strip():
        el.tail = pad


def for_libvirt(items: Sequence[Item], channel: str) -> str:
    """The <sysinfo> block to put in the <domain>; for SMBIOS also <smbios mode='sysinfo'/>,
    which goes in its <os>."""
    text = _xml(sysinfo_element(items, channel)) + "\n"
    if channel == SMBIOS:
        text = ("<!-- in <os>: -->\n<smbios mode='sysinfo'/>\n<!-- in <domain>: -->\n" + text)
    return text


def into_domain(domain_xml: str, items: Sequence[Item], channel: str, where: str) -> str:
    """A whole domain with the entries in it: the <sysinfo> of that type replaced, and for
    SMBIOS the <os> told to use it."""
    try:
        dom = ET.fromstring(domain_xml)
    except ET.ParseError as e:
        raise ConfigError(f"{where}: cannot read the domain XML ({e})") from None
    if dom.tag != "domain":
        raise ConfigError(f"{where}: not a libvirt domain (the root element is <{dom.tag}>)")
    kind = "fwcfg" if channel == FWCFG else "smbios"
    for old in dom.findall("sysinfo"):
        if old.get("type") == kind:
            dom.remove(old)
    if channel == SMBIOS:
        os_el = dom.find("os")
        if os_el is None:
            raise ConfigError(f"{where}: the domain has no <os> for <smbios mode='sysinfo'/>")
        smbios = os_el.find("smbios")
        if smbios is None:
            smbios = ET.SubElement(os_el, "smbios")
        smbios.attrib = {"mode": "sysinfo"}
    dom.append(sysinfo_element(items, channel))
    for el in dom.iter():  # laid out afresh: whitespace-only text goes
        if not (el.text or "").strip():
            el.text = None
        if not (el.tail or "").strip():
            el.tail = None
    _indent(dom)
    return ET.tostring(dom, encoding="unicode").replace(" />", "/>") + "\n"


def _virt_install_value(text: str) -> str:
    """A value for virt-install's option parser: shlex with ',' as the separator."""
    if re.fullmatch(r"[A-Za-z0-9._+@~/:=%-]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def for_virt_install(items: Sequence[Item], channel: str) -> str:
    if channel == FWCFG:
        parts = ["type=fwcfg"]
        for i, it in enumerate(items):
            parts += [f"entry{i}.name={it.name}",
                      f"entry{i}.file={_virt_install_value(_no_control(it.path, 'the path'))}"]
    else:
        parts = ["type=smbios"]
        for i, it in enumerate(items):
            parts.append(f"oemStrings.entry{i}={oem_string(it.name, it.data)}")
    return _shell_lines(["--sysinfo", ",".join(parts)])


def for_cloud_hypervisor(items: Sequence[Item], channel: str) -> str:
    if channel == FWCFG:
        for it in items:
            if _CH_SPECIAL.search(it.path) or it.path != it.path.strip():
                raise ConfigError(f"{it.path}: Cloud Hypervisor cannot take a path holding , : "
                                  "\" [ ] or surrounding spaces in --fw-cfg-config; move the file")
            _no_control(it.path, "the path")
        listed = ":".join(f"name={it.name},file={it.path}" for it in items)
        # kernel, cmdline and initramfs default to on, and Cloud Hypervisor then refuses to
        # start unless --kernel, --cmdline and --initramfs are all given: the items need none.
        value = f"kernel=off,cmdline=off,initramfs=off,items=[{listed}]"
        return _shell_lines(["--fw-cfg-config", value])
    strings = ",".join(oem_string(it.name, it.data) for it in items)
    return _shell_lines(["--platform", f"oem_strings=[{strings}]"])


def for_proxmox(items: Sequence[Item], channel: str, vmid: Optional[int]) -> str:
    if vmid is None:
        raise ConfigError("--for proxmox needs --vmid N (the VM's number)")
    args = " ".join(shlex.quote(w) for w in qemu_args(items, channel))
    return _shell_lines(["qm", "set", str(vmid), "--args", args], pairs=False)


def render(host: str, items: Sequence[Item], channel: str, *, vmid: Optional[int] = None,
           domain: Optional[tuple[str, str]] = None) -> str:
    if host == "qemu":
        return for_qemu(items, channel)
    if host == "libvirt":
        if domain is not None:
            return into_domain(domain[0], items, channel, domain[1])
        return for_libvirt(items, channel)
    if host == "virt-install":
        return for_virt_install(items, channel)
    if host == "cloud-hypervisor":
        return for_cloud_hypervisor(items, channel)
    return for_proxmox(items, channel, vmid)
