"""The host half against a real libvirt: the domain XML that `fwcfg-agent host args --for
libvirt --domain-xml` printed is defined and started in a libvirt daemon this test starts for
itself, and the guest comes up configured. Once per channel: fw_cfg (<sysinfo type='fwcfg'>)
and SMBIOS OEM strings (<sysinfo type='smbios'> with <smbios mode='sysinfo'/>).

The daemon is Debian's libvirtd (libvirt-daemon, libvirt-daemon-driver-qemu: tools/bootstrap)
in session mode, everything under the test's directory: it runs as `nobody` with XDG_RUNTIME_DIR,
XDG_CONFIG_HOME, XDG_CACHE_HOME and HOME there (its sockets, its domains, QEMU's logs). Run as
root it would be the system daemon, whose state lives in /run, /var and /etc. The domain is
TCG (type='qemu'); its NIC is a virtio NIC on a UDP socket to 127.0.0.1: nothing leaves the
machine.
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
from .vm import RESULTS_MIB, Boot, qemu_slot

pytestmark = pytest.mark.guest

NOBODY = 65534
HOST = b"HOSTNAME=libvirt-guest.example.org\nDNS1=192.0.2.53\n"
NET0 = f"HWADDR={MAC0}\nIPADDR=192.0.2.88\nPREFIX=24\n".encode()


class Libvirtd:
    """A private libvirtd (session mode, as nobody) and virsh for it.

    pytest's directories are root's and 0700 all the way down from /tmp/pytest-of-root (which
    any pytest run resets to 0700), so nobody cannot reach them by their paths. The daemon runs
    in a mount namespace of its own (unshare -m, private propagation: the host's mounts do not
    change) where a tmpfs on /mnt shows the test's directory at /mnt/t and the lab's disks at
    /mnt/l; those two are made traversable (0711) and what QEMU writes, writable. virsh runs as
    root outside, on the daemon's socket."""

    def __init__(self, base: Path, disks: Path) -> None:
        self.base = base
        self.binds = {base: Path("/mnt/t"), disks: Path("/mnt/l")}
        t = self.binds[base]
        self.env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
            # short names: QEMU's monitor sockets live below these (sun_path: 108 bytes)
            "HOME": str(t / "h"), "XDG_RUNTIME_DIR": str(t / "r"),
            "XDG_CONFIG_HOME": str(t / "c"), "XDG_CACHE_HOME": str(t / "k"),
        }
        self.uri = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def inside(self, path: Path) -> Path:
        """PATH as the daemon and its QEMU see it."""
        for real, seen in self.binds.items():
            if real == path or real in path.parents:
                return seen / path.relative_to(real)
        return path

    def start(self) -> None:
        for sub in ("h", "r", "c/libvirt", "k"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "c/libvirt/libvirtd.conf").write_text("")
        # no virtlogd: QEMU writes its own log
        (self.base / "c/libvirt/qemu.conf").write_text('stdio_handler = "file"\n')
        for top in ("h", "r", "c", "k"):
            for d in (self.base / top, *(self.base / top).rglob("*")):
                os.chown(d, NOBODY, NOBODY)
        for real in self.binds:
            os.chmod(real, 0o711)
        mounts = "; ".join(f'mkdir {seen}; mount --bind "${i + 1}" {seen}'
                           for i, seen in enumerate(self.binds.values()))
        script = (f"set -e; mount -t tmpfs -o mode=0755 fwcfg-libvirt /mnt; {mounts}; "
                  f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups libvirtd")
        log = (self.base / "libvirtd.log").open("wb")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
             *map(str, self.binds)], env=self.env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=log)
        sock = self.base / "r/libvirt/libvirt-sock"
        deadline = time.monotonic() + 60
        while not sock.exists():
            assert self.proc.poll() is None, (self.base / "libvirtd.log").read_text()
            assert time.monotonic() < deadline, "libvirtd made no socket within 60 s"
            time.sleep(0.2)
        self.uri = f"qemu+unix:///session?socket={sock}"
        self.virsh("version")

    def virsh(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(["virsh", "-c", self.uri, *args], capture_output=True, text=True,
                           check=False, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
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
def libvirtd(agent_lab: Lab, tmp_path: Path) -> Iterator[Libvirtd]:
    missing = [t for t in ("libvirtd", "virsh", "setpriv", "unshare") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"the libvirt test needs {', '.join(missing)}: run tools/bootstrap")
    daemon = Libvirtd(tmp_path, agent_lab.workdir)
    try:
        with guard.confined(tmp_path, agent_lab.workdir):
            daemon.start()
        yield daemon
    finally:
        daemon.stop()


def skeleton(name: str, disk: Path, results: Path, console: Path, lab: Lab) -> str:
    """A TCG domain like tests/guest/vm.py's QEMU command line: kernel and initrd of the image,
    its disk, the results disk the collector writes to, one NIC with MAC0, a serial log (paths
    as the daemon sees them)."""
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
  <features><acpi/></features>
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
    name = f"fwh-{channel}"
    (work / "host.env").write_bytes(HOST)
    (work / "net0.env").write_bytes(NET0)
    results = work / "results.img"
    with results.open("wb") as fh:
        fh.truncate(RESULTS_MIB << 20)
    console = work / "console.log"
    disk = lab.new_disk("networkd")
    # the overlay names its base by a path relative to itself, which the daemon can follow
    base = lab.variant_disk("networkd")
    assert base.parent == disk.parent
    subprocess.run(["qemu-img", "rebase", "-u", "-F", "raw", "-b", base.name, str(disk)],
                   check=True)
    os.chmod(work, 0o777)  # QEMU writes its console log here
    for f in (results, disk):
        os.chmod(f, 0o666)
    inside = daemon.inside
    (work / "skeleton.xml").write_text(skeleton(name, inside(disk), inside(results),
                                                inside(console), lab))
    domain = host_args("--for", "libvirt", "--channel", channel, "--host-dir", str(inside(work)),
                       "--domain-xml", str(work / "skeleton.xml"),
                       f"opt/org.example/host={work / 'host.env'}",
                       f"opt/org.example/net0={work / 'net0.env'}")
    (work / "domain.xml").write_text(domain)
    daemon.virsh("define", str(work / "domain.xml"))
    with qemu_slot(lab.lock):
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
def test_libvirt(
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
        # the entries came by the OEM strings, as the journal says, not by some other way
        assert [e["channel"] for e in runs[0]["entries"]] == ["smbios", "smbios"], runs
