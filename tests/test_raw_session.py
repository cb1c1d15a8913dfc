"""open_raw_source: whether the device may be touched at all, and giving it back on every path."""

from __future__ import annotations

import errno
import glob
import os
import platform
import sys
from pathlib import Path
from typing import Callable

import pytest

from fwcfg_agent.errors import NoDeviceError, SourceError
from fwcfg_agent.sources.kernel import DRIVER_DIR, DriverBinding, find_device
from fwcfg_agent.sources.ports import PortIO, ioperm_error_message
from fwcfg_agent.sources.raw import RawSource, open_raw_source

from .fwcfg_model import IOPORTS_UNCLAIMED, FakeKernel, FwCfgModel, ModelViolation, rd, sel

MIB = 1 << 20
USER = {"opt/org.example/net": b"address=10.0.0.2/24\n"}


class Opener:
    """A port opener that hands out a model and remembers whether it was called."""

    def __init__(self, model: FwCfgModel) -> None:
        self.model = model
        self.calls = 0

    def __call__(self) -> FwCfgModel:
        self.calls += 1
        return self.model


def never_open() -> FwCfgModel:
    raise AssertionError("the ports must not be opened here")


def open_src(
    root: Path, opener: Callable[[], FwCfgModel], kernel: FakeKernel | None = None, **kw: object
) -> RawSource:
    return open_raw_source(
        root,
        max_entry_size=MIB,
        port_opener=opener,
        machine="x86_64",
        sysfs_write=kernel.write if kernel else None,
        **kw,  # type: ignore[arg-type]
    )


# --- is there a device? -------------------------------------------------------------------------


def test_no_acpi_device_no_dt_node_touches_nothing(tmp_path: Path) -> None:
    (tmp_path / "sys/bus/acpi/devices/PNP0A08:00").mkdir(parents=True)
    with pytest.raises(NoDeviceError, match="QEMU0002"):
        open_src(tmp_path, never_open)


# Paths of the real machine the refusal below may look at (read only); the suite's tripwire
# forbids them in general, so this one test lifts it and checks the paths itself.
_REAL_ALLOWED = ("/sys/bus/acpi/devices", "/proc/device-tree", "/sys/firmware/devicetree/base")
_real_seen: list[str] | None = None


def _record_real_paths(event: str, args: tuple[object, ...]) -> None:
    if _real_seen is None or event not in ("open", "os.listdir", "os.scandir") or not args:
        return
    path = args[0]
    if isinstance(path, (str, bytes, os.PathLike)):
        _real_seen.append(os.path.normpath(os.fsdecode(path)))


sys.addaudithook(_record_real_paths)


