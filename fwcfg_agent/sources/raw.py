"""Reading fw_cfg straight from the device, for guests without the kernel's sysfs tree.

`RawSource` is the `Source` over the device's ports: the wire protocol (protocol.py) behind the
checks that keep every read inside what the device listed. `open_raw_source` is the session: it
decides whether the device may be touched at all -- the firmware must describe it under ROOT
(kernel.find_device: the ACPI device QEMU0002, or a `qemu,fw-cfg-mmio` device-tree node), its
ports must not belong to anything else, the kernel driver must not hold it (or is unbound for
the duration and rebound on every path, kernel.DriverBinding), one raw reader at a time -- and
only with ROOT = / are the real ports (ports.PortIO) opened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

from ..errors import AgentError, SourceError
from ..runinfo import flock, open_lock_file
from .base import EntryInfo
from .kernel import (
    DRIVER_DIR,
    IOPORTS_CLAIM,
    DriverBinding,
    SysfsWriter,
    driver_claims,
    find_device,
    foreign_port_owner,
    is_real_root,
)
from .ports import PortIO, ioperm_error_message
from .protocol import (
    DEFAULT_MAX_DIR_ENTRIES,
    FEATURE_DMA,
    PortOpener,
    Ports,
    probe,
    read_directory,
    read_item,
)

# The names other modules and the tests import from here.
__all__ = [
    "DRIVER_DIR", "DriverBinding", "PortIO", "PortOpener", "RawSource", "SysfsWriter",
    "find_device", "ioperm_error_message", "open_raw_source", "probe", "read_directory",
    "read_item",
]

_log = logging.getLogger(__name__)

LOCK_FILE = "run/fwcfg-agent-raw.lock"
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i486", "i586", "i686", "x86"})


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

    def entries(self, wanted: Callable[[str], bool] | None = None) -> list[EntryInfo]:
        return [e for e in self._entries if wanted is None or wanted(e.name)]

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


# --- the session --------------------------------------------------------------------------------


def _close_during(close: Callable[[], None], primary: BaseException) -> None:
    """Close while `primary` propagates; a failure to close must not hide it."""
    try:
        close()
    except SourceError as e:
        _log.error("%s", e)
        if isinstance(primary, SourceError):
            raise SourceError(f"{primary}; and then: {e}") from primary


@contextlib.contextmanager
def _device_lock(root: Path, timeout: float) -> Iterator[None]:
    """One raw reader at a time: the selector and offset are global to the machine."""
    path = root / LOCK_FILE
    try:
        fd = open_lock_file(str(root), LOCK_FILE)
    except AgentError as e:
        raise SourceError(f"cannot open the raw reader's lock: {e}") from e
    try:
        try:
            held = flock(fd, timeout)
        except OSError as e:
            raise SourceError(f"cannot lock {path}: {e.strerror}") from e
        if not held:
            raise SourceError(
                f"another process is reading fw_cfg through the ports ({path} is locked)")
        yield
    finally:
        os.close(fd)  # closing drops the flock


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
        if not is_real_root(root):
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
            binding = DriverBinding(root, sysfs_write)
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
