"""Boots that must stay unaffected: an invalid payload (nothing in /etc changes, the error names
entry, line and key) and no opt/ entries at all (the agent exits at once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import checks
from .lab import MAC0, Lab
from .results import BootResult
from .vm import FwCfg

pytestmark = pytest.mark.guest

# line 3, key IPADDR: not an address
INVALID = "# from the host\nHOSTNAME=bad-guest\nIPADDR=192.168.1.300\nPREFIX=24\n"


def _agent_seconds(r: BootResult) -> float:
    start = r.monotonic(checks.AGENT, "ExecMainStartTimestampMonotonic")
    end = r.monotonic(checks.AGENT, "ExecMainExitTimestampMonotonic")
    assert start > 0 and end >= start, r.unit(checks.AGENT)
    return (end - start) / 1e6


def _timeout_seconds(r: BootResult) -> float:
    text = r.unit(checks.AGENT).get("TimeoutStartUSec", "")
    # systemd prints e.g. "30s" or "1min 30s"
    total = 0.0
    for word in text.split():
        if word.endswith("min"):
            total += float(word[:-3]) * 60
        elif word.endswith("ms"):
            total += float(word[:-2]) / 1000
        elif word.endswith("s"):
            total += float(word[:-1])
    assert total > 0, text
    return total


def _etc_unchanged(lab: Lab, disk: Path, r: BootResult) -> None:
    original = {p: v for p, v in lab.original_etc(disk).items() if p.startswith("/etc/")}
    after = {p: v for p, v in r.etc().items() if p.startswith("/etc/")}
    assert checks.etc_changes(original, after) == {}, checks.etc_changes(original, after)


def test_invalid_payload_changes_nothing_and_names_entry_line_key(agent_lab: Lab) -> None:
    disk = agent_lab.new_disk("networkd")
    r = agent_lab.boot("invalid-payload", disk, [FwCfg("opt/GuestInfo", string=INVALID)])
    # boot goes on: multi-user reached, only the agent's unit failed, and it failed at once
    checks.reached_multi_user(r)
    checks.no_failed_units(r, allowed=[checks.AGENT])
    unit = r.unit(checks.AGENT)
    assert unit.get("Result") == "exit-code" and unit.get("ExecMainStatus") == "3", unit
    # it ended by itself (exit 3), not by its start timeout: boot never waited on it
    assert _agent_seconds(r) < _timeout_seconds(r), (_agent_seconds(r), unit)
    _etc_unchanged(agent_lab, disk, r)
    assert r.hostname != "bad-guest"
    errors = checks.journal_with(r, checks.MSG_INVALID)
    assert errors, r.text("agent-journal.txt")
    e = errors[0]
    assert e.get("FWCFG_ENTRY") == "opt/GuestInfo", e
    assert e.get("FWCFG_LINE") == "3", e
    assert e.get("FWCFG_KEY") == "IPADDR", e
    assert "opt/GuestInfo" in e["MESSAGE"] and "line 3" in e["MESSAGE"], e["MESSAGE"]
    assert "IPADDR" in e["MESSAGE"], e["MESSAGE"]
    assert int(e.get("PRIORITY", "6")) <= 3, e


def test_no_opt_entries_agent_exits_quickly(agent_lab: Lab) -> None:
    disk = agent_lab.new_disk("networkd")
    # a non-opt item only (QEMU warns about the name): present, but not the agent's
    r = agent_lab.boot("no-entries", disk, [FwCfg("fwcfg-test/probe", string="a,b")])
    checks.agent_succeeded(r)
    checks.reached_multi_user(r)
    checks.no_failed_units(r)
    assert checks.journal_with(r, checks.MSG_NOTHING), r.text("agent-journal.txt")
    assert not checks.journal_with(r, checks.MSG_FILE), r.text("agent-journal.txt")
    assert _agent_seconds(r) < _timeout_seconds(r), r.unit(checks.AGENT)
    _etc_unchanged(agent_lab, disk, r)
    # the harness itself: the item and the NIC's MAC reached the guest as given
    assert r.fwcfg_names().get("fwcfg-test/probe") == 3, r.fwcfg_names()
    assert r.ifname_of(MAC0)
    print(f"no-entries boot: {r.blame()}")
    # a later boot of the same disk proves the same from its snapshot: the fast path's record
    later = agent_lab.boot("no-entries-later", disk, [FwCfg("fwcfg-test/probe", string="a,b")])
    checks.agent_succeeded(later)
    assert checks.journal_with(later, checks.MSG_NOTHING), later.text("agent-journal.txt")
    assert "full run" not in later.text("agent-journal.txt"), later.text("agent-journal.txt")
    assert [x["outcome"] for x in checks.apply_runs_this_boot(later)] == ["no-entries"]
    _etc_unchanged(agent_lab, disk, later)
    print(f"no-entries later boot: {later.blame()}")
