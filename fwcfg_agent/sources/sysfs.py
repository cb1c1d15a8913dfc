"""The kernel's fw_cfg sysfs tree: ROOT/sys/firmware/qemu_fw_cfg.

`by_key/*/name` is the authoritative directory. `by_name` is never used: the kernel drops names
that collide with a directory component (`opt/a` beside `opt/a/b`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SourceError
from .base import EntryInfo

SYSFS_FWCFG = "sys/firmware/qemu_fw_cfg"
# The kernel hands out at most a page per read() of `raw`, but asking for more costs nothing and
# lets a future kernel (or a plain file in a test root) answer in one go.
_READ_CHUNK = 1 << 20


def _read_text(path: Path) -> str:
    with open(path, "rb") as f:
        return f.read(4096).decode("utf-8", "replace").rstrip("\n")


class SysfsSource:
    kind = "sysfs"

    def __init__(self, tree: Path) -> None:
        self.tree = tree

    def entries(self) -> list[EntryInfo]:
        by_key = self.tree / "by_key"
        try:
            keys = os.listdir(by_key)
        except OSError as e:
            raise SourceError(f"cannot list {by_key}: {e.strerror}") from e
        found: list[EntryInfo] = []
        for k in keys:
            if not k.isdigit():
                continue
            d = by_key / k
            try:
                name = _read_text(d / "name")
                size_text = _read_text(d / "size")
            except OSError as e:
                raise SourceError(f"cannot read {d}: {e.strerror}") from e
            if not size_text.isdigit():
                raise SourceError(f"{d}/size is not a number: {size_text!r}")
            found.append(EntryInfo(name=name, key=int(k), size=int(size_text)))
        found.sort(key=lambda e: e.key)
        return found

    def read(self, entry: EntryInfo) -> bytes:
        path = self.tree / "by_key" / str(entry.key) / "raw"
        chunks: list[bytes] = []
        remaining = entry.size
        try:
            with open(path, "rb", buffering=0) as f:
                while remaining > 0:
                    chunk = f.read(min(remaining, _READ_CHUNK))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    remaining -= len(chunk)
        except OSError as e:
            raise SourceError(f"{entry.name}: cannot read {path}: {e.strerror}") from e
        data = b"".join(chunks)
        if len(data) != entry.size:
            raise SourceError(
                f"{entry.name}: read {len(data)} bytes from {path}, size says {entry.size}"
            )
        return data

    def close(self) -> None:
        pass
