"""The boot-time fast path: prove cheaply that nothing changed, or hand over to the full path.

After every full run the agent records a *snapshot*: every input the full path depended on (the
fw_cfg directory and the entries it read, agent.conf, template overrides, os-release, the NICs,
which network managers are installed) and the exact bytes of every file it manages. At the next
boot this module re-reads the same things and compares bytes. Equal: nothing to do, and none of
jinja2, pyudev, systemd-python, argparse, json or the model is imported. Any difference, any
doubt, any option on the command line: the full path runs. No hashing is needed, because the
snapshot holds the bytes themselves.

Only modules that Python has already loaded at start-up (os, sys) and builtin C modules are
imported here.
"""

from __future__ import annotations

import os
import sys
import time

from . import __version__, journald

# typing and collections.abc are not loaded at start-up; mypy reads them, Python does not.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Optional

    # An item: (kind, path relative to the root, bytes or None for "missing").
    #   f: a file's bytes   d: a directory's sorted names   e: b"1" if the path exists
    #   v: the agent's version   h: the hostname set   j: the journal's entry list (JSON)
    #   n: the NICs   o: the run's outcome (recorded, not compared; "unchanged" if absent)
    Item = tuple[str, str, Optional[bytes]]

SNAPSHOT = "var/lib/fwcfg-agent/snapshot"
JOURNAL = "var/lib/fwcfg-agent/journal.jsonl"
STATE = "var/lib/fwcfg-agent/state.json"
LOCK = "run/fwcfg-agent.lock"
MAGIC = b"fwcfg-agent-snapshot 1\n"
FWCFG = "sys/firmware/qemu_fw_cfg"
CONFIG = "etc/fwcfg-agent/agent.conf"
TEMPLATES = "etc/fwcfg-agent/templates"

MSG_UNCHANGED = "9aff2b147c144ded8d0b5f889b7eb995"
OUTCOME_NO_ENTRIES = b"no-entries"
NO_ENTRIES_MESSAGE = ("no fw_cfg entries for fwcfg-agent ({source}): nothing to do, files left "
                      "as they are")
MSG_NOTHING = "f7a58138bf6a42929ab34b21d02ef6ab"

# Files whose presence says a network manager (or cloud-init) is installed.
MANAGER_MARKERS: dict[str, tuple[str, ...]] = {
    "netplan": ("usr/sbin/netplan", "usr/bin/netplan", "usr/lib/netplan/generate",
                "lib/netplan/generate"),
    "nm": ("usr/sbin/NetworkManager",),
    "networkd": ("usr/lib/systemd/systemd-networkd", "lib/systemd/systemd-networkd"),
    "ifupdown": ("usr/sbin/ifup", "sbin/ifup"),
    "ifcfg": ("etc/sysconfig/network-scripts/ifup-eth", "usr/libexec/nm-ifcfg-rh"),
    "cloud-init": ("usr/bin/cloud-init", "etc/cloud/cloud.cfg"),
}
# Units whose enablement (a wants/ link) says the manager is the one in use.
MANAGER_UNITS: dict[str, str] = {
    "nm": "NetworkManager.service",
    "networkd": "systemd-networkd.service",
    "ifupdown": "networking.service",
}
WANTS_DIRS = ("multi-user.target.wants", "network-online.target.wants", "sysinit.target.wants")
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
NETDEV_FILES = ("type", "address", "ifindex")
NETDEV_DIRS = ("device", "wireless")



