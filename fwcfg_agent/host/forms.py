"""What each host needs, as text to paste or pipe: one function per host and channel.

Every value is escaped for the syntax it lands in: QEMU's option parser (a comma is written
twice), the shell (shlex.quote), XML (ElementTree's serializer), virt-install's option parser
(shlex with ',' as the separator: double quotes), Cloud Hypervisor's option parser (no escape
at all: a path holding one of its separators is refused), Proxmox's `args` (split like a shell
command line, then quoted again for the shell that runs `qm`), Incus's `config set KEY=VALUE`
(split at the first '=', and quoted for the shell).

The SMBIOS channel puts each entry in an OEM string (SMBIOS type 11) of one of two forms:
`fwcfg-agent:NAME=TEXT` for a one-line payload of inert characters, else
`fwcfg-agent.base64:NAME=B64` (the payload's bytes, standard base64).
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from ..errors import ConfigError
from ..tuples import NamedTuple
from .check import FWCFG, SMBIOS

HOSTS = ("qemu", "libvirt", "virt-install", "cloud-hypervisor", "proxmox", "incus")
OEM_TEXT = "fwcfg-agent:"
OEM_BASE64 = "fwcfg-agent.base64:"
# A payload sent as TEXT: one line of characters no host's syntax treats specially.
_INERT = re.compile(r"[A-Za-z0-9._+@~/:=%-]+\Z")
_CH_SPECIAL = re.compile(r'[,:"\[\]]')


class Item(NamedTuple):
    name: str
    path: str  # where the VM host finds the file (absolute)
    data: bytes


def is_agent_string(text: str) -> bool:
    """Whether an OEM string is one of the agent's (either form)."""
    return text.startswith(OEM_TEXT) or text.startswith(OEM_BASE64)


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


# A payload a `path=` file may carry as TEXT: printable ASCII, tabs and newlines, ending in a
# newline. QEMU refuses a NUL in such a file; the file's bytes become the string as they are.
_FILE_TEXT = re.compile(rb"[\t\n\x20-\x7e]*\n\Z")


def oem_file(name: str, data: bytes) -> bytes:
    """The content of a file for `-smbios type=11,path=FILE`: the whole OEM string, ending in a
    newline. `fwcfg-agent:NAME=` and the payload as it is when it is plain text that ends in a
    newline, else the base64 form and a newline (the guest drops whitespace in base64). A file
    that ends in a newline keeps a QEMU that does not terminate the string it read (QEMU before
    10.0) safe: stray bytes after it make a line the guest's parser refuses, or bad base64."""
    if data and _FILE_TEXT.match(data):
        return f"{OEM_TEXT}{name}=".encode() + data
    return f"{OEM_BASE64}{name}={base64.b64encode(data).decode('ascii')}\n".encode()


def oem_file_path(directory: str, name: str) -> str:
    """Where the `path=` file of entry NAME goes: DIR/NAME.oem, the name's components as
    directories (names hold no '..' or empty component: names.name_errors)."""
    return os.path.join(directory, *name.split("/")) + ".oem"


def write_oem_files(items: Sequence[Item], directory: Path) -> None:
    """One `path=` file per item in DIRECTORY (made if missing), replacing older ones."""
    for it in items:
        path = Path(oem_file_path(str(directory), it.name))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(oem_file(it.name, it.data))
            os.replace(tmp, path)
        except OSError as e:
            raise ConfigError(f"{path}: {e.strerror}") from None


def qemu_args(items: Sequence[Item], channel: str,
              oem_dir: Optional[str] = None) -> list[str]:
    """The QEMU options, as argv words. OEM_DIR: give SMBIOS strings by `path=` files in that
    directory (as the VM host sees it; write_oem_files writes them) instead of `value=`."""
    out: list[str] = []
    for it in items:
        if channel == FWCFG:
            path = _no_control(it.path, "the path")
            out += ["-fw_cfg", f"name={it.name},file={qemu_value(path)}"]
        elif oem_dir is not None:
            path = _no_control(oem_file_path(oem_dir, it.name), "the path")
            out += ["-smbios", f"type=11,path={qemu_value(path)}"]
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


def for_qemu(items: Sequence[Item], channel: str, oem_dir: Optional[str] = None) -> str:
    return _shell_lines(qemu_args(items, channel, oem_dir))


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


