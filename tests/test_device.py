"""fwcfg_agent.device: whether there is a fw_cfg device (in guest-like sysfs trees), and the one
way of running modprobe (against a model of modprobe: a script that logs its calls)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwcfg_agent import device
from fwcfg_agent.errors import NoDeviceError
from fwcfg_agent.paths import Root
from fwcfg_agent.sources import device_present as sources_device_present
from fwcfg_agent.sources.kernel import find_device
from tests.fakeroot import write_fwcfg_tree

from .conftest import REPO

ACPI_DIR = "sys/devices/LNXSYSTM:00/LNXSYBUS:00/PNP0A08:00/QEMU0002:00"


def acpi_device(root: Path, status: str | None = None, name: str = "QEMU0002:00") -> Path:
    """The ACPI device as Linux shows it: a directory under sys/devices, linked from
    sys/bus/acpi/devices; `status` exists only when the firmware has a _STA method."""
    dev = root / ACPI_DIR.replace("QEMU0002:00", name)
    dev.mkdir(parents=True)
    (dev / "hid").write_text("QEMU0002\n")
    if status is not None:
        (dev / "status").write_text(status)
    bus = root / "sys/bus/acpi/devices"
    bus.mkdir(parents=True, exist_ok=True)
    (bus / name).symlink_to(os.path.relpath(dev, bus))
    return dev


def dt_node(root: Path, base: str, status: bytes | None = None) -> Path:
    """A device-tree fw-cfg node as the kernel exports it (properties are files)."""
    node = root / base / "fw-cfg@9020000"
    node.mkdir(parents=True)
    (node / "compatible").write_bytes(b"qemu,fw-cfg-mmio\0")
    if status is not None:
        (node / "status").write_bytes(status)
    return node


def present(root: Path) -> bool:
    """device_present, checked against the sources package's wrapper (same definition)."""
    answer = device.device_present(str(root))
    assert sources_device_present(Root(str(root))) == answer
    return answer


# --- presence ---------------------------------------------------------------------------------


def test_nothing_at_all(tmp_path: Path) -> None:
    assert not present(tmp_path)
    assert not present(tmp_path / "no-such-root")


def test_other_devices_are_not_fw_cfg(tmp_path: Path) -> None:
    acpi_device(tmp_path, "15\n", name="PNP0A08:00")
    acpi_device(tmp_path, "15\n", name="QEMU0001:00")
    (tmp_path / "proc/device-tree/pl011@9000000").mkdir(parents=True)
    (tmp_path / "sys/firmware/dmi").mkdir(parents=True)
    assert not present(tmp_path)


def test_sysfs_tree_alone(tmp_path: Path) -> None:
    """The module bound by hand (qemu_fw_cfg.ioport=...): no ACPI device, no DT node."""
    write_fwcfg_tree(tmp_path, {"opt/GuestInfo": b"HOSTNAME=a\n"})
    assert present(tmp_path)
    assert device.acpi_devices(str(tmp_path)) == [] and device.dt_nodes(str(tmp_path)) == []


def test_acpi_without_status_is_present(tmp_path: Path) -> None:
    """No _STA method: ACPI takes the device as present (QEMU 7.2 q35 lists no status)."""
    dev = acpi_device(tmp_path)
    assert present(tmp_path)
    assert device.acpi_devices(str(tmp_path)) == [str(tmp_path / "sys/bus/acpi/devices" /
                                                      dev.name)]


@pytest.mark.parametrize("status, expected", [
    ("15\n", True),   # present, enabled, shown, functioning
    ("11\n", True),   # 0xB: what QEMU's DSDT gives the fw_cfg device
    ("1\n", True),
    ("0\n", False),   # not present
    ("8\n", False),   # functioning but not present: bit 0 decides
    ("14\n", False),
])
def test_acpi_status(tmp_path: Path, status: str, expected: bool) -> None:
    acpi_device(tmp_path, status)
    assert present(tmp_path) is expected


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_acpi_status_bit_zero_decides(tmp_path: Path, value: int) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    acpi_device(root, f"{value}\n")
    assert present(root) is bool(value & 1)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.binary(max_size=40).filter(lambda b: not b.strip().isdigit()))
