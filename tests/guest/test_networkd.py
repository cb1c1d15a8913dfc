"""Somlo's payload on a systemd-networkd guest, over four boots of one disk:

1. first boot: hostname, files, the static address brought up by networkd; the unit's ordering;
   the agent's journal entries and run journal;
2. the same entries again: nothing changes;
3. a changed IPADDR: only what must change changes;
4. agent switched off (fwcfg-agent=off), `fwcfg-agent rollback <first run>`: the first boot's
   originals are back, byte for byte.
Plus a second disk: Somlo's payload with PREFIX and GATEWAY (the default route).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from . import checks
from .lab import MAC0, Lab
from .results import BootResult
from .vm import FwCfg

pytestmark = pytest.mark.guest

SOMLO = "HOSTNAME=somlo-guest\nIPADDR=192.168.122.50\n"
SOMLO_CHANGED = "HOSTNAME=somlo-guest\nIPADDR=192.168.122.51\n"
SOMLO_GW = "HOSTNAME=somlo-gw\nIPADDR=10.11.12.13\nPREFIX=28\nGATEWAY=10.11.12.1\n"


@dataclass
class Boots:
    """The four boots of one disk, run lazily and in order (each test asks for what it needs)."""

    lab: Lab
    disk: Path
    boots: dict[str, BootResult] = field(default_factory=dict)

    def _boot(
        self, name: str, payload: str, cmdline: tuple[str, ...] = (), pre: str | None = None
    ) -> BootResult:
        if name not in self.boots:
            entries = [FwCfg("opt/GuestInfo", string=payload)]
            self.boots[name] = self.lab.boot(
                f"networkd-{name}", self.disk, entries, cmdline=cmdline, pre=pre
            )
        return self.boots[name]

    def first(self) -> BootResult:
        return self._boot("first", SOMLO)

    def second(self) -> BootResult:
        self.first()
        return self._boot("second", SOMLO)

    def changed(self) -> BootResult:
        self.second()
        return self._boot("changed-ip", SOMLO_CHANGED)

    def rolled_back(self) -> BootResult:
        self.changed()
        pre = (
            "run=$(fwcfg-agent journal --json | python3 -c 'import json,sys; "
            'print([r["run"] for r in json.load(sys.stdin) if r.get("command") == "apply" '
            'and r.get("files")][0])\')\n'
            'echo "rolling back $run"\nfwcfg-agent rollback "$run"\n'
        )
        return self._boot("rollback", SOMLO_CHANGED, cmdline=("fwcfg-agent=off",), pre=pre)


@pytest.fixture(scope="module")
def seq(agent_lab: Lab) -> Boots:
    return Boots(agent_lab, agent_lab.new_disk("networkd"))


def _network_files(r: BootResult) -> list[str]:
    return sorted(p for p in r.etc() if p.startswith("/etc/systemd/network/"))


def test_somlo_payload_configures_hostname_files_and_address(seq: Boots) -> None:
    r = seq.first()
    checks.agent_succeeded(r)
    checks.reached_multi_user(r)
    checks.no_failed_units(r)
    assert r.hostname == "somlo-guest", r.describe()
    assert r.file("/etc/hostname") == "somlo-guest\n"
    assert "somlo-guest" in (r.file("/etc/hosts") or ""), r.file("/etc/hosts")
    assert _network_files(r), f"no networkd file written\n{r.describe()}"
    # no DEVICE/HWADDR: the first Ethernet NIC, with the default /24
    checks.has_ipv4(r, MAC0, "192.168.122.50/24")
    # the harness: the entry reached the guest byte for byte
    assert SOMLO.encode() in {p.read_bytes() for p in (r.dir / "fwcfg").glob("*.raw")}
    # brought up by networkd: it is the only manager running, and it names the agent's file
    assert r.unit("systemd-networkd.service").get("ActiveState") == "active"
    assert r.unit("networking.service").get("ActiveState") != "active"
    assert r.unit("NetworkManager.service").get("ActiveState") != "active"
    ifname = r.ifname_of(MAC0)
    status = r.text("networkctl.txt")
    assert any(f in status for f in _network_files(r)), status
    assert ifname in status, status


def test_agent_runs_before_network_pre_and_networkd(seq: Boots) -> None:
    r = seq.first()
    checks.ran_before(r, "systemd-networkd.service")
    print(f"first boot: {r.blame()}")


def test_agent_events_in_the_guest_journal(seq: Boots) -> None:
    r = seq.first()
    entries = r.agent_journal()
    assert entries, f"no journal entries for fwcfg-agent\n{r.describe()}"
    applied = checks.journal_with(r, checks.MSG_APPLIED)
    assert len(applied) == 1, r.text("agent-journal.txt")
    assert applied[0].get("SYSLOG_IDENTIFIER") == "fwcfg-agent"
    assert applied[0].get("FWCFG_SOURCE") == "sysfs", applied[0]
    assert applied[0].get("FWCFG_RUN"), applied[0]
    changed = {e.get("FWCFG_PATH") for e in checks.journal_with(r, checks.MSG_FILE)}
    assert "/etc/hostname" in changed and set(_network_files(r)) <= changed, changed
    # the run journal lists the same files
    runs = checks.apply_runs_this_boot(r)
    assert len(runs) == 1 and runs[0]["outcome"] == "changed", runs
    assert runs[0]["run"] == applied[0]["FWCFG_RUN"]
    assert [e["name"] for e in runs[0]["entries"]] == ["opt/GuestInfo"]
    listed = {f["path"] for f in runs[0]["files"]}
    assert listed == changed, (listed, changed)
    assert "/etc/hostname" in r.text("agent-runs.txt")


def test_second_boot_changes_nothing(seq: Boots) -> None:
    first, second = seq.first(), seq.second()
    checks.agent_succeeded(second)
    checks.nic_driver_loaded_early(second)
    assert checks.journal_with(second, checks.MSG_UNCHANGED), second.text("agent-journal.txt")
    assert not checks.journal_with(second, checks.MSG_FILE), second.text("agent-journal.txt")
    runs = checks.apply_runs_this_boot(second)
    assert [r["outcome"] for r in runs] == ["unchanged"], runs
    state = ("/var/lib/fwcfg-agent/",)
    diff = {
        p: v
        for p, v in checks.etc_changes(first.etc(), second.etc()).items()
        if not p.startswith(state)
    }
    assert diff == {}, diff
    checks.has_ipv4(second, MAC0, "192.168.122.50/24")
    print(f"second boot: {second.blame()}")


def test_changed_ip_changes_only_what_it_must(seq: Boots) -> None:
    second, changed = seq.second(), seq.changed()
    checks.agent_succeeded(changed)
    checks.has_ipv4(changed, MAC0, "192.168.122.51/24")
    assert "192.168.122.50/24" not in changed.ipv4()[MAC0]
    runs = checks.apply_runs_this_boot(changed)
    assert [r["outcome"] for r in runs] == ["changed"], runs
    touched = {f["path"] for f in runs[0]["files"]}
    # the hostname did not change: /etc/hostname stays; the network file changes, and so may
    # /etc/hosts (it maps the name to the address); every file that changed carries the new IP
    assert "/etc/hostname" not in touched, touched
    assert any(p.startswith("/etc/systemd/network/") for p in touched), touched
    for path in touched:
        content = changed.file(path) or ""
        assert "192.168.122.51" in content and "192.168.122.50" not in content, (path, content)
    diff = {
        p
        for p in checks.etc_changes(second.etc(), changed.etc())
        if not p.startswith("/var/lib/fwcfg-agent/")
    }
    assert diff == touched, (diff, touched)
    print(f"changed-ip boot: {changed.blame()}")


def test_rollback_restores_first_boots_originals(seq: Boots) -> None:
    checks.rolled_back(seq.rolled_back(), seq.lab.original_etc(seq.disk),
                       (seq.first(), seq.changed()))


def test_payload_with_prefix_and_gateway(agent_lab: Lab) -> None:
    disk = agent_lab.new_disk("networkd")
    r = agent_lab.boot("networkd-gateway", disk, [FwCfg("opt/GuestInfo", string=SOMLO_GW)])
    checks.agent_succeeded(r)
    checks.no_failed_units(r)
    assert r.hostname == "somlo-gw", r.describe()
    checks.has_ipv4(r, MAC0, "10.11.12.13/28")
    ifname = r.ifname_of(MAC0)
    defaults = [x for x in r.routes() if x.get("dst") == "default"]
    assert any(
        x.get("gateway") == "10.11.12.1" and x.get("dev") == ifname for x in defaults
    ), f"no default route via 10.11.12.1 on {ifname}: {r.routes()}"
    checks.ran_before(r, "systemd-networkd.service")
