"""The real x86 fw_cfg ports, through the compiled helper `_portio` (ioperm, outw, insb).

Only the raw session (raw.open_raw_source) opens them, and only after it has made sure the
device is there, the ports are fw_cfg's and the kernel's driver has let go of them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import SourceError


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
