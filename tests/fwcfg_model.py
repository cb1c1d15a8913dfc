"""A software model of the fw_cfg device's x86 I/O-port interface, for the raw reader's tests.

It follows QEMU's rules (hw/nvram/fw_cfg.c, as documented in the project's fw_cfg reference):

* only a 2-byte write to the selector (0x510) selects; 1-byte writes to 0x510 or 0x511 are ignored;
* selecting resets the read offset; a key whose index (key & 0x3fff) is not below 0x20 + slots
  selects nothing, and reads then give 0;
* reads past the end of an item give 0x00 and do not advance;
* the file directory (key 0x19) is big-endian, sized for all slots (32 by default) with the unused
  records zeroed, sorted by name, and the keys are reassigned in name order from 0x20;
* the feature bitmap (key 1) and the legacy numeric items are little-endian.

Profiles: ``qemu`` (feature bitmap 3: DMA), ``qemu-nodma`` (1), ``cloud-hypervisor`` (8-byte
``QEMU CFG`` signature, directory exactly as long as its entries and in insertion order, and a
read past the end of any item -- the VMM panics on it -- raises ModelViolation), ``absent``
(nothing decodes the ports: every read gives all ones, writes vanish).

``strict=True`` (the default) raises ModelViolation for every access the real device would reject
or that can only be a reader's mistake: a 1-byte "select", a select of a key that holds nothing, a
read past the end, a read of the selector, a write of the data port, any DMA register. Every
access is recorded in ``log`` (consecutive byte reads of the data port coalesced into one record
with a count), so tests assert exact sequences.

The model offers the same port interface as the C helper's wrapper (``select``, ``read``,
``close``), plus the raw port operations (``outb``/``outw``/``outl``/``inb``/``inw``/``inl``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from tests.fakeroot import QEMU_Q35_ITEMS

SELECTOR = 0x510
DATA = 0x511
DMA_HI = 0x514
DMA_LO = 0x518
PORT_FIRST = 0x510
PORT_LAST = 0x51B

KEY_SIGNATURE = 0x00
KEY_ID = 0x01
KEY_UUID = 0x02
KEY_RAM_SIZE = 0x03
KEY_NOGRAPHIC = 0x04
KEY_NB_CPUS = 0x05
KEY_BOOT_MENU = 0x0E
KEY_MAX_CPUS = 0x0F
KEY_FILE_DIR = 0x19
FIRST_FILE_KEY = 0x20
WRITE_CHANNEL = 0x4000
ARCH_LOCAL = 0x8000
ENTRY_MASK = 0x3FFF

PROFILES = ("qemu", "qemu-nodma", "cloud-hypervisor", "absent")
NAME_FIELD = 56

Files = Union[Mapping[str, bytes], Iterable[tuple[str, bytes]]]


class ModelViolation(AssertionError):
    """An access the real device would reject (strict mode) or that would crash the VMM."""


@dataclass(frozen=True)
class Access:
    """One port access, or a run of `count` consecutive byte reads of one port."""

    op: str  # "out" or "in"
    port: int
    width: int  # bytes
    value: int | None = None  # the value written
    count: int = 1


def sel(key: int) -> Access:
    """The record of a proper select: one 16-bit write of `key` to 0x510."""
    return Access("out", SELECTOR, 2, key)


def rd(n: int) -> Access:
    """The record of `n` consecutive byte reads of the data port."""
    return Access("in", DATA, 1, None, n)


def filler(name: str, size: int) -> bytes:
    """Deterministic, name-dependent content for an item of `size` bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{name}\0{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def dir_record(name: str | bytes, key: int, size: int, *, reserved: int = 0) -> bytes:
    """One 64-byte directory record, big-endian. A 56-byte `bytes` name is used as is (so a
    test can leave out the NUL); anything shorter is NUL-padded."""
    raw = name.encode() if isinstance(name, str) else name
    if len(raw) > NAME_FIELD:
        raise ValueError(f"name field longer than {NAME_FIELD} bytes")
    raw = raw.ljust(NAME_FIELD, b"\0")
    return struct.pack(">IHH", size, key, reserved) + raw


def encode_directory(
    records: Iterable[bytes], *, slots: int | None = None, count: int | None = None
) -> bytes:
    """A directory item: BE u32 count, the records, then zeroed records up to `slots`."""
    recs = list(records)
    n = len(recs) if count is None else count
    body = b"".join(recs)
    if slots is not None:
        body += bytes(64 * max(0, slots - len(recs)))
    return struct.pack(">I", n) + body


class FwCfgModel:
    """The device. `items` (key -> bytes) and `directory` are public: tests may doctor them."""

    def __init__(
        self,
        profile: str = "qemu",
        files: Files = (),
        *,
        strict: bool = True,
        slots: int = 32,
        builtin: Iterable[tuple[str, int]] | None = None,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; one of {PROFILES}")
        self.profile = profile
        self.strict = strict
        self.slots = slots
        self.log: list[Access] = []
        self.closed = False
        self.crashed: str | None = None
        self.selected: int | None = None  # None: nothing valid selected
        self.offset = 0
        self.items: dict[int, bytes] = {}
        self.directory: list[tuple[str, int, int]] = []  # (name, key, size)
        user = list(files.items()) if isinstance(files, Mapping) else list(files)
        if profile == "absent":
            return
        if builtin is None:
            builtin = [("etc/e820", 40)] if profile == "cloud-hypervisor" else QEMU_Q35_ITEMS
        all_files = [(name, filler(name, size)) for name, size in builtin] + user
        names = [n for n, _ in all_files]
        if len(set(names)) != len(names):
            raise ValueError("duplicate fw_cfg file name")  # QEMU refuses to start
        for n in names:
            if len(n.encode()) > NAME_FIELD - 1:
                raise ValueError(f"fw_cfg file name too long: {n!r}")
        if profile == "cloud-hypervisor":
            self._build_cloud_hypervisor(all_files)
        else:
            self._build_qemu(all_files, dma=profile == "qemu")

    # --- profiles -------------------------------------------------------------------------------

    def _build_qemu(self, files: list[tuple[str, bytes]], *, dma: bool) -> None:
        if len(files) > self.slots:
            raise ValueError(f"{len(files)} files do not fit in {self.slots} slots")
        self.items[KEY_SIGNATURE] = b"QEMU"
        self.items[KEY_ID] = struct.pack("<I", 3 if dma else 1)
        self.items[KEY_UUID] = bytes(16)
        self.items[KEY_RAM_SIZE] = struct.pack("<Q", 128 << 20)
        self.items[KEY_NOGRAPHIC] = struct.pack("<H", 0)
        self.items[KEY_NB_CPUS] = struct.pack("<H", 1)
        self.items[KEY_BOOT_MENU] = struct.pack("<H", 0)
        self.items[KEY_MAX_CPUS] = struct.pack("<H", 1)
        ordered = sorted(files, key=lambda f: f[0].encode())
        records = []
        for i, (name, data) in enumerate(ordered):
            key = FIRST_FILE_KEY + i
            self.items[key] = data
            self.directory.append((name, key, len(data)))
            records.append(dir_record(name, key, len(data)))
        self.items[KEY_FILE_DIR] = encode_directory(records, slots=self.slots)

    def _build_cloud_hypervisor(self, files: list[tuple[str, bytes]]) -> None:
        self.items[KEY_SIGNATURE] = b"QEMU CFG"
        self.items[KEY_ID] = bytes([3, 0, 0, 0])
        for key in range(FIRST_FILE_KEY):  # the known items it has not set are empty
            self.items.setdefault(key, b"")
        records = []
        for i, (name, data) in enumerate(files):  # insertion order
            key = FIRST_FILE_KEY + i
            self.items[key] = data
            self.directory.append((name, key, len(data)))
            records.append(dir_record(name, key, len(data)))
        self.items[KEY_FILE_DIR] = encode_directory(records)

    def key_of(self, name: str) -> int:
        for n, key, _ in self.directory:
            if n == name:
                return key
        raise KeyError(name)

    # --- the port interface (same as the C helper's wrapper) ------------------------------------

    def select(self, key: int) -> None:
        self.outw(SELECTOR, key)

    def read(self, n: int) -> bytes:
        return self.insb(DATA, n)

    def close(self) -> None:
        self.closed = True

    # --- raw port operations --------------------------------------------------------------------

    def outb(self, port: int, value: int) -> None:
        self._write(port, 1, value)

    def outw(self, port: int, value: int) -> None:
        self._write(port, 2, value)

    def outl(self, port: int, value: int) -> None:
        self._write(port, 4, value)

    def inb(self, port: int) -> int:
        return self._read_port(port, 1)

    def inw(self, port: int) -> int:
        return self._read_port(port, 2)

    def inl(self, port: int) -> int:
        return self._read_port(port, 4)

    def insb(self, port: int, n: int) -> bytes:
        """`n` byte reads of one port (rep insb)."""
        self._common(port)
        self._log_reads(port, n)
        if self.profile == "absent":
            return b"\xff" * n
        if port >= DMA_HI:
            self._dma(port)
            return b"\xff" * n
        if port != DATA:
            self._reject(True, "read of the selector (it is write-only)")
            return bytes(n)
        return self._data(n)

    # --- internals ------------------------------------------------------------------------------

    def _fail(self, msg: str) -> None:
        raise ModelViolation(f"fw_cfg model ({self.profile}): {msg}")

    def _reject(self, condition: bool, msg: str) -> None:
        if condition and self.strict:
            self._fail(f"{msg} (the device rejects this access)")

    def _common(self, port: int) -> None:
        if self.crashed:
            self._fail(f"access after the VMM crashed ({self.crashed})")
        if self.closed:
            self._fail("access after close()")
        if not PORT_FIRST <= port <= PORT_LAST:
            self._fail(f"access to port {port:#x}, which is not fw_cfg's")

    def _log_reads(self, port: int, n: int) -> None:
        last = self.log[-1] if self.log else None
        if last is not None and last.op == "in" and last.port == port and last.width == 1:
            self.log[-1] = Access("in", port, 1, None, last.count + n)
        else:
            self.log.append(Access("in", port, 1, None, n))

    def _write(self, port: int, width: int, value: int) -> None:
        self._common(port)
        self.log.append(Access("out", port, width, value))
        if self.profile == "absent":
            return
        if port >= DMA_HI:
            self._dma(port)
        elif port == SELECTOR and width == 2:
            self._select(value & 0xFFFF)
        elif port == SELECTOR:
            self._reject(True, f"{width}-byte write to the selector (only a 16-bit write selects)")
        else:
            self._reject(True, f"{width}-byte write to the data port (it is read-only)")

    def _read_port(self, port: int, width: int) -> int:
        if width == 1:
            return self.insb(port, 1)[0]
        self._common(port)
        self.log.append(Access("in", port, width))
        ones = (1 << (8 * width)) - 1
        if self.profile == "absent":
            return ones
        if port >= DMA_HI:
            self._dma(port)
            return ones
        if port != DATA:
            self._reject(True, "read of the selector (it is write-only)")
            return 0
        if self.profile != "cloud-hypervisor":
            # QEMU's x86 data port accepts 1-byte accesses only
            self._reject(True, f"{width}-byte read of the data port")
            return ones
        return int.from_bytes(self._data(width), "little")

    def _dma(self, port: int) -> None:
        if self.profile == "qemu":
            self._fail(f"DMA register {port:#x} used: DMA is not modelled (and not opted into)")
        elif self.profile == "cloud-hypervisor":
            self.crashed = f"DMA register {port:#x} is unimplemented!() in Cloud Hypervisor"
            self._fail(self.crashed)
        else:
            self._reject(True, f"DMA register {port:#x} on a device without DMA")

    def _select(self, key: int) -> None:
        self.offset = 0
        if self.profile == "cloud-hypervisor":
            self.selected = key
            if key not in self.items:
                self._reject(True, f"select of key {key:#x}, which does not exist")
            return
        index = key & ENTRY_MASK
        if index >= FIRST_FILE_KEY + self.slots:
            self.selected = None
            self._reject(True, f"select of key {key:#x}: beyond the last slot")
            return
        self.selected = key & ~WRITE_CHANNEL
        if self.selected not in self.items:
            self._reject(True, f"select of key {key:#x}, which holds no item")

    def _data(self, n: int) -> bytes:
        """`n` bytes from the current item, by the profile's rules for running past the end."""
        item = self.items.get(self.selected) if self.selected is not None else None
        if item is None:
            if self.profile == "cloud-hypervisor" and self.selected is not None:
                self._reject(True, f"read of key {self.selected:#x}, which does not exist")
            else:
                self._reject(True, "read with no valid item selected")
            return bytes(n)
        take = max(0, min(n, len(item) - self.offset))
        data = item[self.offset : self.offset + take]
        self.offset += take
        if take < n:
            msg = (
                f"read past the end of key {self.selected:#x} "
                f"(size {len(item)}, {n - take} byte(s) beyond)"
            )
            if self.profile == "cloud-hypervisor":
                self.crashed = msg + ": Cloud Hypervisor panics"
                self._fail(self.crashed)
            self._reject(True, msg)
            data += bytes(n - take)  # QEMU: zeros, the offset stays at the end
        return data

    # --- what tests look at ---------------------------------------------------------------------

    def selects(self) -> list[int]:
        """The keys written to the selector with 16-bit writes, in order."""
        return [
            a.value
            for a in self.log
            if a.op == "out" and a.port == SELECTOR and a.width == 2 and a.value is not None
        ]

    def bytes_read(self) -> int:
        return sum(a.count * a.width for a in self.log if a.op == "in")


# --- the guest's kernel side, for the session layer (open_raw_source) ---------------------------

IOPORTS_UNCLAIMED = """\
0000-0cf7 : PCI Bus 0000:00
  0000-001f : dma1
  0020-0021 : pic1
  0060-0060 : keyboard
  0064-0064 : keyboard
  0070-0077 : rtc0
  0510-051b : QEMU0002:00
0cf8-0cff : PCI conf1
0d00-ffff : PCI Bus 0000:00
"""
IOPORTS_CLAIMED = IOPORTS_UNCLAIMED.replace(
    "  0510-051b : QEMU0002:00\n", "  0510-051b : QEMU0002:00\n    0510-051b : fw_cfg_io\n"
)


class FakeKernel:
    """ROOT/proc/ioports and ROOT/sys/bus/platform/drivers/fw_cfg as a QEMU guest's kernel shows
    them, with a `write` that acts like the kernel on `bind`/`unbind` and records every write."""

    DEVICE = "QEMU0002:00"

    def __init__(self, root: Path, *, acpi: bool = True, driver_bound: bool = False) -> None:
        self.root = root
        self.events: list[tuple[str, str]] = []
        self.fail_bind = False
        self.fail_unbind = False
        self.release_on_unbind = True
        self.driver = root / "sys/bus/platform/drivers/fw_cfg"
        self.device_dir = root / "sys/devices/pci0000:00" / self.DEVICE
        self.device_dir.mkdir(parents=True, exist_ok=True)
        if acpi:
            (root / "sys/bus/acpi/devices").mkdir(parents=True, exist_ok=True)
            link = root / "sys/bus/acpi/devices" / self.DEVICE
            if not link.exists():
                link.symlink_to(self.device_dir)
        self.driver.mkdir(parents=True, exist_ok=True)
        for name in ("bind", "unbind", "uevent"):
            (self.driver / name).write_text("")
        (root / "proc").mkdir(parents=True, exist_ok=True)
        self._set_bound(driver_bound)

    @property
    def bound(self) -> bool:
        return (self.driver / self.DEVICE).is_symlink()

    def _set_bound(self, bound: bool) -> None:
        link = self.driver / self.DEVICE
        if bound and not link.is_symlink():
            link.symlink_to(self.device_dir)
        elif not bound and link.is_symlink():
            link.unlink()
        (self.root / "proc/ioports").write_text(IOPORTS_CLAIMED if bound else IOPORTS_UNCLAIMED)

    def write(self, path: Path, value: str) -> None:
        """The `sysfs_write` hook: what writing VALUE to PATH does in the kernel."""
        self.events.append((path.name, value))
        if path.parent != self.driver or value != self.DEVICE:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        if path.name == "unbind":
            if self.fail_unbind:
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            if not self.bound:
                raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
            if self.release_on_unbind:
                self._set_bound(False)
        elif path.name == "bind":
            if self.fail_bind:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            if self.bound:
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            self._set_bound(True)
        else:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    def load_driver(self) -> None:
        """udev loads qemu_fw_cfg behind the reader's back."""
        self._set_bound(True)
