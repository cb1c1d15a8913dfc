"""The guest's Ethernet NICs: which there are, their drivers, and waiting for them (bounded).

One definition of "an Ethernet NIC" (a /sys/class/net entry of type 1 that sits on a device and
is not wireless) serves the full path's facts, the fast path's comparison and every wait.

Only builtin modules are imported here: the fast path uses this module.
"""

import os
import time

from . import device
from .rootfs import chase, lexists, read_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Optional

NET = "sys/class/net"
NIC_WAIT = 5.0  # seconds; DEVICE_WAIT in agent.conf sets it for the full path
PCI_ETHERNET_CLASS = "0x0200"  # PCI class 02 (network), subclass 00 (Ethernet)
VIRTIO_NET_ID = "0x0001"
ARPHRD_ETHER = b"1"
POLL = 0.02  # seconds between looks at the tree where no link events can be had
RESCAN = 0.1  # ... and where they can: a look at least this often (new driverless hardware)
RTMGRP_LINK = 1  # rtnetlink's multicast group of link changes: a NIC registered, renamed


class Nic:
    __slots__ = ("ifindex", "mac", "name")

    def __init__(self, ifindex: int, name: str, mac: str) -> None:
        self.ifindex = ifindex
        self.name = name
        self.mac = mac


def _leaf(d: str, leaf: str) -> bytes:
    return (read_bytes(os.path.join(d, leaf)) or b"").strip()


def is_ethernet(netdev_dir: str) -> bool:
    """A /sys/class/net entry that is an Ethernet NIC on hardware (not lo, a bridge, a tunnel,
    nor a wireless NIC)."""
    return _leaf(netdev_dir, "type") == ARPHRD_ETHER \
        and lexists(os.path.join(netdev_dir, "device")) \
        and not lexists(os.path.join(netdev_dir, "wireless"))


def read(root: str) -> "list[Nic]":
    """The Ethernet NICs the kernel shows now, in ifindex order."""
    net = chase(root, NET)
    try:
        names = os.listdir(net)
    except OSError:
        return []
    found = []
    for name in names:
        d = os.path.join(net, name)
        if not is_ethernet(d):
            continue
        index = _leaf(d, "ifindex")
        mac = _leaf(d, "address").decode("ascii", "replace").lower()
        found.append(Nic(int(index) if index.isdigit() else 1 << 30, name, mac))
    found.sort(key=lambda n: (n.ifindex, n.name))
    return found


def signature(nics: "Sequence[Nic]", *, with_names: bool) -> bytes:
    """What the rendered files depend on: each NIC's MAC in ifindex order, and its kernel name
    only where a format uses names. Without names, a NIC that udev renames between boots
    (eth0 -> enp0s3) is the same NIC."""
    rows = [n.mac + (" " + n.name if with_names else "") for n in nics]
    return "\n".join(rows).encode("utf-8", "surrogateescape")


def current_signature(root: str, rel: str) -> bytes:
    return signature(read(root), with_names=rel == "names")


def _nic_hardware(root: str, seen: "Optional[dict[str, Optional[bool]]]" = None
                  ) -> "list[tuple[str, bool]]":
    """The Ethernet NIC hardware, whether or not a driver has bound yet: (sysfs device
    directory, whether it is a whole NIC) for every PCI Ethernet controller (virtio-net on PCI
    included) and every virtio-net device. A virtio-net device on PCI is the same NIC as its
    PCI function, so only virtio-net devices on other transports (MMIO) count as NICs.

    `seen` remembers, across the looks of one wait, what each device directory is (None: not
    NIC hardware): a device's class and id do not change while it is there, so a later look
    lists the buses and reads only the devices that are new to it."""
    seen = {} if seen is None else seen
    found: list[tuple[str, bool]] = []
    pci = chase(root, "sys/bus/pci/devices")
    try:
        for dev in os.listdir(pci):
            path = os.path.join(pci, dev)
            if path not in seen:
                cls = read_bytes(os.path.join(path, "class"))
                if cls is None:
                    continue  # (going away, or not readable: looked at again next time)
                seen[path] = True if cls.strip().decode(errors="replace").startswith(
                    PCI_ETHERNET_CLASS) else None
            if seen[path]:
                found.append((path, True))
    except OSError:
        pass
    virtio = chase(root, "sys/bus/virtio/devices")
    try:
        for dev in os.listdir(virtio):
            path = os.path.join(virtio, dev)
            if path not in seen:
                ident = read_bytes(os.path.join(path, "device"))
                if ident is None:
                    continue
                seen[path] = ("/pci" not in os.path.realpath(path)) if ident.strip().decode(
                    errors="replace") == VIRTIO_NET_ID else None
            whole = seen[path]
            if whole is not None:
                found.append((path, whole))
    except OSError:
        pass
    return found


def expected(root: str, seen: "Optional[dict[str, Optional[bool]]]" = None) -> int:
    """How many Ethernet NICs the hardware has, whether or not their driver has bound yet."""
    return sum(1 for _, whole in _nic_hardware(root, seen) if whole)


def driverless_aliases(root: str, seen: "Optional[dict[str, Optional[bool]]]" = None
                       ) -> "list[str]":
    """The modaliases of NIC hardware no driver has bound yet (a virtio-pci function's driver
    is the transport; its virtio-net device shows up, driverless, once that has bound)."""
    aliases = []
    for path, _ in _nic_hardware(root, seen):
        if lexists(os.path.join(path, "driver")):
            continue
        alias = (read_bytes(os.path.join(path, "modalias")) or b"").strip()
        if alias:
            aliases.append(alias.decode(errors="replace"))
    return aliases


