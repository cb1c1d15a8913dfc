"""The fw_cfg wire protocol over the device's traditional interface, as pure Python.

`Ports` is the tiny port interface: `select(key)` is one 16-bit write of the key to the
selector, `read(n)` is `n` sequential byte reads of the data port. The compiled helper drives
the real x86 ports (ports.PortIO); the test suite's device model implements the same interface.

The traps this guards against (see the project's fw_cfg reference): an absent device reads 0xFF,
so the signature comes first; Cloud Hypervisor's device panics the VMM on a read past the end of an
item, so nothing is ever read beyond a size the device gave; the directory is big-endian and the
feature bitmap little-endian; a corrupt directory (huge count, name without NUL, key out of range,
duplicate names) is refused instead of trusted; reads are one select and one sequential run, so
they cost time linear in the item's size (the kernel driver's reads are quadratic).
"""

from __future__ import annotations

import struct
from typing import Callable, Protocol

from ..errors import NoDeviceError, SourceError
from .base import EntryInfo

# --- device facts -------------------------------------------------------------------------------

SELECTOR_PORT = 0x510
DATA_PORT = 0x511
PORT_COUNT = 12  # 0x510..0x51b: selector, data, DMA address

KEY_SIGNATURE = 0x0000
KEY_FEATURES = 0x0001
KEY_FILE_DIR = 0x0019
FIRST_FILE_KEY = 0x0020
LAST_FILE_KEY = 0x3FFF
MAX_FILE_COUNT = 0x3FE0  # every key from 0x20 to 0x3fff

SIGNATURE = b"QEMU"  # QEMU's item 0 is exactly this; Cloud Hypervisor's is b"QEMU CFG"
FEATURE_TRADITIONAL = 1 << 0
FEATURE_DMA = 1 << 1

DIR_COUNT_SIZE = 4
DIR_RECORD_SIZE = 64
NAME_FIELD_SIZE = 56
_RECORD = struct.Struct(">IHH56s")  # size, select, reserved, name

#: The directory the reader is willing to read: 4096 records (256 KiB). QEMU's default is 32 slots.
DEFAULT_MAX_DIR_ENTRIES = 4096
#: Entries are read in runs of this many bytes (one select per entry, sequential runs).
READ_CHUNK = 1 << 18


# --- the port interface -------------------------------------------------------------------------


class Ports(Protocol):
    """The device's traditional interface, as the C helper and the test model both offer it."""

    def select(self, key: int) -> None:
        """Write `key` to the selector with one 16-bit access (the device resets its offset)."""
        ...

    def read(self, n: int) -> bytes:
        """`n` sequential byte reads of the data port, exactly `n` bytes."""
        ...

    def close(self) -> None:
        """Give up access to the ports."""
        ...


PortOpener = Callable[[], Ports]


# --- the protocol -------------------------------------------------------------------------------


def _read_exact(ports: Ports, n: int, what: str) -> bytes:
    data = ports.read(n)
    if len(data) != n:
        raise SourceError(f"fw_cfg {what}: the port layer returned {len(data)} bytes, not {n}")
    return data


def probe(ports: Ports) -> int:
    """Check the signature (before anything else) and return the feature bitmap.

    Reads exactly 4 bytes of item 0 (QEMU's item is 4 bytes long, Cloud Hypervisor's 8) and 4 of
    item 1, so it never reads past either.
    """
    ports.select(KEY_SIGNATURE)
    sig = _read_exact(ports, len(SIGNATURE), "signature")
    if sig != SIGNATURE:
        if sig == b"\xff" * len(SIGNATURE):
            raise NoDeviceError(
                "no fw_cfg device answers at I/O port 0x510 (the signature reads as all 0xff)"
            )
        raise SourceError(
            f"the device at I/O port 0x510 is not fw_cfg: signature {sig!r}, expected {SIGNATURE!r}"
        )
    ports.select(KEY_FEATURES)
    (features,) = struct.unpack("<I", _read_exact(ports, 4, "feature bitmap"))
    if not features & FEATURE_TRADITIONAL:
        raise SourceError(
            f"fw_cfg feature bitmap {features:#x} lacks the traditional interface (bit 0)"
        )
    return int(features)


def parse_directory(count: int, records: bytes) -> list[EntryInfo]:
    """Decode and check `count` 64-byte directory records (big-endian fields)."""
    if len(records) != count * DIR_RECORD_SIZE:
        raise SourceError(f"fw_cfg directory: {len(records)} bytes of records for {count} entries")
    entries: list[EntryInfo] = []
    names: dict[str, int] = {}
    keys: dict[int, str] = {}
    for i in range(count):
        size, key, _reserved, raw_name = _RECORD.unpack_from(records, i * DIR_RECORD_SIZE)
        where = f"fw_cfg directory entry {i}"
        nul = raw_name.find(b"\0")
        if nul < 0:
            raise SourceError(f"{where}: name is not NUL-terminated within {NAME_FIELD_SIZE} bytes")
        if nul == 0:
            raise SourceError(f"{where}: empty name (key {key:#x}, size {size})")
        try:
            name = raw_name[:nul].decode("utf-8")
        except UnicodeDecodeError as e:
            raise SourceError(f"{where}: name {raw_name[:nul]!r} is not UTF-8") from e
        where = f"{where} ({name!r})"
        if not FIRST_FILE_KEY <= key <= LAST_FILE_KEY:
            raise SourceError(
                f"{where}: key {key:#x} is outside {FIRST_FILE_KEY:#x}..{LAST_FILE_KEY:#x}"
            )
        if name in names:
            raise SourceError(f"{where}: name listed twice (entries {names[name]} and {i})")
        if key in keys:
            raise SourceError(f"{where}: key {key:#x} already belongs to {keys[key]!r}")
        names[name] = i
        keys[key] = name
        entries.append(EntryInfo(name=name, key=key, size=size))
    return entries


def read_directory(ports: Ports, *, max_entries: int = DEFAULT_MAX_DIR_ENTRIES) -> list[EntryInfo]:
    """Read the file directory (item 0x19): one select, the count, then exactly `count` records.

    QEMU sizes the item for all its slots and Cloud Hypervisor for exactly its entries; reading
    `4 + 64 * count` bytes stays inside both. An implausible count is refused before any record
    is read.
    """
    limit = min(MAX_FILE_COUNT, max_entries)
    ports.select(KEY_FILE_DIR)
    (count,) = struct.unpack(">I", _read_exact(ports, DIR_COUNT_SIZE, "directory count"))
    if count > limit:
        raise SourceError(
            f"fw_cfg directory claims {count} entries ({count:#x}); refusing more than {limit}"
        )
    if count == 0:
        return []
    records = _read_exact(ports, count * DIR_RECORD_SIZE, "directory")
    return parse_directory(count, records)


def read_item(ports: Ports, key: int, size: int, *, chunk: int = READ_CHUNK) -> bytes:
    """Exactly `size` bytes of item `key`: one select, then sequential runs, never past `size`."""
    if size == 0:
        return b""  # no access at all: Cloud Hypervisor fails even a 1-byte read of an empty item
    ports.select(key)
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        n = min(remaining, chunk)
        parts.append(_read_exact(ports, n, f"item {key:#x}"))
        remaining -= n
    return b"".join(parts)
