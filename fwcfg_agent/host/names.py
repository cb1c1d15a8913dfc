"""fw_cfg entry names, and the file slots a machine type has for them.

Facts (QEMU 7.2; the project's fw_cfg reference):
- a file directory entry holds 56 bytes of name with its terminating NUL: at most 55 bytes;
- QEMU warns about names outside `opt/` and reserves `opt/ovmf/` and `opt/org.qemu/`;
- the Linux driver's `by_name/` tree makes a directory of every name component: a name that is
  also a directory component of another (`opt/a` beside `opt/a/b`) loses its link there (the
  agent lists `by_key/`, but other tools and people debugging read `by_name/`);
- the directory has 32 file slots (16 on machine types 2.8 and older), shared with QEMU's own
  items; QEMU aborts at start-up (an assertion in hw/nvram/fw_cfg.c) when they run out.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import NamedTuple, Optional

from ..config import DEFAULT_EXCLUDE

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
MACHINES = tuple(QEMU_ITEMS)


class Budget(NamedTuple):
    machine: str  # q35 or pc
    slots: int  # the directory's size
    used: int  # QEMU's own items

    @property
    def free(self) -> int:
        return self.slots - self.used


_VERSIONED = re.compile(r"pc-(q35|i440fx)-([0-9]+)\.([0-9]+)\Z")


def budget(machine: str) -> Budget:
    """The slots for a -machine type: q35, pc, or a versioned pc-q35-X.Y / pc-i440fx-X.Y
    (libvirt writes those). ValueError for anything else."""
    if machine in QEMU_ITEMS:
        return Budget(machine, FILE_SLOTS, QEMU_ITEMS[machine])
    m = _VERSIONED.match(machine)
    if not m:
        raise ValueError(f"unknown machine type {machine!r} (q35, pc, pc-q35-X.Y or "
                         "pc-i440fx-X.Y)")
    kind = "q35" if m.group(1) == "q35" else "pc"
    legacy = (int(m.group(2)), int(m.group(3))) <= (2, 8)
    return Budget(kind, LEGACY_FILE_SLOTS if legacy else FILE_SLOTS, QEMU_ITEMS[kind])


def name_errors(name: str) -> list[str]:
    """Why NAME cannot be an entry's name (empty: it can)."""
    if not name.isascii():
        return ["is not ASCII"]
    out = []
    if not name.startswith("opt/"):
        out.append("is not under opt/ (QEMU keeps the rest for itself, and the agent reads "
                   "only opt/)")
    size = len(name.encode())
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
