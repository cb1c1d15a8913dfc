"""Reading fw_cfg straight from the device, for guests without the kernel's sysfs tree.

Two layers:

* The protocol (`probe`, `read_directory`, `read_item`, `RawSource`) is pure Python over a tiny
  port interface, `Ports`: `select(key)` is one 16-bit write of the key to the selector and
  `read(n)` is `n` sequential byte reads of the data port. The compiled helper `_portio` drives the
  real x86 ports; the test suite's device model implements the same interface.
* The session (`open_raw_source`) decides whether the device may be touched at all: the ACPI
  device QEMU0002 (or a `qemu,fw-cfg-mmio` device-tree node) must exist under ROOT, the kernel
  driver must not hold the device (or is unbound for the duration and rebound on every path), and
  only with ROOT = / are the real ports opened.

The traps this guards against (see the project's fw_cfg reference): an absent device reads 0xFF,
so the signature comes first; Cloud Hypervisor's device panics the VMM on a read past the end of an
item, so nothing is ever read beyond a size the device gave; the directory is big-endian and the
feature bitmap little-endian; a corrupt directory (huge count, name without NUL, key out of range,
duplicate names) is refused instead of trusted; reads are one select and one sequential run, so
they cost time linear in the item's size (the kernel driver's reads are quadratic).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import platform
import struct
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Protocol

from ..errors import NoDeviceError, SourceError
from .base import EntryInfo

_log = logging.getLogger(__name__)

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

ACPI_HID = "QEMU0002"
DT_COMPATIBLE = b"qemu,fw-cfg-mmio"
IOPORTS_CLAIM = "fw_cfg_io"
IOMEM_CLAIM = "fw_cfg_mem"
DRIVER_DIR = "sys/bus/platform/drivers/fw_cfg"
LOCK_FILE = "run/fwcfg-agent-raw.lock"

X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i486", "i586", "i686", "x86"})

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
SysfsWriter = Callable[[Path, str], None]


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


class RawSource:
    """`Source` over the device's ports. The directory is read once, when the source is made.

    `release` runs once, on `close()` (or when the object is collected or the interpreter exits,
    if nobody closed it); `guard` runs before and after every device access and raises if the
    device may no longer be ours (the kernel driver bound to it meanwhile).
    """

    kind = "raw"

    def __init__(
        self,
        ports: Ports,
        *,
        max_entry_size: int,
        max_dir_entries: int = DEFAULT_MAX_DIR_ENTRIES,
        release: Callable[[], None] | None = None,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self._ports = ports
        self._guard = guard
        self._closed = False
        self.max_entry_size = max_entry_size
        self._finalizer = weakref.finalize(self, release or ports.close)
        try:
            self._check()
            self.features = probe(ports)
            self._entries = read_directory(ports, max_entries=max_dir_entries)
            self._check()
        except BaseException as e:
            self._close_after(e)
            raise
        self._by_key = {e.key: e for e in self._entries}

    @property
    def dma(self) -> bool:
        """The device offers DMA (bit 1 of the feature bitmap). The reader does not use it."""
        return bool(self.features & FEATURE_DMA)

    def _check(self) -> None:
        if self._guard is not None:
            self._guard()

    def entries(self) -> list[EntryInfo]:
        return list(self._entries)

    def read(self, entry: EntryInfo) -> bytes:
        if self._closed:
            raise SourceError(f"{entry.name}: the raw fw_cfg source is closed")
        known = self._by_key.get(entry.key)
        if known != entry:
            # Only sizes the device itself listed are ever read: a made-up size could run past the
            # end of the item.
            raise SourceError(
                f"{entry.name}: not in the device's directory as key {entry.key:#x}, "
                f"size {entry.size}"
            )
        if entry.size > self.max_entry_size:
            raise SourceError(
                f"{entry.name}: {entry.size} bytes is more than the limit of "
                f"{self.max_entry_size} bytes"
            )
        self._check()
        data = read_item(self._ports, entry.key, entry.size)
        self._check()
        return data

    def close(self) -> None:
        self._closed = True
        self._finalizer()

    def _close_after(self, primary: BaseException) -> None:
        _close_during(self.close, primary)

    def __enter__(self) -> RawSource:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.close()
        else:
            self._close_after(exc)


# --- where the device may be touched ------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """Where fw_cfg was found: an ACPI device (`QEMU0002:00`) or a device-tree node."""

    kind: str  # "acpi" or "dt"
    path: Path


def _acpi_present(dev: Path) -> bool:
    # `status` is the _STA value when the firmware provides one; bit 0 means present.
    try:
        text = (dev / "status").read_text().strip()
    except OSError:
        return True
    return not text.isdigit() or bool(int(text) & 1)


def find_device(root: Path) -> Device:
    """The fw_cfg device the firmware describes under ROOT, or NoDeviceError."""
    acpi = root / "sys/bus/acpi/devices"
    with contextlib.suppress(OSError):
        for dev in sorted(acpi.glob(f"{ACPI_HID}:*")):
            if _acpi_present(dev):
                return Device("acpi", dev)
    for base in ("proc/device-tree", "sys/firmware/devicetree/base"):
        with contextlib.suppress(OSError):
            for node in sorted((root / base).glob("fw-cfg@*")):
                try:
                    compatible = (node / "compatible").read_bytes()
                except OSError:
                    continue
                if DT_COMPATIBLE in compatible.split(b"\0"):
                    return Device("dt", node)
    raise NoDeviceError(
        f"no fw_cfg device: neither ACPI {ACPI_HID} under {acpi} nor a {DT_COMPATIBLE.decode()} "
        "device-tree node"
    )


def _resource_lines(path: Path) -> list[tuple[int, int, str]]:
    """(start, end, name) of every region in /proc/ioports or /proc/iomem (nested ones too)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror}") from e
    regions = []
    for line in text.splitlines():
        span, sep, name = line.strip().partition(" : ")
        start, dash, end = span.partition("-")
        if not sep or not dash:
            continue
        try:
            regions.append((int(start, 16), int(end, 16), name.strip()))
        except ValueError:
            continue
    return regions


