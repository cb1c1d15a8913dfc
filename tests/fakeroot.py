"""Build guest-like root trees for tests, the demo and the benchmark.

The fw_cfg tree mirrors what Linux's qemu_fw_cfg driver exposes (see the QEMU 7.2 q35 listing in
the project's reference material): QEMU's own items first, user items after, keys from 0x20 up in
name order, `by_key/N/{key,size,name,raw}` and a best-effort `by_name` tree whose links are
dropped when a name is also a directory component, exactly as the kernel does.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
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
