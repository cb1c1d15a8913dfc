"""The fw_cfg device and the kernel's modules: whether there is a device, and running modprobe.

The one definition of both, for the boot fast path and the full path alike. The fast path
imports this module, so it uses only what Python has loaded at start-up (os, and the builtin
time module): no glob, re, subprocess or typing at run time.

Presence (facts: the project's fw_cfg reference). There is a fw_cfg device when the kernel's
tree sys/firmware/qemu_fw_cfg exists, or the firmware describes one: an ACPI device with the
hardware ID QEMU0002 (x86, and ARM with ACPI) whose _STA says present, or a device-tree node
fw-cfg@<address> whose status property allows it. Without any of these the kernel's driver
has nothing to bind to, and nothing may be read.
"""

import os
import time

# typing and collections.abc are not loaded at start-up; mypy reads them, Python does not.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Optional

FWCFG_SYSFS = "sys/firmware/qemu_fw_cfg"
ACPI_DEVICES = "sys/bus/acpi/devices"
ACPI_HID = "QEMU0002"
DT_BASES = ("proc/device-tree", "sys/firmware/devicetree/base")
DT_NODE = "fw-cfg@"
STA_PRESENT = 1 << 0  # _STA bit 0: the device is present
DT_AVAILABLE = (b"okay", b"ok")  # a node's status property; no property means available


def _read(path: str) -> "Optional[bytes]":
    try:
        with open(path, "rb", buffering=0) as f:
            return f.read(4096)
    except OSError:
        return None


def _children(path: str, prefix: str) -> "list[str]":
    """The entries of directory PATH whose names start with PREFIX, sorted, as paths."""
    try:
        names = os.listdir(path)
    except OSError:
        return []
    return [os.path.join(path, n) for n in sorted(names) if n.startswith(prefix)]


def acpi_present(dev: str) -> bool:
    """Whether the ACPI device directory DEV says present. Its `status` file exists only when
    the firmware gives the device a _STA method, and holds the value in decimal; without _STA
    ACPI assumes the device present, and a value that cannot be read or parsed is taken as
    present too (the device is described: the caller's later checks decide)."""
    text = _read(os.path.join(dev, "status"))
    if text is None:
        return True
    text = text.strip()
    if not text.isdigit():
        return True
    return bool(int(text) & STA_PRESENT)


def dt_available(node: str) -> bool:
    """Whether the device-tree node NODE is enabled: no `status` property, or "okay"/"ok"."""
    status = _read(os.path.join(node, "status"))
    return status is None or status.rstrip(b"\0\n") in DT_AVAILABLE


def acpi_devices(root: str) -> "list[str]":
    """The present ACPI QEMU0002 devices under ROOT (paths, sorted)."""
    return [d for d in _children(os.path.join(root, ACPI_DEVICES), ACPI_HID + ":")
            if acpi_present(d)]


def dt_nodes(root: str) -> "list[str]":
    """The enabled fw-cfg@ device-tree nodes under ROOT (paths: /proc/device-tree's first)."""
    return [n for base in DT_BASES for n in _children(os.path.join(root, base), DT_NODE)
            if dt_available(n)]


def device_present(root: str) -> bool:
    """Whether ROOT ("/": the running system) has a fw_cfg device: the kernel's sysfs tree, a
    present ACPI QEMU0002 device or an enabled fw-cfg@ device-tree node."""
    return (os.path.isdir(os.path.join(root, FWCFG_SYSFS)) or bool(acpi_devices(root))
            or bool(dt_nodes(root)))


# --- modprobe ---------------------------------------------------------------------------------

# Where distributions put modprobe, in the order tried; a test points this at a model of it.
MODPROBE = ("/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe", "/bin/modprobe")
MODPROBE_ENV = {"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"}
# modprobe's output goes nowhere: the caller reports its exit status.
_QUIET = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, flags, 0)
          for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY))]

# modprobes that outlived a waiting call's timeout; reap() collects them later.
_stragglers: "list[int]" = []


def _argv(path: str, names: "Sequence[str]", *, by_alias: bool, remove: bool) -> "list[str]":
    """Quiet, every name a module or alias (-a); -b (honour the blacklists, as udev does) for
    modaliases; -r to unload."""
    return [path, "-q", *(["-b"] if by_alias else []), *(["-r"] if remove else []), "-a",
            *names]


def modprobe(names: "Iterable[str]", *, wait: bool, timeout: float = 10.0,
             by_alias: bool = False, remove: bool = False,
             paths: "Optional[Sequence[str]]" = None) -> "Optional[int]":
    """Run modprobe for NAMES (module names, or modaliases with by_alias=True).

    The first executable of PATHS (default: MODPROBE, read at call time) is started with
    os.posix_spawn, its output sent to /dev/null. wait=False: returns its pid, for the caller
    to pass to reap() later. wait=True: waits at most TIMEOUT seconds and returns its exit
    status (negative: the signal that ended it). None when nothing ran (no modprobe, no usable
    name, the spawn failed) or, with wait=True, when modprobe is still running at the timeout
    (a later reap() collects it). A name that is empty or would read as an option is left out.
    """
    usable = [n for n in names if n and not n.startswith("-")]
    path = next((p for p in (MODPROBE if paths is None else paths)
                 if os.path.isfile(p) and os.access(p, os.X_OK)), None)
    if path is None or not usable:
        return None
    reap(())
    try:
        pid = os.posix_spawn(path, _argv(path, usable, by_alias=by_alias, remove=remove),
                             MODPROBE_ENV, file_actions=_QUIET)
    except OSError:
        return None
    if not wait:
        return pid
    status = _wait(pid, timeout)
    if status is None:
        _stragglers.append(pid)
    return status


def _wait(pid: int, timeout: float) -> "Optional[int]":
    """The exit status of child PID, polled until TIMEOUT seconds have passed."""
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = 0.001
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except OSError:
            return None  # not our child (any more): its status is lost
        if done:
            return os.waitstatus_to_exitcode(status)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)


def _running(pids: "Iterable[int]") -> "list[int]":
    running = []
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except OSError:
            continue  # not our child, or collected already
        if not done:
            running.append(pid)
    return running


def reap(pids: "Iterable[int]") -> "list[int]":
    """Collect those of the children PIDS that have ended, without waiting; returns the ones
    still running. Also collects the modprobes an earlier wait=True call left at its timeout."""
    running = _running(pids)
    _stragglers[:] = _running(_stragglers)
    return running