def present(root: str) -> int:
    net = chase(root, NET)
    try:
        names = os.listdir(net)
    except OSError:
        return 0
    return sum(1 for n in names if is_ethernet(os.path.join(net, n)))


# The root whose kernel the agent loads NIC drivers into: the running system's. Any other root
# is an image or a test tree (a test points this at its tree, with a model of the kernel).
DRIVER_ROOT = "/"


def link_events() -> "Optional[Any]":
    """A socket that becomes readable when a network link appears or changes (rtnetlink's
    link group), for waiting on the running system's NICs without polling; None where the
    kernel or the sandbox refuses one (the waits then poll). `_socket`: the fast path does not
    load the socket module."""
    try:
        import _socket

        sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, 0)
    except (ImportError, AttributeError, OSError):
        return None
    try:
        sock.bind((0, RTMGRP_LINK))
    except OSError:
        sock.close()
        return None
    return sock


def pause(events: "Optional[Any]", seconds: float) -> None:
    """Wait `seconds`, or less: until a link event arrives on `events` (link_events), whose
    queue is then emptied; with no socket, sleep at most POLL."""
    if events is None:
        time.sleep(min(seconds, POLL))
        return
    try:
        events.settimeout(max(seconds, 0.0))
        events.recv(65536)  # the first event, or the time-out (an OSError)
        events.setblocking(False)
        while True:
            events.recv(65536)  # ... and the rest, until BlockingIOError
    except OSError:
        pass


class Waiter:
    """One run's dealings with the NICs: the drivers it asked for, the modprobes it started,
    how long it waited. Both paths use the same waiter, so a full run after the fast path
    does not load or wait twice."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.requested: set[str] = set()
        self.children: list[int] = []
        self.missing: Optional[int] = None  # NICs still missing after waiting; None: no wait
        self.notes: list[str] = []
        self.seen: dict[str, Optional[bool]] = {}  # the hardware's devices (_nic_hardware)

    @property
    def report(self) -> str:
        return "; ".join(self.notes)

    def load_drivers(self) -> None:
        """Start modprobe, without waiting for it, for NIC hardware that no driver has bound
        yet and that this run has not asked for already. Only on the running system."""
        if self.root != DRIVER_ROOT:
            return
        new = [a for a in driverless_aliases(self.root, self.seen) if a not in self.requested]
        if new:
            self.requested.update(new)
            pid = device.modprobe(new, wait=False, by_alias=True)
            if pid is not None:
                self.children.append(pid)

    def _reap(self) -> None:
        self.children = list(device.reap(self.children))

    def wait_for_nics(self, timeout: float = NIC_WAIT) -> int:
        """Wait (bounded) until every Ethernet NIC the hardware has shows up as a network
        device, loading the drivers of driverless NIC hardware as udev would. The agent starts
        alongside udev's coldplug, usually long before udev gets to the NIC
        drivers. Returns how many NICs are still missing (0 when all are there)."""
        if self.missing is not None:
            return self.missing
        want = expected(self.root, self.seen)
        start = time.monotonic()
        deadline = start + timeout
        # on the running system, woken by the kernel when a NIC registers rather than polling:
        # in a one-CPU guest each look at the tree took CPU from the driver being loaded. The
        # socket (3-4 ms there) is opened once a NIC is found missing, and the tree looked at
        # once more before the first pause: no NIC can register unseen in between.
        events = None
        to_open = self.root == DRIVER_ROOT  # (another root's kernel sends no events of its NICs)
        try:
            while True:
                missing = want - present(self.root)
                now = time.monotonic()
                if missing <= 0 or now >= deadline:
                    waited = now - start
                    if self.requested or waited >= 0.05:
                        self.notes.append(f"waited {waited:.2f} s for {want} NIC(s)" + (
                            f", loading drivers for {' '.join(sorted(self.requested))}"
                            if self.requested else ""))
                    self.missing = max(missing, 0)
                    return self.missing
                self.load_drivers()
                if to_open:
                    to_open = False
                    events = link_events()
                    continue
                pause(events, min(deadline - now, RESCAN))
        finally:
            if events is not None:
                events.close()
            self._reap()

    def wait_for_udev_names(self, timeout: float = NIC_WAIT) -> None:
        """Wait (bounded) until udev has processed every Ethernet NIC (its database entry
        /run/udev/data/n<ifindex> exists), so that their names are final. Only where udev
        runs."""
        data = chase(self.root, "run/udev/data")
        if not os.path.isdir(data) and not lexists(chase(self.root, "run/udev/control")):
            return  # no udev here (a container, an image): nothing will rename the NICs
        net = chase(self.root, NET)
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline:
            try:
                names = os.listdir(net)
            except OSError:
                return
            pending = not os.path.isdir(data)  # udevd runs but has written nothing yet
            for n in names:
                d = os.path.join(net, n)
                if is_ethernet(d) and not os.path.exists(
                        os.path.join(data, "n" + _leaf(d, "ifindex").decode())):
                    pending = True
                    break
            if not pending:
                break
            time.sleep(POLL)
        waited = time.monotonic() - start
        if waited >= 0.05:
            self.notes.append(f"waited {waited:.2f} s for udev to name the NICs")
