"""Loading NIC drivers at boot: the agent modprobes driverless NIC hardware by modalias instead
of waiting for udev's coldplug to get there. The kernel is modelled by a `modprobe` that binds
drivers in a guest-like sysfs tree the way Linux does for a virtio-net NIC on PCI: the PCI
function's driver (the virtio-pci transport) first, which adds a virtio device; that device's
driver (virtio_net) then registers the network device."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fwcfg_agent import device, fast, nics

from .conftest import REPO

PCI_SLOT = "0000:00:03.0"
PCI_ALIAS = "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"
VIRTIO_ALIAS = "virtio:d00000001v00001AF4"

KERNEL = r'''#!{python}
"""modprobe -q -b -a ALIAS...: log the call, then bind like the kernel would."""
import os, sys
from pathlib import Path
root = Path({root!r})
with open(root / "modprobe.log", "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
pci = root / "sys/devices/pci0000:00" / {slot!r}
for alias in sys.argv[4:]:
    if alias.startswith("pci:") and {transport!r}:
        (pci / "driver").symlink_to("../../../bus/pci/drivers/virtio-pci")
        dev = pci / "virtio0"
        dev.mkdir()
        (dev / "device").write_text("0x0001\n")
        (dev / "modalias").write_text({virtio_alias!r} + "\n")
        bus = root / "sys/bus/virtio/devices"
        bus.mkdir(parents=True, exist_ok=True)
        (bus / "virtio0").symlink_to(dev)
    if alias.startswith("virtio:") and {netdev!r}:
        (pci / "virtio0/driver").symlink_to("../../../../bus/virtio/drivers/virtio_net")
        net = root / "sys/class/net/eth0"
        net.mkdir(parents=True)
        (net / "address").write_text("52:54:00:aa:bb:cc\n")
        (net / "type").write_text("1\n")
        (net / "device").symlink_to(pci / "virtio0")
'''


def guest(root: Path, *, transport: bool = True, netdev: bool = True) -> Path:
    """A guest whose virtio-net PCI function has no driver yet, and a modprobe modelling the
    kernel (`transport`/`netdev`: whether the virtio-pci/virtio_net modules exist)."""
    pci = root / "sys/devices/pci0000:00" / PCI_SLOT
    pci.mkdir(parents=True)
    (pci / "class").write_text("0x020000\n")
    (pci / "modalias").write_text(PCI_ALIAS + "\n")
    bus = root / "sys/bus/pci/devices"
    bus.mkdir(parents=True)
    (bus / PCI_SLOT).symlink_to(pci)
    (root / "sys/class/net").mkdir(parents=True)
    modprobe = root / "modprobe"
    modprobe.write_text(KERNEL.format(python=sys.executable, root=str(root), slot=PCI_SLOT,
                                      transport=transport, netdev=netdev,
                                      virtio_alias=VIRTIO_ALIAS))
    modprobe.chmod(0o755)
    return modprobe


def calls(root: Path) -> list[str]:
    log = root / "modprobe.log"
    return log.read_text().splitlines() if log.exists() else []


def test_driverless_hardware_is_found_by_modalias(tmp_path: Path) -> None:
    guest(tmp_path)
    assert nics.expected(str(tmp_path)) == 1
    assert nics.driverless_aliases(str(tmp_path)) == [PCI_ALIAS]


def test_loads_the_transport_then_the_nic_driver(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "MODPROBE", (str(guest(tmp_path)),))
    monkeypatch.setattr(nics, "DRIVER_ROOT", str(tmp_path))
    waiter = nics.Waiter(str(tmp_path))
    assert waiter.wait_for_nics(10) == 0
    assert nics.present(str(tmp_path)) == 1
    # one modprobe per newly driverless device, blacklists honoured
    assert calls(tmp_path) == [f"-q -b -a {PCI_ALIAS}", f"-q -b -a {VIRTIO_ALIAS}"]
    # what the agent then logs
    assert waiter.report.startswith("waited ") and waiter.report.endswith(
        f"for 1 NIC(s), loading drivers for {PCI_ALIAS} {VIRTIO_ALIAS}")
    # a virtio-net device on PCI is the same NIC as its PCI function: still one NIC
    assert nics.expected(str(tmp_path)) == 1
    assert nics.driverless_aliases(str(tmp_path)) == []


def test_no_driver_is_a_bounded_wait_that_asks_once(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "MODPROBE", (str(guest(tmp_path, netdev=False)),))
    start = time.monotonic()
    monkeypatch.setattr(nics, "DRIVER_ROOT", str(tmp_path))
    assert nics.Waiter(str(tmp_path)).wait_for_nics(0.5) == 1
    assert time.monotonic() - start < 5
    assert calls(tmp_path) == [f"-q -b -a {PCI_ALIAS}", f"-q -b -a {VIRTIO_ALIAS}"]


def test_only_the_running_system_loads_drivers_by_default(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """A root other than / is an image or a test tree: its kernel is not ours to load into."""
    monkeypatch.setattr(device, "MODPROBE", (str(guest(tmp_path)),))
    assert nics.Waiter(str(tmp_path)).wait_for_nics(0.2) == 1
    assert calls(tmp_path) == []


def test_without_modprobe_the_wait_still_ends(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    guest(tmp_path)
    monkeypatch.setattr(device, "MODPROBE", (str(tmp_path / "no-such-modprobe"),))
    monkeypatch.setattr(nics, "DRIVER_ROOT", str(tmp_path))
    assert nics.Waiter(str(tmp_path)).wait_for_nics(0.2) == 1
    assert not os.path.exists(tmp_path / "modprobe.log")


PAYLOAD = {"opt/GuestInfo": b"HOSTNAME=nic1\nIPADDR=192.0.2.9/24\n"}


def guest_with_entries(root: Path, entries: dict[str, bytes], monkeypatch: pytest.MonkeyPatch,
                       *, netdev: bool = True) -> None:
    """A guest (see `guest`; the agent is given its modprobe) with a fw_cfg device holding
    ENTRIES, and an /etc as an image has it."""
    from tests.fakeroot import write_fwcfg_tree, write_os_release, write_qemu_acpi_device

    monkeypatch.setattr(device, "MODPROBE", (str(guest(root, netdev=netdev)),))
    write_qemu_acpi_device(root)
    write_fwcfg_tree(root, entries)
    write_os_release(root, ID="debian", VERSION_ID="12")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n")


def configured_then_rebooted(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A guest configured by a first boot (which loaded the drivers, with a full run), then
    rebooted: no driver bound, no network device."""
    from fwcfg_agent.cli import main

    guest_with_entries(root, PAYLOAD, monkeypatch)
    monkeypatch.setattr(nics, "DRIVER_ROOT", str(root))
    assert main(["apply", "--root", str(root)]) == 0  # first boot: loads them, full run
    assert (root / "etc/systemd/network/10-fwcfg-enx525400aabbcc.network").exists()
    assert len(calls(root)) == 2

    pci = root / "sys/devices/pci0000:00" / PCI_SLOT
    for link in (pci / "driver", pci / "virtio0/driver", root / "sys/bus/virtio/devices/virtio0",
                 root / "sys/class/net/eth0/device"):
        link.unlink()
    for d in (root / "sys/class/net/eth0", pci / "virtio0"):
        for f in d.iterdir():
            f.unlink()
        d.rmdir()
    (root / "modprobe.log").unlink()


