"""Choosing a source: the sysfs tree first, the raw device reader where sysfs is missing."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .. import device
from ..errors import NoDeviceError, SourceError
from ..log import Log
from ..paths import Root
from ..rootfs import Reader
from .base import Entry, EntryInfo, Source
from .sysfs import SysfsSource

__all__ = ["Entry", "EntryInfo", "Source", "device_present", "open_source"]


def device_present(root: Root) -> bool:
    """Is there a fw_cfg device at all (fwcfg_agent.device.device_present, for a Root)."""
    return device.device_present(root.path)


def _load_module_and_wait(root: Root, timeout: float, log: Log) -> None:
    """modprobe qemu_fw_cfg, then wait for the sysfs tree (udev events): TIMEOUT in all."""
    tree = root.fwcfg_sysfs
    deadline = time.monotonic() + timeout
    monitor = None
    try:
        import pyudev

        monitor = pyudev.Monitor.from_netlink(pyudev.Context())
        monitor.filter_by("platform")
        monitor.start()
    except Exception as e:  # no udev in an early initrd, no netlink permission: poll instead
        log.debug(f"udev monitor unavailable ({e}); polling for {tree}")
        monitor = None
    status = device.modprobe(["qemu_fw_cfg"], wait=True, timeout=timeout or 1)
    if status is None:
        log.debug("modprobe qemu_fw_cfg: no modprobe, or it did not finish in time")
        return
    if status != 0:
        # blacklisted (module_blacklist=), missing, or refused: nothing will appear
        log.info("modprobe qemu_fw_cfg failed; no fw_cfg sysfs tree")
        return
    while not os.path.isdir(tree):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if monitor is not None:
            monitor.poll(timeout=min(left, 0.5))
        else:
            time.sleep(min(left, 0.05))


@contextmanager
def open_source(root: Root, kind: str, *, max_entry_size: int, device_wait: float,
                log: Log) -> Iterator[Source]:
    """Yield a source; NoDeviceError when there is no fw_cfg device at all."""
    tree = root.fwcfg_sysfs
    if kind in ("auto", "sysfs") and not os.path.isdir(tree):
        if not device_present(root):
            raise NoDeviceError("no fw_cfg device (no ACPI QEMU0002 or DT fw-cfg node)")
        if root.is_host:
            _load_module_and_wait(root, device_wait, log)
    if kind in ("auto", "sysfs") and os.path.isdir(tree):
        source: Source = SysfsSource(Reader(root.path))
    elif kind == "sysfs":
        raise SourceError(f"{tree} does not exist (is the qemu_fw_cfg module available?)")
    else:
        source = _open_raw(root, max_entry_size)
    try:
        yield source
    finally:
        source.close()


def _open_raw(root: Root, max_entry_size: int) -> Source:
    try:
        from . import raw
    except ImportError as e:
        raise SourceError(f"the raw fw_cfg reader is not available here: {e}") from None
    opener = getattr(raw, "open_raw_source", None)
    if opener is None:
        raise SourceError("the raw fw_cfg reader is not available in this build")
    from pathlib import Path  # the raw reader's modules work with Path (the sysfs path does not)

    source: Source = opener(Path(root.path), max_entry_size=max_entry_size)
    return source
