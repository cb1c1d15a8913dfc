"""The host half against a real libvirt: the domain XML that `fwcfg-agent host args --for
libvirt --domain-xml` printed is defined and started in a libvirt daemon this test starts for
itself, and the guest comes up configured. Once per channel: fw_cfg (<sysinfo type='fwcfg'>)
and SMBIOS OEM strings (<sysinfo type='smbios'> with <smbios mode='sysinfo'/>).

The daemon is Debian's libvirtd (libvirt-daemon, libvirt-daemon-driver-qemu: tools/bootstrap)
in session mode, everything under the test's directory: it runs as `nobody` with XDG_RUNTIME_DIR,
XDG_CONFIG_HOME, XDG_CACHE_HOME and HOME there (its sockets, its domains, QEMU's logs). Run as
root it would be the system daemon, whose state lives in /run, /var and /etc. It keeps two
capabilities (DAC_OVERRIDE, DAC_READ_SEARCH, ambient, passed on to QEMU) so that QEMU can open
the disks in pytest's private (0700, root's) directories. The domain is TCG (type='qemu'); its
NIC is a virtio NIC on a UDP socket to 127.0.0.1: nothing leaves the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

from tests.agent import guard

from . import checks, image
from .lab import MAC0, Lab
from .results import BootResult
from .vm import RESULTS_MIB, Boot, _one_qemu_at_a_time

pytestmark = pytest.mark.guest

NOBODY = 65534
CAPS = "+dac_override,+dac_read_search"
HOST = b"HOSTNAME=libvirt-guest.example.org\nDNS1=192.0.2.53\n"
NET0 = f"HWADDR={MAC0}\nIPADDR=192.0.2.88\nPREFIX=24\n".encode()


class Libvirtd:
    """A private libvirtd (session mode, as nobody) and virsh for it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
            "HOME": str(base / "home"), "XDG_RUNTIME_DIR": str(base / "run"),
            "XDG_CONFIG_HOME": str(base / "config"), "XDG_CACHE_HOME": str(base / "cache"),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def _as_nobody(self, *argv: str) -> list[str]:
        return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                f"--inh-caps={CAPS}", f"--ambient-caps={CAPS}", *argv]

    def start(self) -> None:
        for sub in ("home", "run", "config/libvirt", "cache"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        # no virtlogd: QEMU writes its own log; keep the capabilities the test gives QEMU
        (self.base / "config/libvirt/qemu.conf").write_text(
            'stdio_handler = "file"\nclear_emulator_capabilities = 0\n')
        for d in (self.base, *self.base.rglob("*")):
            os.chown(d, NOBODY, NOBODY)
        log = (self.base / "libvirtd.log").open("wb")
        self.proc = subprocess.Popen(self._as_nobody("libvirtd"), env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        sock = self.base / "run/libvirt/libvirt-sock"
        deadline = time.monotonic() + 60
        while not sock.exists():
            assert self.proc.poll() is None, (self.base / "libvirtd.log").read_text()
            assert time.monotonic() < deadline, "libvirtd made no socket within 60 s"
            time.sleep(0.2)
        self.virsh("version")

    def virsh(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(self._as_nobody("virsh", "-c", "qemu:///session", *args),
                           env=self.env, capture_output=True, text=True, check=False)
        assert r.returncode == 0 or not check, f"virsh {' '.join(args)}: {r.stderr}"
        return r.stdout

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def libvirtd(tmp_path: Path) -> Iterator[Libvirtd]:
    missing = [t for t in ("libvirtd", "virsh", "setpriv") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"the libvirt test needs {', '.join(missing)}: run tools/bootstrap")
    daemon = Libvirtd(tmp_path / "libvirt")
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


def skeleton(name: str, disk: Path, results: Path, console: Path, lab: Lab) -> str:
    """A TCG domain like tests/guest/vm.py's QEMU command line: kernel and initrd of the image,
    its disk, the results disk the collector writes to, one NIC with MAC0, a serial log."""
    cmdline = " ".join(Boot(name, disk, lab.base.kernel, lab.base.initrd, lab.workdir)
                       .append().split())
    return f"""<domain type='qemu'>
  <name>{escape(name)}</name>
  <memory unit='MiB'>1024</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{escape(str(lab.base.kernel))}</kernel>
    <initrd>{escape(str(lab.base.initrd))}</initrd>
    <cmdline>{escape(cmdline)}</cmdline>
  </os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='unsafe'/>
      <source file={quoteattr(str(disk))}/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='unsafe'/>
      <source file={quoteattr(str(results))}/>
      <target dev='vdb' bus='virtio'/>
      <serial>fwcfg-results</serial>
    </disk>
    <interface type='udp'>
      <mac address='{MAC0}'/>
      <source address='127.0.0.1' port='47001'>
        <local address='127.0.0.1' port='47002'/>
      </source>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>
    <serial type='file'>
      <source path={quoteattr(str(console))}/>
      <target port='0'/>
    </serial>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def host_args(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "fwcfg_agent", "host", "args", *args],
                       capture_output=True, text=True, check=False,
                       env={"PYTHONPATH": str(image.REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    return r.stdout


def boot_with_libvirt(lab: Lab, daemon: Libvirtd, work: Path, channel: str) -> BootResult:
    name = f"fwcfg-host-{channel}"
    (work / "host.env").write_bytes(HOST)
    (work / "net0.env").write_bytes(NET0)
    results = work / "results.img"
    with results.open("wb") as fh:
        fh.truncate(RESULTS_MIB << 20)
    console = work / "console.log"
    disk = lab.new_disk("networkd")
    (work / "skeleton.xml").write_text(skeleton(name, disk, results, console, lab))
    domain = host_args("--for", "libvirt", "--channel", channel,
                       "--domain-xml", str(work / "skeleton.xml"),
                       f"opt/org.example/host={work / 'host.env'}",
                       f"opt/org.example/net0={work / 'net0.env'}")
    (work / "domain.xml").write_text(domain)
    for d in (work, results):
        os.chmod(d, 0o777 if d.is_dir() else 0o666)
    daemon.virsh("define", str(work / "domain.xml"))
    with _one_qemu_at_a_time(lab.lock):
        started = time.monotonic()
        daemon.virsh("start", name)
        while daemon.virsh("domstate", name).strip() != "shut off":
            if time.monotonic() - started > 300:
                daemon.virsh("destroy", name, check=False)
                pytest.fail(f"{name} did not power off within 300 s; console {console}")
            time.sleep(1)
        seconds = time.monotonic() - started
    out = work / "results"
    out.mkdir()
    with tarfile.open(results, "r:") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(out, filter="data")
        else:
            tar.extractall(out)
    return BootResult(name=name, dir=out, console=console, wall_seconds=seconds)


@pytest.mark.parametrize("channel", ["fwcfg", "smbios"])
def test_libvirt_domain_from_host_args_comes_up_configured(
        agent_lab: Lab, libvirtd: Libvirtd, tmp_path: Path, channel: str) -> None:
    work = tmp_path / "boot"
    work.mkdir()
    with guard.confined(tmp_path, agent_lab.workdir, image.cache_dir()):
        r = boot_with_libvirt(agent_lab, libvirtd, work, channel)
    checks.agent_succeeded(r)
    checks.no_failed_units(r)
    assert r.hostname == "libvirt-guest.example.org", r.describe()
    checks.has_ipv4(r, MAC0, "192.0.2.88/24")
    applied = checks.journal_with(r, checks.MSG_APPLIED)
    assert applied, r.describe()
    assert "opt/org.example/host, opt/org.example/net0" in applied[0]["MESSAGE"], applied
    runs = checks.apply_runs_this_boot(r)
    assert [e["name"] for e in runs[0]["entries"]] == ["opt/org.example/host",
                                                       "opt/org.example/net0"], runs
    names = r.fwcfg_names()
    if channel == "fwcfg":
        assert names["opt/org.example/net0"] == len(NET0), names
    else:
        assert not any(n.startswith("opt/") for n in names), names
