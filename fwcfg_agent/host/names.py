"""fw_cfg entry names, and the file slots a machine type has for them.

Facts (QEMU 7.2; the project's fw_cfg reference):
- a file directory entry holds 56 bytes of name with its terminating NUL: at most 55 bytes;
- QEMU warns about names outside `opt/` and reserves `opt/ovmf/` and `opt/org.qemu/`;
- the Linux driver's `by_name/` tree makes a directory of every name component: a name that is
  also a directory component of another (`opt/a` beside `opt/a/b`) loses its link there (the
  agent lists `by_key/`, but other tools and people debugging read `by_name/`);
- the directory has 32 file slots (16 on machine types 2.8 and older), shared with QEMU's own
  items; QEMU aborts at start-up (an assertion in hw/nvram/fw_cfg.c) when they run out;
- QEMU adds one more file, etc/msr_feature_control, when the first vCPU's CPUID exposes VMX
  (or LMCE or SGX): hw/i386/fw_cfg.c, fw_cfg_build_feature_control, at machine-done;
- SMBIOS: all `-smbios type=11` strings go in one type 11 structure (a 5-byte header, each
  string and its NUL, one NUL more); with the 32-bit (SMBIOS 2.1) entry point, the default of
  pc and q35 machine types before 8.1, QEMU refuses to start when the whole table is over
  0xFFFF bytes ("SMBIOS 2.1 table length ... exceeds 65535", hw/smbios/smbios.c).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import Optional

from ..channels import MAX_NAME
from ..config import DEFAULT_EXCLUDE
from ..tuples import NamedTuple

MAX_NAME_BYTES = 55
RESERVED = ("opt/ovmf/", "opt/org.qemu/")
# Characters a name may hold: printable ASCII without those that some host's option syntax
# splits on or quotes with (QEMU and Cloud Hypervisor: ',' and ':'; SMBIOS strings: '=';
# Cloud Hypervisor and virt-install: quotes, brackets, backslash) and without spaces.
_NAME = re.compile(r"[A-Za-z0-9._+@~/-]+\Z")
FILE_SLOTS = 32
LEGACY_FILE_SLOTS = 16  # machine types 2.8 and older (hw_compat_2_8: x-file-slots=0x10)

# QEMU's own fw_cfg files, counted in /sys/firmware/qemu_fw_cfg/by_key of real guests booted
# with `-kernel` (QEMU 7.2.22, TCG, Debian 12's 6.1 kernel, tests/guest/test_host_args.py
# checks the q35 figure in every run of the guest suite):
#   q35: bios-geometry bootorder etc/acpi/rsdp etc/acpi/tables etc/boot-fail-wait etc/e820
#        etc/smbios/smbios-anchor etc/smbios/smbios-tables etc/smi/features-ok
#        etc/smi/requested-features etc/smi/supported-features etc/system-states
#        etc/table-loader etc/tpm/log genroms/kvmvapic.bin genroms/linuxboot_dma.bin  (16)
#   pc:  the same without the three etc/smi/* items  (13)
# With -nodefaults and without it the counts were the same. genroms/linuxboot_dma.bin is
# -kernel's: a guest that boots from its disk uses one slot less. 17 entries on q35 or 20 on
# pc made QEMU abort at start-up.
QEMU_ITEMS = {"q35": 16, "pc": 13}
MSR_FEATURE_CONTROL = "etc/msr_feature_control"

SMBIOS_21_MAX_TABLE = 0xFFFF
# QEMU's own structures (types 0, 1, 3, 4 per socket, 16, 17 per 16 GiB of RAM, 19, 32, 127):
# 309 bytes on q35 with one vCPU and 128 MiB, read back from a stopped QEMU 7.2. Kept aside
# generously for large VMs (many sockets, much RAM) and -smbios fields of other tools.
SMBIOS_QEMU_RESERVE = 4096
OEM_STRUCTURE_OVERHEAD = 5 + 1  # the type 11 header (4 + Count) and the set's final NUL


def oem_table_bytes(strings: Sequence[str]) -> int:
    """The bytes the type 11 structure holding STRINGS adds to QEMU's SMBIOS table."""
    if not strings:
        return 0
    return OEM_STRUCTURE_OVERHEAD + sum(len(s.encode()) + 1 for s in strings)
MACHINES = tuple(QEMU_ITEMS)