def test_unparsable_status_counts_as_present(tmp_path: Path, text: bytes) -> None:
    """A status that is not a number says nothing against the described device."""
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    dev = acpi_device(root)
    (dev / "status").write_bytes(text)
    assert present(root)


def test_unreadable_status_counts_as_present(tmp_path: Path) -> None:
    """Linux gives EIO when evaluating _STA fails; here `status` is a directory (EISDIR)."""
    dev = acpi_device(tmp_path)
    (dev / "status").mkdir()
    assert present(tmp_path)


def test_second_acpi_instance_present(tmp_path: Path) -> None:
    acpi_device(tmp_path, "0\n")
    acpi_device(tmp_path, "15\n", name="QEMU0002:01")
    assert present(tmp_path)
    assert [Path(d).name for d in device.acpi_devices(str(tmp_path))] == ["QEMU0002:01"]


@pytest.mark.parametrize("base", ["sys/firmware/devicetree/base", "proc/device-tree"])
def test_device_tree_node(tmp_path: Path, base: str) -> None:
    dt_node(tmp_path, base)
    assert present(tmp_path)


@pytest.mark.parametrize("status, expected", [
    (b"okay\0", True), (b"ok\0", True), (b"disabled\0", False), (b"fail\0", False),
])
def test_device_tree_status(tmp_path: Path, status: bytes, expected: bool) -> None:
    dt_node(tmp_path, "proc/device-tree", status)
    assert present(tmp_path) is expected


def test_raw_reader_finds_what_presence_finds(tmp_path: Path) -> None:
    """The raw reader's device lookup is the same presence, plus the DT compatible check."""
    with pytest.raises(NoDeviceError):
        find_device(tmp_path)
    acpi_device(tmp_path, "0\n")
    with pytest.raises(NoDeviceError):
        find_device(tmp_path)
    acpi_device(tmp_path, "11\n", name="QEMU0002:01")
    assert find_device(tmp_path).path.name == "QEMU0002:01"


def test_import_is_cheap() -> None:
    """The boot fast path imports this module: beyond itself it may load nothing that the
    launcher's interpreter (python3 -I) has not loaded at start-up, except __future__ (as
    every module of the agent does): no glob, re, subprocess or typing."""
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); before = set(sys.modules); "
            "import fwcfg_agent.device; print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-I", "-c", code], check=True,
                         capture_output=True, text=True).stdout.split()
    assert set(out) <= {"__future__", "fwcfg_agent", "fwcfg_agent.device"}, out


# --- modprobe ---------------------------------------------------------------------------------

MODEL = """#!/bin/sh
# modprobe, modelled: log the arguments and PATH, say something, then act as told.
echo "$*" >> {log}
echo "PATH=$PATH" >> {log}
echo "fds=$(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/2)" >> {log}
echo "modprobe: some output"
echo "modprobe: ERROR: some error" >&2
{body}
"""


def model(tmp_path: Path, body: str = "exit 0", name: str = "modprobe") -> Path:
    script = tmp_path / name
    script.write_text(MODEL.format(log=tmp_path / "calls", body=body))
    script.chmod(0o755)
    return script


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls"
    return [line for line in log.read_text().splitlines()
            if not line.startswith(("PATH=", "fds="))] if log.exists() else []


def wait_gone(pids: list[int]) -> None:
    """reap() until none of PIDS runs (each model finishes at once when told to)."""
    deadline = time.monotonic() + 30
    while pids:
        assert time.monotonic() < deadline, f"{pids} never ended"
        pids = device.reap(pids)
        time.sleep(0.01)