def _read(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb", buffering=0) as f:
            chunks = []
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
    except OSError:
        return None


def _listing(path: str) -> Optional[bytes]:
    try:
        return "\n".join(sorted(os.listdir(path))).encode("utf-8", "surrogateescape")
    except OSError:
        return None


def current(root: str, kind: str, rel: str) -> Optional[bytes]:
    path = os.path.join(root, rel)
    if kind == "f":
        return _read(path)
    if kind == "d":
        return _listing(path)
    if kind == "e":
        return b"1" if os.path.lexists(path) else b"0"
    if kind == "v":
        return __version__.encode()
    if kind == "h":
        return os.uname().nodename.encode() if root == "/" else None
    if kind == "n":
        return netdev_signature(root, with_names=rel == "names")
    return None  # "j" and unknown kinds are recorded, not compared


def netdev_signature(root: str, *, with_names: bool) -> bytes:
    """The NICs as the full path sees them, one line each in ifindex order: ifindex, type, MAC,
    whether it is a device and wireless, and the kernel name only when the formats use names.
    Without names, a NIC that udev renames between boots (eth0 -> enp0s3) is the same NIC."""
    net = os.path.join(root, "sys/class/net")
    try:
        names = os.listdir(net)
    except OSError:
        return b""
    rows = []
    for name in names:
        d = os.path.join(net, name)
        fields = [(_read(os.path.join(d, leaf)) or b"-").strip() for leaf in NETDEV_FILES]
        flags = [b"1" if os.path.lexists(os.path.join(d, leaf)) else b"0" for leaf in NETDEV_DIRS]
        ifindex = fields[2]
        row = b" ".join([ifindex, *fields[:2], *flags])
        if with_names:
            row += b" " + name.encode("utf-8", "surrogateescape")
        rows.append((int(ifindex) if ifindex.isdigit() else 1 << 30, row))
    rows.sort()
    return b"\n".join(r for _, r in rows)


NIC_WAIT = 5.0  # seconds; DEVICE_WAIT in agent.conf sets it for the full path
PCI_ETHERNET_CLASS = "0x0200"  # PCI class 02 (network), subclass 00 (Ethernet)
VIRTIO_NET_ID = "0x0001"


def _nic_hardware(root: str) -> list[tuple[str, bool]]:
    """The Ethernet NIC hardware, whether or not a NIC driver has bound yet: (sysfs device
    directory, whether it is a whole NIC) for every PCI Ethernet controller (virtio-net on PCI
    included) and every virtio-net device. A virtio-net device on PCI is the same NIC as its
    PCI function, so only the virtio-net devices on other transports (MMIO) count as NICs."""
    found: list[tuple[str, bool]] = []
    pci = os.path.join(root, "sys/bus/pci/devices")
    try:
        for dev in os.listdir(pci):
            cls = _read(os.path.join(pci, dev, "class"))
            if cls is not None and cls.strip().decode(errors="replace").startswith(
                    PCI_ETHERNET_CLASS):
                found.append((os.path.join(pci, dev), True))
    except OSError:
        pass
    virtio = os.path.join(root, "sys/bus/virtio/devices")
    try:
        for dev in os.listdir(virtio):
            path = os.path.join(virtio, dev)
            ident = _read(os.path.join(path, "device"))
            if ident is not None and ident.strip().decode(errors="replace") == VIRTIO_NET_ID:
                found.append((path, "/pci" not in os.path.realpath(path)))
    except OSError:
        pass
    return found


def expected_nics(root: str) -> int:
    """How many Ethernet NICs the hardware has, whether or not their driver has bound yet."""
    return sum(1 for _, whole in _nic_hardware(root) if whole)


def driverless_aliases(root: str) -> list[str]:
    """The modaliases of NIC hardware no driver has bound yet (a virtio-pci function's driver
    is the transport; its virtio-net device shows up, driverless, once that has bound)."""
    aliases = []
    for path, _ in _nic_hardware(root):
        if os.path.lexists(os.path.join(path, "driver")):
            continue
        alias = (_read(os.path.join(path, "modalias")) or b"").strip()
        if alias:
            aliases.append(alias.decode(errors="replace"))
    return aliases


def _is_ethernet_nic(netdev: str) -> bool:
    """A /sys/class/net entry that is an Ethernet NIC on hardware (not lo, a bridge, a tunnel)."""
    return (_read(os.path.join(netdev, "type")) or b"").strip() == b"1" \
        and os.path.lexists(os.path.join(netdev, "device"))


def present_nics(root: str) -> int:
    net = os.path.join(root, "sys/class/net")
    try:
        names = os.listdir(net)
    except OSError:
        return 0
    return sum(1 for n in names if _is_ethernet_nic(os.path.join(net, n)))


# modprobe, where distributions put it; a test points this at a model of the kernel
MODPROBE = ("/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe", "/bin/modprobe")
# The root whose kernel the agent loads NIC drivers into: the running system's. Any other root
# is an image or a test tree (a test points this at its tree, with a model of the kernel).
DRIVER_ROOT = "/"


def _modprobe(aliases: Sequence[str]) -> Optional[int]:
    """Start `modprobe -q -b -a ALIAS...` (blacklists honoured) without waiting for it."""
    for path in MODPROBE:
        if os.access(path, os.X_OK):
            try:
                return os.posix_spawn(path, [path, "-q", "-b", "-a", *aliases],
                                      {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
            except OSError:
                return None
    return None


# The NIC drivers this process has asked modprobe for, per root, and the modprobes it started.
_requested: dict[str, set[str]] = {}
_children: list[int] = []


def load_nic_drivers(root: str) -> None:
    """Start modprobe, without waiting for it, for the NIC hardware no driver has bound yet
    that this process has not asked for already."""
    requested = _requested.setdefault(root, set())
    new = [a for a in driverless_aliases(root) if a not in requested]
    if new:
        requested.update(new)
        pid = _modprobe(new)
        if pid is not None:
            _children.append(pid)


def _reap() -> None:
    """Reap the modprobes that have finished; a slow one just goes on."""
    for pid in list(_children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except OSError:
            done = pid
        if done:
            _children.remove(pid)


def wait_for_nics(root: str, timeout: float = NIC_WAIT, *,
                  load_drivers: Optional[bool] = None) -> int:
    """Wait (bounded) until every Ethernet NIC the hardware has shows up as a network device.

    The agent starts right after udev's coldplug was queued, usually long before udev gets to
    loading the NIC drivers (virtio_net): without this the first NIC would not exist yet. So
    the agent loads the drivers of driverless NIC hardware itself, by modalias, as udev would
    (by default only on the running system, root /). Returns how many NICs are still missing
    when it gives up (0 when all are there)."""
    global nic_report
    want = expected_nics(root)
    if load_drivers is None:
        load_drivers = root == DRIVER_ROOT
    start = time.monotonic()
    deadline = start + timeout
    try:
        while True:
            missing = want - present_nics(root)
            if missing <= 0 or time.monotonic() >= deadline:
                waited = time.monotonic() - start
                requested = _requested.get(root, set())
                if requested or waited >= 0.05:
                    nic_report = f"waited {waited:.2f} s for {want} NIC(s)" + (
                        f", loading drivers for {' '.join(sorted(requested))}"
                        if requested else "")
                return max(missing, 0)
            if load_drivers:
                load_nic_drivers(root)
            time.sleep(0.02)
    finally:
        _reap()


def wait_for_udev_names(root: str, timeout: float = NIC_WAIT) -> None:
    """Wait (bounded) until udev has processed every Ethernet NIC (its database entry
    /run/udev/data/n<ifindex> exists), so that their names are final. Only where udev runs."""
    global nic_report
    data = os.path.join(root, "run/udev/data")
    if not os.path.isdir(data):
        return
    net = os.path.join(root, "sys/class/net")
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        try:
            names = os.listdir(net)
        except OSError:
            return
        pending = False
        for n in names:
            d = os.path.join(net, n)
            if not _is_ethernet_nic(d):
                continue
            index = (_read(os.path.join(d, "ifindex")) or b"").strip().decode()
            if not os.path.exists(os.path.join(data, f"n{index}")):
                pending = True
                break
        if not pending:
            break
        time.sleep(0.02)
    waited = time.monotonic() - start
    if waited >= 0.05:
        nic_report = "; ".join(filter(None, (
            nic_report, f"waited {waited:.2f} s for udev to name the NICs")))


def serialize(items: Iterable[Item]) -> bytes:
    out = [MAGIC]
    for kind, rel, data in items:
        if "\n" in rel:
            raise ValueError(f"cannot record a path with a newline: {rel!r}")
        size = -1 if data is None else len(data)
        out.append(f"{kind} {size} {rel}\n".encode("utf-8", "surrogateescape"))
        if data is not None:
            out.append(data)
            out.append(b"\n")
    return b"".join(out)


def parse(blob: bytes) -> Optional[list[Item]]:
    if not blob.startswith(MAGIC):
        return None
    items: list[Item] = []
    pos, end = len(MAGIC), len(blob)
    try:
        while pos < end:
            nl = blob.index(b"\n", pos)
            kind, size_text, rel = blob[pos:nl].decode("utf-8", "surrogateescape").split(" ", 2)
            size = int(size_text)
            pos = nl + 1
            data: Optional[bytes] = None
            if size >= 0:
                data = blob[pos:pos + size]
                if len(data) != size or blob[pos + size:pos + size + 1] != b"\n":
                    return None
                pos += size + 1
            items.append((kind, rel, data))
    except ValueError:
        return None
    return items


def input_items(root: str, entries: Sequence[tuple[int, bytes]],
                files: Sequence[tuple[str, bytes]], hostname: Optional[str],
                entries_json: bytes, *, netdev_names: bool) -> list[Item]:
    """Everything a full run depended on. `entries` are (key, data) of the entries it read,
    `files` the managed files as written; both are passed in rather than read again."""
    items: list[Item] = [("v", "", __version__.encode())]

    def add(kind: str, rel: str) -> None:
        items.append((kind, rel, current(root, kind, rel)))

    add("f", CONFIG)
    add("d", TEMPLATES)
    for name in sorted(os.listdir(os.path.join(root, TEMPLATES))) \
            if os.path.isdir(os.path.join(root, TEMPLATES)) else ():
        add("f", f"{TEMPLATES}/{name}")
    for rel in OS_RELEASE:
        add("f", rel)
    add("n", "names" if netdev_names else "macs")
    for markers in MANAGER_MARKERS.values():
        for rel in markers:
            add("e", rel)
    for unit in MANAGER_UNITS.values():
        for wants in WANTS_DIRS:
            add("e", f"etc/systemd/system/{wants}/{unit}")
    items += _listing_items(root)
    for key, data in entries:
        items.append(("f", f"{FWCFG}/by_key/{key}/raw", data))
    for path, data in files:
        items.append(("f", path.lstrip("/"), data))
    add("f", STATE)  # a damaged or edited state sends the next run down the full path
    if hostname and root == "/":
        items.append(("h", "", hostname.encode()))
    items.append(("j", "entries", entries_json))
    return items


def _listing_items(root: str) -> list[Item]:
    """The fw_cfg directory: every entry's key, name and size."""
    top = f"{FWCFG}/by_key"
    items: list[Item] = [("d", top, current(root, "d", top))]
    by_key = os.path.join(root, top)
    for k in sorted(os.listdir(by_key)) if os.path.isdir(by_key) else ():
        for leaf in ("name", "size"):
            rel = f"{top}/{k}/{leaf}"
            items.append(("f", rel, current(root, "f", rel)))
    return items


def no_entries_items(root: str) -> list[Item]:
    """What a run that found no entries for the agent depended on: the agent, agent.conf (which
    entries it wants) and the fw_cfg directory. The NICs and the files do not matter to it."""
    items: list[Item] = [("v", "", __version__.encode()),
                         ("f", CONFIG, current(root, "f", CONFIG))]
    items += _listing_items(root)
    items.append(("o", "", OUTCOME_NO_ENTRIES))
    items.append(("j", "entries", b"[]"))
    return items


def record(root: str, items: Sequence[Item]) -> None:
    """Save the snapshot atomically (a torn snapshot only costs one full run)."""
    path = os.path.join(root, SNAPSHOT)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(serialize(items))
    os.replace(tmp, path)


def forget(root: str) -> None:
    try:  # noqa: SIM105 (contextlib is not loaded at start-up; this module avoids it)
        os.unlink(os.path.join(root, SNAPSHOT))
    except FileNotFoundError:
        pass


# Why the last call of run() handed over to the full path, which logs it.
miss = ""
# The recorded outcome that unchanged() found ("unchanged", or "no-entries").
outcome = b"unchanged"
# NICs still missing after run() waited for them; None if it did not wait.
nics_missing: Optional[int] = None
# How long the waits for NICs took, and which drivers the agent loaded ("" if nothing to say).
nic_report = ""


def unchanged(root: str) -> Optional[bytes]:
    """The recorded entry list if every recorded input and file is as recorded, else None.
    The NICs are compared last, after waiting for them (bounded): their drivers load while
    the rest is compared. A run that found no entries did not depend on the NICs."""
    global miss, nics_missing, outcome
    outcome = b"unchanged"
    blob = _read(os.path.join(root, SNAPSHOT))
    items = parse(blob) if blob is not None else None
    if not items:
        miss = "no snapshot of an earlier run"
        return None
    entries_json: Optional[bytes] = None
    nics: list[Item] = []
    if root == DRIVER_ROOT and any(kind == "n" for kind, _, _ in items):
        load_nic_drivers(root)  # now, so that they load while the rest is compared
    for item in items:
        kind, rel, data = item
        if kind == "j":
            entries_json = data
            continue
        if kind == "o":
            outcome = data or outcome
            continue
        if kind == "n":
            nics.append(item)  # last: their drivers load meanwhile
            continue
        if _differs(root, item):
            return None
    if nics:
        nics_missing = wait_for_nics(root)
        if ("n", "names") in {(k, r) for k, r, _ in nics}:
            wait_for_udev_names(root)  # the formats use kernel names: let udev finish renaming
    if any(_differs(root, item) for item in nics):
        return None
    return entries_json


def _differs(root: str, item: Item) -> bool:
    """Whether a recorded input is no longer as recorded (then `miss` says which)."""
    global miss
    kind, rel, data = item
    if current(root, kind, rel) == data:
        return False
    miss = f"{_KINDS.get(kind, kind)} {rel or ''} changed".replace("  ", " ")
    return True


_KINDS = {"f": "file", "d": "directory", "e": "presence of", "v": "agent version",
          "h": "hostname", "n": "NICs"}


def device_absent(root: str) -> bool:
    """True only when there is certainly no fw_cfg device: no sysfs tree, no ACPI QEMU0002,
    no device-tree fw-cfg node."""
    if os.path.isdir(os.path.join(root, FWCFG)):
        return False
    try:
        if any(n.startswith("QEMU0002:") for n in os.listdir(
                os.path.join(root, "sys/bus/acpi/devices"))):
            return False
    except OSError:
        pass
    for base in ("sys/firmware/devicetree/base", "proc/device-tree"):
        try:
            if any(n.startswith("fw-cfg@") for n in os.listdir(os.path.join(root, base))):
                return False
        except OSError:
            pass
    return True


# --- reporting without the heavy modules ---------------------------------------------------

def _json_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _now() -> tuple[str, str]:
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    micro = int(now * 1e6) % 1000000
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{micro:06d}Z"
    return f"{stamp}.{micro:06d}Z-{os.urandom(3).hex()}", iso


def _boot_id(root: str) -> str:
    path = "/proc/sys/kernel/random/boot_id" if root == "/" else \
        os.path.join(root, "proc/sys/kernel/random/boot_id")
    data = _read(path)
    return data.decode().strip() if data else "unknown"


def journal_line(root: str, outcome: str, entries_json: bytes) -> bytes:
    """The run's journal record, as the full path writes it for the same outcome."""
    run, iso = _now()
    fields = [
        ("boot_id", _json_str(_boot_id(root))), ("command", '"apply"'),
        ("entries", entries_json.decode()), ("files", "[]"), ("outcome", _json_str(outcome)),
        ("run", _json_str(run)), ("source", '"sysfs"'), ("time", _json_str(iso)),
        ("version", _json_str(__version__)),
    ]
    if outcome != "unchanged":
        fields.remove(("files", "[]"))  # a run that found no entries has no file list
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields) + "}\n").encode()


JOURNAL_SOCKET = journald.SOCKET  # a test points this at its own socket


def log(message: str, message_id: str) -> None:
    """One line to journald (native protocol) under systemd, else to stderr. It is the run's
    last act: it waits (bounded) until journald has read it, so that it is the unit's."""
    if journald.under_systemd():
        try:
            j = journald.Journal(JOURNAL_SOCKET)
            try:
                j(message, MESSAGE_ID=message_id, PRIORITY=6, SYSLOG_IDENTIFIER="fwcfg-agent")
                j.drain()
                return
            finally:
                j.close()
        except OSError:
            pass
    sys.stderr.write(f"fwcfg-agent: {message}\n")


def apply_root(argv: Sequence[str]) -> Optional[str]:
    """The root of the unit's command line, `apply [--root DIR]`; None for any other."""
    args = list(argv)
    if not args or args[0] != "apply":
        return None
    rest = args[1:]
    if not rest:
        return "/"
    if len(rest) == 2 and rest[0] == "--root" and rest[1]:
        return rest[1]
    if len(rest) == 1 and rest[0].startswith("--root=") and len(rest[0]) > len("--root="):
        return rest[0][len("--root="):]
    return None


def run(argv: Sequence[str]) -> Optional[int]:
    """The fast path for `apply [--root DIR]`: an exit code, or None to run the full path."""
    global miss, nics_missing, nic_report
    miss = "options on the command line"
    nics_missing = None
    nic_report = ""
    _requested.clear()  # one run, one boot: what an earlier run in this process asked is moot
    given = apply_root(argv)
    if given is None:
        return None  # another command, any other option: the full path decides
    root = os.path.abspath(given)
    if device_absent(root):
        log("no fw_cfg device (no ACPI QEMU0002 or DT fw-cfg node): nothing to do",
            MSG_NOTHING)
        return 0
    try:
        import fcntl

        lock_path = os.path.join(root, LOCK)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        miss = f"cannot open {LOCK}: {e.strerror}"
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            miss = "another run holds the lock"
            return None  # let the full path wait for it
        entries_json = unchanged(root)
        if entries_json is None:
            return None
        no_entries = outcome == OUTCOME_NO_ENTRIES
        line = journal_line(root, "no-entries" if no_entries else "unchanged", entries_json)
        jfd = os.open(os.path.join(root, JOURNAL),
                      os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(jfd, line)
        finally:
            os.close(jfd)
        if no_entries:
            log(NO_ENTRIES_MESSAGE.format(source="sysfs"), MSG_NOTHING)
        else:
            log("nothing changed" + (f" ({nic_report})" if nic_report else ""), MSG_UNCHANGED)
        return 0
    except OSError:
        return None
    finally:
        os.close(fd)