class Budget(NamedTuple):
    machine: str  # q35 or pc
    slots: int  # the directory's size
    used: int  # QEMU's own items
    assumed: bool = False  # the slot count is QEMU's default, not read off a version number

    @property
    def free(self) -> int:
        return self.slots - self.used


# A machine type of the q35 or the i440fx ("pc") family: QEMU's aliases, QEMU's versioned types
# (pc-q35-7.2, pc-i440fx-2.8, the old pc-1.x) and distributions' own (pc-q35-rhel9.4.0,
# pc-i440fx-rhel7.6.0, Ubuntu's pc-q35-noble, pc-i440fx-jammy-hpb).
_FAMILY = re.compile(r"(?:(?P<kind>pc-q35|pc-i440fx|q35|pc)(?:-(?P<rest>[A-Za-z0-9._+-]+))?)\Z")
_NUMERIC = re.compile(r"([0-9]+)\.([0-9]+)\Z")


def budget(machine: str) -> Budget:
    """The slots for a -machine type of the q35 or pc family. The 16-slot directory of machine
    types 2.8 and older only when the type carries a QEMU version that says so (pc-q35-2.8);
    any other type of the family (q35, pc-q35-7.2, pc-q35-rhel9.4.0, pc-q35-noble) has QEMU's
    default, 32 (`assumed` when no QEMU version was read). ValueError for other machines."""
    m = _FAMILY.match(machine)
    if not m:
        raise ValueError(f"unknown machine type {machine!r}: the slot budget is known for the "
                         "q35 family (q35, pc-q35-*) and the i440fx family (pc, pc-i440fx-*)")
    kind = "q35" if m.group("kind") in ("q35", "pc-q35") else "pc"
    rest = m.group("rest")
    if rest is None:
        if m.group("kind") in ("pc-q35", "pc-i440fx"):
            raise ValueError(f"unknown machine type {machine!r}: expected a version after it "
                             f"(e.g. {machine}-7.2)")
        return Budget(kind, FILE_SLOTS, QEMU_ITEMS[kind])
    version = _NUMERIC.match(rest)
    if version is None:
        return Budget(kind, FILE_SLOTS, QEMU_ITEMS[kind], assumed=True)
    legacy = (int(version.group(1)), int(version.group(2))) <= (2, 8)
    return Budget(kind, LEGACY_FILE_SLOTS if legacy else FILE_SLOTS, QEMU_ITEMS[kind])


def name_errors(name: str, smbios: bool = False) -> list[str]:
    """Why NAME cannot be an entry's name (empty: it can). The fw_cfg directory's own limits
    (55 bytes, QEMU's reserved namespaces) do not bind an SMBIOS OEM string's NAME, which the
    guest takes up to 255 characters long (channels.MAX_NAME)."""
    if not name.isascii():
        return ["is not ASCII"]
    out = []
    if not name.startswith("opt/"):
        out.append("is not under opt/ (QEMU keeps the rest for itself, and the agent reads "
                   "only opt/)")
    size = len(name.encode())
    if smbios:
        if size > MAX_NAME:
            out.append(f"is {size} bytes long; the agent takes OEM string names of at most "
                       f"{MAX_NAME}")
    else:
        if size > MAX_NAME_BYTES:
            out.append(f"is {size} bytes long; fw_cfg names are at most {MAX_NAME_BYTES}")
        for reserved in RESERVED:
            if name.startswith(reserved):
                out.append(f"is in {reserved}, which QEMU reserves")
    if not _NAME.match(name):
        bad = sorted({c for c in name if not _NAME.match(c)})
        out.append(f"holds {''.join(bad)!r}: names are letters, digits and . _ + @ ~ / -")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts[1:]):
        out.append("has an empty, '.' or '..' component")
    return out


def prefix_collisions(names: Sequence[str]) -> list[tuple[str, str]]:
    """(short, long) for every name that is a directory component of another."""
    taken = set(names)
    out = []
    for name in sorted(taken):
        parts = name.split("/")
        for i in range(1, len(parts)):
            head = "/".join(parts[:i])
            if head in taken:
                out.append((head, name))
    return out


def excluded_by_default(name: str) -> Optional[str]:
    """The default EXCLUDE pattern that makes the agent skip NAME, if any."""
    for pattern in DEFAULT_EXCLUDE:
        if fnmatch.fnmatchcase(name, pattern):
            return pattern
    return None
