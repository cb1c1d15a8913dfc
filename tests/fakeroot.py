"""Build guest-like root trees for tests, the demo and the benchmark.

The fw_cfg tree mirrors what Linux's qemu_fw_cfg driver exposes (see the QEMU 7.2 q35 listing in
the project's reference material): QEMU's own items first, user items after, keys from 0x20 up in
name order, `by_key/N/{key,size,name,raw}` and a best-effort `by_name` tree whose links are
dropped when a name is also a directory component, exactly as the kernel does.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

# What QEMU 7.2 puts in a q35 guest's fw_cfg directory before any -fw_cfg option (sizes as seen).
QEMU_Q35_ITEMS: tuple[tuple[str, int], ...] = (
    ("bios-geometry", 0),
    ("bootorder", 31),
    ("etc/acpi/rsdp", 20),
    ("etc/acpi/tables", 4096),
    ("etc/boot-fail-wait", 4),
    ("etc/e820", 40),
    ("etc/smbios/smbios-anchor", 31),
    ("etc/smbios/smbios-tables", 309),
    ("etc/system-states", 6),
    ("etc/table-loader", 4096),
    ("genroms/kvmvapic.bin", 9216),
)

FIRST_FILE_KEY = 0x20


def write_fwcfg_tree(
    root: Path,
    entries: Mapping[str, bytes],
    *,
    qemu_items: Iterable[tuple[str, int]] = QEMU_Q35_ITEMS,
    rev: int = 3,
) -> dict[str, int]:
    """Create ROOT/sys/firmware/qemu_fw_cfg holding QEMU's items and `entries`.

    An existing tree is replaced, as at a new boot. Returns the name -> key map. Keys are
    assigned in sorted name order, as QEMU does.
    """
    tree = root / "sys/firmware/qemu_fw_cfg"
    if tree.exists():  # a new boot: QEMU numbers the items afresh
        shutil.rmtree(tree)
    (tree / "by_key").mkdir(parents=True)
    (tree / "rev").write_text(f"{rev}\n")
    items: dict[str, bytes] = {name: bytes(size) for name, size in qemu_items}
    items.update(entries)
    keys: dict[str, int] = {}
    for i, name in enumerate(sorted(items)):
        key = FIRST_FILE_KEY + i
        keys[name] = key
        d = tree / "by_key" / str(key)
        d.mkdir()
        (d / "key").write_text(f"{key}\n")
        (d / "size").write_text(f"{len(items[name])}\n")
        (d / "name").write_text(f"{name}\n")
        (d / "raw").write_bytes(items[name])
        _link_by_name(tree, name, key)
    return keys


def _link_by_name(tree: Path, name: str, key: int) -> None:
    parts = name.split("/")
    d = tree / "by_name"
    d.mkdir(exist_ok=True)
    for part in parts[:-1]:
        d = d / part
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            return  # a file already claims this component: the kernel gives up here too
        d.mkdir(parents=True, exist_ok=True)
    link = d / parts[-1]
    if link.exists() or link.is_symlink():
        return  # already a directory (opt/a beside opt/a/b) or a duplicate
    rel = os.path.relpath(tree / "by_key" / str(key), d)
    link.symlink_to(rel)


def write_netdev(root: Path, name: str, mac: str, *, devtype: str = "ether") -> None:
    """Create ROOT/sys/class/net/NAME as a guest's kernel shows a NIC (address, type, device)."""
    d = root / "sys/class/net" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "address").write_text(mac.lower() + "\n")
    (d / "type").write_text("1\n" if devtype == "ether" else "772\n")
    if devtype == "ether":
        (d / "device").mkdir(exist_ok=True)


def write_os_release(root: Path, **fields: str) -> None:
    path = root / "etc/os-release"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f'{k}="{v}"\n' for k, v in fields.items()))


def write_qemu_acpi_device(root: Path) -> None:
    """Mark the root as a QEMU guest: the ACPI fw_cfg device exists."""
    (root / "sys/bus/acpi/devices/QEMU0002:00").mkdir(parents=True, exist_ok=True)


# --- SMBIOS (DMI) tables ----------------------------------------------------------------------
# Built to the SMBIOS specification (DSP0134): each structure is a header (type, length of the
# formatted area, handle), the rest of the formatted area, then its strings, each NUL-terminated,
# the set ended by one more NUL (two NULs when there are none). Type 11 (OEM Strings) has one
# byte, Count, after the header. Type 127 ends the table. The kernel shows the table as
# ROOT/sys/firmware/dmi/tables/DMI.

DMI_TABLE = "sys/firmware/dmi/tables/DMI"


def smbios_structure(kind: int, handle: int, formatted: bytes = b"",
                     strings: Sequence[bytes] = ()) -> bytes:
    """One structure: header, formatted area after it, string-set."""
    length = 4 + len(formatted)
    assert length <= 0xFF, "a structure's formatted area is at most 255 bytes"
    head = bytes([kind, length]) + handle.to_bytes(2, "little")
    tail = b"".join(s + b"\0" for s in strings) + b"\0" if strings else b"\0\0"
    return head + formatted + tail


def smbios_table(oem_strings: Sequence[bytes] = (), *, end: bool = True) -> bytes:
    """A table as QEMU 7.2 lays one out for q35 (BIOS, system, OEM strings, end), holding
    OEM_STRINGS in one type 11 structure (none without strings)."""
    bios = smbios_structure(0, 0x0000, bytes([1, 2, 0x00, 0xE8, 3, 0]) + bytes(12),
                            [b"SeaBIOS", b"1.16.2-debian-1.16.2-1", b"04/01/2014"])
    system = smbios_structure(1, 0x0100, bytes([1, 2, 3, 0]) + bytes(19),
                              [b"QEMU", b"Standard PC (Q35 + ICH9, 2009)", b"pc-q35-7.2"])
    parts = [bios, system]
    if oem_strings:
        parts.append(smbios_structure(11, 0x0E00, bytes([len(oem_strings)]), oem_strings))
    if end:
        parts.append(smbios_structure(127, 0x7F00))
    return b"".join(parts)