def test_wait_returns_the_exit_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "MODPROBE", (str(model(tmp_path)),))
    assert device.modprobe(["qemu_fw_cfg"], wait=True, timeout=30) == 0
    assert calls(tmp_path) == ["-q -a qemu_fw_cfg"]
    log = (tmp_path / "calls").read_text()
    assert "PATH=/usr/sbin:/sbin:/usr/bin:/bin\n" in log
    assert "fds=/dev/null /dev/null /dev/null\n" in log  # it reads nothing, says nothing

    model(tmp_path, "exit 3")
    assert device.modprobe(["qemu_fw_cfg"], wait=True, timeout=30) == 3
    model(tmp_path, "kill -9 $$")
    assert device.modprobe(["qemu_fw_cfg"], wait=True, timeout=30) == -9


def test_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "MODPROBE", (str(model(tmp_path)),))
    assert device.modprobe(["pci:v00001AF4d00001000", "virtio:d00000001v00001AF4"],
                           wait=True, timeout=30, by_alias=True) == 0
    assert device.modprobe(iter(["qemu_fw_cfg"]), wait=True, timeout=30, remove=True) == 0
    assert calls(tmp_path) == ["-q -b -a pci:v00001AF4d00001000 virtio:d00000001v00001AF4",
                               "-q -r -a qemu_fw_cfg"]


def test_names_that_read_as_options_are_left_out(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "MODPROBE", (str(model(tmp_path)),))
    assert device.modprobe(["", "-r", "--dry-run", "virtio_net"], wait=True, timeout=30) == 0
    assert calls(tmp_path) == ["-q -a virtio_net"]
    assert device.modprobe(["", "-r"], wait=True, timeout=30) is None
    assert device.modprobe([], wait=False) is None
    assert calls(tmp_path) == ["-q -a virtio_net"]


def test_no_wait_returns_the_pid_to_reap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    go = tmp_path / "go"
    monkeypatch.setattr(device, "MODPROBE", (str(model(
        tmp_path, f"while [ ! -e {go} ]; do sleep 0.01; done")),))
    pid = device.modprobe(["virtio_net"], wait=False, by_alias=True)
    assert pid is not None
    assert device.reap([pid]) == [pid]  # still running: it waits for `go`
    go.touch()
    wait_gone([pid])
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # collected
    assert calls(tmp_path) == ["-q -b -a virtio_net"]
    assert device.reap([pid]) == []  # reaping again is harmless


def test_timeout_leaves_it_to_a_later_reap(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    go = tmp_path / "go"
    monkeypatch.setattr(device, "MODPROBE", (str(model(
        tmp_path, f"while [ ! -e {go} ]; do sleep 0.01; done")),))
    assert device.modprobe(["qemu_fw_cfg"], wait=True, timeout=0.05) is None
    assert device.modprobe(["qemu_fw_cfg"], wait=True, timeout=0) is None
    stragglers = list(device._stragglers)
    assert len(stragglers) == 2
    go.touch()
    deadline = time.monotonic() + 30
    while device._stragglers:
        assert time.monotonic() < deadline
        assert device.reap([]) == []
        time.sleep(0.01)
    for pid in stragglers:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_missing_or_unusable_modprobe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "not-executable"
    plain.write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "a-directory").mkdir()
    bad = tmp_path / "bad-interpreter"
    bad.write_text("#!/no/such/interpreter\n")
    bad.chmod(0o755)
    for paths in ((str(tmp_path / "no-such-modprobe"),), (str(plain),),
                  (str(tmp_path / "a-directory"),), (str(bad),), ()):
        monkeypatch.setattr(device, "MODPROBE", paths)
        assert device.modprobe(["qemu_fw_cfg"], wait=True, timeout=30) is None, paths
        assert device.modprobe(["qemu_fw_cfg"], wait=False) is None, paths


def test_first_usable_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = model(tmp_path, "exit 0", name="first")
    second = model(tmp_path, "exit 7", name="second")
    monkeypatch.setattr(device, "MODPROBE", (str(tmp_path / "missing"), str(first), str(second)))
    assert device.modprobe(["x"], wait=True, timeout=30) == 0
    # an explicit list (what fast.py passes to keep its own override) beats MODPROBE
    assert device.modprobe(["x"], wait=True, timeout=30, paths=(str(second),)) == 7