def test_unchanged_boot_before_the_nic_driver_loads_it_and_stays_fast(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A later boot starts before any NIC driver is bound: the fast path asks for the drivers
    first, compares the rest of the snapshot meanwhile, then the NICs once they are there."""
    root = tmp_path / "guest"
    configured_then_rebooted(root, monkeypatch)
    done = fast.run(["apply", "--root", str(root)])
    assert done.code == 0, done.why
    assert calls(root) == [f"-q -b -a {PCI_ALIAS}", f"-q -b -a {VIRTIO_ALIAS}"]
    assert done.waiter is not None and done.waiter.missing == 0
    assert "loading drivers for" in done.waiter.report


ORDER_PROBE = """
import sys
events = []
def hook(event, args):
    if event == "import" and args[0].startswith("fwcfg_agent"):
        events.append(args[0])
    elif event == "os.posix_spawn":
        events.append("spawn")
    elif event == "open" and isinstance(args[0], str) and args[0].endswith("/snapshot"):
        events.append("snapshot")
sys.addaudithook(hook)
from fwcfg_agent import device, fast, nics
device.MODPROBE = (sys.argv[2],)
nics.DRIVER_ROOT = sys.argv[1]
done = fast.run(["apply", "--root", sys.argv[1]])
assert done.code == 0, done.why
print(" ".join(events))
"""


def test_a_later_boot_asks_for_the_drivers_once_it_has_read_the_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a one-CPU guest the NIC driver took 0.2-0.3 s from modprobe's start to the NIC's
    registration, the longest part of a later boot: the fast path asks for it as soon as the
    snapshot says the NICs are inputs, before it loads the modules of its log and journal,
    takes the lock or compares anything."""
    root = tmp_path / "guest"
    configured_then_rebooted(root, monkeypatch)
    run = subprocess.run([sys.executable, "-c", ORDER_PROBE, str(root), str(root / "modprobe")],
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    events = run.stdout.split()
    first = events.index("spawn")
    assert events.index("snapshot") < first
    assert {"fwcfg_agent.log", "fwcfg_agent.runinfo"} <= set(events[first:])
    assert not {"fwcfg_agent.log", "fwcfg_agent.runinfo"} & set(events[:first])


def test_a_first_run_asks_for_the_drivers_before_the_full_path_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No snapshot yet: the fast path hands over to the full path, which always waits for the
    NICs. The drivers are asked for before that hand-over, so they load while the full path
    imports and plans (a first boot's jinja2 import is most of a second in a guest), and the
    full path's wait uses the same waiter instead of starting anew."""
    root = tmp_path / "guest"
    guest_with_entries(root, PAYLOAD, monkeypatch, netdev=False)
    monkeypatch.setattr(nics, "DRIVER_ROOT", str(root))
    done = fast.run(["apply", "--root", str(root)])
    assert done.code is None and "first run" in done.why
    assert done.waiter is not None and done.waiter.requested == {PCI_ALIAS}
    for pid in done.waiter.children:
        os.waitpid(pid, 0)
    assert calls(root) == [f"-q -b -a {PCI_ALIAS}"]


def test_a_boot_without_entries_for_the_agent_loads_no_driver(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a run that will wait for the NICs asks for their drivers: a later boot of a guest
    whose fw_cfg has no entry for the agent (its snapshot has no NIC in it) leaves them to
    udev."""
    from fwcfg_agent.cli import main

    root = tmp_path / "guest"
    guest_with_entries(root, {"opt/io.systemd.credentials/ssh.authorized_keys.root": b"x"},
                       monkeypatch)
    assert main(["apply", "--root", str(root)]) == 0  # (not the driver root: loads nothing)
    items = fast.load(str(root))
    assert items and not [i for i in items if i[0] == "n"]
    monkeypatch.setattr(nics, "DRIVER_ROOT", str(root))
    done = fast.run(["apply", "--root", str(root)])
    assert done.code == 0, done.why
    assert calls(root) == []


def test_a_wait_reads_each_devices_identity_once(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait looks at the hardware again and again (new driverless devices), but a device's
    PCI class or virtio id does not change while it is there: each is read once per wait, and
    later looks list the buses and check only whether a driver has bound. (In a one-CPU guest
    every look took CPU from the driver being loaded.)"""
    from fwcfg_agent.rootfs import lexists, read_bytes

    monkeypatch.setattr(device, "MODPROBE", (str(guest(tmp_path, netdev=False)),))
    monkeypatch.setattr(nics, "DRIVER_ROOT", str(tmp_path))
    reads: list[str] = []

    def counted(path: str) -> bytes | None:
        reads.append(os.path.basename(path))
        return read_bytes(path)

    def driver_checked(path: str) -> bool:
        reads.append(os.path.basename(path))
        return lexists(path)

    monkeypatch.setattr(nics, "read_bytes", counted)
    monkeypatch.setattr(nics, "lexists", driver_checked)
    waiter = nics.Waiter(str(tmp_path))
    assert waiter.wait_for_nics(0.5) == 1  # no NIC driver: waits its whole time, looking
    assert reads.count("class") == 1
    assert reads.count("device") == 1  # virtio0's id
    assert reads.count("driver") >= 6  # several looks, each checking every device's driver
    assert len(waiter.seen) == 2


LINK_PROBE = """
import subprocess, time
from fwcfg_agent import nics
events = nics.link_events()
assert events is not None, "no rtnetlink socket"
start = time.monotonic()
nics.pause(events, 0.3)  # nothing happens in this network namespace: the whole time
idle = time.monotonic() - start
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)  # a link changes
start = time.monotonic()
nics.pause(events, 120)
woken = time.monotonic() - start
print(f"{idle:.3f} {woken:.3f}")
"""


def test_the_running_systems_nic_wait_is_woken_by_the_kernel(tmp_path: Path) -> None:
    """On the running system the NIC wait sleeps on rtnetlink's link events, not polling the
    tree (each look at it took CPU from the driver being loaded in a one-CPU guest): a pause
    lasts its whole time when no link changes, and ends when one does. In a network namespace
    of its own, where bringing `lo` up is the only link change."""
    run = subprocess.run(["unshare", "--net", sys.executable, "-c", LINK_PROBE],
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                         capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stderr
    idle, woken = (float(x) for x in run.stdout.split())
    assert idle >= 0.25
    assert woken < 60  # woken by the event, long before the 120 s it was given
