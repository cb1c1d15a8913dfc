"""The host half against a real QEMU: a guest booted with exactly the arguments that
`fwcfg-agent host args --for qemu` printed (split into words by bash, as a user's shell would)
comes up configured, and its fw_cfg directory holds QEMU's own items as many as
fwcfg_agent/host/names.py says (the slot budget `host check` uses)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fwcfg_agent.host.names import QEMU_ITEMS
from tests.agent import guard

from . import checks, image
from .lab import MAC0, Lab
from .vm import Boot, run_boot

pytestmark = pytest.mark.guest

HOST = b"HOSTNAME=printed.example.org\nDNS1=192.0.2.53\n"
NET0 = f"HWADDR={MAC0}\nIPADDR=192.0.2.77\nPREFIX=24\n".encode()


def host_args(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "fwcfg_agent", "host", "args", *args],
                       cwd=image.REPO, capture_output=True, text=True, check=False,
                       env={"PYTHONPATH": str(image.REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    return r.stdout


def shell_words(text: str) -> list[str]:
    """The words bash makes of TEXT pasted onto a command line."""
    r = subprocess.run(["bash", "-c", f"printf '%s\\0' {text}"], capture_output=True,
                       check=True)
    return [w.decode() for w in r.stdout.split(b"\0")[:-1]]


@dataclass
class PrintedBoot(Boot):
    """A boot whose fw_cfg items are the printed arguments, and nothing else."""

    printed: list[str] = field(default_factory=list)

    def qemu_argv(self, console: Path, results: Path) -> list[str]:
        return [*super().qemu_argv(console, results), *self.printed]


def test_guest_boots_with_the_printed_qemu_arguments(agent_lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "host.env").write_bytes(HOST)
    (tmp_path / "a,b c").mkdir()  # a comma (QEMU: ,,) and a space (the shell: quotes)
    (tmp_path / "a,b c" / "net0.env").write_bytes(NET0)
    printed = host_args("--for", "qemu", "--mac", MAC0,
                        f"opt/org.example/host={tmp_path / 'host.env'}",
                        f"opt/org.example/net0={tmp_path / 'a,b c' / 'net0.env'}")
    assert "a,,b c/net0.env'" in printed, printed
    words = shell_words(printed)
    assert words[0::2] == ["-fw_cfg", "-fw_cfg"], words
    with guard.confined(tmp_path, agent_lab.workdir, image.cache_dir()):
        disk = agent_lab.new_disk("networkd")
        boot = PrintedBoot(name="host-args-qemu", disk=disk, kernel=agent_lab.base.kernel,
                           initrd=agent_lab.base.initrd, workdir=agent_lab.workdir / "boots",
                           printed=words)
        r = run_boot(boot, agent_lab.lock)
    checks.agent_succeeded(r)
    checks.no_failed_units(r)
    assert r.hostname == "printed.example.org", r.describe()
    checks.has_ipv4(r, MAC0, "192.0.2.77/24")
    applied = checks.journal_with(r, checks.MSG_APPLIED)
    assert applied and "opt/org.example/host, opt/org.example/net0" in applied[0]["MESSAGE"]
    seen = r.fwcfg_names()
    assert seen["opt/org.example/net0"] == len(NET0) and seen["opt/org.example/host"] == len(HOST)
    qemu_own = [n for n in seen if not n.startswith("opt/")]
    assert len(qemu_own) == QEMU_ITEMS["q35"], (
        f"QEMU's own fw_cfg files in a q35 guest booted with -kernel: {sorted(qemu_own)}; "
        "fwcfg_agent/host/names.py QEMU_ITEMS must say how many")
