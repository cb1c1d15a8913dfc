"""Waiting for udev on the running system: NICs named before the agent reads them."""

from __future__ import annotations

import time

from .log import Log


def wait_for_netdevs(timeout: float, log: Log) -> None:
    """Wait (bounded) until udev has processed every NIC, so their names are final."""
    try:
        import pyudev

        context = pyudev.Context()
        deadline = time.monotonic() + timeout
        while True:
            pending = [d.sys_name for d in context.list_devices(subsystem="net")
                       if not d.is_initialized and d.sys_name != "lo"]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if pending:
            log.warning(f"udev has not processed {', '.join(pending)} after {timeout:g} s; "
                        "using the names the kernel shows now")
    except Exception as e:  # no udev database (containers, early initrd): use what sysfs shows
        log.debug(f"cannot ask udev about NICs: {e}")