def _merge_sysinfo(dom: ET.Element, items: Sequence[Item], channel: str) -> None:
    """Put the items in the domain's <sysinfo> of the channel's type, leaving the rest of it
    alone: fw_cfg entries of other names (another tool's opt/com.coreos/config), and for SMBIOS
    <bios>, <system> and every OEM string that is not the agent's (io.systemd.credential:...).
    The agent's own OEM strings are all replaced: these items are the agent's whole set."""
    kind = "fwcfg" if channel == FWCFG else "smbios"
    new = sysinfo_element(items, channel)
    old = next((el for el in dom.findall("sysinfo") if el.get("type") == kind), None)
    if old is None:
        dom.append(new)
        return
    if channel == FWCFG:
        ours = {it.name for it in items}
        for entry in old.findall("entry"):
            if entry.get("name") in ours:
                old.remove(entry)
        old.extend(new)
        return
    oem = old.find("oemStrings")
    if oem is None:
        oem = ET.SubElement(old, "oemStrings")
    for entry in oem.findall("entry"):
        if is_agent_string(entry.text or ""):
            oem.remove(entry)
    new_oem = new.find("oemStrings")
    assert new_oem is not None
    oem.extend(new_oem)


def into_domain(domain_xml: str, items: Sequence[Item], channel: str, where: str) -> str:
    """A whole domain with the entries in it (_merge_sysinfo), and for SMBIOS the <os> told to
    use its <sysinfo>."""
    try:
        dom = ET.fromstring(domain_xml)
    except ET.ParseError as e:
        raise ConfigError(f"{where}: cannot read the domain XML ({e})") from None
    if dom.tag != "domain":
        raise ConfigError(f"{where}: not a libvirt domain (the root element is <{dom.tag}>)")
    if channel == SMBIOS:
        os_el = dom.find("os")
        if os_el is None:
            raise ConfigError(f"{where}: the domain has no <os> for <smbios mode='sysinfo'/>")
        smbios = os_el.find("smbios")
        if smbios is None:
            smbios = ET.SubElement(os_el, "smbios")
        smbios.attrib = {"mode": "sysinfo"}
    _merge_sysinfo(dom, items, channel)
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


def for_proxmox(items: Sequence[Item], channel: str, vmid: Optional[int],
                oem_dir: Optional[str] = None) -> str:
    if vmid is None:
        raise ConfigError("--for proxmox needs --vmid N (the VM's number)")
    args = " ".join(shlex.quote(w) for w in qemu_args(items, channel, oem_dir))
    return _shell_lines(["qm", "set", str(vmid), "--args", args], pairs=False)


def for_incus(items: Sequence[Item], channel: str, instance: Optional[str]) -> str:
    """Incus (6.10 and later) makes the setting `smbios11.KEY` of a VM the OEM string
    `KEY=VALUE` (one -smbios type=11,path= file each, written when the VM starts): KEY is the
    agent's prefix and the entry's name. One `incus config set` per entry."""
    if channel != SMBIOS:
        raise ConfigError("--for incus needs --channel smbios: Incus passes OEM strings "
                          "(smbios11.* settings), not fw_cfg items")
    if not instance:
        raise ConfigError("--for incus needs --instance NAME (the VM's name)")
    _no_control(instance, "the instance name")
    lines = []
    for it in items:
        key, _, value = oem_string(it.name, it.data).partition("=")
        lines.append(_shell_lines(["incus", "config", "set", instance,
                                   f"smbios11.{key}={value}"], pairs=False))
    return "".join(lines)


def render(host: str, items: Sequence[Item], channel: str, *, vmid: Optional[int] = None,
           domain: Optional[tuple[str, str]] = None, oem_dir: Optional[str] = None,
           instance: Optional[str] = None) -> str:
    """The text for HOST. OEM_DIR (QEMU and Proxmox, SMBIOS): `path=` files in that directory
    instead of `value=` strings."""
    if oem_dir is not None and (host not in ("qemu", "proxmox") or channel != SMBIOS):
        raise ConfigError("--smbios-files is for --channel smbios with --for qemu or proxmox "
                          "(QEMU's -smbios type=11,path=FILE)")
    if host == "qemu":
        return for_qemu(items, channel, oem_dir)
    if host == "libvirt":
        if domain is not None:
            return into_domain(domain[0], items, channel, domain[1])
        return for_libvirt(items, channel)
    if host == "virt-install":
        return for_virt_install(items, channel)
    if host == "cloud-hypervisor":
        return for_cloud_hypervisor(items, channel)
    if host == "incus":
        return for_incus(items, channel, instance)
    return for_proxmox(items, channel, vmid, oem_dir)


def notes(host: str, channel: str) -> list[str]:
    """What to know before pasting the output (the command prints them on stderr)."""
    if host == "cloud-hypervisor" and channel == SMBIOS:
        return ["Cloud Hypervisor takes one --platform option: if the VM's command line has "
                "one already, put this oem_strings=[...] in it, after a comma (e.g. --platform "
                "serial_number=42,oem_strings=[...]), instead of adding a second --platform"]
    if host == "incus":
        return ["Incus builds the OEM strings when the VM starts: restart it (incus restart) "
                "for changed settings to reach the guest"]
    if host == "proxmox":
        return ["qm set --args replaces the VM's whole args setting: add any options it already "
                "has (qm config VMID) to the quoted text"]
    return []
