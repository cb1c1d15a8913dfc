"""Sharing the fw_cfg device with the kernel, for the raw reader: where the firmware describes
the device, whether the kernel's driver holds it (its region in /proc/ioports or /proc/iomem) or
something else owns its ports, and taking the device from the driver and giving it back.

Presence is fwcfg_agent.device's: the raw reader adds only what touching the ports needs (a
device-tree node must also be `qemu,fw-cfg-mmio`-compatible).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import device
from ..errors import NoDeviceError, SourceError
from .protocol import PORT_COUNT, SELECTOR_PORT

ACPI_HID = device.ACPI_HID
DT_COMPATIBLE = b"qemu,fw-cfg-mmio"
IOPORTS_CLAIM = "fw_cfg_io"
IOMEM_CLAIM = "fw_cfg_mem"
DRIVER_DIR = "sys/bus/platform/drivers/fw_cfg"

SysfsWriter = Callable[[Path, str], None]


@dataclass(frozen=True)
class Device:
    """Where fw_cfg was found: an ACPI device (`QEMU0002:00`) or a device-tree node."""

    kind: str  # "acpi" or "dt"
    path: Path


def find_device(root: Path) -> Device:
    """The fw_cfg device the firmware describes under ROOT, or NoDeviceError."""
    for dev in device.acpi_devices(str(root)):
        return Device("acpi", Path(dev))
    for node in device.dt_nodes(str(root)):
        try:
            compatible = (Path(node) / "compatible").read_bytes()
        except OSError:
            continue
        if DT_COMPATIBLE in compatible.split(b"\0"):
            return Device("dt", Path(node))
    raise NoDeviceError(
        f"no fw_cfg device: neither ACPI {ACPI_HID} under {root / device.ACPI_DEVICES} nor a "
        f"{DT_COMPATIBLE.decode()} device-tree node"
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


def is_real_root(root: Path) -> bool:
    """ROOT is the running system (only there may the real device be touched)."""
    try:
        return root.resolve() == Path("/").resolve()
    except OSError:
        return False


def _reload_module() -> bool:
    """modprobe -r, then modprobe qemu_fw_cfg: the module's init probes the device again."""
    return all(device.modprobe(["qemu_fw_cfg"], wait=True, timeout=10, remove=remove) == 0
               for remove in (True, False))


class DriverBinding:
    """Takes the device away from the kernel driver and gives it back.

    `unbind()` writes each device bound to the platform driver `fw_cfg` to its `unbind` file and
    checks that the driver's region left /proc/ioports; `rebind()` writes them to `bind`.
    """

    def __init__(self, root: Path, write: SysfsWriter | None = None,
                 reload: Callable[[], bool] | None = None) -> None:
        self.root = root
        self.dir = root / DRIVER_DIR
        self._write = write or _write_sysfs
        # Linux 6.1's qemu_fw_cfg refuses a second probe after a remove (EBUSY: its remove
        # leaves the device pointer set); reloading the module resets that. Only on the real
        # system, never on a test root.
        self._reload = reload if reload is not None else (
            _reload_module if is_real_root(root) else None)
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