def driver_claims(root: Path) -> bool:
    """The kernel's fw_cfg driver holds the device (its region is in /proc/ioports or iomem)."""
    return any(n == IOPORTS_CLAIM for _, _, n in _resource_lines(root / "proc/ioports")) or any(
        n == IOMEM_CLAIM for _, _, n in _resource_lines(root / "proc/iomem")
    )


def foreign_port_owner(root: Path) -> str | None:
    """A region of /proc/ioports that claims ports 0x510..0x51b for something other than fw_cfg.

    Allowed: the fw_cfg driver's own region, the ACPI device's (named after it, QEMU0002:00) and
    wide windows such as a PCI bus's. Anything else (a real device at 0x510 on bare metal) means
    the ports are not fw_cfg's.
    """
    last = SELECTOR_PORT + PORT_COUNT - 1
    for start, end, name in _resource_lines(root / "proc/ioports"):
        if start == end == 0:
            continue  # addresses hidden (not root): nothing to compare
        if start > last or end < SELECTOR_PORT:
            continue
        if end - start >= 0x100 or name == IOPORTS_CLAIM or name.startswith(ACPI_HID):
            continue
        return f"{start:04x}-{end:04x} : {name}"
    return None


def _write_sysfs(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _close_during(close: Callable[[], None], primary: BaseException) -> None:
    """Close while `primary` propagates; a failure to close must not hide it."""
    try:
        close()
    except SourceError as e:
        _log.error("%s", e)
        if isinstance(primary, SourceError):
            raise SourceError(f"{primary}; and then: {e}") from primary


def _reload_module() -> bool:
    """modprobe -r, then modprobe qemu_fw_cfg: the module's init probes the device again."""
    import subprocess

    try:
        for argv in (["modprobe", "-r", "qemu_fw_cfg"], ["modprobe", "qemu_fw_cfg"]):
            if subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode:
                return False
    except (OSError, subprocess.TimeoutExpired):
        return False
    return True


class DriverBinding:
    """Takes the device away from the kernel driver and gives it back.

    `unbind()` writes each device bound to the platform driver `fw_cfg` to its `unbind` file and
    checks that the driver's region left /proc/ioports; `rebind()` writes them to `bind`.
    """

    def __init__(self, root: Path, write: SysfsWriter = _write_sysfs,
                 reload: Callable[[], bool] | None = None) -> None:
        self.root = root
        self.dir = root / DRIVER_DIR
        self._write = write
        # Linux 6.1's qemu_fw_cfg refuses a second probe after a remove (EBUSY: its remove
        # leaves the device pointer set); reloading the module resets that. Only on the real
        # system, never on a test root.
        self._reload = reload if reload is not None else (
            _reload_module if _is_real_root(root) else None)
        self.unbound: list[str] = []

    def bound_devices(self) -> list[str]:
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise SourceError(f"cannot list {self.dir}: {e.strerror}") from e
        return [n for n in names if n != "module" and (self.dir / n).is_symlink()]

    def unbind(self) -> None:
        devices = self.bound_devices()
        if not devices:
            raise SourceError(
                f"the kernel's fw_cfg driver holds the device ({IOPORTS_CLAIM} in /proc/ioports) "
                f"but no device is bound under {self.dir}: cannot take it over"
            )
        for dev in devices:
            try:
                self._write(self.dir / "unbind", dev)
            except OSError as e:
                raise SourceError(
                    f"cannot unbind {dev} from the kernel's fw_cfg driver: {e.strerror}"
                ) from e
            self.unbound.append(dev)
        if driver_claims(self.root):
            raise SourceError(
                f"the kernel's fw_cfg driver still holds the device after unbinding {devices}"
            )

    def rebind(self) -> None:
        failed = []
        while self.unbound:
            dev = self.unbound.pop()
            try:
                self._write(self.dir / "bind", dev)
            except OSError as e:
                failed.append(f"{dev}: {e.strerror}")
        if failed and self._reload is not None and self._reload() and self.bound_devices():
            return  # the reloaded module probed the device afresh
        if failed:
            raise SourceError(f"could not rebind the kernel's fw_cfg driver ({'; '.join(failed)})")


@contextlib.contextmanager
def _device_lock(root: Path, timeout: float) -> Iterator[None]:
    """One raw reader at a time: the selector and offset are global to the machine."""
    path = root / LOCK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f: IO[bytes] = open(path, "ab")  # noqa: SIM115 - held across the yield below
    except OSError as e:
        raise SourceError(f"cannot open the raw reader's lock {path}: {e.strerror}") from e
    with f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise SourceError(f"cannot lock {path}: {e.strerror}") from e
                if time.monotonic() >= deadline:
                    raise SourceError(
                        f"another process is reading fw_cfg through the ports ({path} is locked)"
                    ) from e
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --- the real ports -----------------------------------------------------------------------------


def _lockdown(root: Path) -> str | None:
    try:
        text = (root / "sys/kernel/security/lockdown").read_text()
    except OSError:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word.strip("[]")
    return None


def ioperm_error_message(err: OSError, root: Path = Path("/")) -> str:
    """Why the kernel refused ioperm(), in words an operator can act on."""
    reason = os.strerror(err.errno) if err.errno else str(err)
    msg = f"the kernel refused access to I/O ports 0x510-0x51b (ioperm: {reason}): "
    if err.errno == errno.ENOSYS:
        return msg + (
            "this kernel has no I/O port permissions (built without CONFIG_X86_IOPL_IOPERM); "
            "use the sysfs source (qemu_fw_cfg module)"
        )
    msg += "raw fw_cfg reads need root with CAP_SYS_RAWIO and a kernel that is not locked down"
    mode = _lockdown(root)
    if mode and mode != "none":
        msg += f"; kernel lockdown is '{mode}' here, so use the sysfs source (qemu_fw_cfg module)"
    return msg


class PortIO:
    """The real x86 ports through the compiled helper `_portio` (ioperm, outw, insb)."""

    def __init__(self) -> None:
        try:
            from . import _portio
        except ImportError as e:
            raise SourceError(
                "raw fw_cfg reads need the compiled helper fwcfg_agent.sources._portio, which "
                f"this installation lacks (it is built on x86 Linux with a C compiler): {e}"
            ) from e
        try:
            _portio.acquire()
        except OSError as e:
            raise SourceError(ioperm_error_message(e)) from e
        self._mod = _portio

    def select(self, key: int) -> None:
        self._mod.select(key)

    def read(self, n: int) -> bytes:
        data = self._mod.read(n)
        assert isinstance(data, bytes)
        return data

    def close(self) -> None:
        self._mod.release()


def _is_real_root(root: Path) -> bool:
    try:
        return root.resolve() == Path("/").resolve()
    except OSError:
        return False


def open_raw_source(
    root: Path = Path("/"),
    *,
    max_entry_size: int,
    max_dir_entries: int = DEFAULT_MAX_DIR_ENTRIES,
    unbind_driver: bool = True,
    port_opener: PortOpener | None = None,
    machine: str | None = None,
    sysfs_write: SysfsWriter | None = None,
    lock_timeout: float = 10.0,
) -> RawSource:
    """Open fw_cfg through its I/O ports, if and only if it is safe.

    Raises NoDeviceError when there is no fw_cfg device (no QEMU0002 / DT node, or the signature
    reads as all 0xff) and SourceError for everything else. The result must be closed (or used
    as a context manager): closing drops the port permissions and rebinds the kernel driver if it
    was unbound. `port_opener` and `sysfs_write` exist for tests; without a `port_opener` the real
    ports are opened only when ROOT is /.
    """
    device = find_device(root)
    arch = machine if machine is not None else platform.machine()
    if device.kind == "dt" or arch.lower() not in X86_MACHINES:
        raise SourceError(
            f"fw_cfg is memory-mapped on this machine ({arch}, {device.path}); the raw reader "
            "supports x86 I/O ports only: use the sysfs source"
        )
    owner = foreign_port_owner(root)
    if owner is not None:
        raise SourceError(f"I/O ports 0x510-0x51b belong to something else here ({owner})")
    if port_opener is None:
        if not _is_real_root(root):
            raise SourceError(f"refusing to open the real I/O ports for the test root {root}")
        port_opener = PortIO

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(_device_lock(root, lock_timeout))
        ports = port_opener()
        stack.callback(ports.close)
        if driver_claims(root):
            if not unbind_driver:
                raise SourceError(
                    f"the kernel's fw_cfg driver holds the device ({IOPORTS_CLAIM} in "
                    "/proc/ioports): read through sysfs, or allow unbinding it"
                )
            binding = DriverBinding(root, sysfs_write or _write_sysfs)
            stack.callback(binding.rebind)  # registered first: rebinds even a partial unbind
            binding.unbind()

        def guard() -> None:
            if driver_claims(root):
                raise SourceError(
                    "the kernel's fw_cfg driver took the device while the raw reader was using it: "
                    "the data read may be corrupt"
                )

        return RawSource(
            ports,
            max_entry_size=max_entry_size,
            max_dir_entries=max_dir_entries,
            release=stack.pop_all().close,
            guard=guard,
        )
    except BaseException as primary:
        _close_during(stack.close, primary)
        raise