def test_real_root_without_qemu0002_refuses_before_any_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On this host (not a QEMU guest) nothing may reach port 0x510, with any opener: the device
    check comes first, looks only at where QEMU0002 / the DT node would be, and stops."""
    global _real_seen
    from . import conftest

    monkeypatch.setattr(conftest, "_armed", False)
    _real_seen = []
    try:
        if glob.glob("/sys/bus/acpi/devices/QEMU0002:*"):
            pytest.skip("this machine is a QEMU guest")
        with pytest.raises(NoDeviceError):
            open_raw_source(Path("/"), max_entry_size=MIB, port_opener=never_open)
        # with the real port layer too: _portio is never even imported
        with pytest.raises(NoDeviceError):
            open_raw_source(Path("/"), max_entry_size=MIB)
        seen = list(_real_seen)
    finally:
        _real_seen = None
    absolute = [p for p in seen if p.startswith("/")]
    assert absolute, "the check looked nowhere"
    for p in absolute:
        assert p.startswith(_REAL_ALLOWED), f"the refusal touched {p}"


def test_test_root_never_gets_the_real_ports(tmp_path: Path) -> None:
    FakeKernel(tmp_path)
    with pytest.raises(SourceError, match="refusing to open the real I/O ports"):
        open_raw_source(tmp_path, max_entry_size=MIB, machine="x86_64")


def test_acpi_device_not_present_by_status(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path)
    (k.device_dir / "status").write_text("0\n")
    with pytest.raises(NoDeviceError):
        open_src(tmp_path, never_open)


def test_acpi_device_present_by_status(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path)
    (k.device_dir / "status").write_text("15\n")
    with open_src(tmp_path, Opener(FwCfgModel("qemu", USER))) as src:
        assert "opt/org.example/net" in [e.name for e in src.entries()]


@pytest.mark.parametrize("base", ["proc/device-tree", "sys/firmware/devicetree/base"])
def test_device_tree_node_is_found_but_mmio_unsupported(tmp_path: Path, base: str) -> None:
    node = tmp_path / base / "fw-cfg@9020000"
    node.mkdir(parents=True)
    (node / "compatible").write_bytes(b"qemu,fw-cfg-mmio\0")
    assert find_device(tmp_path).kind == "dt"
    with pytest.raises(SourceError, match="memory-mapped") as info:
        open_src(tmp_path, never_open)
    assert not isinstance(info.value, NoDeviceError)


def test_device_tree_node_with_other_compatible_is_not_fw_cfg(tmp_path: Path) -> None:
    node = tmp_path / "proc/device-tree/fw-cfg@9020000"
    node.mkdir(parents=True)
    (node / "compatible").write_bytes(b"vendor,something\0")
    with pytest.raises(NoDeviceError):
        open_src(tmp_path, never_open)


def test_non_x86_refused_before_ports(tmp_path: Path) -> None:
    FakeKernel(tmp_path)
    with pytest.raises(SourceError, match="x86 I/O ports only"):
        open_raw_source(tmp_path, max_entry_size=MIB, port_opener=never_open, machine="aarch64")


def test_foreign_owner_of_the_ports_refused(tmp_path: Path) -> None:
    FakeKernel(tmp_path)
    (tmp_path / "proc/ioports").write_text(
        IOPORTS_UNCLAIMED.replace("0510-051b : QEMU0002:00", "0500-051f : some-sensor")
    )
    with pytest.raises(SourceError, match="belong to something else.*some-sensor"):
        open_src(tmp_path, never_open)


def test_absent_device_behind_acpi(tmp_path: Path) -> None:
    FakeKernel(tmp_path)
    model = FwCfgModel("absent")
    with pytest.raises(NoDeviceError, match="0xff"):
        open_src(tmp_path, Opener(model))
    assert model.log == [sel(0), rd(4)]
    assert model.closed


# --- the kernel driver --------------------------------------------------------------------------


def test_unclaimed_device_is_read_without_unbinding(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=False)
    model = FwCfgModel("qemu", USER)
    with open_src(tmp_path, Opener(model), k) as src:
        e = next(x for x in src.entries() if x.name == "opt/org.example/net")
        assert src.read(e) == USER[e.name]
    assert k.events == []
    assert model.closed


def test_claimed_device_is_unbound_then_rebound(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=True)
    model = FwCfgModel("qemu", USER)
    seen: list[bool] = []
    with open_src(tmp_path, Opener(model), k) as src:
        seen.append(k.bound)
        e = next(x for x in src.entries() if x.name == "opt/org.example/net")
        assert src.read(e) == USER[e.name]
    assert seen == [False]
    assert k.events == [("unbind", "QEMU0002:00"), ("bind", "QEMU0002:00")]
    assert k.bound and model.closed


def test_rebind_when_probe_raises(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=True)
    model = FwCfgModel("qemu")
    model.items[0] = b"nope"
    with pytest.raises(SourceError, match="not fw_cfg"):
        open_src(tmp_path, Opener(model), k)
    assert k.events == [("unbind", "QEMU0002:00"), ("bind", "QEMU0002:00")]
    assert k.bound and model.closed


def test_rebind_when_a_read_raises(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=True)
    model = FwCfgModel("qemu", USER)
    src = open_src(tmp_path, Opener(model), k)
    e = next(x for x in src.entries() if x.name == "opt/org.example/net")
    model.items[e.key] = b""  # the device misbehaves: the strict model raises on the read
    with pytest.raises(ModelViolation), src:
        src.read(e)
    assert k.events == [("unbind", "QEMU0002:00"), ("bind", "QEMU0002:00")]
    assert k.bound and model.closed


def test_rebind_when_caller_raises_anything(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=True)
    with pytest.raises(KeyboardInterrupt), open_src(tmp_path, Opener(FwCfgModel("qemu")), k):
        raise KeyboardInterrupt
    assert k.bound


def test_rebind_when_nobody_closes(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=True)
    src = open_src(tmp_path, Opener(FwCfgModel("qemu")), k)
    assert not k.bound
    del src  # collected: the finalizer gives the device back
    import gc

    gc.collect()
    assert k.bound


def test_rebind_happens_once(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=True)
    src = open_src(tmp_path, Opener(FwCfgModel("qemu")), k)
    src.close()
    src.close()
    assert k.events.count(("bind", "QEMU0002:00")) == 1


def test_unbind_refused_by_option(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=True)
    model = FwCfgModel("qemu")
    with pytest.raises(SourceError, match="driver holds the device"):
        open_src(tmp_path, Opener(model), k, unbind_driver=False)
    assert k.events == [] and model.log == [] and model.closed


def test_unbind_failure_touches_nothing(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=True)
    k.fail_unbind = True
    model = FwCfgModel("qemu")
    with pytest.raises(SourceError, match="cannot unbind QEMU0002:00"):
        open_src(tmp_path, Opener(model), k)
    assert model.log == [] and k.bound
    assert k.events == [("unbind", "QEMU0002:00")]  # nothing was unbound: nothing to rebind


def test_driver_still_claiming_after_unbind(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=True)
    k.release_on_unbind = False  # e.g. another device instance keeps the region
    model = FwCfgModel("qemu")
    with pytest.raises(SourceError, match="still holds.*and then: could not rebind"):
        open_src(tmp_path, Opener(model), k)
    assert model.log == []


def test_claimed_but_no_bound_device(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=True)
    (k.driver / k.DEVICE).unlink()
    with pytest.raises(SourceError, match="no device is bound"):
        open_src(tmp_path, Opener(FwCfgModel("qemu")), k)


def test_rebind_failure_reported(tmp_path: Path) -> None:
    k = FakeKernel(tmp_path, driver_bound=True)
    src = open_src(tmp_path, Opener(FwCfgModel("qemu")), k)
    k.fail_bind = True
    with pytest.raises(SourceError, match="could not rebind.*QEMU0002:00"):
        src.close()


def test_driver_loading_mid_session_is_detected(tmp_path: Path) -> None:
    """udev loads qemu_fw_cfg while the raw reader works: its probe interleaves with ours."""
    k = FakeKernel(tmp_path, driver_bound=False)
    model = FwCfgModel("qemu", USER)
    src = open_src(tmp_path, Opener(model), k)
    k.load_driver()
    with pytest.raises(SourceError, match="took the device"):
        src.read(src.entries()[-1])
    src.close()


# --- the ports ----------------------------------------------------------------------------------


def test_eperm_from_ioperm_is_a_clear_message(tmp_path: Path) -> None:
    FakeKernel(tmp_path)

    def refused() -> FwCfgModel:
        raise SourceError(ioperm_error_message(PermissionError(errno.EPERM, "x"), tmp_path))

    with pytest.raises(
        SourceError, match=r"refused access to I/O ports 0x510-0x51b .*CAP_SYS_RAWIO"
    ):
        open_src(tmp_path, refused)


def test_ioperm_message_names_lockdown(tmp_path: Path) -> None:
    sec = tmp_path / "sys/kernel/security"
    sec.mkdir(parents=True)
    (sec / "lockdown").write_text("none [integrity] confidentiality\n")
    msg = ioperm_error_message(PermissionError(errno.EPERM, "x"), tmp_path)
    assert "Operation not permitted" in msg and "lockdown is 'integrity'" in msg
    (sec / "lockdown").write_text("[none] integrity confidentiality\n")
    assert "lockdown" not in ioperm_error_message(PermissionError(errno.EPERM, "x"), tmp_path)


def test_real_port_layer_maps_eperm(monkeypatch: pytest.MonkeyPatch) -> None:
    """PortIO turns the helper's PermissionError into SourceError (helper replaced by a fake)."""

    class FakeHelper:
        @staticmethod
        def acquire() -> None:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    import sys

    monkeypatch.setitem(sys.modules, "fwcfg_agent.sources._portio", FakeHelper)
    with pytest.raises(SourceError, match="CAP_SYS_RAWIO"):
        PortIO()