def write_dmi_table(root: Path, table: bytes) -> None:
    """ROOT/sys/firmware/dmi/tables/DMI holding TABLE (replaced, as at a new boot)."""
    path = root / DMI_TABLE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(table)


# The DMI table a QEMU 7.2 q35 guest (Debian's 1:7.2+dfsg-7+deb12u18, SeaBIOS, SMBIOS 2.1 entry
# point) saw, dumped from its /sys/firmware/dmi/tables/DMI (947 bytes). The host ran:
#   qemu-system-x86_64 -machine q35,accel=tcg ... \
#     -smbios "type=11,value=fwcfg-agent:opt/GuestInfo=<examples/GuestInfo.env>" \
#       (the whole file, final newline included, its one comma doubled) \
#     -smbios type=11,value=fwcfg-agent.base64:opt/org.example/dns=<base64 of QEMU_DNS> \
#     -smbios "type=11,value=io.systemd.credential:fwcfg-agent.net0=<QEMU_NET0>" \
#     -smbios "type=11,value=vendor string,, with a comma" \
#     -smbios type=11,path=FILE   (FILE: fwcfg-agent:opt/org.example/net1=<QEMU_NET1>)
# OEM strings 1-5 in that order, in one type 11 structure between types 4 and 16.
QEMU72_OEM_TABLE = base64.b64decode(
    "ABgAAAECAOgDAAgAAAAAAAAAAAQAAP//U2VhQklPUwAxLjE2LjItZGViaWFuLTEuMTYuMi0xADA0LzAxLzIwMTQA"
    "AAEbAAEBAgMAAAAAAAAAAAAAAAAAAAAAAAYAAFFFTVUAU3RhbmRhcmQgUEMgKFEzNSArIElDSDksIDIwMDkpAHBj"
    "LXEzNS03LjIAAAMWAAMBAQIAAAMDAwIAAAAAAAAAAABRRU1VAHBjLXEzNS03LjIAAAQqAAQBAwECsQ8GAP37iwcD"
    "AAAA0AfQB0EB////////AAAAAQEBAgABAENQVSAwAFFFTVUAcGMtcTM1LTcuMgAACwUADgVmd2NmZy1hZ2VudDpv"
    "cHQvR3Vlc3RJbmZvPSMgU29tbG8ncyBleGFtcGxlIHBheWxvYWQsIGV4YWN0bHk6IHBhc3MgaXQgd2l0aAojICAg"
    "cWVtdS1zeXN0ZW0teDg2XzY0IC4uLiAtZndfY2ZnIG5hbWU9b3B0L0d1ZXN0SW5mbyxmaWxlPWV4YW1wbGVzL0d1"
    "ZXN0SW5mby5lbnYKIyBXaXRoIG5vIERFVklDRSBvciBIV0FERFIgdGhlIGFkZHJlc3MgZ29lcyB0byB0aGUgZ3Vl"
    "c3QncyBmaXJzdCBFdGhlcm5ldCBOSUMuCkhPU1ROQU1FPXdlYjEuZXhhbXBsZS5jb20KSVBBRERSPTE5Mi4wLjIu"
    "MTAKAGZ3Y2ZnLWFnZW50LmJhc2U2NDpvcHQvb3JnLmV4YW1wbGUvZG5zPVJFOU5RVWxPUFdWNFlXMXdiR1V1WTI5"
    "dENrUk9VekU5TVRreUxqQXVNaTQxTXdvPQBpby5zeXN0ZW1kLmNyZWRlbnRpYWw6ZndjZmctYWdlbnQubmV0MD1I"
    "V0FERFI9NTI6NTQ6MDA6ZmM6MDA6MDMKSVBBRERSPTEwLjAuMzAuMgoAdmVuZG9yIHN0cmluZywgd2l0aCBhIGNv"
    "bW1hAGZ3Y2ZnLWFnZW50Om9wdC9vcmcuZXhhbXBsZS9uZXQxPUhXQUREUj01Mjo1NDowMDpmYzowMDowMgpJUEFE"
    "RFI9MTAuMC4yMC4yClBSRUZJWD0yNAoAABAXABABAwYAAAQA/v8BAAAAAAAAAAAAAAARKAARABD+//////8AAQkA"
    "AQAHAgAAAAIAAAAAAAAAAAAAAAAAAAAARElNTSAwAFFFTVUAABMfABMAAAAA//8DAAAQAQAAAAAAAAAAAAAAAAAA"
    "AAAAACALACAAAAAAAAAAAAB/BAB/AAA="
)
QEMU_DNS = b"DOMAIN=example.com\nDNS1=192.0.2.53\n"
QEMU_NET0 = b"HWADDR=52:54:00:fc:00:03\nIPADDR=10.0.30.2\n"
QEMU_NET1 = b"HWADDR=52:54:00:fc:00:02\nIPADDR=10.0.20.2\nPREFIX=24\n"


# --- systemd system credentials ---------------------------------------------------------------

CREDENTIALS_DIR = "run/credentials/@system"


def write_credentials(root: Path, credentials: Mapping[str, bytes]) -> None:
    """ROOT/run/credentials/@system/NAME for each credential, as PID 1 leaves them (mode
    0400 files in a 0700 directory)."""
    d = root / CREDENTIALS_DIR
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    for name, data in credentials.items():
        (d / name).write_bytes(data)
        (d / name).chmod(0o400)
