"""Entries by SMBIOS OEM strings and systemd credentials (issue 15), over three boots of one disk
with two NICs:

1. OEM strings only, no -fw_cfg at all: Somlo's payload (examples/GuestInfo.env, its comma
   doubled for QEMU) by `value=`, the second NIC's entry by `path=`, and a systemd credential
   (`io.systemd.credential:fwcfg-agent.dns=...`, which PID 1 of systemd 252 imports into
   /run/credentials/@system): the guest comes up configured, each entry's channel journalled;
2. the same again: the fast path replays the record (DMI table and credentials included);
3. both channels at once, each with different entries: fw_cfg carries the host name and the
   second NIC's entry (moved from SMBIOS without renaming, with a new address), SMBIOS carries
   Somlo's payload, and the credential comes by fw_cfg (opt/io.systemd.credentials/), which PID 1
   imports too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.agent import guard

from . import checks
from .lab import MAC0, Lab
from .results import BootResult
from .vm import FwCfg, Nic, OemString

pytestmark = pytest.mark.guest

REPO = Path(__file__).resolve().parents[2]
GUESTINFO = (REPO / "examples/GuestInfo.env").read_text()  # web1.example.com, 192.0.2.10
MAC1 = "52:54:00:fc:00:02"
NET1 = f"HWADDR={MAC1}\nIPADDR=10.0.20.2\nPREFIX=24\n"
NET1_MOVED = f"HWADDR={MAC1}\nIPADDR=10.0.20.3\nPREFIX=24\n"
DNS = "DNS1=192.0.2.53\n"
NICS = (Nic(MAC0, 3), Nic(MAC1, 7))
NETWORK0 = "/etc/systemd/network/10-fwcfg-enx525400fc0001.network"
# What the guest's systemd imported, and its version: the collector keeps this (pre.out).
PRE = "ls -1 /run/credentials/@system\nsystemctl --version | head -n1\n"


@dataclass
class Boots:
    lab: Lab
    disk: Path
    workdir: Path
    boots: dict[str, BootResult] = field(default_factory=dict)

    def _oem_only(self) -> list[OemString]:
        net1 = self.workdir / "net1, by path.txt"  # a comma in the path: doubled for QEMU
        net1.write_text("fwcfg-agent:opt/org.example/net1=" + NET1)
        return [OemString(value="fwcfg-agent:opt/GuestInfo=" + GUESTINFO),
                OemString(path=net1),
                OemString(value="io.systemd.credential:fwcfg-agent.dns=" + DNS),
                OemString(value="vendor string, not the agent's")]

    def _boot(self, name: str, **kw: object) -> BootResult:
        if name not in self.boots:
            self.boots[name] = self.lab.boot(f"channels-{name}", self.disk, nics=NICS, pre=PRE,
                                             **kw)  # type: ignore[arg-type]
        return self.boots[name]

    def oem_only(self) -> BootResult:
        return self._boot("oem-only", smbios=self._oem_only())

    def later(self) -> BootResult:
        self.oem_only()
        return self._boot("later", smbios=self._oem_only())

    def both(self) -> BootResult:
        self.later()
        b64 = base64.b64encode(GUESTINFO.encode()).decode()
        return self._boot(
            "both",
            fw_cfg=[FwCfg("opt/org.example/host", string="HOSTNAME=both.example.com\n"),
                    FwCfg("opt/org.example/net1", string=NET1_MOVED),
                    FwCfg("opt/io.systemd.credentials/fwcfg-agent.dns", string=DNS)],
            smbios=[OemString(value="fwcfg-agent.base64:opt/GuestInfo=" + b64)])


@pytest.fixture(scope="module")
def seq(agent_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Boots:
    return Boots(agent_lab, agent_lab.new_disk("networkd"), tmp_path_factory.mktemp("oem"))


@pytest.fixture(autouse=True)
def lab_writes(seq: Boots, tmp_path: Path) -> Iterator[None]:
    """The write guard (tests/conftest.py) allows the test's tmp_path only; a boot takes the
    lab's QEMU lock and writes its disks, console log and results under the lab's directory, and
    the path= file under ours."""
    guard.arm([tmp_path, seq.lab.workdir, seq.workdir, seq.lab.lock])
    yield


def _entries(r: BootResult) -> list[tuple[str, str]]:
    (run,) = checks.apply_runs_this_boot(r)
    return [(e["name"], e["channel"]) for e in run["entries"]]


def test_oem_strings_alone_configure_the_guest(seq: Boots) -> None:
    r = seq.oem_only()
    checks.agent_succeeded(r)
    checks.no_failed_units(r)
    assert "fwcfg-agent.dns" in r.text("pre.out").split(), r.text("pre.out")
    assert r.hostname == "web1.example.com", r.describe()
    checks.has_ipv4(r, MAC0, "192.0.2.10/24")
    checks.has_ipv4(r, MAC1, "10.0.20.2/24")
    assert "192.0.2.53" in (r.file(NETWORK0) or ""), r.file(NETWORK0)
    assert _entries(r) == [("opt/GuestInfo", "smbios"), ("opt/fwcfg-agent/dns", "credential"),
                           ("opt/org.example/net1", "smbios")], r.text("agent-runs.json")
    # fw_cfg is there (QEMU always has it) but carries nothing for the agent
    assert not [n for n in r.fwcfg_names() if n.startswith("opt/")], r.fwcfg_names()
    checks.ran_before(r, "systemd-networkd.service")
    print(f"OEM strings, first boot: {r.blame()}")


def test_a_later_boot_takes_the_fast_path(seq: Boots) -> None:
    r = seq.later()
    checks.agent_succeeded(r)
    journal = r.text("agent-journal.txt")
    assert checks.journal_with(r, checks.MSG_UNCHANGED), journal
    assert "full run" not in journal, journal
    (run,) = checks.apply_runs_this_boot(r)
    assert run["outcome"] == "unchanged", run
    assert _entries(r) == _entries(seq.oem_only())
    assert r.hostname == "web1.example.com"
    checks.has_ipv4(r, MAC1, "10.0.20.2/24")
    print(f"OEM strings, later boot: {r.blame()}")


def test_both_channels_at_once(seq: Boots) -> None:
    r = seq.both()
    checks.agent_succeeded(r)
    checks.no_failed_units(r)
    assert "full run: " in r.text("agent-journal.txt"), r.text("agent-journal.txt")
    assert "fwcfg-agent.dns" in r.text("pre.out").split(), r.text("pre.out")
    assert _entries(r) == [("opt/GuestInfo", "smbios"), ("opt/fwcfg-agent/dns", "credential"),
                           ("opt/org.example/host", "fw_cfg"), ("opt/org.example/net1", "fw_cfg")]
    assert r.hostname == "both.example.com", r.describe()  # the later name wins
    checks.has_ipv4(r, MAC0, "192.0.2.10/24")
    checks.has_ipv4(r, MAC1, "10.0.20.3/24")
    assert "192.0.2.53" in (r.file(NETWORK0) or "")
