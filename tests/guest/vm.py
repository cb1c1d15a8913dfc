"""Boots one guest under QEMU (TCG only, never KVM) with fw_cfg entries, SMBIOS OEM strings,
virtio NICs on restricted user networking and a results disk, within a hard time limit."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .results import BootResult

DEFAULT_TIMEOUT = float(os.environ.get("FWCFG_GUEST_TIMEOUT", "360"))
RESULTS_MIB = 64


class GuestError(AssertionError):
    """A boot that did not finish or did not report: carries the end of its console log."""


@dataclass(frozen=True)
class FwCfg:
    """One `-fw_cfg` item: name plus either inline text (`string=`) or a host file (`file=`)."""

    name: str
    string: str | None = None
    file: Path | None = None

    def arg(self) -> str:
        if len(self.name) > 55:
            raise ValueError(f"fw_cfg name longer than 55 characters: {self.name}")
        if self.file is not None:
            return f"name={self.name},file={self.file}"
        assert self.string is not None
        # QEMU's option parser: a comma inside a value is written twice.
        return f"name={self.name},string={self.string.replace(',', ',,')}"


@dataclass(frozen=True)
class OemString:
    """One `-smbios type=11` OEM string: inline text (`value=`) or a host file (`path=`)."""

    value: str | None = None
    path: Path | None = None

    def arg(self) -> str:
        # QEMU's option parser: a comma inside a value is written twice (a path's too).
        if self.path is not None:
            return "type=11,path=" + str(self.path).replace(",", ",,")
        assert self.value is not None
        return "type=11,value=" + self.value.replace(",", ",,")


@dataclass(frozen=True)
class Nic:
    mac: str
    pci_addr: int  # PCI slot on the q35 root bus: decides the kernel's name (enp0s<slot>)


@dataclass
class Boot:
    """Everything that differs between boots."""

    name: str
    disk: Path
    kernel: Path
    initrd: Path
    workdir: Path
    fw_cfg: Sequence[FwCfg] = ()
    smbios: Sequence[OemString] = ()
    nics: Sequence[Nic] = (Nic("52:54:00:fc:00:01", 3),)
    cmdline: Sequence[str] = ()
    pre: str | None = None  # shell snippet the collector runs before collecting
    timeout: float = DEFAULT_TIMEOUT
    memory_mib: int = 1024
    extra_files: dict[str, str] = field(default_factory=dict)

    def append(self) -> str:
        words = [
            "root=/dev/vda",
            "rw",
            "console=ttyS0,115200",
            "panic=-1",
            "systemd.show_status=1",
            "systemd.journald.forward_to_console=0",
            *self.cmdline,
        ]
        if self.pre is not None:
            words.append("fwcfg_test.pre=" + base64.b64encode(self.pre.encode()).decode())
        return " ".join(words)

    def qemu_argv(self, console: Path, results: Path) -> list[str]:
        argv = [
            "qemu-system-x86_64",
            "-machine", "q35,accel=tcg",
            "-cpu", "max",
            "-smp", "1",
            "-m", str(self.memory_mib),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(self.kernel),
            "-initrd", str(self.initrd),
            "-append", self.append(),
            "-serial", f"file:{console}",
            "-drive", f"file={self.disk},if=none,id=root,format=qcow2,cache=unsafe",
            "-device", "virtio-blk-pci,drive=root,addr=0x10",
            "-drive", f"file={results},if=none,id=res,format=raw,cache=unsafe",
            "-device", "virtio-blk-pci,drive=res,serial=fwcfg-results,addr=0x11",
            "-device", "virtio-rng-pci,addr=0x12",
        ]  # fmt: skip
        for i, nic in enumerate(self.nics):
            # romfile= : no iPXE option ROM, the guest boots its kernel directly
            dev = f"virtio-net-pci,netdev=n{i},mac={nic.mac},addr={nic.pci_addr:#x},romfile="
            argv += ["-netdev", f"user,id=n{i},restrict=on", "-device", dev]
        for item in self.fw_cfg:
            argv += ["-fw_cfg", item.arg()]
        for oem in self.smbios:
            argv += ["-smbios", oem.arg()]
        return argv


# How many guests may run at once on this machine (across processes: the suite's xdist workers,
# or two suites). A TCG guest keeps one core busy with its vCPU thread; on the 2-core machines
# this suite runs on, two at a time halve the suite's time and leave each boot about as fast.
SLOTS = int(os.environ.get("FWCFG_GUEST_JOBS", "2"))


@contextlib.contextmanager
def qemu_slot(slots: Path) -> Iterator[None]:
    """Holds one of SLOTS lock files in the directory `slots` while a guest runs: at most SLOTS
    guests at a time across processes. Waits for a free slot."""
    if not slots.is_dir():  # (an existing directory is not made again: no write at all)
        slots.mkdir(parents=True, exist_ok=True)
    while True:
        for i in range(max(SLOTS, 1)):
            fh = (slots / f"slot-{i}").open("w")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()
            return
        time.sleep(0.5)


def _tail(path: Path, lines: int = 120) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no console log)"
    return "\n".join(text.splitlines()[-lines:])


def run_boot(boot: Boot, lock: Path) -> BootResult:
    """Boots, waits for power-off or the time limit, and returns what the guest collected."""
    work = boot.workdir / boot.name
    work.mkdir(parents=True, exist_ok=True)
    console = work / "console.log"
    results = work / "results.img"
    with results.open("wb") as fh:
        fh.truncate(RESULTS_MIB << 20)
    argv = boot.qemu_argv(console, results)
    (work / "qemu-argv.txt").write_text("\n".join(argv) + "\n")
    with qemu_slot(lock):
        started = time.monotonic()
        with (work / "qemu.log").open("wb") as qlog:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT
            )
            try:
                rc = proc.wait(timeout=boot.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise GuestError(
                    f"guest {boot.name!r} did not power off within {boot.timeout:.0f}s "
                    f"(QEMU killed). Console log {console}, last lines:\n{_tail(console)}"
                ) from None
        seconds = time.monotonic() - started
    if rc != 0:
        raise GuestError(
            f"QEMU for {boot.name!r} exited {rc}: {_tail(work / 'qemu.log', 20)}\n"
            f"console:\n{_tail(console)}"
        )
    out = work / "results"
    out.mkdir(exist_ok=True)
    try:
        with tarfile.open(results, "r:") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(out, filter="data")
            else:  # an older 3.9 without extraction filters: the archive is our own guest's
                tar.extractall(out)
    except tarfile.TarError as exc:
        raise GuestError(
            f"guest {boot.name!r} powered off without results ({exc}). Console log {console}, "
            f"last lines:\n{_tail(console)}"
        ) from None
    return BootResult(name=boot.name, dir=out, console=console, wall_seconds=seconds)