def test_missing_helper_is_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "fwcfg_agent.sources._portio", None)  # import fails
    with pytest.raises(SourceError, match="compiled helper"):
        PortIO()


def test_lock_excludes_a_second_reader(tmp_path: Path) -> None:
    FakeKernel(tmp_path)
    first = open_src(tmp_path, Opener(FwCfgModel("qemu")))
    with pytest.raises(SourceError, match="another process"):
        open_src(tmp_path, Opener(FwCfgModel("qemu")), lock_timeout=0.1)
    first.close()
    open_src(tmp_path, Opener(FwCfgModel("qemu")), lock_timeout=0.1).close()


def test_opener_failure_releases_lock(tmp_path: Path) -> None:
    FakeKernel(tmp_path)

    def boom() -> FwCfgModel:
        raise SourceError("nope")

    with pytest.raises(SourceError, match="nope"):
        open_src(tmp_path, boom)
    open_src(tmp_path, Opener(FwCfgModel("qemu")), lock_timeout=0.1).close()


def test_machine_default_is_this_one() -> None:
    assert platform.machine()  # the default `machine` comes from here


def test_rebind_refused_by_the_kernel_falls_back_to_reloading_the_module(tmp_path: Path) -> None:
    """Linux 6.1 answers EBUSY to a bind after an unbind; a module reload probes afresh."""
    import errno as _errno

    driver = tmp_path / DRIVER_DIR
    driver.mkdir(parents=True)
    (driver / "QEMU0002:00").symlink_to(tmp_path)

    def write(path: Path, value: str) -> None:
        if path.name == "unbind":
            (driver / value).unlink()
        else:
            raise OSError(_errno.EBUSY, "Device or resource busy")

    def reload_ok() -> bool:
        (driver / "QEMU0002:00").symlink_to(tmp_path)
        return True

    b = DriverBinding(tmp_path, write, reload=reload_ok)
    b.unbind()
    b.rebind()
    assert b.bound_devices() == ["QEMU0002:00"]

    b = DriverBinding(tmp_path, write, reload=lambda: False)
    b.unbind()
    with pytest.raises(SourceError, match="could not rebind"):
        b.rebind()


@pytest.mark.parametrize("fail_remove", [False, True])
def test_module_reload_runs_modprobe_remove_then_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_remove: bool
) -> None:
    """The reload behind a refused rebind: `modprobe -r`, then `modprobe`, through
    fwcfg_agent.device.modprobe (here a model of modprobe); a failed removal stops it."""
    from fwcfg_agent import device
    from fwcfg_agent.sources import kernel

    script = tmp_path / "modprobe"
    script.write_text(
        f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n'
        + ('case "$*" in *-r*) exit 1;; esac\n' if fail_remove else "")
    )
    script.chmod(0o755)
    monkeypatch.setattr(device, "MODPROBE", (str(script),))
    assert kernel._reload_module() is not fail_remove
    expected = ["-q -r -a qemu_fw_cfg"] + ([] if fail_remove else ["-q -a qemu_fw_cfg"])
    assert (tmp_path / "calls").read_text().splitlines() == expected
