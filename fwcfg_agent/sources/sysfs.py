"""The kernel's fw_cfg sysfs tree: ROOT/sys/firmware/qemu_fw_cfg.

`by_key/*/name` is the authoritative directory. `by_name` is never used: the kernel drops names
that collide with a directory component (`opt/a` beside `opt/a/b`). Every read goes through
the run's Reader, so the boot's fast path replays the same reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import SourceError
from ..rootfs import Reader
from .base import EntryInfo

if TYPE_CHECKING:
    from collections.abc import Callable

SYSFS_FWCFG = "sys/firmware/qemu_fw_cfg"
BY_KEY = SYSFS_FWCFG + "/by_key"


class SysfsSource:
    kind = "sysfs"

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def _text(self, rel: str) -> str:
        data = self.reader.read(rel)
        if data is None:
            raise SourceError(f"cannot read {self.reader.path(rel)}")
        return data[:4096].decode("utf-8", "replace").rstrip("\n")

    def entries(self, wanted: Callable[[str], bool] | None = None) -> list[EntryInfo]:
        keys = self.reader.listdir(BY_KEY)
        if keys is None and not self.reader.exists(BY_KEY):
            # qemu_fw_cfg loaded where the firmware describes no device (libvirt without
            # <acpi/> passes -no-acpi): the driver leaves a tree without items
            return []
        if keys is None:
            raise SourceError(f"cannot list {self.reader.path(BY_KEY)}")
        found: list[EntryInfo] = []
        for k in keys:
            if not k.isdigit():
                continue
            name = self._text(f"{BY_KEY}/{k}/name")
            if wanted is not None and not wanted(name):
                continue  # another tool's entry: its size is not read, nor in the record
            size_text = self._text(f"{BY_KEY}/{k}/size")
            if not size_text.isdigit():
                raise SourceError(f"{self.reader.path(f'{BY_KEY}/{k}/size')} is not a number: "
                                  f"{size_text!r}")
            found.append(EntryInfo(name=name, key=int(k), size=int(size_text)))
        found.sort(key=lambda e: e.key)
        return found

    def read(self, entry: EntryInfo) -> bytes:
        """The entry's bytes. The kernel's `raw` file ends at the item's size; a longer one
        (a damaged tree) is an error, not a longer entry."""
        rel = f"{BY_KEY}/{entry.key}/raw"
        data = self.reader.read(rel)
        if data is None:
            raise SourceError(f"{entry.name}: cannot read {self.reader.path(rel)}")
        if len(data) != entry.size:
            raise SourceError(f"{entry.name}: read {len(data)} bytes from "
                              f"{self.reader.path(rel)}, size says {entry.size}")
        return data

    def close(self) -> None:
        pass
